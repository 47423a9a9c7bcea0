"""Options that let the built-in providers run here with no account: Runway against its
emulator (labelled so), local as it is."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any


@contextlib.asynccontextmanager
async def provider_options(
    provider: str, given: dict[str, Any], *, size: int
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """``(label, options)`` to run ``provider`` with: the built-in defaults under the
    options the user ``given``. Runway without an ``api_key`` runs against the in-process
    emulator and is labelled ``runway (emulated)``."""
    if provider == "runway" and "api_key" not in given:
        # no key: the emulator, with the preset the demo shows
        from avatarkit_providers.local.video import FaceVideoGenerator
        from avatarkit_providers.runway.emulator.emulator import RunwayEmulator

        def video() -> FaceVideoGenerator:
            return FaceVideoGenerator(width=size, height=size, fps=30)

        async with RunwayEmulator(provisioning_delay=0.5, video=video) as emulator:
            defaults = {"preset_id": "influencer", "api_key": emulator.api_key}
            yield "runway (emulated)", {**defaults, **given, "api_url": emulator.url}
    elif provider == "runway":
        avatar = {} if "avatar_id" in given else {"preset_id": "influencer"}
        yield provider, {**avatar, **given}
    elif provider == "local":
        yield provider, {"width": size, "height": size, "fps": 30, **given}
    else:
        yield provider, dict(given)
