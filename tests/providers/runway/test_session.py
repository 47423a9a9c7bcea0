"""The Runway backend end to end: a real AgentSession, the in-memory room, the emulator."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from livekit import api
from livekit.agents import AgentSession
from livekit.agents.voice.avatar import DataStreamAudioOutput

import avatarkit
from avatarkit import AvatarClosedError, AvatarkitSession
from avatarkit.http import ProviderAPIError
from avatarkit.relay import AudioRelay
from avatarkit_providers.runway.emulator.emulator import RunwayEmulator
from avatarkit_providers.runway.emulator.sessions import SessionStatus
from avatarkit_providers.runway.provider import RunwayProvider
from memory_livekit import MemoryLiveKit, MemoryRoom
from tests.helpers.audio import stream, tone_frames
from tests.helpers.avatars import assert_room_audio, end_calls, start_agent
from tests.helpers.outputs import NullOutput

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
    (end_call,) = end_calls(livekit)
    assert end_call.destination_identities == ("runway-avatar-agent",)
    await asyncio.sleep(0.1)
    assert "runway-avatar-agent" not in agent_room.remote_participants
    assert runway.server.active_sessions() == []


async def test_the_create_request_speaks_the_current_api(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    avatar = runway_avatar(max_duration=120, personality="calm")
    await avatar.start(agent_session, room=agent_room)
    assert avatar.remote_session is not None
    session = runway.server.session(avatar.remote_session.id)
    body = session.body
    assert body["model"] == "gwm1_avatars" and "livekit" not in body
    assert body["avatar"] == {"type": "runway-preset", "presetId": "influencer"}
    assert body["maxDuration"] == 120 and body["personality"] == "calm"
    integration = body["integration"]
    assert integration["type"] == "livekit"
    assert integration["url"] == livekit.url and integration["roomName"] == "room-1"
    assert integration["agentIdentity"] == "agent-1"

    claims = api.TokenVerifier(livekit.api_key, livekit.api_secret).verify(integration["token"])
    assert claims.kind == "agent" and claims.identity == "runway-avatar-agent"
    assert claims.video is not None and claims.video.room == "room-1" and claims.video.room_join
    assert claims.attributes == {"lk.publish_on_behalf": "agent-1"}

    (create,) = runway.server.requests_for("create")
    assert create.headers["X-Runway-Version"] == "2024-11-06"
    assert create.headers["Authorization"].startswith("Bearer ")
    await avatar.aclose()


async def test_the_legacy_form_is_sent_only_when_asked(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    avatar = runway_avatar(legacy_livekit_field=True)
    await avatar.start(agent_session, room=agent_room)
    assert avatar.remote_session is not None
    body = runway.server.session(avatar.remote_session.id).body
    assert "integration" not in body and body["livekit"]["roomName"] == "room-1"
    await avatar.aclose()


async def test_an_account_rejecting_the_legacy_key_gets_runways_message(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    runway.server.validator = attrs.evolve(runway.server.validator, reject_legacy_livekit=True)
    avatar = runway_avatar(legacy_livekit_field=True)
    with pytest.raises(ProviderAPIError, match="Unrecognized key: livekit") as err:
        await avatar.start(agent_session, room=agent_room)
    assert err.value.status_code == 400
    assert len(runway.server.requests_for("create")) == 1  # a 400 is not retried
    assert_room_audio(agent_session)  # the agent is still audible through the room
    with pytest.raises(AvatarClosedError):
        await avatar.wait_for_join(timeout=1)


async def test_transient_errors_are_retried_with_the_servers_pacing(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    runway.faults.next(route="create", status=503, retry_after=0)
    runway.faults.next(route="create", status=429, retry_after_ms=200)
    avatar = runway_avatar()
    await avatar.start(agent_session, room=agent_room)
    creates = runway.server.requests_for("create")
    assert [r.status for r in creates] == [503, 429, 200]
    assert creates[2].at - creates[1].at >= 0.19
    assert len(runway.server.sessions) == 1
    await avatar.aclose()


async def test_agent_session_close_ends_the_session_with_end_call(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    avatar = runway_avatar()
    await avatar.start(agent_session, room=agent_room)
    await start_agent(agent_session)
    await avatar.wait_for_join(timeout=5)
    assert avatar.remote_session is not None
    sid = avatar.remote_session.id

    await agent_session.aclose()
    await runway.server.wait_for_status(sid, SessionStatus.COMPLETED, timeout=5)
    await avatar.aclose()  # later close (the job's shutdown) does not end it again
    assert avatar.end_outcome == "graceful"
    assert runway.server.requests_for("delete") == []
    assert len([r for r in runway.server.requests if r.method != "GET"]) == 1  # the create


async def test_a_room_that_goes_away_cancels_the_session_through_the_api(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    avatar = runway_avatar()
    await avatar.start(agent_session, room=agent_room)
    await avatar.wait_for_join(timeout=5)
    assert avatar.remote_session is not None
    sid = avatar.remote_session.id

    await livekit.delete_room("room-1")
    await runway.server.wait_for_status(sid, SessionStatus.CANCELLED, timeout=5)
    await avatar.aclose()
    assert avatar.end_outcome == "forced"
    assert len(runway.server.requests_for("delete")) == 1
    assert runway.server.active_sessions() == []


async def test_closing_before_the_avatar_joined_cancels_instead_of_messaging_nobody(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    runway.faults.next_session(provisioning_delay=30)
    avatar = runway_avatar()
    await avatar.start(agent_session, room=agent_room)
    await avatar.aclose()
    assert avatar.end_outcome == "forced"
    assert end_calls(livekit) == []
    assert runway.server.active_sessions() == []


async def test_a_start_cancelled_during_create_still_cancels_what_it_created(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    # The server creates the session, then answers late: the client is cancelled meanwhile.
    runway.faults.next(route="create", delay=0.5)
    runway.faults.next_session(provisioning_delay=30)  # the avatar cannot have joined
    avatar = runway_avatar()
    task = asyncio.create_task(avatar.start(agent_session, room=agent_room))
    await asyncio.sleep(0.2)
    assert len(runway.server.sessions) == 1  # it exists remotely already
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # By the time the cancellation left start(), the session was cancelled.
    assert runway.server.active_sessions() == []
    assert [s.status for s in runway.server.sessions.values()] == [SessionStatus.CANCELLED]
    assert avatar.end_outcome == "forced"
    assert_room_audio(agent_session)


async def test_aclose_while_starting_ends_the_session_and_fails_start(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    runway.faults.next(route="create", delay=0.3)
    avatar = runway_avatar()
    task = asyncio.create_task(avatar.start(agent_session, room=agent_room))
    await asyncio.sleep(0.1)
    await avatar.aclose()
    with pytest.raises(AvatarClosedError):
        await task
    assert runway.server.active_sessions() == []
    assert len(runway.server.sessions) == 1
    assert_room_audio(agent_session)


async def test_a_failing_start_leaves_the_agent_audible(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    runway.faults.next(route="create", status=500, times=None)
    avatar = runway_avatar()
    with pytest.raises(ProviderAPIError, match="500"):
        await avatar.start(agent_session, room=agent_room)
    # a 500 to a create may mean it was carried out: not resent (avatarkit.http's rules)
    assert len(runway.server.requests_for("create")) == 1
    assert runway.server.sessions == {}
    assert_room_audio(agent_session)
    assert avatar.end_outcome == "not_created"


async def test_ending_happens_once_however_many_ask(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    avatar = runway_avatar()
    await avatar.start(agent_session, room=agent_room)
    await start_agent(agent_session)
    await avatar.wait_for_join(timeout=5)
    await asyncio.gather(*(avatar.aclose() for _ in range(5)), agent_session.aclose())
    await avatar.aclose()
    assert len(end_calls(livekit)) == 1
    assert runway.server.requests_for("delete") == []


async def test_close_restores_the_audio_route_it_replaced(
    runway_avatar: Avatar,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    speaker = NullOutput(label="speaker")
    agent_session.output.audio = speaker
    avatar = runway_avatar()
    await avatar.start(agent_session, room=agent_room)
    await avatar.wait_for_join(timeout=5)
    relay = agent_session.output.audio
    assert isinstance(relay, AudioRelay) and isinstance(relay.sink, DataStreamAudioOutput)
    await avatar.aclose()
    assert agent_session.output.audio is speaker
    handlers = DataStreamAudioOutput._playback_finished_handlers
    assert "runway-avatar-agent" not in handlers  # the closed session is not kept alive


async def test_session_state_is_available_typed(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    avatar = runway_avatar()
    await avatar.start(agent_session, room=agent_room)
    await avatar.wait_for_join(timeout=5)
    assert avatar.remote_session is not None
    backend = avatar.backend
    assert isinstance(backend, RunwayProvider)
    state = await backend.get_session(avatar.remote_session.id)
    assert state.status == "RUNNING" and state.active and state.created_at is not None
    runway.server.fail(avatar.remote_session.id, "AVATAR_CRASHED", "The avatar crashed.")
    state = await backend.get_session(avatar.remote_session.id)
    assert state.status == "FAILED" and not state.active
    assert state.failure_code == "AVATAR_CRASHED" and state.failure == "The avatar crashed."
    await avatar.aclose()


async def test_outside_a_job_avatarkit_owns_and_closes_its_http_session(
    runway_avatar: Avatar,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    avatar = runway_avatar()
    await avatar.start(agent_session, room=agent_room)
    owned = avatar.backend.http._owned
    assert owned is not None and not owned.closed
    await avatar.aclose()
    assert owned.closed


async def test_no_secret_reaches_the_logs(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    runway.faults.next(route="create", status=503, retry_after=0)
    avatar = runway_avatar()
    await avatar.start(agent_session, room=agent_room)
    await avatar.wait_for_join(timeout=5)
    assert avatar.remote_session is not None
    token = runway.server.session(avatar.remote_session.id).body["integration"]["token"]
    await avatar.aclose()
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "retrying" in logged  # the retry was logged...
    for secret in (runway.api_key, livekit.api_secret, token):
        assert secret not in logged  # ...without a credential


async def test_audio_said_before_the_avatar_joins_is_held_not_lost(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    runway.faults.next_session(provisioning_delay=0.6)
    avatar = runway_avatar()
    await avatar.start(agent_session, room=agent_room)
    await start_agent(agent_session)
    assert "runway-avatar-agent" not in agent_room.remote_participants
    handle = agent_session.say("early", audio=stream(tone_frames(0.4)), add_to_chat_ctx=False)
    await asyncio.wait_for(handle.wait_for_playout(), 10)
    assert avatar.remote_session is not None
    worker = runway.workers[avatar.remote_session.id]
    assert worker.video.stats.audio_samples_in == 6400  # all of it, after the join
    await avatar.aclose()


async def test_missing_livekit_settings_fail_start_before_anything_is_created(
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        monkeypatch.delenv(var, raising=False)
    avatar = avatarkit.get(
        "runway", preset_id="influencer", api_key=runway.api_key, api_url=runway.url
    )
    with pytest.raises(avatarkit.ConfigurationError, match="LIVEKIT_URL"):
        await avatar.start(agent_session, room=agent_room)
    assert runway.server.requests == []
    with pytest.raises(AvatarClosedError):
        await avatar.wait_for_join(timeout=1)
    await avatar.aclose()
    assert avatar.end_outcome == "not_created"
