"""Realtime session state machine of the Runway API double."""

from __future__ import annotations

import asyncio
import copy
import inspect
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any

import attrs

from .faults import SessionFault

__all__ = [
    "InvalidTransition",
    "LiveKitIntegration",
    "Session",
    "SessionCreatedListener",
    "SessionRegistry",
    "SessionStatus",
    "StateChange",
    "StateChangeListener",
    "redact",
]

logger = logging.getLogger("avatarkit_providers.runway.emulator")

REDACTED = "[REDACTED]"
#: Body keys whose values are credentials; never recorded, logged or answered.
SECRET_KEYS = frozenset({"token", "signedUrl", "sessionKey", "apiKey", "secret"})
_CREDENTIAL_OBJECTS = frozenset({"integration", "livekit"})
_PUBLIC_CREDENTIAL_FIELDS = frozenset({"type", "url", "roomName", "agentIdentity"})


class SessionStatus(str, Enum):
    """The ``status`` values of a realtime session."""

    NOT_READY = "NOT_READY"
    READY = "READY"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def active(self) -> bool:
        """Whether a session in this state still holds (or will hold) an avatar."""
        return self in _ACTIVE


_ACTIVE = frozenset({SessionStatus.NOT_READY, SessionStatus.READY, SessionStatus.RUNNING})
_ENDINGS = frozenset({SessionStatus.FAILED, SessionStatus.CANCELLED})
_ALLOWED: dict[SessionStatus, frozenset[SessionStatus]] = {
    SessionStatus.NOT_READY: frozenset({SessionStatus.READY, *_ENDINGS}),
    SessionStatus.READY: frozenset({SessionStatus.RUNNING, SessionStatus.COMPLETED, *_ENDINGS}),
    SessionStatus.RUNNING: frozenset({SessionStatus.COMPLETED, *_ENDINGS}),
}


class InvalidTransition(ValueError):
    """A control method asked for a transition the state machine does not allow."""


def redact(value: Any, *, _credentials: bool = False) -> Any:
    """A deep copy of a JSON value with every credential masked.

    Keys in ``SECRET_KEYS`` are masked anywhere. Inside ``integration``/``livekit`` only the
    known public fields survive, so a credential under a misspelled key is masked too.
    """
    if isinstance(value, dict):
        result: dict[str, Any] = {}
        for key, item in value.items():
            if key in SECRET_KEYS or (_credentials and key not in _PUBLIC_CREDENTIAL_FIELDS):
                result[key] = REDACTED
            elif key in _CREDENTIAL_OBJECTS:
                result[key] = (
                    redact(item, _credentials=True) if isinstance(item, dict) else REDACTED
                )
            else:
                result[key] = redact(item)
        return result
    if isinstance(value, list):
        return [redact(item) for item in value]
    return copy.deepcopy(value)


