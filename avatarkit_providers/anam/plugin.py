"""The ``avatarkit`` entry point of the Anam provider (kept light on purpose)."""

from __future__ import annotations

from collections.abc import Callable

from avatarkit import ProviderSpec, hookimpl


@hookimpl
def register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(
        ProviderSpec(
            name="anam",
            summary="Anam personas, over LiveKit data streams",
            provider="avatarkit_providers.anam.provider:AnamProvider",
            options="avatarkit_providers.anam.options:AnamOptions",
            double="avatarkit_providers.anam.double:AnamDouble",
        )
    )
