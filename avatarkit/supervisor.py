"""The policy that keeps an avatar, or the room, speaking for the agent.

Bring-up with failover along the candidates, renewal before a provider's runtime cap, rescue
on loss, recovery, hand-over at an utterance boundary and the acknowledgement timer
(docs/resilience.md). The supervisor knows the relay and the remote avatars only through the
small interfaces below, which :class:`~avatarkit.relay.AudioRelay` and
:class:`~avatarkit.remote.RemoteAvatar` satisfy, so it runs with fakes and without a room.
The decisions themselves are plain functions.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import attrs

from .errors import AvatarClosedError
from .log import logger

if TYPE_CHECKING:
    from .events import AvatarState
    from .playback import PCM
    from .provider import EndReason

MAX_RECOVERIES = 3  # unplanned losses recovered from, before staying audio-only
RENEW_AHEAD = 60.0  # seconds before a provider's runtime cap to bring in the next session
CAP_MARGIN = 1.0  # seconds before the old session's cap a hand-over stops waiting for a pause


# -- the decisions --------------------------------------------------------------------------


def runtime_cap(*limits: float | None) -> float | None:
    """The earliest of a provider's limits (runtime cap, session lifetime); None if none."""
    caps = [c for c in limits if c]
    return min(caps) if caps else None


def renew_at(start: float, renew_after: float | None, cap: float | None) -> float:
    """When a session that started at ``start`` is replaced: after ``renew_after`` if set,
    else ``RENEW_AHEAD`` before its cap (or halfway, if the cap is shorter); never without
    a cap."""
    if renew_after is not None:
        return start + renew_after
    if cap is None:
        return math.inf
    return start + max(cap - RENEW_AHEAD, cap / 2)


def hand_over_deadline(start: float, cap: float | None) -> float | None:
    """When a hand-over away from a session that started at ``start`` stops waiting for an
    utterance boundary: just before its cap."""
    return start + cap - CAP_MARGIN if cap else None


def next_identity(base: str, taken: Collection[str]) -> str:
    """``base``, else ``base-1``, ``base-2``, ...: two avatars overlap during a renewal, so
    each remote session gets its own identity."""
    identity, n = base, 1
    while identity in taken:
        identity, n = f"{base}-{n}", n + 1
    return identity


def should_recover(on_loss: str, recoveries: int) -> bool:
    """Whether to bring up a new avatar after a loss, or stay audio-only."""
    return on_loss != "audio_only" and recoveries < MAX_RECOVERIES


def heard_by_clock(lo: int, hi: int, elapsed: float, sample_rate: int) -> int:
    """Where the avatar got to in ``[lo, hi]`` after playing ``elapsed`` seconds in real time
    (when nothing is known of its audio)."""
    return min(lo + int(elapsed * sample_rate), hi)


def resume_from(lo: int, hi: int, measured: int | None) -> int:
    """Where the rest of the utterance starts, given what the avatar's audio says it played;
    unrecognisable audio (None) replays from ``lo``: repeating some beats dropping some."""
    return lo if measured is None else min(max(measured, lo), hi)


# -- what the supervisor needs of the relay and of the avatars ------------------------------


class Sink(Protocol):
    """Where the relay sends the agent's audio (an ``AudioOutput``)."""

    def clear_buffer(self) -> None: ...


S = TypeVar("S", bound=Sink)
S_co = TypeVar("S_co", bound=Sink, covariant=True)


class Tracker(Protocol):
    """The avatar's own published audio (:class:`~avatarkit.playback.PlaybackTracker`)."""

    @property
    def last_frame_at(self) -> float | None: ...

    async def settle(self) -> None: ...

    def heard(self, sent: PCM, since: float | None) -> int | None: ...