def iso(moment: datetime) -> str:
    """A UTC timestamp as the API writes it (``2024-11-06T12:00:00.000Z``)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


@attrs.frozen
class StateChange:
    """One entry of a session's history.

    ``reason`` says what caused it: ``created``, ``provisioned``, ``provisioning_failed``,
    ``runtime_cap``, ``max_duration``, ``delete`` (HTTP DELETE) or ``control`` (a control
    method). ``at`` is ``time.monotonic()``, ``timestamp`` wall-clock UTC.
    """

    previous: SessionStatus | None
    status: SessionStatus
    reason: str
    at: float
    timestamp: datetime


@attrs.frozen
class LiveKitIntegration:
    """Where the avatar worker must join, from ``integration`` or the legacy ``livekit`` key."""

    url: str
    token: str = attrs.field(repr=False)
    room_name: str
    agent_identity: str | None
    legacy: bool


@attrs.define(eq=False)
class Session:
    """A realtime session as the double stores it.

    ``body`` is the full create body (credentials included, so an emulator can start the
    avatar worker); it is kept out of ``repr``. Use :meth:`redacted_body` to show it.
    """

    id: str
    created_at: datetime
    body: dict[str, Any] = attrs.field(repr=False)
    status: SessionStatus = SessionStatus.NOT_READY
    queued: bool = False
    session_key: str | None = attrs.field(default=None, repr=False)
    expires_at: datetime | None = None
    duration: float | None = None
    failure: str | None = None
    failure_code: str | None = None
    fault: SessionFault | None = None
    history: list[StateChange] = attrs.field(factory=list, repr=False)
    created_monotonic: float = attrs.field(factory=time.monotonic, repr=False)

    @property
    def active(self) -> bool:
        """Whether the session has not ended (NOT_READY, READY or RUNNING)."""
        return self.status.active

    @property
    def statuses(self) -> list[SessionStatus]:
        """Every state the session has been in, in order."""
        return [change.status for change in self.history]

    @property
    def livekit(self) -> LiveKitIntegration | None:
        """The LiveKit room to join, if the session was created with one."""
        spec = self.body.get("integration")
        legacy = False
        if not (isinstance(spec, dict) and spec.get("type") == "livekit"):
            spec = self.body.get("livekit")
            legacy = True
        if not isinstance(spec, dict):
            return None
        return LiveKitIntegration(
            url=spec["url"],
            token=spec["token"],
            room_name=spec["roomName"],
            agent_identity=spec.get("agentIdentity"),
            legacy=legacy,
        )

    @property
    def max_duration(self) -> int | None:
        """The requested ``maxDuration`` in seconds, if any."""
        value = self.body.get("maxDuration")
        return None if value is None else int(value)

    def redacted_body(self) -> dict[str, Any]:
        """The create body with credentials masked."""
        result: dict[str, Any] = redact(self.body)
        return result

    def to_json(self) -> dict[str, Any]:
        """The session as ``GET /v1/realtime_sessions/{id}`` answers it."""
        data: dict[str, Any] = {
            "id": self.id,
            "createdAt": iso(self.created_at),
            "status": self.status.value,
        }
        if self.status is SessionStatus.NOT_READY:
            data["queued"] = self.queued
        elif self.status is SessionStatus.READY:
            assert self.session_key is not None and self.expires_at is not None
            data["sessionKey"] = self.session_key
            data["expiresAt"] = iso(self.expires_at)
        elif self.status is SessionStatus.COMPLETED:
            # whole seconds, as Runway reports them (an integer in its schema)
            data["duration"] = None if self.duration is None else round(self.duration)
        elif self.status is SessionStatus.FAILED:
            data["failure"] = self.failure
            data["failureCode"] = self.failure_code
        return data


SessionCreatedListener = Callable[[Session], "Awaitable[None] | None"]
StateChangeListener = Callable[[Session, StateChange], "Awaitable[None] | None"]


class SessionRegistry:
    """Sessions by id, their clock-driven transitions, control methods and listeners.

    Timing: a session spends ``queue_delay`` (queued) then ``provisioning_delay`` in
    NOT_READY, then becomes READY. From READY it is ended as COMPLETED after
    ``runtime_cap`` seconds, or after ``maxDuration * max_duration_scale`` if shorter.
    ``duration`` counts from creation, as Runway's reported durations (about 315 s for a
    300 s cap) suggest.
    """

    def __init__(
        self,
        *,
        provisioning_delay: float,
        queue_delay: float = 0.0,
        runtime_cap: float = 300.0,
        max_duration_scale: float = 1.0,
    ) -> None:
        self.provisioning_delay = provisioning_delay
        self.queue_delay = queue_delay
        self.runtime_cap = runtime_cap
        self.max_duration_scale = max_duration_scale
        self._sessions: dict[str, Session] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Future[Any]] = set()
        self._created_listeners: list[SessionCreatedListener] = []
        self._change_listeners: list[StateChangeListener] = []
        self._waiters: list[tuple[str, frozenset[SessionStatus], asyncio.Future[Session]]] = []

    # -- queries -----------------------------------------------------------------

    @property
    def sessions(self) -> dict[str, Session]:
        """A snapshot of every session by id, ended ones included."""
        return dict(self._sessions)

    def get(self, session_id: str) -> Session:
        """The session with this id; ``KeyError`` if unknown."""
        return self._sessions[session_id]

    def active(self) -> list[Session]:
        """Sessions not yet ended, oldest first."""
        return [s for s in self._sessions.values() if s.active]

    # -- listeners -----------------------------------------------------------------

    def on_created(self, callback: SessionCreatedListener) -> Callable[[], None]:
        """Call ``callback(session)`` for each new session; returns an unsubscribe function."""
        self._created_listeners.append(callback)
        return lambda: _discard(self._created_listeners, callback)

    def on_state_change(self, callback: StateChangeListener) -> Callable[[], None]:
        """Call ``callback(session, change)`` on every transition; returns an unsubscribe."""
        self._change_listeners.append(callback)
        return lambda: _discard(self._change_listeners, callback)

    def _notify(self, listeners: Iterable[Callable[..., Any]], *args: Any) -> None:
        # Listeners run inline (sync) or as tasks (async) so a slow one, such as an
        # emulator starting a worker, never holds up the HTTP answer.
        for callback in list(listeners):
            try:
                result = callback(*args)
            except Exception:
                logger.exception("session listener %r failed", callback)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("session listener failed", exc_info=task.exception())

    # -- lifecycle -------------------------------------------------------------------

    def create(self, body: dict[str, Any], fault: SessionFault | None = None) -> Session:
        """Store a new NOT_READY session for a validated create body and start its clock."""
        now = time.monotonic()
        session = Session(
            id=str(uuid.uuid4()),
            created_at=datetime.now(timezone.utc),
            body=copy.deepcopy(body),
            fault=fault,
            created_monotonic=now,
        )
        session.history.append(
            StateChange(None, SessionStatus.NOT_READY, "created", now, session.created_at)
        )
        self._sessions[session.id] = session
        queued_for = self.queue_delay
        if fault is not None and fault.queued_for is not None:
            queued_for = fault.queued_for
        if queued_for > 0:
            session.queued = True
            self._schedule(session, queued_for, self._dequeue)
        else:
            self._start_provisioning(session)
        self._notify(self._created_listeners, session)
        return session

    def _schedule(self, session: Session, delay: float, step: Callable[[Session], None]) -> None:
        self._cancel_timer(session.id)
        loop = asyncio.get_running_loop()
        self._timers[session.id] = loop.call_later(delay, self._fire, session.id, step)

    def _fire(self, session_id: str, step: Callable[[Session], None]) -> None:
        self._timers.pop(session_id, None)
        step(self._sessions[session_id])

    def _cancel_timer(self, session_id: str) -> None:
        timer = self._timers.pop(session_id, None)
        if timer is not None:
            timer.cancel()

    def _dequeue(self, session: Session) -> None:
        session.queued = False
        self._start_provisioning(session)

    def _start_provisioning(self, session: Session) -> None:
        fault = session.fault
        if fault is not None and fault.never_ready:
            return
        delay = self.provisioning_delay
        if fault is not None and fault.provisioning_delay is not None:
            delay = fault.provisioning_delay
        self._schedule(session, delay, self._provisioned)

    def _provisioned(self, session: Session) -> None:
        fault = session.fault
        if fault is not None and fault.failure_code is not None:
            self._fail(session, fault.failure_code, fault.failure, "provisioning_failed")
        else:
            self._ready(session, "provisioned")

    def _ready(self, session: Session, reason: str) -> None:
        cap, cap_reason = self.runtime_cap, "runtime_cap"
        if session.max_duration is not None:
            requested = session.max_duration * self.max_duration_scale
            if requested < cap:
                cap, cap_reason = requested, "max_duration"
        # The credentials are worthless once the service ends the session, so they expire
        # then.
        self._transition(
            session,
            SessionStatus.READY,
            reason,
            queued=False,
            session_key="sk_" + secrets.token_urlsafe(24),
            expires_at=datetime.now(timezone.utc) + timedelta(seconds=cap),
        )
        self._schedule(session, cap, lambda s: self._complete(s, None, cap_reason))

    def _complete(self, session: Session, duration: float | None, reason: str) -> None:
        now = time.monotonic()
        if duration is None:
            duration = round(now - session.created_monotonic, 3)
        self._transition(session, SessionStatus.COMPLETED, reason, duration=duration)

    def _fail(self, session: Session, code: str, failure: str, reason: str) -> None:
        self._transition(session, SessionStatus.FAILED, reason, failure=failure, failure_code=code)

    def _transition(
        self,
        session: Session,
        status: SessionStatus,
        reason: str,
        *,
        keep_timer: bool = False,
        **fields: Any,
    ) -> None:
        if status not in _ALLOWED.get(session.status, frozenset()):
            raise InvalidTransition(
                f"session {session.id}: {session.status.value} -> {status.value} not allowed"
            )
        if not keep_timer:
            self._cancel_timer(session.id)
        change = StateChange(
            session.status, status, reason, time.monotonic(), datetime.now(timezone.utc)
        )
        session.status = status
        for name, value in fields.items():
            setattr(session, name, value)
        if not status.active:
            session.queued = False
        session.history.append(change)
        previous = change.previous.value if change.previous else None
        logger.debug("session %s: %s -> %s (%s)", session.id, previous, status.value, reason)
        self._notify(self._change_listeners, session, change)
        for waiter in list(self._waiters):
            session_id, wanted, future = waiter
            if session_id == session.id and status in wanted:
                self._waiters.remove(waiter)
                if not future.done():
                    future.set_result(session)

    # -- control methods ---------------------------------------------------------------

    def mark_ready(self, session_id: str) -> Session:
        """Finish provisioning now (NOT_READY -> READY), e.g. after a ``never_ready`` fault."""
        session = self.get(session_id)
        self._ready(session, "control")
        return session

    def mark_running(self, session_id: str) -> Session:
        """READY -> RUNNING: the avatar joined its room."""
        session = self.get(session_id)
        # The runtime cap started at READY keeps counting: RUNNING does not reset it.
        self._transition(session, SessionStatus.RUNNING, "control", keep_timer=True)
        return session

    def complete(self, session_id: str, duration: float | None = None) -> Session:
        """READY/RUNNING -> COMPLETED (the call ended); duration defaults to time since creation."""
        session = self.get(session_id)
        self._complete(session, duration, "control")
        return session

    def fail(self, session_id: str, failure_code: str, failure: str = "Session failed.") -> Session:
        """Any active state -> FAILED with this stable code and human text."""
        session = self.get(session_id)
        self._fail(session, failure_code, failure, "control")
        return session

    def cancel(self, session_id: str, reason: str = "control") -> Session:
        """Any active state -> CANCELLED."""
        session = self.get(session_id)
        self._transition(session, SessionStatus.CANCELLED, reason)
        return session

    async def wait_for_status(
        self, session_id: str, *statuses: SessionStatus, timeout: float = 5.0
    ) -> Session:
        """Wait until the session is in one of ``statuses``; ``TimeoutError`` after ``timeout``."""
        session = self.get(session_id)
        wanted = frozenset(statuses)
        if session.status in wanted:
            return session
        future: asyncio.Future[Session] = asyncio.get_running_loop().create_future()
        waiter = (session_id, wanted, future)
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(
                f"session {session_id} still {session.status.value} after {timeout}s"
            ) from None
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    async def aclose(self) -> None:
        """Stop every clock and cancel running async listeners; sessions stay queryable."""
        for session_id in list(self._timers):
            self._cancel_timer(session_id)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def _discard(items: list[Any], item: Any) -> None:
    if item in items:
        items.remove(item)
