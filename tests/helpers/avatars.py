"""Avatars and agents for tests: built the way an app builds them, pointed at the in-memory
server and the providers' doubles."""

from __future__ import annotations

from typing import Any

from livekit.agents import Agent, AgentSession, APIConnectOptions

import avatarkit
from avatarkit._compat import ParticipantAudioOutput as _ParticipantAudioOutput
from avatarkit_providers.local.video import FaceVideoGenerator
from avatarkit_providers.runway.emulator.emulator import RunwayEmulator
from memory_livekit import MemoryLiveKit

FAST = APIConnectOptions(max_retry=2, retry_interval=0.05, timeout=2.0)


def in_memory(livekit: MemoryLiveKit) -> dict[str, Any]:
    """The options that point an avatar at the in-memory server, with fast retries."""
    return {
        "livekit_url": livekit.url,
        "livekit_api_key": livekit.api_key,
        "livekit_api_secret": livekit.api_secret,
        "conn_options": FAST,
    }


def small_video() -> FaceVideoGenerator:
    return FaceVideoGenerator(width=64, height=64, fps=20)


def make_runway_avatar(
    runway: RunwayEmulator, livekit: MemoryLiveKit, **options: Any
) -> avatarkit.AvatarkitSession:
    """``avatarkit.get("runway", ...)`` pointed at ``runway`` and the in-memory server."""
    options.setdefault("preset_id", "influencer")
    options.setdefault("conn_options", FAST)
    return avatarkit.get(
        "runway",
        api_key=runway.api_key,
        api_url=runway.url,
        livekit_url=livekit.url,
        livekit_api_key=livekit.api_key,
        livekit_api_secret=livekit.api_secret,
        **options,
    )


def local_avatar(livekit: MemoryLiveKit, **options: Any) -> avatarkit.AvatarkitSession:
    """``avatarkit.get("local", ...)``, small and fast, joining the in-memory server."""
    return avatarkit.get(
        "local",
        width=64,
        height=64,
        fps=20,
        livekit_url=livekit.url,
        livekit_api_key=livekit.api_key,
        livekit_api_secret=livekit.api_secret,
        conn_options=FAST,
        **options,
    )


def end_calls(livekit: MemoryLiveKit, room: str = "room-1") -> list[Any]:
    """The END_CALL packets sent in ``room``."""
    return [p for p in livekit.rooms[room].data_packets if b"END_CALL" in p.payload]


async def start_agent(session: AgentSession[Any]) -> None:
    await session.start(agent=Agent(instructions="You are a test agent."))


def assert_room_audio(session: AgentSession[Any]) -> None:
    """The agent speaks through its own track in the room (livekit's room audio output),
    as it would with no avatar at all."""
    output = session.output.audio
    assert isinstance(output, _ParticipantAudioOutput), output
    assert output._room.isconnected()
