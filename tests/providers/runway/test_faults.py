"""Every fault switch of the Runway emulator, driven through the Runway backend.

Each test drives ``avatarkit.get("runway", ...)`` -> ``start()`` / ``wait_for_join()`` /
``aclose()`` against the emulator with one fault switched on, and checks both what the app
sees and the emulator's record: no session may be left running.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from livekit.agents import AgentSession, APIConnectOptions

from avatarkit import AvatarkitSession
from avatarkit.http import ProviderAPIError, ProviderConnectionError, ProviderTimeoutError
from avatarkit_providers.runway.emulator.emulator import RunwayEmulator
from avatarkit_providers.runway.emulator.sessions import Session, SessionStatus
from avatarkit_providers.runway.provider import RunwayProvider
from memory_livekit import MemoryLiveKit, MemoryRoom
from tests.helpers.audio import stream, tone_frames
from tests.helpers.avatars import (
    assert_room_audio,
    end_calls,
    make_runway_avatar,
    small_video,
    start_agent,
)

Avatar = Callable[..., AvatarkitSession]

AVATAR = "runway-avatar-agent"
BOUND = 5.0  # the longest any single wait in this file may take


def backend_of(avatar: AvatarkitSession) -> RunwayProvider:
    backend = avatar.backend
    assert isinstance(backend, RunwayProvider)
    return backend


def remote_id(avatar: AvatarkitSession) -> str:
    assert avatar.remote_session is not None
    return avatar.remote_session.id


async def until(predicate: Callable[[], bool], timeout: float = BOUND) -> None:
    """Poll ``predicate`` until it holds; fail the test (never hang) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.02)


async def bounded_close(avatar: AvatarkitSession) -> None:
    await asyncio.wait_for(avatar.aclose(), BOUND)


def reason_for(session: Session, status: SessionStatus) -> str:
    (change,) = [c for c in session.history if c.status is status]
    return change.reason


# -- provisioning faults ------------------------------------------------------------------


