"""The ``avatarkit`` entry point of the Tavus provider (kept light on purpose)."""

from __future__ import annotations

from collections.abc import Callable

from avatarkit import ProviderSpec, hookimpl


@hookimpl
def register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(
        ProviderSpec(
            name="tavus",
            summary="Tavus conversational video (PALs and faces), over LiveKit data streams",
            provider="avatarkit_providers.tavus.provider:TavusProvider",
            options="avatarkit_providers.tavus.options:TavusOptions",
            double="avatarkit_providers.tavus.double:TavusDouble",
        )
    )
