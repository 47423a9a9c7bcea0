"""Updates about a participant, sent to the others as livekit's server sends them (realistic
mode only).

The server queues updates about participants that publish nothing and sends them in a batch
every 3 s; updates about publishers, and metadata, attribute or permission changes, go at once
and take the queued update along. When an identity switches to a newer session the older one's
disconnection is not sent at all, nor is a disconnection for a duplicate identity: the
receiving SDK notices the new session id and drops the old participant itself.
(pkg/rtc/room.go: ``broadcastParticipantState``, ``PushAndDequeueUpdates``,
``SendParticipantUpdates``, ``IsCloseNotifySkippable``, ``changeUpdateWorker``.)
"""

from __future__ import annotations

import asyncio
import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from livekit import rtc
from livekit.rtc._proto import participant_pb2 as proto_participant

if TYPE_CHECKING:
    from .network import Network
    from .server import ServerParticipant, ServerRoom


@dataclass
class _Update:
    info: proto_participant.ParticipantInfo
    order: int
    """When its session joined: a larger number is a newer session."""
    skippable: bool
    """Its close reason is DUPLICATE_IDENTITY (``IsCloseNotifySkippable``)."""
    synthesized: bool = False


class ParticipantUpdates:
    """The updates of one room: batched, or sent at once, to everyone in it."""

    def __init__(self, room: ServerRoom, network: Network, interval: float | None) -> None:
        self._room = room
        self._network = network
        self._interval = interval
        self._cache: dict[str, _Update] = {}
        self._origin = asyncio.get_running_loop().time()  # the server's ticker starts with the room
        self._timer: asyncio.TimerHandle | None = None

    def pending(self, identity: str) -> bool:
        """An update about ``identity`` waits for the next batch."""
        return identity in self._cache

    def push(
        self,
        participant: ServerParticipant,
        state: proto_participant.ParticipantState.ValueType,
        *,
        immediate: bool = False,
        reason: proto_participant.DisconnectReason.ValueType | None = None,
    ) -> None:
        """Queue or send an update about ``participant`` in ``state``."""
        info = participant.info(state)
        if reason is not None:
            info.disconnect_reason = reason
        update = _Update(info, participant.order, reason == rtc.DisconnectReason.DUPLICATE_IDENTITY)
        identity = info.identity
        existing = self._cache.get(identity)
        send_now = immediate or participant.is_publisher or self._interval is None
        updates: list[_Update] = []
        if existing is not None:
            if existing.info.sid != info.sid:
                if existing.order > update.order:
                    return  # an older session's update: the newer one is already known
                # the older session's update is sent now, as a disconnection nobody is told of
                send_now = True
                existing.info.state = rtc.ParticipantState.PARTICIPANT_STATE_DISCONNECTED
                existing.synthesized = True
                updates.append(existing)
        else:
            current = self._room._participants.get(identity)
            if current is not None and current.order > update.order:
                return
        if send_now:
            self._cache.pop(identity, None)
            updates.append(update)
            self._send(updates)
        else:
            self._cache[identity] = update
            self._arm()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._network.end()
        self._cache.clear()

    def _arm(self) -> None:
        if self._timer is not None or self._interval is None:
            return
        loop = asyncio.get_running_loop()
        ticks = math.floor((loop.time() - self._origin) / self._interval) + 1
        self._network.begin()
        self._timer = loop.call_at(self._origin + ticks * self._interval, self._tick)

    def _tick(self) -> None:
        self._timer = None
        updates = list(self._cache.values())
        self._cache.clear()
        self._send(updates)
        self._network.end()

    def _send(self, updates: list[_Update]) -> None:
        # every client here handles identity-based reconnection, so it gets the filtered list
        infos = [u.info for u in updates if not (u.synthesized or u.skippable)]
        if not infos:
            return
        for observer in list(self._room._participants.values()):
            session = observer.session
            for info in infos:
                if info.identity == observer.identity:
                    continue  # a participant's own updates reach it directly
                copy = proto_participant.ParticipantInfo()
                copy.CopyFrom(info)
                session._post(functools.partial(session._on_participant_update, copy))
