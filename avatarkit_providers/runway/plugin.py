"""The ``avatarkit`` entry point of the Runway provider (kept light on purpose)."""

from __future__ import annotations

from collections.abc import Callable

from avatarkit import ProviderSpec, hookimpl


@hookimpl
def register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(
        ProviderSpec(
            name="runway",
            summary="Runway Characters: real-time avatars (presets or custom) in your room",
            provider="avatarkit_providers.runway.provider:RunwayProvider",
            options="avatarkit_providers.runway.options:RunwayOptions",
            double="avatarkit_providers.runway.double:RunwayDouble",
        )
    )