class Avatar(Protocol[S_co]):
    """One remote avatar session (:class:`~avatarkit.remote.RemoteAvatar`)."""

    lost_at: float | None

    @property
    def absent(self) -> bool:
        """It left the room after joining and has not come back (yet)."""

    async def returned(self) -> None:
        """Wait until it is back in the room with video after leaving."""

    async def still_active(self) -> bool:
        """Whether its provider says its session goes on (True if it cannot tell)."""

    @property
    def identity(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def session_id(self) -> str | None: ...

    @property
    def output(self) -> S_co | None: ...

    @property
    def tracker(self) -> Tracker | None: ...

    @property
    def lost_reason(self) -> str | None: ...

    @property
    def started_at(self) -> float: ...

    @property
    def created_at(self) -> float | None: ...

    @property
    def joined_at(self) -> float | None: ...

    @property
    def first_frame_at(self) -> float | None: ...

    @property
    def in_room(self) -> bool: ...

    async def create(self) -> object: ...

    async def join(self) -> None: ...

    def end(self, reason: EndReason) -> Awaitable[None]: ...

    def lose(self, reason: str) -> None: ...


class Relay(Protocol[S]):
    """The agent's one audio output (:class:`~avatarkit.relay.AudioRelay`)."""

    on_flushed: Callable[[int, float], None] | None
    on_sink_failed: Callable[[Any, BaseException], None] | None
    on_pause: Callable[[], None] | None
    on_resume: Callable[[], None] | None

    @property
    def paused(self) -> bool: ...

    def hold_at(self, heard: int) -> None: ...

    @property
    def sink(self) -> S | None: ...

    @property
    def busy(self) -> bool: ...

    @property
    def segment_id(self) -> int: ...

    @property
    def base(self) -> int: ...

    @property
    def sent(self) -> int: ...

    @property
    def sent_at(self) -> float | None: ...

    async def wait_idle(self) -> None: ...

    def segment_pcm(self) -> PCM: ...

    def switch(self, sink: S | None, *, heard: int | None = None, room: bool = False) -> None: ...


A = TypeVar("A", bound=Avatar[Any])


@attrs.frozen(kw_only=True)
class Candidate:
    """One provider to try, with what the policy needs of it and of its options."""

    name: str
    identity: str
    """The avatar's base identity (renewals add ``-1``, ``-2``, ...)."""
    join_timeout: float
    ack_timeout: float
    renew_after: float | None = None
    cap: float | None = None
    """When the provider ends a session whatever it was asked (:func:`runtime_cap`)."""
    sample_rate: int = 16000
    rejoin_grace: float = 5.0
    """How long an avatar that left may take to come back (a reconnect) before it is lost."""


_Switch = tuple[int, int, "asyncio.Future[None]"]
"""A switch request: the new candidates' range, and what its caller awaits."""

MakeRemote = Callable[[int, str, Callable[[A, str], None]], A]
"""(candidate index, identity, loss callback) -> a new remote avatar, not yet created."""


class Supervisor(Generic[A, S]):
    """Keeps the relay's sink on a live avatar, else on the room, until :meth:`stop`."""

    def __init__(
        self,
        candidates: Sequence[Candidate],
        relay: Relay[S],
        *,
        make_remote: MakeRemote[A],
        on_loss: str,
        early_audio: str = "hold",
        on_state: Callable[[AvatarState, str, A | None], None],
        on_metrics: Callable[[str, A, dict[str, Any]], None],
    ) -> None:
        loop = asyncio.get_running_loop()
        self.created: asyncio.Future[None] = loop.create_future()
        """Done once a remote session exists; fails if none could be created."""
        self.joined: asyncio.Future[None] = loop.create_future()
        """Done once an avatar joined with video; fails if none could."""
        for fut in (self.created, self.joined):
            fut.add_done_callback(_retrieve)
        self._candidates = list(candidates)
        self._index = 0  # the candidate now in use; failover moves it on, never back
        self._relay = relay
        self._make_remote = make_remote
        self._on_loss = on_loss
        self._early_audio = early_audio
        self._set_state = on_state
        self._emit = on_metrics
        self._room_sink: S | None = None
        self._remotes: list[A] = []
        self._candidate_of: dict[A, Candidate] = {}
        self._active: A | None = None
        self._standby: A | None = None
        self._lost: dict[A, asyncio.Future[str]] = {}
        self._rescues: dict[A, asyncio.Task[Any]] = {}
        self._switch_lock = asyncio.Lock()
        self._run_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ack_timer: asyncio.TimerHandle | None = None
        self._stopped = False
        relay.on_flushed = self._on_segment_flushed
        relay.on_sink_failed = self._on_sink_failed
        relay.on_pause = self._on_pause
        relay.on_resume = self._on_resume
        self._paused_on: A | None = None
        self._switches: asyncio.Queue[_Switch] = asyncio.Queue()
        self._switch_waiters: set[asyncio.Future[None]] = set()
        self._bring_up_error: BaseException | None = None

    @property
    def remotes(self) -> list[A]:
        """Every remote avatar created or tried, oldest first."""
        return list(self._remotes)

    @property
    def active(self) -> A | None:
        """The avatar the audio goes to (or is about to), None while the room speaks."""
        return self._active

    @property
    def provider(self) -> str:
        return self._active.name if self._active is not None else self._candidates[0].name

    @property
    def stopped(self) -> bool:
        return self._stopped

    def start(self, room_sink: S | None) -> None:
        """Start supervising; ``room_sink`` is the agent's own room track, the fallback."""
        self._room_sink = room_sink
        self._run_task = asyncio.create_task(self._run(), name="avatarkit.supervisor")
        self._run_task.add_done_callback(self._on_run_done)

    def _on_run_done(self, task: asyncio.Task[None]) -> None:
        # Supervision never dies silently: whatever escaped it fails start() and
        # wait_for_join() instead of leaving them waiting forever.
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        logger.error("avatar supervision failed: %r", exc, exc_info=exc)
        for fut in (self.created, self.joined):
            if not fut.done():
                fut.set_exception(AvatarClosedError(f"avatar supervision failed: {exc!r}"))

    def stop(self, reason: EndReason) -> None:
        """Stop supervising and end every remote session (idempotent, synchronous)."""
        if self._stopped:
            return
        self._stopped = True
        if self._ack_timer is not None:
            self._ack_timer.cancel()
        if self._run_task is not None:
            self._run_task.cancel()
        for remote in self._remotes:
            remote.end(reason)
        for fut in (self.created, self.joined, *self._switch_waiters):
            if not fut.done():
                fut.set_exception(
                    AvatarClosedError(f"{self.provider} avatar was closed ({reason})")
                )

    async def finish(self) -> None:
        """After :meth:`stop`: wait for supervision to end and every remote session with it."""
        if self._run_task is not None:
            await asyncio.gather(self._run_task, return_exceptions=True)
        await asyncio.gather(*(r.end("aclose") for r in self._remotes), return_exceptions=True)

    def cancel_tasks(self) -> None:
        """Cancel what is still running in the background (rescues, retirements)."""
        for task in list(self._tasks):
            task.cancel()

    # -- supervision ----------------------------------------------------------------------

    async def _run(self) -> None:
        recoveries = 0
        if self._early_audio == "room":
            # speak at once; the avatar takes over at an utterance boundary once it joined
            self._relay.switch(self._room_sink, room=True)
        while True:
            remote = await self._bring_up("start" if not self._remotes else "recovery")
            if remote is None:
                self._set_state("degraded", "no avatar could start", None)
                await self._to_room()
                return
            await self._hand_over(remote, None)
            while True:
                lost = self._lost[remote]
                renew_in = self._renew_at(remote) - time.monotonic()
                request = await self._next_event(lost, max(renew_in, 0.0))
                if lost.done():
                    if request is not None:
                        self._switches.put_nowait(request)  # after the recovery
                    await self._rescues[remote]  # the audio moves off it first
                    break
                if request is not None:
                    remote = await self._switch(remote, *request)
                    continue
                self._set_state("renewing", "runtime cap ahead", remote)
                fresh = await self._bring_up("renewal")
                if fresh is None:
                    logger.warning("could not renew the avatar; keeping it until it ends")
                    await asyncio.shield(lost)
                    await self._rescues[remote]
                    break
                await self._hand_over(fresh, remote)
                remote = fresh
            if not should_recover(self._on_loss, recoveries):
                return
            recoveries += 1

    async def _next_event(self, lost: asyncio.Future[str], timeout: float) -> _Switch | None:
        """Wait for the avatar's loss, a switch request or ``timeout`` (renewal time)."""
        waiter: asyncio.Future[Any] = asyncio.ensure_future(asyncio.shield(lost))
        getter: asyncio.Future[Any] = asyncio.ensure_future(self._switches.get())
        try:
            await asyncio.wait({waiter, getter}, timeout=timeout, return_when="FIRST_COMPLETED")
        finally:
            for fut in (waiter, getter):
                if not fut.done():
                    fut.cancel()
        if getter.done() and not getter.cancelled():
            request: _Switch = getter.result()
            return request
        return None

    async def switch(self, candidates: Sequence[Candidate]) -> None:
        """Bring up ``candidates`` (the first that joins) while the current avatar keeps
        talking, move the audio to it at the next utterance boundary and end the old one;
        raise, leaving the current avatar in place, if none joins."""
        self._ensure_running()
        first = len(self._candidates)
        self._candidates.extend(candidates)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._switch_waiters.add(done)
        self._switches.put_nowait((first, len(self._candidates), done))
        try:
            await done
        finally:
            self._switch_waiters.discard(done)

    async def _switch(self, old: A, first: int, last: int, done: asyncio.Future[None]) -> A:
        self._set_state("renewing", f"switching to {self._candidates[first].name}", old)
        fresh = await self._bring_up("switch", first, last)
        if fresh is None:
            error = self._bring_up_error or AvatarClosedError("no avatar to switch to")
            self._set_state("joined", f"the switch failed, kept {old.name}: {error}", old)
            if not done.done():
                done.set_exception(error)
            return old
        await self._hand_over(fresh, old, reason="switched")
        if not done.done():
            done.set_result(None)
        return fresh

    async def _bring_up(
        self, why: str, first: int | None = None, last: int | None = None
    ) -> A | None:
        """Create and join a remote avatar, trying each candidate from the current one (or
        from ``first`` to ``last``, a switch's own)."""
        error: BaseException | None = None
        first = self._index if first is None else first
        last = len(self._candidates) if last is None else last
        for i in range(first, last):
            candidate = self._candidates[i]
            try:
                remote = self._new_remote(i)
            except Exception as exc:  # preparing it (minting, the request) failed: next one
                error = exc
                logger.warning("%s avatar could not be prepared: %r", candidate.name, exc)
                if i + 1 < last:
                    self._set_state("failed_over", f"{candidate.name}: {exc}", None)
                continue
            self._set_state("starting", why, remote)
            try:
                await asyncio.wait_for(self._create_and_join(remote), candidate.join_timeout)
            except (Exception, asyncio.TimeoutError) as exc:
                timed_out = isinstance(exc, asyncio.TimeoutError)
                error = exc
                if timed_out:
                    error = AvatarClosedError(
                        f"{candidate.name} avatar did not join within {candidate.join_timeout} s"
                    )
                logger.warning("%s avatar failed to start: %r", candidate.name, error)
                remote.end("join_timeout" if timed_out else "start_failed")
                if i + 1 < last:
                    self._set_state("failed_over", f"{candidate.name}: {error}", remote)
                continue
            self._index = i
            if not self.joined.done():
                self.joined.set_result(None)
            self._emit(
                "joined",
                remote,
                {
                    "session_started_time": time.time() - (time.monotonic() - remote.started_at),
                    "avatar_joined_time": time.time(),
                    "join_latency": _since(remote.started_at, remote.joined_at),
                    "first_frame_latency": _since(remote.started_at, remote.first_frame_at),
                },
            )
            return remote
        self._bring_up_error = error
        if not self.created.done():
            self.created.set_exception(error or AvatarClosedError("no avatar provider"))
        if not self.joined.done():
            self.joined.set_exception(AvatarClosedError(f"no avatar could start: {error!r}"))
        return None

    async def _create_and_join(self, remote: A) -> None:
        await remote.create()
        if not self.created.done():
            self.created.set_result(None)
        await remote.join()

    def _new_remote(self, index: int) -> A:
        self._ensure_running()  # nothing is created after stop()
        candidate = self._candidates[index]
        identity = next_identity(candidate.identity, {r.identity for r in self._remotes})
        remote = self._make_remote(index, identity, self._on_lost)
        self._candidate_of[remote] = candidate
        self._lost[remote] = asyncio.get_running_loop().create_future()
        self._remotes.append(remote)
        return remote

    def _renew_at(self, remote: A) -> float:
        return renew_at(
            remote.created_at or remote.started_at,
            self._candidates[self._index].renew_after,
            self._candidate_of[remote].cap,
        )

    async def _hand_over(self, fresh: A, old: A | None, reason: EndReason = "renewed") -> None:
        """Move the agent's audio to ``fresh`` at an utterance boundary, then end ``old``."""
        self._ensure_running()
        relay = self._relay
        assert fresh.output is not None
        self._standby = fresh
        if relay.sink is not None and relay.busy:
            waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(relay.wait_idle())]
            deadline = None
            if old is not None:
                waits.append(asyncio.ensure_future(asyncio.shield(self._lost[old])))
                deadline = hand_over_deadline(
                    old.created_at or old.started_at, self._candidate_of[old].cap
                )
            timeout = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            _, pending = await asyncio.wait(
                waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            for w in pending:
                w.cancel()
        async with self._switch_lock:
            self._standby = None
            if relay.sink is not fresh.output:
                heard = None
                if relay.busy and old is not None and relay.sink is old.output:
                    # the old one's cap is here and the agent is still speaking
                    heard = await self._detach(old)
                relay.switch(fresh.output, heard=heard)
            self._active = fresh
        if old is not None:
            self._spawn(self._retire(old, fresh, reason))
        self._set_state("joined", reason if old is not None else "joined", fresh)

    async def _retire(self, old: A, fresh: A, reason: EndReason) -> None:
        """End the session a renewal (or a switch) replaced; report how long the agent had no
        avatar video (the old one gone before the new one's first frame)."""
        await old.end(reason if old.lost_reason is None else "avatar_lost")
        gone = old.lost_at or time.monotonic()
        first = fresh.first_frame_at or fresh.joined_at or gone
        self._emit("renewed", fresh, {"renewal_gap": max(0.0, first - gone)})

    def _on_lost(self, remote: A, reason: str) -> None:
        if remote.absent and remote.lost_reason is None:
            # it left the room, maybe to reconnect: not lost yet
            if not self._stopped:
                self._spawn(self._absence(remote, reason))
            return
        remote.lost_at = time.monotonic()
        fut = self._lost.get(remote)
        if fut is not None and not fut.done():
            fut.set_result(reason)
        if not self._stopped:
            self._rescues[remote] = self._spawn(self._rescue(remote, reason))

    async def _absence(self, remote: A, reason: str) -> None:
        """An avatar left the room. Its audio moves on at once (as for a loss), but its session
        is kept for ``rejoin_grace``: a worker that reconnects leaves and comes back under the
        same identity, and a room that reconnects reports every participant gone, then back.
        Back in time, it speaks again from the next utterance; otherwise it is lost."""
        grace = self._candidate_of[remote].rejoin_grace
        async with self._switch_lock:
            await self._move_off(remote, f"{reason}; waiting for it to come back")
        if self._stopped:
            return
        if not await remote.still_active():
            remote.lose(f"{reason}: its session is over")
            return
        try:
            await asyncio.wait_for(remote.returned(), grace)
        except asyncio.TimeoutError:
            remote.lose(f"{reason} and did not come back within {grace:g} s")
            return
        if self._stopped or remote.lost_reason is not None:
            return
        if self._active is None and self._standby is None:  # nothing took its place
            logger.info("the avatar came back", extra={"provider": remote.name})
            await self._hand_over(remote, None)

    def _standby_output(self) -> S | None:
        """Where a lost avatar's audio goes: the renewal's avatar if it joined and is
        well, else None (the room)."""
        standby = self._standby
        if standby is not None and standby.lost_reason is None:
            output: S | None = standby.output
            return output
        return None

    async def _rescue(self, remote: A, reason: str) -> None:
        """Move the audio off a lost avatar, replaying what the user did not hear."""
        async with self._switch_lock:
            await self._move_off(remote, reason)
        remote.end("avatar_lost")

    async def _move_off(self, remote: A, reason: str) -> None:
        """With the switch lock held: if the audio goes to ``remote``, move it to the renewal's
        avatar if one joined, else to the room (``degraded``: ``reason``), from where the user
        stopped hearing it."""
        relay = self._relay
        if remote.output is None or relay.sink is not remote.output:
            return
        moved_at = time.monotonic()
        heard = await self._detach(remote)
        if self._stopped:  # aclose() ends the utterance; nothing to move it to
            return
        standby = self._standby_output()
        if standby is not None:
            relay.switch(standby, heard=heard)
        else:
            relay.switch(self._room_sink, heard=heard, room=True)
            self._active = None
            self._set_state("degraded", reason, remote)
        self._emit("lost", remote, {"loss_to_audible": time.monotonic() - moved_at})

    async def _detach(self, remote: A) -> int:
        """Stop sending to ``remote`` and return how much of the current utterance it played:
        measured from its audio track when possible, else estimated from the clock."""
        relay = self._relay
        assert remote.output is not None
        lo, hi, sent_at = relay.base, relay.sent, relay.sent_at
        pcm = relay.segment_pcm()[:hi]
        relay.switch(None)  # hold the audio; the avatar's late events no longer count
        if remote.in_room:
            # still there (frozen, or slow to acknowledge): make it stop talking, so that
            # what it played is final when we measure it
            remote.output.clear_buffer()
        tracker = remote.tracker
        if tracker is None or tracker.last_frame_at is None:
            elapsed = 0.0 if sent_at is None else time.monotonic() - sent_at
            return heard_by_clock(lo, hi, elapsed, self._candidate_of[remote].sample_rate)
        await tracker.settle()  # its last audio may still be on its way to us
        return resume_from(lo, hi, tracker.heard(pcm, sent_at))

    def _on_segment_flushed(self, segment: int, remaining: float) -> None:
        relay, remote = self._relay, self._active
        if remote is None or relay.sink is not remote.output:
            return
        if self._ack_timer is not None:
            self._ack_timer.cancel()
        timeout = remaining + self._candidates[self._index].ack_timeout

        def check() -> None:
            if (
                relay.busy
                and not relay.paused
                and relay.segment_id == segment
                and relay.sink is remote.output
            ):
                remote.lose(f"no playback_finished {timeout:.1f} s after the utterance was sent")

        self._ack_timer = asyncio.get_running_loop().call_later(timeout, check)

    def _on_pause(self) -> None:
        self._spawn(self._pause())

    def _on_resume(self) -> None:
        self._spawn(self._resume())

    async def _pause(self) -> None:
        """The agent paused mid-utterance: stop the avatar where the user stopped hearing it
        (measured as for a loss) and hold the rest for :meth:`_resume`."""
        relay = self._relay
        async with self._switch_lock:
            remote = self._active
            if not relay.paused or remote is None or relay.sink is not remote.output:
                return
            heard = await self._detach(remote)
            relay.hold_at(heard)
            self._paused_on = remote

    async def _resume(self) -> None:
        """Play on from where the pause held it: on the same avatar if it is still well."""
        relay = self._relay
        async with self._switch_lock:
            remote, self._paused_on = self._paused_on, None
            if relay.paused or relay.sink is not None:
                return
            if remote is not None and remote is self._active and remote.lost_reason is None:
                relay.switch(remote.output)
            elif (standby := self._standby_output()) is not None:
                relay.switch(standby)
            else:
                relay.switch(self._room_sink, room=True)
                self._active = None

    def _on_sink_failed(self, sink: Any, exc: BaseException) -> None:
        for remote in self._remotes:
            if remote.output is sink:
                remote.lose(f"its audio output failed: {exc!r}")

    async def _to_room(self) -> None:
        async with self._switch_lock:
            self._relay.switch(self._room_sink, room=True)
            self._active = None

    def _ensure_running(self) -> None:
        # Before Python 3.12, wait_for() returns normally when the cancellation from stop()
        # arrives just as what it waits for completes: supervision must stop all the same.
        if self._stopped:
            raise asyncio.CancelledError

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _since(start: float, end: float | None) -> float | None:
    return None if end is None else end - start


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()  # failures reach the app through wait_for_join() and events
