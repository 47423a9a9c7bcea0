"""The supervisor's policy, decision by decision, with fakes of the relay and the avatars:
no room, no AgentSession. Every wait is on a condition the fakes signal."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import avatarkit
from avatarkit.errors import AvatarClosedError
from avatarkit.supervisor import (
    MAX_RECOVERIES,
    RENEW_AHEAD,
    Candidate,
    Supervisor,
    hand_over_deadline,
    heard_by_clock,
    next_identity,
    renew_at,
    resume_from,
    runtime_cap,
    should_recover,
)

# -- the decisions ----------------------------------------------------------------------------


def test_renewal_comes_after_renew_after_when_set() -> None:
    assert renew_at(100.0, 30.0, None) == 130.0
    assert renew_at(100.0, 30.0, 300.0) == 130.0  # renew_after wins over the cap


def test_renewal_comes_ahead_of_the_cap_or_halfway_through_a_short_one() -> None:
    assert renew_at(100.0, None, 300.0) == 100.0 + 300.0 - RENEW_AHEAD
    assert renew_at(100.0, None, 80.0) == 140.0  # 60 s ahead would be too early
    assert renew_at(100.0, None, None) == math.inf  # no cap: never


def test_the_cap_is_the_earliest_limit() -> None:
    assert runtime_cap(300.0, None) == 300.0
    assert runtime_cap(300.0, 200.0) == 200.0
    assert runtime_cap(None, None) is None
    assert runtime_cap(0.0, None) is None  # 0 means no limit declared


def test_a_hand_over_stops_waiting_just_before_the_cap() -> None:
    assert hand_over_deadline(100.0, 300.0) == 399.0
    assert hand_over_deadline(100.0, None) is None


def test_identities_are_numbered_when_taken() -> None:
    assert next_identity("face", set()) == "face"
    assert next_identity("face", {"face"}) == "face-1"
    assert next_identity("face", {"face", "face-1"}) == "face-2"
    assert next_identity("face", {"face-1"}) == "face"


def test_recovery_is_bounded_and_off_for_audio_only() -> None:
    assert [should_recover("renew", n) for n in range(MAX_RECOVERIES + 1)] == [
        *([True] * MAX_RECOVERIES),
        False,
    ]
    assert not should_recover("audio_only", 0)


def test_where_the_rest_of_the_utterance_starts() -> None:
    assert heard_by_clock(100, 20000, 0.5, 16000) == 8100
    assert heard_by_clock(100, 5000, 0.5, 16000) == 5000  # not past what was sent
    assert resume_from(100, 5000, 3000) == 3000
    assert resume_from(100, 5000, None) == 100  # unrecognisable: replay from the start
    assert resume_from(100, 5000, 50) == 100 and resume_from(100, 5000, 9000) == 5000


# -- fakes ------------------------------------------------------------------------------------


class FakeSink:
    def __init__(self, name: str) -> None:
        self.name = name
        self.cleared = 0

    def clear_buffer(self) -> None:
        self.cleared += 1

    def __repr__(self) -> str:
        return f"<sink {self.name}>"


class Changes:
    """Signals every change the fakes make, so tests wait for a condition, not a time."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def signal(self) -> None:
        self._event.set()

    async def until(self, predicate: Callable[[], bool], timeout: float = 2.0) -> None:
        async def wait() -> None:
            while not predicate():
                self._event.clear()
                await self._event.wait()

        await asyncio.wait_for(wait(), timeout)


