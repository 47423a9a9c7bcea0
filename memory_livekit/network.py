"""The path messages take between participants: data packets, stream chunks, RPC requests,
acknowledgements and responses.

Without realism a message is queued to its receiver at once, as the server always did. With it,
a message arrives after the data latency plus jitter, still in order per sender and receiver
(the reliable data channel keeps order), and a participant's network state decides its fate:
held while it reconnects, dropped while it is frozen or once it is gone.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from ._common import logger

if TYPE_CHECKING:
    from .realism import Realism
    from .server import ServerParticipant

NetState = Literal["up", "resuming", "restarting", "frozen"]
"""``up``: connected. ``resuming``: away for a resume; what it sends and what is sent to it
waits until it is back. ``restarting``: away for a full reconnect; what it sends waits for the
new session, what was sent to the old one is lost. ``frozen``: in the room, but nothing it sends
arrives and nothing reaches it."""

Item = Callable[[], None]


class _DelayLine:
    """Items delivered in order, each no earlier than its due time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_empty: Callable[[], None]) -> None:
        self._loop = loop
        self._on_empty = on_empty
        self._items: deque[tuple[float, Item]] = deque()
        self._last_due = 0.0
        self._handle: asyncio.TimerHandle | None = None

    def push(self, due: float, item: Item) -> None:
        due = max(due, self._last_due)  # never overtake the message sent before
        self._last_due = due
        self._items.append((due, item))
        if self._handle is None:
            self._handle = self._loop.call_at(due, self._fire)

    def cancel(self) -> int:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        dropped = len(self._items)
        self._items.clear()
        return dropped

    def _fire(self) -> None:
        self._handle = None
        limit = self._loop.time() + self._loop._clock_resolution  # type: ignore[attr-defined]
        first = True
        while self._items and (first or self._items[0][0] <= limit):
            first = False
            _, item = self._items.popleft()
            try:
                item()
            except Exception:
                logger.exception("error while delivering a message")
        if self._items:
            self._handle = self._loop.call_at(self._items[0][0], self._fire)
        else:
            self._on_empty()


class Network:
    """Carries messages between participants (see the module docstring)."""

    def __init__(self, realism: Realism | None) -> None:
        self.realism = realism
        self._rng = random.Random(realism.seed if realism is not None else None)
        self._lines: dict[tuple[ServerParticipant, ServerParticipant], _DelayLine] = {}
        self._outbox: dict[object, list[tuple[ServerParticipant, Item]]] = {}
        self._held: dict[ServerParticipant, list[Item]] = {}
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def idle(self) -> bool:
        """Nothing is on its way (held messages excepted: they wait for a reconnection)."""
        return self._in_flight == 0

    async def wait_idle(self) -> None:
        while self._in_flight:
            self._idle.clear()
            await self._idle.wait()

    def begin(self) -> None:
        """Count something on its way (a message, a batch of participant updates)."""
        self._in_flight += 1
        self._idle.clear()

    def end(self, count: int = 1) -> None:
        self._in_flight -= count
        if self._in_flight <= 0:
            self._in_flight = 0
            self._idle.set()

    def send(self, sender: ServerParticipant, target: ServerParticipant, item: Item) -> bool:
        """Send ``item`` (a call on the target's session) from ``sender`` to ``target``.
        Returns False when it is certainly lost (the target is gone or frozen)."""
        realism = self.realism
        if realism is None:
            return target.session._post(item)
        if sender.net == "frozen" or target.net == "frozen" or not _present(target):
            return False
        if sender.net in ("resuming", "restarting"):
            # the SDK waits for its connection before sending (rtc_session.rs,
            # ensure_publisher_connected): it goes out once the participant is back
            self._outbox.setdefault(sender.session, []).append((target, item))
            return True
        key = (sender, target)
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = _DelayLine(
                asyncio.get_running_loop(), lambda: self._drop_line(key)
            )
        delay = realism.data_latency + self._rng.uniform(0.0, realism.data_jitter)
        self.begin()
        line.push(asyncio.get_running_loop().time() + delay, lambda: self._arrive(target, item))
        return True

    def jitter(self, base: float, spread: float) -> float:
        """``base`` plus up to ``spread`` of this network's jitter."""
        return base + self._rng.uniform(0.0, spread)

    def resume(self, participant: ServerParticipant) -> None:
        """``participant`` is back: deliver what waited for it, then send what it sent."""
        participant.net = "up"
        for item in self._held.pop(participant, []):
            participant.session._post(item)
        for target, item in self._outbox.pop(participant.session, []):
            self.send(participant, target, item)

    def forget(self, participant: ServerParticipant, *, outbox: bool) -> None:
        """``participant`` left the room: what waited for it is lost, and with ``outbox`` what
        its session had yet to send (not when the session comes back as a new participant)."""
        self._held.pop(participant, None)
        if outbox:
            self._outbox.pop(participant.session, None)

    def aclose(self) -> None:
        for line in list(self._lines.values()):
            self.end(line.cancel())
        self._lines.clear()
        self._outbox.clear()
        self._held.clear()

    def _arrive(self, target: ServerParticipant, item: Item) -> None:
        self.end()
        if not _present(target) or target.net in ("frozen", "restarting"):
            return
        if target.net == "resuming":
            self._held.setdefault(target, []).append(item)
            return
        target.session._post(item)

    def _drop_line(self, key: tuple[ServerParticipant, ServerParticipant]) -> None:
        self._lines.pop(key, None)


def _present(participant: ServerParticipant) -> bool:
    return participant.room._participants.get(participant.identity) is participant
