"""Against a real LiveKit server: run when LIVEKIT_URL, LIVEKIT_API_KEY and
LIVEKIT_API_SECRET are set (skipped otherwise: no server can be installed on CI here)."""

from __future__ import annotations

import os

import pytest

from avatarkit_cli.clips import bundled_utterances
from avatarkit_cli.scenario import LiveKitEnv, run_scenario
from avatarkit_providers.runway.emulator.emulator import RunwayEmulator

pytestmark = pytest.mark.skipif(
    not all(os.environ.get(v) for v in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")),
    reason="set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET to run against a server",
)


async def test_the_local_avatar_in_a_real_room() -> None:
    async with LiveKitEnv.open() as env:
        assert not env.in_memory
        result = await run_scenario(
            "local",
            {"width": 128, "height": 128, "fps": 20},
            env=env,
            utterances=bundled_utterances()[:1],
            room_name=f"avatarkit-e2e-local-{os.getpid()}",
        )
    assert result.error is None
    assert result.join_latency is not None and result.first_frame_latency is not None
    assert result.end_outcome == "graceful"
    assert result.recording is not None and len(result.recording.video_times) > 20


async def test_the_runway_backend_against_the_emulator_in_a_real_room() -> None:
    async with RunwayEmulator(provisioning_delay=0.2) as emulator, LiveKitEnv.open() as env:
        result = await run_scenario(
            "runway",
            {"preset_id": "influencer", "api_key": emulator.api_key, "api_url": emulator.url},
            env=env,
            utterances=bundled_utterances()[:1],
            room_name=f"avatarkit-e2e-runway-{os.getpid()}",
        )
        assert result.error is None
        assert result.remote_status == "COMPLETED"
        assert emulator.server.active_sessions() == []