class FakeRelay:
    def __init__(self, changes: Changes) -> None:
        self.on_flushed: Callable[[int, float], None] | None = None
        self.on_sink_failed: Callable[[Any, BaseException], None] | None = None
        self.on_pause: Callable[[], None] | None = None
        self.on_resume: Callable[[], None] | None = None
        self.paused = False
        self.sink: FakeSink | None = None
        self.busy = False
        self.segment_id = 0
        self.base = 0
        self.sent = 0
        self.sent_at: float | None = None
        self.switches: list[tuple[FakeSink | None, int | None, bool]] = []
        self.waiting_for_idle = False
        self.held_at: int | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._changes = changes

    async def wait_idle(self) -> None:
        self.waiting_for_idle = True
        self._changes.signal()
        await self._idle.wait()

    def segment_pcm(self) -> np.ndarray[Any, np.dtype[np.int16]]:
        return np.zeros(self.sent, dtype=np.int16)

    def switch(
        self, sink: FakeSink | None, *, heard: int | None = None, room: bool = False
    ) -> None:
        if sink is self.sink:
            return
        self.sink = sink
        self.switches.append((sink, heard, room))
        self._changes.signal()

    def speak(self, samples: int = 0) -> None:
        """An utterance is under way; ``samples`` of it were sent to the sink."""
        self.busy = True
        self._idle.clear()
        self.segment_id += 1
        self.sent = samples

    def boundary(self) -> None:
        self.busy = False
        self._idle.set()

    def hold_at(self, heard: int) -> None:
        self.held_at = heard
        self._changes.signal()

    def pause(self) -> None:
        """As AudioRelay.pause() with an avatar playing: stop and ask the supervisor."""
        self.paused = True
        assert self.on_pause is not None
        self.on_pause()

    def resume(self) -> None:
        self.paused = False
        if self.sink is None:
            assert self.on_resume is not None
            self.on_resume()


class FakeAvatar:
    """A remote avatar whose create and join do what the test's script says."""

    def __init__(
        self,
        name: str,
        identity: str,
        on_lost: Callable[[FakeAvatar, str], None],
        behaviour: str,
        changes: Changes,
    ) -> None:
        self.name = name
        self.identity = identity
        self.session_id: str | None = None
        self.output: FakeSink | None = None
        self.tracker: Any = None
        self.lost_reason: str | None = None
        self.lost_at: float | None = None
        self.started_at = time.monotonic()
        self.created_at: float | None = None
        self.joined_at: float | None = None
        self.first_frame_at: float | None = None
        self.in_room = True
        self.absent = False
        self.session_over = False
        self._back = asyncio.Event()
        self.end_reasons: list[str] = []
        self.on_join: Callable[[], None] | None = None
        self._on_lost = on_lost
        self._behaviour = behaviour
        self._changes = changes

    @property
    def end_reason(self) -> str | None:
        return self.end_reasons[0] if self.end_reasons else None

    async def create(self) -> object:
        if self._behaviour == "create_fails":
            raise RuntimeError(f"{self.name} create failed")
        if self._behaviour == "create_hangs":
            await asyncio.Future()
        self.created_at = time.monotonic()
        self.session_id = f"{self.identity}-session"
        return self.session_id

    async def join(self) -> None:
        if self._behaviour == "join_hangs":
            await asyncio.Future()
        if self.on_join is not None:
            self.on_join()
        self.joined_at = time.monotonic()
        self.output = FakeSink(self.identity)
        self._changes.signal()

    def end(self, reason: str) -> asyncio.Future[None]:
        self.end_reasons.append(reason)  # the real one ends once, with the first reason
        self._changes.signal()
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def lose(self, reason: str) -> None:
        if self.lost_reason is None and not self.end_reasons:
            self.lost_reason = reason
            self._changes.signal()
            self._on_lost(self, reason)

    def leave(self) -> None:
        """It leaves the room (as a worker that reconnects does first)."""
        self.absent, self.in_room = True, False
        self._back.clear()
        self._on_lost(self, "the avatar left the room")

    def come_back(self) -> None:
        self.absent, self.in_room = False, True
        self._back.set()
        self._changes.signal()

    async def returned(self) -> None:
        await self._back.wait()

    async def still_active(self) -> bool:
        return not self.session_over

    def end_session(self) -> None:
        """Its provider ends the session (a runtime cap): it leaves and will not be back."""
        self.session_over = True
        self.leave()


def candidate(name: str, **overrides: Any) -> Candidate:
    fields: dict[str, Any] = {
        "name": name,
        "identity": f"{name}-avatar",
        "join_timeout": 1.0,
        "ack_timeout": 1.0,
        "sample_rate": 16000,
    }
    return Candidate(**{**fields, **overrides})


