"""Joining a LiveKit room as a worker participant, for avatars that run in this process.

``connect_room(url, token)`` is ``rtc.Room().connect(url, token)`` unless a connector was
registered for ``url``: that is how an in-memory server (:mod:`memory_livekit`) stands in
for LiveKit without the code that joins knowing about it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .secret import Secret

if TYPE_CHECKING:
    from livekit import rtc

RoomConnector = Callable[[str, str], Awaitable["rtc.Room"]]

_connectors: dict[str, RoomConnector] = {}


def register_connector(url: str, connector: RoomConnector) -> Callable[[], None]:
    """Route joins to ``url`` through ``connector``; returns a function that undoes it."""
    _connectors[url] = connector

    def unregister() -> None:
        if _connectors.get(url) is connector:
            del _connectors[url]

    return unregister


async def connect_room(url: str, token: str | Secret) -> rtc.Room:
    """A connected room for ``token``'s participant at ``url``."""
    jwt = token.reveal() if isinstance(token, Secret) else token
    if (connector := _connectors.get(url)) is not None:
        return await connector(url, jwt)
    from livekit import rtc

    room = rtc.Room()
    await room.connect(url, jwt)
    return room
