"""Runway's double: its API emulator (:mod:`.emulator`), whose avatars say they are emulated."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from avatarkit.doubles import Offline, ProviderDouble, Served

from .options import API_KEY_ENV, API_URL_ENV

_DEFAULT_AVATAR = {"preset_id": "influencer"}


class RunwayDouble(ProviderDouble):
    """Runs Runway against the in-process emulator unless the user gives an ``api_key``."""

    label = "runway (emulated)"

    @contextlib.asynccontextmanager
    async def offline(self, given: Mapping[str, Any], *, size: int) -> AsyncIterator[Offline]:
        avatar = {} if "avatar_id" in given else _DEFAULT_AVATAR
        if "api_key" in given:  # the user's account: the real service
            yield Offline("runway", {**avatar, **given})
            return
        from .emulator.emulator import RunwayEmulator, face_video

        video = face_video(size, 30, label=self.label)
        async with RunwayEmulator(provisioning_delay=0.5, video=video) as emulator:
            options = {**avatar, "api_key": emulator.api_key, **given, "api_url": emulator.url}
            yield Offline(self.label, options, double=emulator)

    @contextlib.asynccontextmanager
    async def serve(self, *, port: int, runtime_cap: float) -> AsyncIterator[Served]:
        from .emulator.emulator import RunwayEmulator

        async with RunwayEmulator(port=port, runtime_cap=runtime_cap) as emulator:
            yield Served(
                "Runway emulator (emulated, no Runway account)",
                emulator.url,
                {API_URL_ENV: emulator.url, API_KEY_ENV: emulator.api_key},
            )
