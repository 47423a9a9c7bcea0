"""The agent's audio to an avatar over LiveKit data streams, one room at a time.

livekit-agents' ``DataStreamAudioOutput`` and ``DataStreamAudioReceiver`` route their
playback RPCs (``lk.playback_finished``, ``lk.playback_started``, ``lk.clear_buffer``)
through class-level tables keyed by the caller's identity alone, and never drop entries. With
several sessions in one process whose avatars (or agents) share an identity, which is the
default, one session's RPCs reach another's output, and its speech waits forever for a
``playback_finished`` that went elsewhere. The subclasses here route by room as well, and
forget their routes when retired.
"""

from __future__ import annotations

import weakref
from typing import Any

from livekit import rtc

from ._compat import RPC_CLEAR_BUFFER, DataStreamOutputHooks, DataStreamReceiverHooks, Handler
from .log import logger

# local participant -> RPC method -> caller identity -> handler
_routes: weakref.WeakKeyDictionary[Any, dict[str, dict[str, Handler]]] = weakref.WeakKeyDictionary()


def route_rpc(room: rtc.Room, method: str, caller: str, handler: Handler) -> None:
    """Deliver ``method`` calls from ``caller`` in ``room`` to ``handler``."""
    participant = room.local_participant
    methods = _routes.setdefault(participant, {})
    callers = methods.get(method)
    if callers is None:
        callers = methods[method] = {}

        def dispatch(data: rtc.RpcInvocationData) -> str:
            target = callers.get(data.caller_identity)
            if target is None:
                logger.warning("%s from unexpected participant %r", method, data.caller_identity)
                return "reject"
            return target(data)

        participant.register_rpc_method(method, dispatch)
    callers[caller] = handler


def unroute_rpc(room: rtc.Room, method: str, caller: str, handler: Handler) -> None:
    """Undo :func:`route_rpc` (if ``handler`` is still the route); the last route of a
    method unregisters it from the room."""
    participant = room.local_participant
    methods = _routes.get(participant, {})
    callers = methods.get(method, {})
    if callers.get(caller) == handler:
        del callers[caller]
    if method in methods and not callers:
        del methods[method]
        participant.unregister_rpc_method(method)


class RoomAudioOutput(DataStreamOutputHooks):
    """``DataStreamAudioOutput`` whose playback RPCs are routed per room."""

    def _route_rpc(self, room: rtc.Room, method: str, caller: str, handler: Handler) -> None:
        route_rpc(room, method, caller, handler)

    def retire(self) -> None:
        """Stop routing this output's RPCs and stop waiting for its avatar: it is done."""
        for method, avatar, handler in self.playback_routes():
            unroute_rpc(self.output_room, method, avatar, handler)
        # The start task waits for the avatar until the room closes, then fails and logs an
        # error nobody can act on: stop it, or take its error if it already failed.
        start = self.start_task
        if start is not None:
            if not start.done():
                start.cancel()
            elif not start.cancelled():
                start.exception()


class RoomAudioReceiver(DataStreamReceiverHooks):
    """``DataStreamAudioReceiver`` (the avatar's side) whose ``lk.clear_buffer`` is routed
    per room."""

    _route: tuple[str, Handler] | None = None

    def _route_rpc(self, room: rtc.Room, method: str, caller: str, handler: Handler) -> None:
        self._route = (caller, handler)
        route_rpc(room, method, caller, handler)

    async def aclose(self) -> None:
        await super().aclose()
        if self._route is not None:
            unroute_rpc(self.receiver_room, RPC_CLEAR_BUFFER, *self._route)
            self._route = None
