"""The ``avatarkit`` entry point of the Inference provider (kept light on purpose)."""

from __future__ import annotations

from collections.abc import Callable

from avatarkit import ProviderSpec, hookimpl


@hookimpl
def register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(
        ProviderSpec(
            name="inference",
            summary="LiveKit Inference's avatar gateway (e.g. lemonslice/<id>), via LiveKit Cloud",
            provider="avatarkit_providers.inference.provider:InferenceProvider",
            options="avatarkit_providers.inference.options:InferenceOptions",
            double="avatarkit_providers.inference.double:InferenceDouble",
        )
    )
