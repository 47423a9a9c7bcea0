"""Inside a LiveKit job: the job's HTTP session, and the worker's shutdown sequence."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from livekit.agents import AgentSession

from avatarkit import AvatarkitSession
from avatarkit_providers.runway.emulator.emulator import RunwayEmulator
from avatarkit_providers.runway.emulator.sessions import SessionStatus
from memory_livekit import MemoryLiveKit, MemoryRoom
from memory_livekit.job import job_context
from tests.helpers.avatars import end_calls, start_agent

Avatar = Callable[..., AvatarkitSession]


async def test_in_a_job_the_shutdown_callback_ends_the_session_after_the_room_is_gone(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    async with job_context(agent_room) as job:
        avatar = runway_avatar()
        await avatar.start(agent_session, room=agent_room)
        assert avatar.backend.http._owned is None  # the job's session was used
        assert avatar.remote_session is not None
        sid = avatar.remote_session.id
        await avatar.wait_for_join(timeout=5)

        await job.shutdown()  # the app never closed anything itself
    assert runway.server.session(sid).status is SessionStatus.CANCELLED
    assert avatar.end_outcome == "forced"
    assert runway.server.active_sessions() == []


async def test_the_workers_order_closes_the_agent_session_first_and_ends_gracefully(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    async with job_context(agent_room) as job:
        avatar = runway_avatar()
        await avatar.start(agent_session, room=agent_room)
        await start_agent(agent_session)
        await avatar.wait_for_join(timeout=5)
        assert avatar.remote_session is not None
        sid = avatar.remote_session.id

        await agent_session.aclose()  # the worker closes the session, then shuts down
        await runway.server.wait_for_status(sid, SessionStatus.COMPLETED, timeout=5)
        await job.shutdown()
    assert avatar.end_outcome == "graceful"
    assert runway.server.requests_for("delete") == []
    assert len(end_calls(livekit)) == 1


async def test_in_a_job_the_agent_identity_comes_from_the_jobs_token(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    async with job_context(agent_room) as job:
        avatar = runway_avatar()
        await avatar.start(agent_session, room=agent_room)
        assert avatar.remote_session is not None
        body = runway.server.session(avatar.remote_session.id).body
        assert body["integration"]["agentIdentity"] == job.ctx.local_participant_identity
        assert body["integration"]["agentIdentity"] == "agent-1"
        await job.shutdown()
