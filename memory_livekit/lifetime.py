"""When the server closes a room by itself (realistic mode only).

As livekit's ``Room.CloseIfEmpty`` (pkg/rtc/room.go), which the server runs every second
(pkg/service/server.go, ``backgroundWorker``): a room stays open while any participant other
than agents and egress (``IsDependent``, pkg/rtc/participant.go) is in it. Otherwise, if such a
participant ever joined and anyone has left since, it closes ``departure_timeout`` after the
last departure (of anyone, agents included); if none ever joined, ``empty_timeout`` after the
room was created. Everyone still in it is disconnected with ``ROOM_CLOSED``
(``ParticipantCloseReasonRoomClosed``, pkg/rtc/types/interfaces.go).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from livekit import rtc

if TYPE_CHECKING:
    from .realism import Realism
    from .server import ServerParticipant, ServerRoom

_DEPENDENT_KINDS = (
    rtc.ParticipantKind.PARTICIPANT_KIND_AGENT,
    rtc.ParticipantKind.PARTICIPANT_KIND_EGRESS,
)


def is_dependent(participant: ServerParticipant) -> bool:
    """An agent or egress: it does not keep a room open."""
    grants = participant.grants
    return participant.kind in _DEPENDENT_KINDS or bool(grants.agent) or bool(grants.recorder)


class RoomLifetime:
    """The auto-close timer of one room."""

    def __init__(self, room: ServerRoom, realism: Realism) -> None:
        self._room = room
        self._realism = realism
        self._first_joined = False
        self._last_left: float | None = None  # time.monotonic(), as room.created
        self._timer: asyncio.TimerHandle | None = None
        self.deadline: float | None = None
        """When the room will close (``time.monotonic()``), if nothing changes."""

    def joined(self, participant: ServerParticipant) -> None:
        if not is_dependent(participant):
            self._first_joined = True
        self.update()

    def left(self) -> None:
        self._last_left = time.monotonic()
        self.update()

    def update(self) -> None:
        self.cancel()
        if any(not is_dependent(p) for p in self._room._participants.values()):
            return
        realism = self._realism
        if self._first_joined and self._last_left is not None:
            timeout, since = realism.departure_timeout, self._last_left
        else:
            timeout, since = realism.empty_timeout, self._room.created
        if timeout is None:
            return
        self.deadline = since + realism.scaled(timeout)
        delay = max(0.0, self.deadline - time.monotonic())
        self._timer = asyncio.get_running_loop().call_later(delay, self._fire)

    def cancel(self) -> None:
        self.deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        room = self._room
        if not room.deleted:
            room.server._close_room(room, rtc.DisconnectReason.ROOM_CLOSED)
