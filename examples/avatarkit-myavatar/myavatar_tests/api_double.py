"""A double of MyAvatar's HTTP API, served by aiohttp on 127.0.0.1.

Like the real service, a created session joins the LiveKit room with the token it was given
(a drawn face from avatarkit's local provider stands in for MyAvatar's renderer) and leaves
when the session is deleted.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import attrs
import jwt
from aiohttp import web

from avatarkit_providers.local.video import FaceVideoGenerator
from avatarkit_providers.local.worker import AvatarWorker


@attrs.frozen
class Request:
    """A request the double received."""

    method: str
    path: str
    authorization: str | None
    body: Any


class MyAvatarAPI:
    """``POST /v1/sessions`` and ``DELETE /v1/sessions/{id}``, recording every request."""

    def __init__(self, api_key: str = "myavatar-test-key") -> None:
        self.api_key = api_key
        self.requests: list[Request] = []
        self.sessions: dict[str, AvatarWorker] = {}
        self.hold_creates = False
        """When True, creates get no answer until the double closes (a hung service)."""
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> MyAvatarAPI:
        app = web.Application(middlewares=[self._record])
        app.router.add_post("/v1/sessions", self._create)
        app.router.add_delete("/v1/sessions/{id}", self._delete)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *_: object) -> None:
        self._release.set()
        while self.sessions:
            await self.sessions.popitem()[1].aclose()
        if self._runner is not None:
            await self._runner.cleanup()

    def received(self, method: str) -> list[Request]:
        return [r for r in self.requests if r.method == method]

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        auth = request.headers.get("Authorization")
        self.requests.append(Request(request.method, request.path, auth, body))
        if auth != f"Bearer {self.api_key}":
            return web.json_response({"error": "invalid API key"}, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    async def _create(self, request: web.Request) -> web.Response:
        if self.hold_creates:
            await self._release.wait()
            return web.json_response({"error": "shutting down"}, status=503)
        body = await request.json()
        # the agent the avatar speaks for is named in the token (LiveKit checks its signature)
        claims = jwt.decode(body["livekit_token"], options={"verify_signature": False})
        worker = await AvatarWorker.join(
            body["livekit_url"],
            body["livekit_token"],
            agent_identity=claims["attributes"]["lk.publish_on_behalf"],
            video=FaceVideoGenerator(width=64, height=64, fps=20, sample_rate=24000),
        )
        session_id = f"ses_{uuid.uuid4().hex[:12]}"
        self.sessions[session_id] = worker
        return web.json_response({"id": session_id}, status=201)

    async def _delete(self, request: web.Request) -> web.Response:
        worker = self.sessions.pop(request.match_info["id"], None)
        if worker is None:
            return web.json_response({"error": "no such session"}, status=404)
        await worker.aclose()  # the avatar leaves the room
        return web.Response(status=204)
