"""Joining a LiveKit room as a worker participant, and taking a participant out of one.

``connect_room(url, token)`` is ``rtc.Room().connect(url, token)`` unless a connector was
registered for ``url``: that is how an in-memory server (:mod:`memory_livekit`) stands in
for LiveKit without the code that joins knowing about it. ``remove_participant(...)`` is
RoomService's ``RemoveParticipant``, through livekit-api.
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


async def remove_participant(
    url: str, api_key: Secret, api_secret: Secret, room: str, identity: str
) -> bool:
    """Take ``identity`` out of ``room`` (RoomService ``RemoveParticipant``); False if it was
    not there."""
    from livekit import api

    try:
        async with api.LiveKitAPI(url, api_key.reveal(), api_secret.reveal()) as lk:
            await lk.room.remove_participant(
                api.RoomParticipantIdentity(room=room, identity=identity)
            )
        return True
    except api.TwirpError as exc:
        if exc.code == "not_found":
            return False
        raise


async def connect_room(url: str, token: str | Secret) -> rtc.Room:
    """A connected room for ``token``'s participant at ``url``."""
    jwt = token.reveal() if isinstance(token, Secret) else token
    if (connector := _connectors.get(url)) is not None:
        return await connector(url, jwt)
    from livekit import rtc

    room = rtc.Room()
    await room.connect(url, jwt)
    return room
