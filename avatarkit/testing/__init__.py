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
from memory_livekit.room_service import serve_room_service

from ..rooms import register_connector

__all__ = [*_server_all, "in_memory_livekit"]


@contextlib.asynccontextmanager
async def in_memory_livekit(realism: Realism | None = None) -> AsyncIterator[MemoryLiveKit]:
    """An in-memory LiveKit server, closed on exit. Avatar workers in this process that join
    its URL (through :func:`avatarkit.rooms.connect_room`: the local provider, the providers'
    doubles) join it instead of dialling out. Its URL is also where it serves RoomService
    over HTTP on 127.0.0.1 (``livekit.api.LiveKitAPI`` works against it)."""
    server = MemoryLiveKit(realism=realism)
    async with serve_room_service(server) as http_url:
        # one URL for both, as a real server's: rooms join in memory, RoomService over HTTP
        server.url = "ws" + http_url.removeprefix("http")
        unregister = register_connector(server.url, lambda _url, token: server.connect(token))
        try:
            yield server
        finally:
            unregister()
            await server.aclose()
