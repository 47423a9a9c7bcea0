"""The ``avatarkit`` entry point of the LiveAvatar provider (kept light on purpose)."""

from __future__ import annotations

from collections.abc import Callable

from avatarkit import ProviderSpec, hookimpl


@hookimpl
def register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(
        ProviderSpec(
            name="liveavatar",
            summary="LiveAvatar (HeyGen) interactive avatars, over its own WebSocket",
            provider="avatarkit_providers.liveavatar.provider:LiveAvatarProvider",
            options="avatarkit_providers.liveavatar.options:LiveAvatarOptions",
            double="avatarkit_providers.liveavatar.double:LiveAvatarDouble",
        )
    )
