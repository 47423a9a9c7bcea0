"""RoomService over HTTP (Twirp, as livekit-api's client speaks it) for an in-memory server.

``serve_room_service(server)`` listens on 127.0.0.1 and answers ``RemoveParticipant``,
``DeleteRoom``, ``ListRooms`` and ``ListParticipants`` for ``server``, after checking the
request's token as a LiveKit server does: signed with the server's key pair, with
``roomAdmin`` on the room (``roomList`` to list rooms). Point ``livekit.api.LiveKitAPI`` at
the URL it yields.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from google.protobuf.message import Message
from livekit import api

if TYPE_CHECKING:
    from .server import MemoryLiveKit

PREFIX = "/twirp/livekit.RoomService/"


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"code": code, "msg": message}, status=status)


class _RoomService:
    def __init__(self, server: MemoryLiveKit) -> None:
        self.server = server
        self.verifier = api.TokenVerifier(server.api_key, server.api_secret)

    def _grants(self, request: web.Request) -> api.VideoGrants | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            claims = self.verifier.verify(token)
        except Exception:
            return None
        return claims.video

    async def _read(self, request: web.Request, message: Message) -> None:
        body = await request.read()
        if request.content_type == "application/json":
            from google.protobuf import json_format

            json_format.Parse(body.decode() or "{}", message)
        else:
            message.ParseFromString(body)

    @staticmethod
    def _answer(request: web.Request, message: Message) -> web.Response:
        if request.content_type == "application/json":
            from google.protobuf import json_format

            return web.Response(
                text=json_format.MessageToJson(message), content_type="application/json"
            )
        return web.Response(body=message.SerializeToString(), content_type="application/protobuf")

    def routes(self) -> dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]]:
        return {
            "RemoveParticipant": self.remove_participant,
            "DeleteRoom": self.delete_room,
            "ListRooms": self.list_rooms,
            "ListParticipants": self.list_participants,
        }

    def _admin(self, request: web.Request, room: str) -> web.Response | None:
        grants = self._grants(request)
        if grants is None:
            return _error(401, "unauthenticated", "invalid token")
        if not grants.room_admin or (grants.room and grants.room != room):
            return _error(403, "permission_denied", "needs roomAdmin on this room")
        return None

    async def remove_participant(self, request: web.Request) -> web.StreamResponse:
        identity = api.RoomParticipantIdentity()
        await self._read(request, identity)
        if denied := self._admin(request, identity.room):
            return denied
        try:
            await self.server.remove_participant(identity.room, identity.identity)
        except api.TwirpError as exc:
            return _error(404, exc.code, exc.message)
        return self._answer(request, api.RemoveParticipantResponse())

    async def delete_room(self, request: web.Request) -> web.StreamResponse:
        room = api.DeleteRoomRequest()
        await self._read(request, room)
        if denied := self._admin(request, room.room):
            return denied
        await self.server.delete_room(room.room)
        return self._answer(request, api.DeleteRoomResponse())

    async def list_rooms(self, request: web.Request) -> web.StreamResponse:
        grants = self._grants(request)
        if grants is None:
            return _error(401, "unauthenticated", "invalid token")
        if not grants.room_list:
            return _error(403, "permission_denied", "needs roomList")
        listed = api.ListRoomsRequest()
        await self._read(request, listed)
        names = [n for n in self.server.rooms if not listed.names or n in listed.names]
        rooms = [api.Room(name=n, num_participants=len(self.server.rooms[n].participants))
                 for n in names]  # fmt: skip
        return self._answer(request, api.ListRoomsResponse(rooms=rooms))

    async def list_participants(self, request: web.Request) -> web.StreamResponse:
        listed = api.ListParticipantsRequest()
        await self._read(request, listed)
        if denied := self._admin(request, listed.room):
            return denied
        room = self.server.rooms.get(listed.room)
        people = [api.ParticipantInfo(identity=i) for i in (room.participants if room else ())]
        return self._answer(request, api.ListParticipantsResponse(participants=people))


@contextlib.asynccontextmanager
async def serve_room_service(server: MemoryLiveKit, port: int = 0) -> AsyncIterator[str]:
    """Serve ``server``'s RoomService on 127.0.0.1 while entered; yields its base URL."""
    service = _RoomService(server)
    app = web.Application()
    for method, handler in service.routes().items():
        app.router.add_post(PREFIX + method, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound: Any = runner.addresses[0]
    try:
        yield f"http://127.0.0.1:{bound[1]}"
    finally:
        await runner.cleanup()
