"""The ``avatarkit`` entry point: light on purpose (no livekit, no provider code)."""

from __future__ import annotations

from collections.abc import Callable

from avatarkit import ProviderSpec, hookimpl


@hookimpl
def register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(
        ProviderSpec(
            name="myavatar",
            summary="MyAvatar streaming avatars",
            provider="myavatar_avatarkit.provider:MyAvatarProvider",
            options="myavatar_avatarkit.options:MyAvatarOptions",
            # a stand-in of MyAvatar's API: demo, compare, emulate and the conformance kit
            double="myavatar_avatarkit.double:MyAvatarDouble",
        )
    )
