"""What apps and providers test avatarkit code with.

The in-memory LiveKit server is its own package, :mod:`memory_livekit` (it knows nothing of
avatarkit); it is re-exported here for convenience, with :func:`in_memory_livekit`, which
makes the avatars started in this process join it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from memory_livekit import *  # noqa: F403
from memory_livekit import MemoryLiveKit, Realism
from memory_livekit import __all__ as _server_all

from ..rooms import register_connector, register_remover

__all__ = [*_server_all, "in_memory_livekit"]


@contextlib.asynccontextmanager
async def in_memory_livekit(realism: Realism | None = None) -> AsyncIterator[MemoryLiveKit]:
    """An in-memory LiveKit server, closed on exit. Avatar workers in this process that join
    its URL (through :func:`avatarkit.rooms.connect_room`: the local provider, the providers'
    doubles) join it instead of dialling out, and avatarkit's ``RemoveParticipant`` calls
    (:func:`avatarkit.rooms.remove_participant`) reach it."""
    server = MemoryLiveKit(realism=realism)
    undo = [
        register_connector(server.url, lambda _url, token: server.connect(token)),
        register_remover(server.url, server.remove_participant),
    ]
    try:
        yield server
    finally:
        for unregister in undo:
            unregister()
        await server.aclose()
