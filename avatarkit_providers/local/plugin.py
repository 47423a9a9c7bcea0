"""The ``avatarkit`` entry point of the local provider (kept light on purpose)."""

from __future__ import annotations

from collections.abc import Callable

from avatarkit import ProviderSpec, hookimpl


@hookimpl
def register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(
        ProviderSpec(
            name="local",
            summary="A face drawn on the CPU from the agent's speech; no account, no cloud",
            provider="avatarkit_providers.local.provider:LocalProvider",
            options="avatarkit_providers.local.options:LocalOptions",
            double="avatarkit_providers.local.double:LocalDouble",
        )
    )
