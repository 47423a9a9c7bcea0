"""The Runway backend end to end: a real AgentSession, the in-memory room, the emulator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from livekit.agents import AgentSession

from avatarkit import AvatarkitSession
from avatarkit.testing import MemoryLiveKit, MemoryRoom
from avatarkit_runway.emulator.emulator import RunwayEmulator
from avatarkit_runway.emulator.sessions import SessionStatus

from .audio import stream, tone_frames
from .conftest import start_agent

Avatar = Callable[..., AvatarkitSession]


async def test_the_whole_path(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    avatar = runway_avatar()
    metrics: list[Any] = []
    avatar.on("metrics_collected", metrics.append)
    await avatar.start(agent_session, room=agent_room)
    await start_agent(agent_session)
    await avatar.wait_for_join(timeout=5)

    assert avatar.remote_session is not None
    sid = avatar.remote_session.id
    session = runway.server.session(sid)
    assert session.status is SessionStatus.RUNNING
    assert metrics and metrics[0].avatar_joined_time is not None

    # The avatar joined with the core's token: publishing on behalf of the agent.
    avatar_participant = agent_room.remote_participants["runway-avatar-agent"]
    assert avatar_participant.attributes["lk.publish_on_behalf"] == "agent-1"

    frames = tone_frames(0.5)
    handle = agent_session.say("hello", audio=stream(frames), add_to_chat_ctx=False)
    await asyncio.wait_for(handle.wait_for_playout(), 10)
    worker = runway.workers[sid]
    assert worker.video.stats.audio_samples_in == 8000  # every sample reached the avatar
    assert not handle.interrupted

    await avatar.aclose()
    assert avatar.end_outcome == "graceful"
    assert session.status is SessionStatus.COMPLETED
    end_calls = [p for p in livekit.rooms["room-1"].data_packets if b"END_CALL" in p.payload]
    assert len(end_calls) == 1 and end_calls[0].destination_identities == ("runway-avatar-agent",)
    await asyncio.sleep(0.1)
    assert "runway-avatar-agent" not in agent_room.remote_participants
    assert runway.server.active_sessions() == []
