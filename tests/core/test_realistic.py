"""Resilience on the in-memory server's realistic mode: Opus-coded, delayed audio; reconnects
that report participants gone and back; RPC timeouts; room auto-close.

The audio is coded, so what a listener hears is matched by loudness, not sample by sample
(the exact checks run on the default server, in test_resilience.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from livekit.agents import AgentSession

from avatarkit.testing import in_memory_livekit
from avatarkit.testing.conformance import Listener, until
from avatarkit_providers.runway.emulator.emulator import RunwayEmulator
from avatarkit_providers.runway.emulator.sessions import SessionStatus
from memory_livekit import MemoryLiveKit, MemoryRoom, Realism
from tests.helpers.audio import stream, tone_frames
from tests.helpers.avatars import local_avatar, make_runway_avatar, small_video, start_agent

SCALE = 0.05  # the server's own durations (RPC timeouts, batching, auto-close) x 1/20


@pytest.fixture
async def harsh() -> AsyncIterator[MemoryLiveKit]:
    async with in_memory_livekit(Realism.harsh(time_scale=SCALE, seed=7)) as server:
        yield server


@pytest.fixture
async def room(harsh: MemoryLiveKit) -> MemoryRoom:
    return await harsh.join("room-1", "agent-1", kind="agent")


@pytest.fixture
async def user(harsh: MemoryLiveKit, room: MemoryRoom) -> AsyncIterator[Listener]:
    listener = Listener(await harsh.join("room-1", "user-1"))
    yield listener
    await listener.aclose()


async def speak(session: AgentSession[Any], seconds: float) -> None:
    handle = session.say("x", audio=stream(tone_frames(seconds)), add_to_chat_ctx=False)
    await asyncio.wait_for(handle.wait_for_playout(), seconds + 10)


@pytest.mark.parametrize("who", ["runway-avatar-agent", "agent-1"])
async def test_a_full_reconnect_keeps_the_paid_session_and_the_avatar_speaks_again(
    harsh: MemoryLiveKit,
    room: MemoryRoom,
    agent_session: AgentSession[Any],
    user: Listener,
    who: str,
) -> None:
    # A worker that reconnects is seen leaving and coming back under its identity; a room
    # that reconnects reports every participant gone, then back. Before rejoin_grace, either
    # moved the audio to the room and DELETEd a healthy, paid session.
    async with RunwayEmulator(provisioning_delay=0.05, video=small_video) as runway:
        avatar = make_runway_avatar(runway, harsh)
        states: list[str] = []
        avatar.on("avatar_state_changed", lambda event: states.append(event.state))
        await avatar.start(agent_session, room=room)
        await start_agent(agent_session)
        await avatar.wait_for_join(timeout=10)
        (session,) = runway.server.sessions.values()
        await harsh.reconnect("room-1", who, full=True, downtime=0.3)
        # the agent's room learns of it late (the server's messages are delayed): wait for
        # the avatar to be seen gone, then back
        await until(lambda: states[-2:] == ["degraded", "joined"], f"it back: {states}")
        await speak(agent_session, 1.0)
        await until(lambda: user.loud.get("runway-avatar-agent", 0) > 8000, "the avatar")
        assert session.status is SessionStatus.RUNNING
        assert runway.server.requests_for("delete") == []
        assert len(avatar.remote_avatars) == 1 and avatar.remote_avatars[0].end_outcome is None
        await avatar.aclose()  # END_CALL goes over the room, delayed
        await until(lambda: session.status is SessionStatus.COMPLETED, "the call to end")


async def test_an_avatar_that_freezes_is_lost_and_the_agent_heard_through_the_room(
    harsh: MemoryLiveKit,
    room: MemoryRoom,
    agent_session: AgentSession[Any],
    user: Listener,
) -> None:
    # Frozen: still in the room, but nothing it sends arrives (no audio, no acknowledgement)
    # and RPCs to it time out as the SDK's do.
    async with RunwayEmulator(provisioning_delay=0.05, video=small_video) as runway:
        avatar = make_runway_avatar(runway, harsh, on_loss="audio_only", ack_timeout=0.5)
        await avatar.start(agent_session, room=room)
        await start_agent(agent_session)
        await avatar.wait_for_join(timeout=10)
        harsh.freeze("room-1", "runway-avatar-agent")
        await speak(agent_session, 1.0)  # does not hang on the frozen avatar
        await until(lambda: avatar.state == "degraded", "the loss to be noticed")
        await until(lambda: user.loud.get("agent-1", 0) > 8000, "the agent in the room")
        await avatar.aclose()
        await until(lambda: not runway.server.active_sessions(), "the session to end")


async def test_switching_runway_local_runway_on_the_realistic_server(
    harsh: MemoryLiveKit,
    room: MemoryRoom,
    agent_session: AgentSession[Any],
    user: Listener,
) -> None:
    # the exact, sample-by-sample version runs on the default server (test_resilience.py)
    async with RunwayEmulator(provisioning_delay=0.05, video=small_video) as runway:
        avatar = make_runway_avatar(runway, harsh)
        await avatar.start(agent_session, room=room)
        await start_agent(agent_session)
        await avatar.wait_for_join(timeout=10)
        for target in (local_avatar(harsh), make_runway_avatar(runway, harsh)):
            talking = agent_session.say("x", audio=stream(tone_frames(1.5)), add_to_chat_ctx=False)
            await avatar.switch(target)  # joins while the current one talks
            await asyncio.wait_for(talking.wait_for_playout(), 15)
            assert not talking.interrupted
        first, local, last = avatar.remote_avatars
        assert (first.name, local.name, last.name) == ("runway", "local", "runway")
        for old in (first, local):  # each spoke its utterance, and was ended
            await until(lambda old=old: user.loud.get(old.identity, 0) > 12000, old.identity)
            await until(lambda old=old: old.end_outcome == "graceful", f"{old.identity} ended")
        assert user.loud.get("agent-1", 0) == 0  # nothing went through the room
        await avatar.aclose()
        await until(lambda: not runway.server.active_sessions(), "the sessions to end")
