"""The ``avatarkit`` entry point of the Simli provider (kept light on purpose)."""

from __future__ import annotations

from collections.abc import Callable

from avatarkit import ProviderSpec, hookimpl


@hookimpl
def register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(
        ProviderSpec(
            name="simli",
            summary="Simli real-time faces, over LiveKit data streams",
            provider="avatarkit_providers.simli.provider:SimliProvider",
            options="avatarkit_providers.simli.options:SimliOptions",
            double="avatarkit_providers.simli.double:SimliDouble",
        )
    )