class Harness:
    def __init__(
        self,
        *candidates: Candidate,
        on_loss: str = "renew",
        script: dict[str, list[str]] | None = None,
    ) -> None:
        self.changes = Changes()
        self.relay = FakeRelay(self.changes)
        self.room = FakeSink("room")
        self.avatars: list[FakeAvatar] = []
        self.states: list[tuple[str, str, FakeAvatar | None]] = []
        self.metrics: list[tuple[str, FakeAvatar, dict[str, Any]]] = []
        self._script = script or {}
        self._candidates = candidates or (candidate("a"),)
        self.supervisor: Supervisor[FakeAvatar, FakeSink] = Supervisor(
            self._candidates,
            self.relay,
            make_remote=self._make,
            on_loss=on_loss,
            on_state=self._on_state,
            on_metrics=self._on_metrics,
        )

    def _make(
        self, index: int, identity: str, on_lost: Callable[[FakeAvatar, str], None]
    ) -> FakeAvatar:
        name = self._candidates[index].name
        steps = self._script.get(name, [])
        behaviour = steps.pop(0) if steps else "ok"
        avatar = FakeAvatar(name, identity, on_lost, behaviour, self.changes)
        if behaviour == "stop_on_join":
            avatar.on_join = lambda: self.supervisor.stop("room_disconnected")
        self.avatars.append(avatar)
        return avatar

    def _on_state(self, state: str, reason: str, avatar: FakeAvatar | None) -> None:
        self.states.append((state, reason, avatar))
        self.changes.signal()

    def _on_metrics(self, event: str, avatar: FakeAvatar, fields: dict[str, Any]) -> None:
        self.metrics.append((event, avatar, fields))
        self.changes.signal()

    def start(self) -> None:
        self.supervisor.start(self.room)

    def names(self) -> list[str]:
        return [s for s, _, _ in self.states]

    async def until(self, predicate: Callable[[], bool]) -> None:
        await self.changes.until(predicate)

    async def until_speaking_through(self, avatar: FakeAvatar) -> None:
        await self.until(lambda: avatar.output is not None and self.relay.sink is avatar.output)

    async def close(self) -> None:
        self.supervisor.stop("aclose")
        await asyncio.wait_for(self.supervisor.finish(), 2)
        self.supervisor.cancel_tasks()


# -- bring-up and failover --------------------------------------------------------------------


async def test_the_first_candidate_that_joins_gets_the_audio() -> None:
    h = Harness()
    h.start()
    await asyncio.wait_for(asyncio.shield(h.supervisor.joined), 2)
    (avatar,) = h.avatars
    assert h.supervisor.created.done() and h.relay.sink is avatar.output
    assert h.supervisor.active is avatar and avatar.identity == "a-avatar"
    assert h.names() == ["starting", "joined"]
    assert [m[0] for m in h.metrics] == ["joined"] and h.metrics[0][2]["join_latency"] >= 0
    await h.close()
    assert avatar.end_reason == "aclose"


async def test_a_failed_create_fails_over_to_the_next_candidate() -> None:
    h = Harness(candidate("a"), candidate("b"), script={"a": ["create_fails"]})
    h.start()
    await asyncio.wait_for(asyncio.shield(h.supervisor.joined), 2)
    failed, joined = h.avatars
    assert failed.end_reason == "start_failed" and failed.output is None
    assert ("failed_over", "a: a create failed", failed) in h.states
    assert h.relay.sink is joined.output and h.supervisor.provider == "b"
    assert h.names() == ["starting", "failed_over", "starting", "joined"]
    await h.close()


async def test_a_join_timeout_ends_the_attempt_and_fails_over() -> None:
    h = Harness(candidate("a", join_timeout=0.02), candidate("b"), script={"a": ["join_hangs"]})
    h.start()
    await asyncio.wait_for(asyncio.shield(h.supervisor.joined), 2)
    slow, joined = h.avatars
    assert slow.end_reason == "join_timeout"
    assert ("failed_over", "a: a avatar did not join within 0.02 s", slow) in h.states
    assert h.relay.sink is joined.output
    await h.close()


