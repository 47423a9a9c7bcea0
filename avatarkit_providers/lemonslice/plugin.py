"""The ``avatarkit`` entry point of the LemonSlice provider (kept light on purpose)."""

from __future__ import annotations

from collections.abc import Callable

from avatarkit import ProviderSpec, hookimpl


@hookimpl
def register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(
        ProviderSpec(
            name="lemonslice",
            summary="LemonSlice avatars from an image or an agent id, over LiveKit data streams",
            provider="avatarkit_providers.lemonslice.provider:LemonSliceProvider",
            options="avatarkit_providers.lemonslice.options:LemonSliceOptions",
            double="avatarkit_providers.lemonslice.double:LemonSliceDouble",
        )
    )
