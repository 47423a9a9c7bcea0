"""Simli for avatarkit: ``avatarkit.get("simli", simli_config=SimliConfig(...))``, the options
of ``livekit.plugins.simli.AvatarSession``. Light: the implementation loads when used."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # ``from avatarkit_providers.simli import SimliConfig``, without loading it to list providers
    if name == "SimliConfig":
        from .options import SimliConfig

        return SimliConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