async def test_when_every_candidate_fails_the_room_speaks() -> None:
    h = Harness(
        candidate("a"),
        candidate("b", join_timeout=0.02),
        script={"a": ["create_fails"], "b": ["create_hangs"]},
    )
    h.start()
    with pytest.raises(AvatarClosedError, match=r"did not join within 0\.02 s"):
        await asyncio.wait_for(asyncio.shield(h.supervisor.created), 2)
    with pytest.raises(AvatarClosedError, match="no avatar could start"):
        await asyncio.wait_for(asyncio.shield(h.supervisor.joined), 2)
    await h.until(lambda: h.relay.sink is h.room)
    assert h.relay.switches[-1] == (h.room, None, True)
    assert h.states[-1] == ("degraded", "no avatar could start", None)
    assert [a.end_reason for a in h.avatars] == ["start_failed", "join_timeout"]
    assert h.supervisor.active is None
    await asyncio.wait_for(h.supervisor.finish(), 2)  # supervision ended by itself


async def test_stop_ends_every_remote_and_fails_the_waits() -> None:
    h = Harness(script={"a": ["create_hangs"]})
    h.start()
    await h.until(lambda: bool(h.avatars))
    h.supervisor.stop("room_disconnected")
    with pytest.raises(AvatarClosedError, match=r"a avatar was closed \(room_disconnected\)"):
        await asyncio.shield(h.supervisor.created)
    await asyncio.wait_for(h.supervisor.finish(), 2)
    assert h.avatars[0].end_reasons[0] == "room_disconnected"
    assert h.supervisor.stopped


# -- loss ---------------------------------------------------------------------------------------


async def test_a_loss_without_a_standby_goes_to_the_room_then_recovers() -> None:
    h = Harness()
    h.start()
    await h.until(lambda: bool(h.avatars))
    first = h.avatars[0]
    await h.until_speaking_through(first)
    h.relay.speak(samples=1600)
    first.lose("the avatar left the room")
    await h.until(lambda: ("degraded", "the avatar left the room", first) in h.states)
    assert (h.room, 0, True) in h.relay.switches  # nothing known of its audio, none sent yet
    assert first.output is not None and first.output.cleared == 1  # told to stop talking
    assert first.end_reason == "avatar_lost"
    assert [m[0] for m in h.metrics if m[1] is first] == ["joined", "lost"]
    # on_loss="renew": a new avatar, under a new identity, gets the audio at the next boundary
    await h.until(lambda: len(h.avatars) == 2 and h.relay.waiting_for_idle)
    assert h.avatars[1].output is not None and h.relay.sink is h.room
    h.relay.boundary()
    await h.until_speaking_through(h.avatars[1])
    assert h.avatars[1].identity == "a-avatar-1"
    assert ("starting", "recovery", h.avatars[1]) in h.states
    await h.close()


# -- pause and resume (a possible false interruption) ----------------------------------------


async def test_a_pause_holds_the_audio_where_it_was_heard_and_resume_plays_on_there() -> None:
    h = Harness()
    h.start()
    await h.until(lambda: bool(h.avatars))
    first = h.avatars[0]
    await h.until_speaking_through(first)
    h.relay.speak(samples=8000)
    h.relay.sent_at = time.monotonic() - 0.25  # a quarter of a second of it was played
    h.relay.pause()
    await h.until(lambda: h.relay.held_at is not None)
    assert h.relay.sink is None and first.output is not None and first.output.cleared == 1
    assert h.relay.held_at == 4000  # by the clock: the fake avatar publishes no audio
    h.relay.resume()
    await h.until(lambda: h.relay.sink is first.output)  # the same avatar plays on
    assert first.end_reasons == [] and first.lost_reason is None and len(h.avatars) == 1
    await h.close()


# -- an avatar that leaves and may come back (a reconnect) ---------------------------------


async def test_an_avatar_that_comes_back_in_time_speaks_again_and_is_not_ended() -> None:
    h = Harness(candidate("a", rejoin_grace=5.0))
    h.start()
    await h.until(lambda: bool(h.avatars))
    first = h.avatars[0]
    await h.until_speaking_through(first)
    h.relay.speak(samples=1600)
    first.leave()  # mid-utterance: the rest goes to the room at once
    await h.until(lambda: h.relay.sink is h.room)
    assert ("degraded", "the avatar left the room; waiting for it to come back", first) in (
        h.states
    )
    first.come_back()
    await h.until(lambda: h.relay.waiting_for_idle)
    h.relay.boundary()  # it speaks again from the next utterance
    await h.until_speaking_through(first)
    assert first.end_reasons == [] and first.lost_reason is None
    assert len(h.avatars) == 1  # no second session was created (and billed)
    await h.close()


