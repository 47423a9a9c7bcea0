"""The ``avatarkit`` entry point of the Bey provider (kept light on purpose)."""

from __future__ import annotations

from collections.abc import Callable

from avatarkit import ProviderSpec, hookimpl


@hookimpl
def register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(
        ProviderSpec(
            name="bey",
            summary="Beyond Presence avatars, over LiveKit data streams",
            provider="avatarkit_providers.bey.provider:BeyProvider",
            options="avatarkit_providers.bey.options:BeyOptions",
            double="avatarkit_providers.bey.double:BeyDouble",
        )
    )
