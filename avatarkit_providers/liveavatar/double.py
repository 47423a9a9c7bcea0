"""LiveAvatar's double: its sessions API (token, start, stop) on the shared engine, plus the
LITE-mode WebSocket that carries the agent's audio to the avatar.

The engine's avatar worker hears the agent over LiveKit data streams; LiveAvatar's hears it
over the socket. So :class:`LiveAvatarApi` extends the engine: a second small server for the
socket, a worker whose audio receiver is that socket (:class:`SocketReceiver`), the session
token that ``/start`` takes, and sessions named in the body rather than the path.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiohttp import WSMsgType, web
from livekit import rtc
from livekit.agents.voice.avatar import (
    AudioReceiver,
    AudioSegmentEnd,
    AvatarOptions,
    AvatarRunner,
)

from avatarkit.doubles import Offline, Served
from avatarkit.rooms import connect_room
from avatarkit_doubles import ApiDescription, DoubleSession, Route
from avatarkit_doubles.engine import _EXCHANGE, ApiDouble, WorkerFault, logger, token_claims
from avatarkit_doubles.provider_double import DescribedDouble
from avatarkit_providers.local.video import FaceVideoGenerator
from avatarkit_providers.local.worker import AvatarWorker

from .options import SANDBOX_AVATAR_ID, VIDEO_QUALITIES
from .transport import SAMPLE_RATE

TOKEN_PREFIX = "session_token_"  # the double's session tokens: this, then the session id


def _validate(body: Mapping[str, Any]) -> str | None:
    if not isinstance(body.get("avatar_id"), str) or not body["avatar_id"]:
        return "avatar_id is required"
    if body.get("mode") != "LITE":
        return "this double emulates LITE mode only (mode: LITE)"
    if body.get("video_quality", "high") not in VIDEO_QUALITIES:
        return f"video_quality must be one of {', '.join(VIDEO_QUALITIES)}"
    if not isinstance(body.get("is_sandbox", False), bool):
        return "is_sandbox must be a boolean"
    config = body.get("livekit_config")
    keys = ("livekit_room", "livekit_url", "livekit_client_token")
    if not isinstance(config, dict) or not all(isinstance(config.get(k), str) for k in keys):
        return "livekit_config needs livekit_room, livekit_url and livekit_client_token"
    return None


def _token_answer(session: DoubleSession) -> dict[str, Any]:
    data = {"session_id": session.id, "session_token": f"{TOKEN_PREFIX}{session.id}"}
    return {"code": 100, "data": data, "message": "success"}


LIVEAVATAR = ApiDescription(
    name="liveavatar",
    auth_header="X-API-KEY",
    api_prefix="/v1/sessions",
    routes=(
        Route("POST", "/token", "create", answer=_token_answer),
        # the start answers where the socket is (LiveAvatarApi._status): the engine's three
        # actions are create, end and status, and a start is none of them
        Route("POST", "/start", "status", status=201),
        Route("POST", "/stop", "end", answer=lambda _: {"code": 100, "message": "success"}),
    ),
    validate=_validate,
    join=lambda body: (
        body["livekit_config"]["livekit_url"],
        body["livekit_config"]["livekit_client_token"],
    ),
)


class SocketReceiver(AudioReceiver):
    """The avatar's ears: the agent's events from LiveAvatar's socket, as ``AvatarRunner``
    reads audio; its playback reports go back over the same socket."""

    def __init__(self) -> None:
        super().__init__()
        self.ws: web.WebSocketResponse | None = None
        self.received: list[dict[str, Any]] = []
        """The agent's events, in order (``agent.speak`` without its audio)."""
        self.audio_bytes: list[int] = []
        """The size of each ``agent.speak``'s decoded audio, in order."""
        self._audio: asyncio.Queue[rtc.AudioFrame | AudioSegmentEnd] = asyncio.Queue()
        self._speaking = False

    def take(self, ev: dict[str, Any]) -> None:
        kind = ev.get("type")
        self.received.append({k: v for k, v in ev.items() if k != "audio"})
        if kind == "agent.speak":
            pcm = base64.b64decode(ev.get("audio", ""))
            self.audio_bytes.append(len(pcm))
            self._audio.put_nowait(rtc.AudioFrame(pcm, SAMPLE_RATE, 1, len(pcm) // 2))
        elif kind == "agent.speak_end":
            self._audio.put_nowait(AudioSegmentEnd())
        elif kind == "agent.interrupt":
            while not self._audio.empty():
                self._audio.get_nowait()
            self.emit("clear_buffer")

    async def notify_playback_started(self) -> None:
        self._speaking = True
        await self._tell("agent.speak_started")

    async def notify_playback_finished(self, playback_position: float, interrupted: bool) -> None:
        if interrupted:
            await self._tell("agent.speak_interrupted")
        if self._speaking:  # "always follows an agent.speak_started event"
            self._speaking = False
            await self._tell("agent.speak_ended")

    async def _tell(self, kind: str) -> None:
        if self.ws is not None and not self.ws.closed:
            event_id = str(uuid.uuid4())
            with contextlib.suppress(ConnectionError):
                await self.ws.send_json(
                    {"type": kind, "event_id": event_id, "task": {"id": event_id}}
                )

    async def __aiter__(self) -> AsyncIterator[rtc.AudioFrame | AudioSegmentEnd]:
        while True:
            yield await self._audio.get()


class SocketWorker(AvatarWorker):
    """The engine's avatar worker with :class:`SocketReceiver` for ears (``AvatarWorker``
    builds a data-stream receiver in its ``__init__``, so this one is built here)."""

    def __init__(
        self, room: rtc.Room, *, agent_identity: str, video: FaceVideoGenerator,
        receiver: SocketReceiver,
    ) -> None:  # fmt: skip
        self.room, self.agent_identity, self.video = room, agent_identity, video
        options = AvatarOptions(
            video.width, video.height, video.fps, video.sample_rate, video.channels
        )
        self._runner = AvatarRunner(room, audio_recv=receiver, video_gen=video, options=options)
        self._runner._read_audio_atask = None  # type: ignore[assignment]  # as AvatarWorker does
        self._closed = None


class LiveAvatarApi(ApiDouble):
    """LiveAvatar's API and socket, emulated. ``sockets[session id]`` shows what the agent
    sent over the socket."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(LIVEAVATAR, **kwargs)
        self.sockets: dict[str, SocketReceiver] = {}
        self.ws_url = ""
        self._ws_runner: web.AppRunner | None = None

    def socket(self, session_id: str) -> SocketReceiver:
        return self.sockets.setdefault(session_id, SocketReceiver())

    async def __aenter__(self) -> LiveAvatarApi:
        await super().__aenter__()
        app = web.Application()
        app.router.add_get("/v1/ws/{id}", self._serve_socket)
        self._ws_runner = web.AppRunner(app, access_log=None)
        await self._ws_runner.setup()
        await web.TCPSite(self._ws_runner, "127.0.0.1", 0).start()
        self.ws_url = f"ws://127.0.0.1:{self._ws_runner.addresses[0][1]}/v1/ws"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for receiver in self.sockets.values():  # open sockets would hold the server's shutdown
            if receiver.ws is not None:
                await receiver.ws.close()
        if self._ws_runner is not None:
            await self._ws_runner.cleanup()
        await super().__aexit__(*exc)

    # -- sessions by token or body, and the start ---------------------------------------------

    def _token_session(self, request: web.Request) -> str | None:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        sid = given.removeprefix(TOKEN_PREFIX)
        return sid if given.startswith(TOKEN_PREFIX) and sid in self.sessions else None

    def _check_auth(self, request: web.Request) -> web.Response | None:
        # the start takes the session token; the stop it or the API key (LiveAvatar's docs)
        if request.path.endswith(("/start", "/stop")) and self._token_session(request):
            return None
        if request.path.endswith("/start"):
            return web.json_response({"error": "a session token is needed"}, status=401)
        return super()._check_auth(request)

    def _find(self, request: web.Request) -> DoubleSession | web.Response:
        body = _EXCHANGE.get().body
        named = body.get("session_id") if isinstance(body, dict) else None
        session = self.sessions.get(self._token_session(request) or str(named))
        return session or web.json_response({"error": "session not found"}, status=404)

    async def _status(self, request: web.Request, route: Route) -> web.StreamResponse:
        session = self._find(request)
        if isinstance(session, web.Response):
            return session
        if not session.active:
            return web.json_response({"error": f"the session is {session.status}"}, status=400)
        data = {"session_id": session.id, "ws_url": f"{self.ws_url}/{session.id}"}
        return web.json_response(
            {"code": 100, "data": data, "message": "success"}, status=route.status
        )

    def end(self, session: DoubleSession, by: str, *, failed: bool = False) -> None:
        was_active = session.active
        super().end(session, by, failed=failed)
        ws = self.sockets[session.id].ws if session.id in self.sockets else None
        if was_active and ws is not None:
            self._spawn(ws.close())  # LiveAvatar closes the socket of an ended session

    # -- the socket and the worker that hears it ------------------------------------------

    async def _serve_socket(self, request: web.Request) -> web.StreamResponse:
        session = self.sessions.get(request.match_info["id"])
        if session is None or not session.active:
            return web.json_response({"error": "no such session"}, status=404)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        receiver = self.socket(session.id)
        receiver.ws = ws
        await ws.send_json({"type": "session.state_updated", "state": "connected"})
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                receiver.take(json.loads(message.data))
        return ws

    async def _run_worker(
        self, session: DoubleSession, url: str, token: str, fault: WorkerFault
    ) -> None:
        # the engine's, with a SocketWorker
        if fault.never_join:
            return
        agent = token_claims(token).get("attributes", {}).get("lk.publish_on_behalf", "")
        try:
            room = await connect_room(url, token)
        except Exception as exc:
            logger.warning("liveavatar double: the avatar could not join: %r", exc)
            self.end(session, "fault", failed=True)
            return
        worker = SocketWorker(
            room, agent_identity=agent, video=self._video(), receiver=self.socket(session.id)
        )
        await worker.start()
        if not session.active:  # ended while joining
            await worker.aclose()
            return
        session.status = "active"
        self.workers[session.id] = worker

        def on_left(participant: rtc.RemoteParticipant) -> None:
            if participant.identity == agent:  # the real avatars leave with their agent
                self.end(session, "agent_left")

        room.on("participant_disconnected", on_left)
        self._spawn(self._faults_and_cap(session, worker, fault))


class LiveAvatarDouble(DescribedDouble):
    description = LIVEAVATAR
    url_env = None  # the official plugin reads no URL variable: api_url points it here
    key_env = "LIVEAVATAR_API_KEY"
    defaults = {"avatar_id": SANDBOX_AVATAR_ID}  # the plugin requires an avatar

    # DescribedDouble's two, with LiveAvatarApi for the engine's ApiDouble

    @contextlib.asynccontextmanager
    async def offline(self, given: Mapping[str, Any], *, size: int) -> AsyncIterator[Offline]:
        if "api_key" in given:  # the user's account: the real service
            yield Offline(self.description.name, {**self.defaults, **given})
            return

        def video() -> FaceVideoGenerator:
            return FaceVideoGenerator(width=size, height=size, fps=30, label=self.label)

        async with LiveAvatarApi(video=video) as double:
            options = {**self.defaults, "api_key": double.api_key, **given, "api_url": double.url}
            yield Offline(self.label, options, double=double)

    @contextlib.asynccontextmanager
    async def serve(self, *, port: int, runtime_cap: float) -> AsyncIterator[Served]:
        async with LiveAvatarApi(port=port, runtime_cap=runtime_cap) as double:
            title = "liveavatar API double (emulated, no account)"
            yield Served(title, double.url, {self.key_env: double.api_key})