async def test_an_avatar_that_does_not_come_back_is_lost_after_the_grace() -> None:
    h = Harness(candidate("a", rejoin_grace=0.2))
    h.start()
    await h.until(lambda: bool(h.avatars))
    first = h.avatars[0]
    await h.until_speaking_through(first)
    first.leave()
    await h.until(lambda: first.end_reason == "avatar_lost")
    assert first.lost_reason == "the avatar left the room and did not come back within 0.2 s"
    await h.until(lambda: len(h.avatars) == 2)  # on_loss="renew": a new one is brought up
    await h.close()


async def test_an_avatar_whose_session_is_over_is_lost_without_waiting_for_it() -> None:
    h = Harness(candidate("a", rejoin_grace=60.0))
    h.start()
    await h.until(lambda: bool(h.avatars))
    first = h.avatars[0]
    await h.until_speaking_through(first)
    first.end_session()  # the provider says it is over: no reconnect to wait for
    await h.until(lambda: first.end_reason == "avatar_lost")
    assert first.lost_reason == "the avatar left the room: its session is over"
    await h.close()


async def test_audio_only_does_not_recover() -> None:
    h = Harness(on_loss="audio_only")
    h.start()
    await h.until(lambda: bool(h.avatars))
    await h.until_speaking_through(h.avatars[0])
    h.avatars[0].lose("the session is failed")
    await asyncio.wait_for(h.supervisor.finish(), 2)  # supervision ended by itself
    assert len(h.avatars) == 1 and h.relay.sink is h.room
    assert h.names()[-1] == "degraded"


async def test_recoveries_stop_after_max_recoveries() -> None:
    h = Harness()
    h.start()
    for n in range(MAX_RECOVERIES + 1):
        await h.until(lambda n=n: len(h.avatars) == n + 1)  # type: ignore[misc]
        await h.until_speaking_through(h.avatars[n])
        h.avatars[n].lose("the avatar left the room")
    await asyncio.wait_for(h.supervisor.finish(), 2)  # supervision ended by itself
    assert len(h.avatars) == MAX_RECOVERIES + 1
    assert [a.identity for a in h.avatars] == [
        "a-avatar",
        *(f"a-avatar-{i}" for i in range(1, MAX_RECOVERIES + 1)),
    ]
    assert h.relay.sink is h.room and h.names()[-1] == "degraded"


async def test_the_ack_timer_declares_a_silent_avatar_lost() -> None:
    h = Harness(candidate("a", ack_timeout=0.02))
    h.start()
    await h.until(lambda: bool(h.avatars))
    avatar = h.avatars[0]
    await h.until_speaking_through(avatar)
    h.relay.speak(samples=1600)
    assert h.relay.on_flushed is not None
    h.relay.on_flushed(h.relay.segment_id, 0.0)  # all sent; no playback_finished follows
    await h.until(lambda: avatar.lost_reason is not None)
    assert avatar.lost_reason == "no playback_finished 0.0 s after the utterance was sent"
    await h.until(lambda: h.relay.sink is h.room)
    await h.until(lambda: len(h.avatars) == 2 and h.relay.waiting_for_idle)  # recovering
    await h.close()


# -- renewal and hand-over ------------------------------------------------------------------------


async def test_a_renewal_hands_over_at_the_utterance_boundary() -> None:
    h = Harness(candidate("a", renew_after=0.02))
    h.start()
    await h.until(lambda: bool(h.avatars))
    old = h.avatars[0]
    await h.until_speaking_through(old)
    h.relay.speak(samples=1600)
    await h.until(lambda: h.relay.waiting_for_idle)  # the fresh one joined; the agent speaks
    fresh = h.avatars[1]
    assert fresh.output is not None and fresh.identity == "a-avatar-1"
    assert h.relay.sink is old.output and not old.end_reasons
    assert h.names()[-1] == "starting"
    h.relay.boundary()
    await h.until(lambda: ("joined", "renewed", fresh) in h.states)
    assert h.relay.switches[-1] == (fresh.output, None, False)  # nothing to replay
    await h.until(lambda: any(m[0] == "renewed" for m in h.metrics))
    assert old.end_reason == "renewed" and old.output is not None and old.output.cleared == 0
    assert "renewing" in h.names()
    await h.close()


