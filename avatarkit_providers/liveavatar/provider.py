"""LiveAvatar (HeyGen, LITE mode): a session token, then a start whose avatar joins the room;
the agent's 24 kHz audio goes over LiveAvatar's WebSocket (:mod:`.transport`)."""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING

from avatarkit import AvatarProvider, CreateRequest, EndRequest, RemoteSession, SessionLimits
from avatarkit.http import HttpClient, ProviderAPIError
from avatarkit.json_api import JsonAPI
from avatarkit.provider import StreamRequest
from avatarkit.secret import Secret

from .options import LiveAvatarOptions

if TYPE_CHECKING:
    from .transport import LiveAvatarAudioOutput

# Sandbox sessions end after about a minute (docs.liveavatar.com/docs/sandbox-mode); others
# last up to the subscription tier's limit, which is not published.
SANDBOX_SECONDS = 60.0


class LiveAvatarProvider(AvatarProvider[LiveAvatarOptions]):
    """LITE mode in the app's own LiveKit room (``livekit_config``)."""

    name = "liveavatar"
    options_class = LiveAvatarOptions
    default_identity = "liveavatar-avatar-agent"
    sample_rate = 24000
    reports_playback_start = True  # agent.speak_started, over the socket
    limits = SessionLimits()

    def __init__(self, options: LiveAvatarOptions, http: HttpClient) -> None:
        super().__init__(options, http)
        self._outputs: dict[str, LiveAvatarAudioOutput] = {}  # by session id, for end()

    @functools.cached_property
    def api(self) -> JsonAPI:
        key: dict[str, str | Secret] = {"X-API-KEY": self.options.api_key}
        return JsonAPI(self.http, self.options.api_url, {"accept": "application/json", **key})

    def session_lifetime(self) -> float | None:
        return SANDBOX_SECONDS if self.options.is_sandbox else self.limits.max_duration

    async def create(self, request: CreateRequest) -> RemoteSession:
        livekit = {"livekit_room": request.room_name, "livekit_url": request.livekit_url,
                   "livekit_client_token": request.avatar_token.reveal()}  # fmt: skip
        body = {"mode": "LITE", "avatar_id": self.options.avatar_id,
                "is_sandbox": self.options.is_sandbox, "livekit_config": livekit,
                **({"video_quality": q} if (q := self.options.video_quality) else {})}  # fmt: skip
        secret = [request.avatar_token]
        answer = await self.api.call("POST", "/token", body, creates=True, secrets=secret)
        token = Secret(self.api.read(answer, "data.session_token", secrets=secret))
        session_id = self.api.read(answer, "data.session_id", secrets=[token])
        bearer = Secret(f"Bearer {token.reveal()}")  # the start takes the session's own token
        start = JsonAPI(self.http, self.options.api_url, {"Authorization": bearer})
        try:
            started = await start.call("POST", "/start", {"session_id": session_id}, creates=True,
                                       secrets=[token])  # fmt: skip
            ws_url = Secret(start.read(started, "data.ws_url", secrets=[token]))
        except Exception:
            with contextlib.suppress(Exception):  # the first error is the one to report
                await self._stop(session_id)
            raise
        return RemoteSession(self.name, session_id, {"ws_url": ws_url})

    def stream(self, request: StreamRequest) -> LiveAvatarAudioOutput:
        from .transport import LiveAvatarAudioOutput

        output = LiveAvatarAudioOutput(request.remote.details["ws_url"], self.http.session())
        self._outputs[request.remote.id] = output
        return output

    async def end(self, remote: RemoteSession, request: EndRequest) -> None:
        # No in-room end: both paths stop the session through the API, then close the socket.
        try:
            await self._stop(remote.id)
        except ProviderAPIError as exc:
            if exc.status_code not in (400, 404, 409, 410):  # already over: what we want
                raise
        finally:
            if (output := self._outputs.pop(remote.id, None)) is not None:
                await output.aclose()

    async def _stop(self, session_id: str) -> None:  # the plugin's, with the key (docs accept it)
        await self.api.call(
            "POST", "/stop", {"session_id": session_id, "reason": "USER_DISCONNECTED"}
        )

    async def check(self) -> str:
        # Stopping a session that cannot exist bills nothing and still needs a valid key.
        try:
            await self._stop("00000000-0000-0000-0000-000000000000")
        except ProviderAPIError as exc:
            if exc.status_code in (401, 403):
                raise ProviderAPIError(
                    "liveavatar", exc.status_code, "the API key was refused: check api_key or "
                    "LIVEAVATAR_API_KEY", retryable=False) from None  # fmt: skip
            if exc.status_code >= 500:
                raise
        return f"API key accepted by {self.options.api_url}"
