"""The Runway emulator: the realtime-sessions API double plus, for each session, an avatar
worker that joins the given LiveKit room and behaves as Runway's does.

- READY: the worker joins with the session's token (as its identity, on behalf of the agent),
  then the session is RUNNING. It speaks the agent's 16 kHz audio with the local face.
- ``END_CALL`` from the agent ends the session as COMPLETED; ``DELETE`` as CANCELLED; the
  runtime cap (and ``maxDuration``) as COMPLETED, leaving the room mid-utterance as Runway
  does. A worker that cannot join turns the session FAILED (``LIVEKIT_JOIN_FAILED``).
- Worker faults: a worker that never joins, one that leaves mid-call (FAILED,
  ``AVATAR_DISCONNECTED``), one that freezes in the room (stops playing and acknowledging).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from collections.abc import Callable
from typing import Any

import attrs
from livekit import rtc

from avatarkit.doubles import SessionRecord
from avatarkit_providers.local.video import FaceVideoGenerator
from avatarkit_providers.local.worker import AvatarWorker

from .api import RunwayAPIServer
from .sessions import Session, SessionStatus, StateChange

logger = logging.getLogger("avatarkit.runway.emulator")

EMULATED_API_KEY = "key_emulated_runway"
AGENT_GRACE = 1.0
"""Seconds the emulated worker waits for an agent that left to come back before leaving."""
EMULATED_LABEL = "runway (emulated)"
"""Drawn into the emulated avatar's video, so it is never mistaken for Runway's."""


def face_video(
    size: int = 256, fps: float = 25, *, label: str | None = EMULATED_LABEL
) -> Callable[[], FaceVideoGenerator]:
    """A video factory for :class:`RunwayEmulator`: the local face, ``size`` pixels square,
    with ``label`` drawn in a banner."""
    return lambda: FaceVideoGenerator(width=size, height=size, fps=fps, label=label)


@attrs.define
class WorkerFault:
    """What the next emulated avatar workers do wrong."""

    never_join: bool = False
    leave_after: float | None = None
    """Seconds after joining when the worker leaves the room on its own."""
    stall_after: float | None = None
    """Seconds after joining when the worker freezes: it stays in the room but stops playing
    audio, publishing video and acknowledging playback."""


class WorkerFaults:
    """Scripted worker faults, consumed one per session in creation order."""

    def __init__(self) -> None:
        self._queue: list[WorkerFault] = []

    def next(
        self,
        *,
        times: int = 1,
        never_join: bool = False,
        leave_after: float | None = None,
        stall_after: float | None = None,
    ) -> None:
        """Apply a fault to the next ``times`` sessions."""
        fault = WorkerFault(never_join, leave_after, stall_after)
        self._queue.extend(attrs.evolve(fault) for _ in range(times))

    def take(self) -> WorkerFault:
        return self._queue.pop(0) if self._queue else WorkerFault()


class RunwayEmulator:
    """Runway's realtime sessions, emulated locally. ``async with RunwayEmulator() as rw``,
    then point ``api_url`` (or ``RUNWAYML_BASE_URL``) at ``rw.url``."""

    def __init__(
        self,
        *,
        api_key: str = EMULATED_API_KEY,
        port: int = 0,
        provisioning_delay: float = 0.5,
        runtime_cap: float = 300.0,
        video: Callable[[], FaceVideoGenerator] | None = None,
        **server_options: Any,
    ) -> None:
        server_options.setdefault("allow_private_livekit_urls", True)
        self.api_key = api_key
        self.server = RunwayAPIServer(
            api_key,
            port=port,
            provisioning_delay=provisioning_delay,
            runtime_cap=runtime_cap,
            **server_options,
        )
        self.worker_faults = WorkerFaults()
        self.workers: dict[str, AvatarWorker] = {}
        self._video = video or face_video()
        self._faults: dict[str, WorkerFault] = {}
        self._end_calls: collections.Counter[str] = collections.Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._unsubscribe: list[Callable[[], None]] = []

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def faults(self) -> Any:
        """HTTP and session faults of the API side (see ``FaultInjector``)."""
        return self.server.faults

    def session_records(self) -> list[SessionRecord]:
        """The sessions as the conformance kit sees them (:class:`~avatarkit.doubles.Observable`):
        an end call is a DELETE or an ``END_CALL`` from the agent."""
        deletes = collections.Counter(r.session_id for r in self.server.requests_for("delete"))
        return [
            SessionRecord(
                s.id,
                s.active,
                deletes[s.id] + self._end_calls[s.id],
                s.livekit.token if s.livekit else None,
            )
            for s in self.server.sessions.values()
        ]

    def fail_next_create(self, status: int) -> None:
        self.faults.next(route="create", status=status)

    def next_worker(self, *, never_join: bool = False, leave_after: float | None = None) -> None:
        self.worker_faults.next(never_join=never_join, leave_after=leave_after)

    async def start(self) -> None:
        self._unsubscribe = [
            self.server.on_session_created(self._on_created),
            self.server.on_state_change(self._on_state_change),
        ]
        await self.server.start()

    async def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(w.aclose() for w in self.workers.values()), return_exceptions=True)
        self.workers.clear()
        await self.server.close()

    async def __aenter__(self) -> RunwayEmulator:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_created(self, session: Session) -> None:
        self._faults[session.id] = self.worker_faults.take()

    def _on_state_change(self, session: Session, change: StateChange) -> None:
        if change.status is SessionStatus.READY:
            self._spawn(self._run_worker(session))
        elif not session.active and (worker := self.workers.pop(session.id, None)):
            # Runway's worker simply leaves, whatever it was saying.
            self._spawn(worker.aclose())

    async def _run_worker(self, session: Session) -> None:
        fault = self._faults.pop(session.id, WorkerFault())
        integration = session.livekit
        if fault.never_join or integration is None:
            return
        try:
            worker = await AvatarWorker.join(
                integration.url,
                integration.token,
                agent_identity=integration.agent_identity or "",
                video=self._video(),
            )
        except Exception as exc:
            logger.warning("emulated avatar could not join: %r", exc)
            if session.active:
                self.server.fail(session.id, "LIVEKIT_JOIN_FAILED", "The avatar could not join.")
            return
        if not session.active:  # cancelled while joining
            await worker.aclose()
            return
        self.workers[session.id] = worker
        worker.room.on("data_received", lambda packet: self._on_data(session, worker, packet))
        worker.room.on("participant_disconnected", lambda p: self._on_left(session, worker, p))
        worker.room.on("disconnected", lambda reason: self._on_removed(session, reason))
        if session.status is SessionStatus.READY:
            self.server.mark_running(session.id)
        if fault.stall_after is not None:
            await asyncio.sleep(fault.stall_after)
            worker.stall()
        if fault.leave_after is not None:
            await asyncio.sleep(fault.leave_after)
            if self.workers.pop(session.id, None) is not None:
                await worker.aclose()
                if session.active:
                    self.server.fail(session.id, "AVATAR_DISCONNECTED", "The avatar left.")

    def _on_left(
        self, session: Session, worker: AvatarWorker, participant: rtc.RemoteParticipant
    ) -> None:
        # Runway's worker leaves with its agent (the state listener makes it leave), unless
        # the agent is back soon: a reconnect (the agent's, or the worker's own, whose room
        # reports everyone gone) is not the agent leaving
        if participant.identity != worker.agent_identity or not session.active:
            return

        def check() -> None:
            if session.active and worker.agent_identity not in worker.room.remote_participants:
                self.server.complete(session.id)

        asyncio.get_running_loop().call_later(AGENT_GRACE, check)

    def _on_removed(self, session: Session, reason: Any) -> None:
        # Taken out of the room (RoomService RemoveParticipant): assumed to end the session,
        # which Runway does not document. A deleted room is left harsher: the session goes on
        # billing until it is cancelled, so avatarkit must still DELETE it.
        if reason != rtc.DisconnectReason.PARTICIPANT_REMOVED:
            return
        if session.active and self.workers.pop(session.id, None) is not None:
            self.server.fail(session.id, "AVATAR_DISCONNECTED", "The avatar left the room.")

    def _on_data(self, session: Session, worker: AvatarWorker, packet: rtc.DataPacket) -> None:
        sender = packet.participant.identity if packet.participant else None
        if sender != worker.agent_identity:
            return
        try:
            message = json.loads(packet.data)
        except ValueError:
            return
        if not isinstance(message, dict) or message.get("type") != "END_CALL":
            return
        self._end_calls[session.id] += 1
        if session.active:
            self.server.complete(session.id)  # the state listener makes the worker leave