async def test_at_the_old_cap_the_hand_over_goes_on_mid_utterance() -> None:
    # renew at once; the old session's cap is 50 ms after it was created
    h = Harness(candidate("a", renew_after=0.001, cap=1.05))
    h.start()
    await h.until(lambda: bool(h.avatars))
    old = h.avatars[0]
    await h.until_speaking_through(old)
    h.relay.speak(samples=1600)
    await h.until(lambda: len(h.avatars) == 2 and h.relay.sink is h.avatars[1].output)
    fresh = h.avatars[1]
    assert h.relay.busy  # the utterance never reached a boundary
    assert h.relay.switches[-2:] == [(None, None, False), (fresh.output, 0, False)]
    assert old.output is not None and old.output.cleared == 1
    await h.until(lambda: old.end_reason == "renewed")
    await h.close()


async def test_a_loss_during_a_renewal_goes_to_the_joined_standby() -> None:
    h = Harness(candidate("a", renew_after=0.02))
    h.start()
    await h.until(lambda: bool(h.avatars))
    old = h.avatars[0]
    await h.until_speaking_through(old)
    h.relay.speak(samples=1600)
    await h.until(lambda: h.relay.waiting_for_idle)  # the standby joined
    standby = h.avatars[1]
    old.lose("the avatar left the room")
    await h.until(lambda: ("joined", "renewed", standby) in h.states)
    assert h.relay.sink is standby.output
    assert (standby.output, 0, False) in h.relay.switches
    assert "degraded" not in h.names() and h.room not in [s for s, _, _ in h.relay.switches]
    assert old.end_reason == "avatar_lost"
    await h.close()


async def test_stop_as_an_avatar_joins_still_stops_supervision() -> None:
    # the stop lands in the loop turn the join completes in: before Python 3.12, wait_for()
    # swallows such a cancellation, and supervision would go on (renewing, creating)
    h = Harness(candidate("a", renew_after=0.001), script={"a": ["stop_on_join"]})
    h.start()
    await asyncio.wait_for(h.supervisor.finish(), 2)
    assert len(h.avatars) == 1 and h.avatars[0].end_reason == "room_disconnected"
    assert h.names() == ["starting"] and h.relay.switches == []


# -- the session's lifecycle around the supervisor ------------------------------------------------


class _UnconnectedRoom:
    name = "room-1"

    def isconnected(self) -> bool:
        return False


async def test_misuse_of_the_lifecycle_says_what_happened(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from avatarkit import ConfigurationError
    from avatarkit.session import Lifecycle

    for name in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        monkeypatch.delenv(name, raising=False)
    avatar = avatarkit.get("local")
    assert avatar.lifecycle is Lifecycle.NEW
    with pytest.raises(RuntimeError, match=r"start\(\) the avatar first"):
        await avatar.wait_for_join()
    with pytest.raises(ConfigurationError):  # no LiveKit settings: nothing is created
        await avatar.start(object(), _UnconnectedRoom())  # type: ignore[arg-type]
    assert avatar.lifecycle is Lifecycle.STOPPED
    with pytest.raises(RuntimeError, match="already stopped when start"):
        await avatar.start(object(), _UnconnectedRoom())  # type: ignore[arg-type]
    await asyncio.gather(avatar.aclose(), avatar.aclose())
    await avatar.aclose()  # idempotent
    assert avatar.lifecycle is Lifecycle.CLOSED and avatar.state == "ended"
    with pytest.raises(RuntimeError, match="already closed when start"):
        await avatar.start(object(), _UnconnectedRoom())  # type: ignore[arg-type]

    never_started = avatarkit.get("local")
    await never_started.aclose()
    assert never_started.end_outcome == "not_created"
    with pytest.raises(RuntimeError, match="closed before it was started"):
        await never_started.wait_for_join()
    with pytest.raises(ConfigurationError, match="not started"):
        avatarkit.get("local", fallback=never_started)