async def test_slow_provisioning_start_returns_on_create_and_join_waits_for_it(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    delay = 0.6
    runway.faults.next_session(provisioning_delay=delay)
    avatar = runway_avatar()
    began = time.monotonic()
    await avatar.start(agent_session, room=agent_room)
    session = runway.server.session(remote_id(avatar))
    # start() waited for the create only: the session is still provisioning.
    assert session.status is SessionStatus.NOT_READY
    assert AVATAR not in agent_room.remote_participants

    await avatar.wait_for_join(timeout=BOUND)
    joined = time.monotonic() - began
    assert joined >= delay * 0.9  # loose lower bound: it waited for provisioning
    assert session.status is SessionStatus.RUNNING
    assert reason_for(session, SessionStatus.READY) == "provisioned"
    assert AVATAR in agent_room.remote_participants

    await bounded_close(avatar)
    assert avatar.end_outcome == "graceful"
    assert session.status is SessionStatus.COMPLETED
    assert runway.server.active_sessions() == []


async def test_a_queued_session_reads_not_ready_and_queued_then_runs(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    runway.faults.next_session(queued_for=0.5)
    avatar = runway_avatar()
    await avatar.start(agent_session, room=agent_room)
    sid = remote_id(avatar)
    backend = backend_of(avatar)

    state = await backend.get_session(sid)
    assert state.status == "NOT_READY" and state.queued and state.active
    with pytest.raises(asyncio.TimeoutError):  # nobody joins while it is queued
        await avatar.wait_for_join(timeout=0.1)

    await avatar.wait_for_join(timeout=BOUND)
    state = await backend.get_session(sid)
    assert state.status == "RUNNING" and not state.queued
    session = runway.server.session(sid)
    assert session.statuses[:3] == [
        SessionStatus.NOT_READY,
        SessionStatus.READY,
        SessionStatus.RUNNING,
    ]

    await bounded_close(avatar)
    assert avatar.end_outcome == "graceful"
    assert runway.server.active_sessions() == []


async def test_failed_provisioning_times_out_the_join_and_reports_the_failure_code(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    runway.faults.next_session(failure_code="CAPACITY_UNAVAILABLE", failure="No avatar free.")
    avatar = runway_avatar()
    await avatar.start(agent_session, room=agent_room)
    sid = remote_id(avatar)
    with pytest.raises(asyncio.TimeoutError):
        await avatar.wait_for_join(timeout=0.5)

    session = runway.server.session(sid)
    assert session.status is SessionStatus.FAILED
    assert reason_for(session, SessionStatus.FAILED) == "provisioning_failed"
    assert avatar.remote_session is not None
    status = await backend_of(avatar).status(avatar.remote_session)
    assert status is not None
    assert (status.status, status.active, status.detail) == (
        "FAILED",
        False,
        "CAPACITY_UNAVAILABLE",
    )
    state = await backend_of(avatar).get_session(sid)
    assert state.failure == "No avatar free."

    await bounded_close(avatar)
    assert avatar.end_outcome == "forced"  # the avatar was never in the room: no END_CALL
    assert end_calls(livekit) == []
    assert [r.status for r in runway.server.requests_for("delete")] == [204]
    assert session.status is SessionStatus.FAILED  # the DELETE of an ended session changes nothing
    assert runway.server.active_sessions() == []


async def test_a_session_that_never_gets_ready_is_cancelled_by_aclose(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    runway.faults.next_session(never_ready=True)
    avatar = runway_avatar()
    await avatar.start(agent_session, room=agent_room)
    sid = remote_id(avatar)
    with pytest.raises(asyncio.TimeoutError):
        await avatar.wait_for_join(timeout=0.3)
    state = await backend_of(avatar).get_session(sid)
    assert state.status == "NOT_READY" and not state.queued

    await bounded_close(avatar)
    assert avatar.end_outcome == "forced"
    session = runway.server.session(sid)
    assert session.statuses == [SessionStatus.NOT_READY, SessionStatus.CANCELLED]
    assert reason_for(session, SessionStatus.CANCELLED) == "delete"
    assert end_calls(livekit) == []
    assert runway.server.active_sessions() == []


# -- HTTP faults on create ------------------------------------------------------------------


async def test_5xx_on_create_is_retried_until_it_succeeds(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    # a 5xx saying the create was not carried out (503 + Retry-After); see test_adversarial
    # for the 5xx that may mean it was (500, 502, 504), which are not resent
    runway.faults.next(route="create", status=503, retry_after=0, times=2)
    avatar = runway_avatar()
    await avatar.start(agent_session, room=agent_room)
    assert [r.status for r in runway.server.requests_for("create")] == [503, 503, 200]
    assert list(runway.server.sessions) == [remote_id(avatar)]
    await avatar.wait_for_join(timeout=BOUND)

    await bounded_close(avatar)
    assert avatar.end_outcome == "graceful"
    assert runway.server.active_sessions() == []


async def test_5xx_on_every_create_surfaces_the_status_and_creates_nothing(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    runway.faults.next(route="create", status=503, retry_after=0, times=None)
    avatar = runway_avatar()
    with pytest.raises(ProviderAPIError) as err:
        await avatar.start(agent_session, room=agent_room)
    assert err.value.status_code == 503
    assert [r.status for r in runway.server.requests_for("create")] == [503, 503, 503]
    assert runway.server.sessions == {}
    assert avatar.remote_session is None and avatar.end_outcome == "not_created"
    assert_room_audio(agent_session)
    await bounded_close(avatar)
    assert runway.server.active_sessions() == []


async def test_429_retry_after_seconds_is_honoured(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    runway.faults.next(route="create", status=429, retry_after=1)
    avatar = runway_avatar()
    await avatar.start(agent_session, room=agent_room)
    first, second = runway.server.requests_for("create")
    assert (first.status, second.status) == (429, 200)
    assert first.fault is not None and first.fault.response_headers()["Retry-After"] == "1"
    # FAST would retry after 0.1 s; the server asked for a second.
    assert second.at - first.at >= 0.95
    assert list(runway.server.sessions) == [remote_id(avatar)]

    await bounded_close(avatar)
    assert runway.server.active_sessions() == []


async def test_x_should_retry_false_on_a_503_is_not_retried(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    runway.faults.next(route="create", status=503, should_retry=False)
    avatar = runway_avatar()
    with pytest.raises(ProviderAPIError) as err:
        await avatar.start(agent_session, room=agent_room)
    assert err.value.status_code == 503 and not err.value.retryable
    assert [r.status for r in runway.server.requests_for("create")] == [503]
    assert runway.server.sessions == {}
    assert avatar.end_outcome == "not_created"
    await bounded_close(avatar)
    assert runway.server.active_sessions() == []


async def test_a_dropped_connection_on_create_is_not_resent(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    # The client cannot tell a connection dropped before the server acted from one dropped
    # after it created the session: resending the create could start a second session.
    runway.faults.next(route="create", drop=True)
    avatar = runway_avatar()
    with pytest.raises(ProviderConnectionError, match="POST /v1/realtime_sessions"):
        await avatar.start(agent_session, room=agent_room)
    assert [r.status for r in runway.server.requests_for("create")] == [None]
    assert runway.server.sessions == {}  # this double dropped it unprocessed
    assert avatar.end_outcome == "not_created"
    assert_room_audio(agent_session)
    await bounded_close(avatar)
    assert runway.server.active_sessions() == []


def slow_create(runway: RunwayEmulator, livekit: MemoryLiveKit, max_retry: int) -> AvatarkitSession:
    """A delay-only fault: the server creates the session at once, then answers after 1.5 s,
    long after the client's 0.6 s timeout."""
    runway.faults.next(route="create", delay=1.5)
    conn = APIConnectOptions(max_retry=max_retry, retry_interval=0.05, timeout=0.6)
    return make_runway_avatar(runway, livekit, conn_options=conn)


def by_creation(runway: RunwayEmulator) -> list[Session]:
    return sorted(runway.server.sessions.values(), key=lambda s: s.created_monotonic)


async def late_answer(runway: RunwayEmulator, creates: int) -> None:
    # The server records a request once it has answered it.
    await until(lambda: len(runway.server.requests_for("create")) == creates)


async def test_a_create_slower_than_the_timeout_raises_provider_timeout(
    runway: RunwayEmulator,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    avatar = slow_create(runway, livekit, max_retry=0)
    began = time.monotonic()
    with pytest.raises(ProviderTimeoutError, match=r"timed out after 0\.6s"):
        await avatar.start(agent_session, room=agent_room)
    assert time.monotonic() - began < 1.5  # it gave up before the late answer
    assert avatar.remote_session is None and avatar.end_outcome == "not_created"
    assert_room_audio(agent_session)
    await bounded_close(avatar)
    assert runway.server.requests_for("delete") == []  # it had no id to cancel

    await late_answer(runway, 1)
    (orphan,) = by_creation(runway)  # ...yet the server did create a session
    assert runway.server.requests_for("create")[0].status == 200
    # its avatar is taken out of the room when it joins (the test below); here, end it
    if orphan.active:
        runway.server.cancel(orphan.id)
    assert runway.server.active_sessions() == []


async def test_a_create_slower_than_the_timeout_is_not_resent_into_a_second_session(
    runway: RunwayEmulator,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    avatar = slow_create(runway, livekit, max_retry=2)  # retries allowed, yet not for this
    with pytest.raises(ProviderTimeoutError, match="may have been carried out"):
        await avatar.start(agent_session, room=agent_room)
    await late_answer(runway, 1)
    # One create reached the server and one session exists: no duplicate whose worker
    # could take the avatar's identity and receive the END_CALL meant for another.
    assert [r.status for r in runway.server.requests_for("create")] == [200]
    assert len(runway.server.sessions) == 1
    await bounded_close(avatar)
    # its avatar is taken out of the room when it joins (the test below); here, end it
    for session in runway.server.active_sessions():
        runway.server.cancel(session.id)
    assert runway.server.active_sessions() == []


async def test_a_timed_out_create_that_was_carried_out_is_taken_out_when_it_joins(
    runway: RunwayEmulator,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    # The client never learns the id of a create that timed out after the server created the
    # session, and Runway offers no idempotency key or listing to find it (a resend would make
    # it worse). But its avatar joins with our token: avatarkit takes it out of the room, and
    # the session ends instead of billing until Runway's runtime cap.
    avatar = slow_create(runway, livekit, max_retry=0)
    with pytest.raises(ProviderTimeoutError) as err:
        await avatar.start(agent_session, room=agent_room)
    assert err.value.may_have_been_carried_out
    await bounded_close(avatar)
    await late_answer(runway, 1)
    (orphan,) = by_creation(runway)
    await until(lambda: not orphan.active)
    assert orphan.status is SessionStatus.FAILED
    assert "runway-avatar-agent" not in agent_room.remote_participants


async def test_5xx_on_delete_during_a_forced_end_is_retried(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    avatar = runway_avatar()
    await avatar.start(agent_session, room=agent_room)
    await avatar.wait_for_join(timeout=BOUND)
    sid = remote_id(avatar)

    runway.faults.next(route="delete", status=503)
    await livekit.delete_room("room-1")  # the room goes away: the end must be forced
    await runway.server.wait_for_status(sid, SessionStatus.CANCELLED, timeout=BOUND)
    await bounded_close(avatar)
    assert avatar.end_outcome == "forced"
    assert [r.status for r in runway.server.requests_for("delete")] == [503, 204]
    assert reason_for(runway.server.session(sid), SessionStatus.CANCELLED) == "delete"
    assert runway.server.active_sessions() == []


async def test_5xx_on_every_delete_reports_failed_and_the_session_still_runs(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    avatar = runway_avatar()
    await avatar.start(agent_session, room=agent_room)
    await avatar.wait_for_join(timeout=BOUND)
    sid = remote_id(avatar)

    runway.faults.next(route="delete", status=503, times=None)
    await livekit.delete_room("room-1")
    await bounded_close(avatar)
    assert avatar.end_outcome == "failed"  # documented: "it may still run"
    assert [r.status for r in runway.server.requests_for("delete")] == [503, 503, 503]
    assert runway.server.session(sid).status is SessionStatus.RUNNING
    runway.faults.clear()
    runway.server.cancel(sid)
    assert runway.server.active_sessions() == []


# -- worker faults ----------------------------------------------------------------------------


async def test_a_worker_that_never_joins_times_out_the_join_and_is_cancelled(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    runway.worker_faults.next(never_join=True)
    avatar = runway_avatar()
    await avatar.start(agent_session, room=agent_room)
    sid = remote_id(avatar)
    await runway.server.wait_for_status(sid, SessionStatus.READY, timeout=BOUND)
    with pytest.raises(asyncio.TimeoutError):
        await avatar.wait_for_join(timeout=0.5)
    assert AVATAR not in agent_room.remote_participants
    assert runway.server.session(sid).status is SessionStatus.READY  # never RUNNING

    await bounded_close(avatar)
    assert avatar.end_outcome == "forced"
    assert [r.status for r in runway.server.requests_for("delete")] == [204]
    session = runway.server.session(sid)
    assert session.status is SessionStatus.CANCELLED
    assert reason_for(session, SessionStatus.CANCELLED) == "delete"
    assert end_calls(livekit) == []
    assert runway.server.active_sessions() == []


async def test_a_worker_leaving_mid_call_fails_the_session_and_close_is_forced(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    runway.worker_faults.next(leave_after=0.4)
    avatar = runway_avatar()
    await avatar.start(agent_session, room=agent_room)
    await start_agent(agent_session)
    await avatar.wait_for_join(timeout=BOUND)
    sid = remote_id(avatar)
    assert AVATAR in agent_room.remote_participants

    session = await runway.server.wait_for_status(sid, SessionStatus.FAILED, timeout=BOUND)
    assert session.failure_code == "AVATAR_DISCONNECTED"
    await until(lambda: AVATAR not in agent_room.remote_participants)
    state = await backend_of(avatar).get_session(sid)
    assert state.status == "FAILED" and state.failure_code == "AVATAR_DISCONNECTED"

    await bounded_close(avatar)
    assert avatar.end_outcome == "forced"  # the avatar was gone: nobody to send END_CALL to
    assert end_calls(livekit) == []
    assert session.status is SessionStatus.FAILED
    assert runway.server.active_sessions() == []


# -- the runtime cap ----------------------------------------------------------------------------


@pytest.fixture
async def capped_runway() -> AsyncIterator[RunwayEmulator]:
    async with RunwayEmulator(
        provisioning_delay=0.05, runtime_cap=1.5, video=small_video
    ) as emulator:
        yield emulator


async def test_the_runtime_cap_completes_the_session_mid_utterance(
    capped_runway: RunwayEmulator,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    runway = capped_runway
    avatar = make_runway_avatar(runway, livekit)
    await avatar.start(agent_session, room=agent_room)
    await start_agent(agent_session)
    await avatar.wait_for_join(timeout=BOUND)
    sid = remote_id(avatar)
    worker = runway.workers[sid]

    handle = agent_session.say("a long answer", audio=stream(tone_frames(5)), add_to_chat_ctx=False)
    try:
        session = await runway.server.wait_for_status(sid, SessionStatus.COMPLETED, timeout=BOUND)
        assert reason_for(session, SessionStatus.COMPLETED) == "runtime_cap"
        # The cap struck mid-utterance: some of the 5 s were spoken, not all of them.
        stats = worker.video.stats
        assert 0 < stats.audio_samples_out < 5 * worker.video.sample_rate
        assert not handle.done()
        await until(lambda: AVATAR not in agent_room.remote_participants)
    finally:
        # What happens to the speech once the avatar left is not asserted here; only make
        # sure the test cannot hang on it.
        handle.interrupt(force=True)
        try:
            await asyncio.wait_for(handle.wait_for_playout(), 2.0)
        except asyncio.TimeoutError:
            pass

    await bounded_close(avatar)
    assert avatar.end_outcome == "forced"  # the avatar had left the room
    assert session.status is SessionStatus.COMPLETED
    assert runway.server.active_sessions() == []
