"""Joining a LiveKit room as a worker participant, and taking a participant out of one.

``connect_room(url, token)`` is ``rtc.Room().connect(url, token)``, and
``remove_participant(...)`` is RoomService's ``RemoveParticipant``, unless a stand-in was
registered for ``url``: that is how an in-memory server (:mod:`memory_livekit`) stands in
for LiveKit without the code that calls it knowing about it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .secret import Secret

if TYPE_CHECKING:
    from livekit import rtc

RoomConnector = Callable[[str, str], Awaitable["rtc.Room"]]
ParticipantRemover = Callable[[str, str], Awaitable[None]]
"""``(room name, identity)``: remove that participant; raise if it is not there."""

_connectors: dict[str, RoomConnector] = {}
_removers: dict[str, ParticipantRemover] = {}


def _register(table: dict[str, Any], url: str, value: Any) -> Callable[[], None]:
    table[url] = value

    def unregister() -> None:
        if table.get(url) is value:
            del table[url]

    return unregister


def register_connector(url: str, connector: RoomConnector) -> Callable[[], None]:
    """Route joins to ``url`` through ``connector``; returns a function that undoes it."""
    return _register(_connectors, url, connector)


def register_remover(url: str, remover: ParticipantRemover) -> Callable[[], None]:
    """Route ``RemoveParticipant`` calls for ``url`` to ``remover``; returns its undoing."""
    return _register(_removers, url, remover)


async def remove_participant(
    url: str, api_key: Secret, api_secret: Secret, room: str, identity: str
) -> bool:
    """Take ``identity`` out of ``room`` (RoomService ``RemoveParticipant``); False if it was
    not there."""
    from livekit import api

    try:
        if (remover := _removers.get(url)) is not None:
            await remover(room, identity)
            return True
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
