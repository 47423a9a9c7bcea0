"""The LemonSlice backend: an agent session whose avatar joins the room and speaks the agent's
audio, received over LiveKit data streams; ended through LemonSlice's control call."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from avatarkit import AvatarProvider, RemoteSession, RemoteStatus, SessionLimits
from avatarkit.http import HttpClient, ProviderAPIError
from avatarkit.json_api import JsonAPI

from .options import LemonSliceOptions
from .upload import post_image

if TYPE_CHECKING:
    from livekit.agents.voice.io import AudioOutput

    from avatarkit import CreateRequest, EndRequest, StreamRequest

# LemonSlice ends a session after 30 minutes unless it raised the account's cap
# (github.com/lemonsliceai/skills, lemonslice-livekit-app/references/reference.md, "Timeouts").
SESSION_CAP = 1800.0
# The plugin's 60 s per call: a create can be slow, and one timed out may leave a session behind.
CREATE_TIMEOUT = 60.0


class LemonSliceProvider(AvatarProvider[LemonSliceOptions]):
    """LemonSlice's self-managed sessions with ``transport_type: livekit``."""

    name = "lemonslice"
    options_class = LemonSliceOptions
    default_identity = "lemonslice-avatar-agent"
    sample_rate = 24000
    reports_playback_start = True  # the plugin's output waits for lk.playback_started
    # The API takes no duration: the cap bounds the token and the core renews ahead of it.
    limits = SessionLimits(max_duration=SESSION_CAP, runtime_cap=SESSION_CAP)

    def __init__(self, options: LemonSliceOptions, http: HttpClient) -> None:
        super().__init__(options, http)
        self.sample_rate = options.audio_sample_rate  # the core relays at this rate
        self.api = self._api(http)

    def _api(self, http: HttpClient) -> JsonAPI:
        return JsonAPI(http, self.options.api_url, {"X-API-Key": self.options.api_key})

    def stream(self, request: StreamRequest) -> AudioOutput:
        from livekit import rtc

        from avatarkit.streaming import RoomAudioOutput

        return RoomAudioOutput(  # as the plugin's, with no clear_buffer fallback timer
            request.room,
            destination_identity=request.avatar_identity,
            sample_rate=self.sample_rate,
            wait_remote_track=rtc.TrackKind.KIND_VIDEO,
            clear_buffer_timeout=None,
            wait_playback_start=True,
        )

    async def create(self, request: CreateRequest) -> RemoteSession:
        token = request.avatar_token
        properties = {
            "livekit_url": request.livekit_url,
            "livekit_token": token.reveal(),
            "livekit_session_id": await request.room.sid,
        }
        body = {"transport_type": "livekit", "properties": properties, **self.options.avatar()}
        conn = self.http.conn_options  # the plugin's create timeout, unless longer
        conn = dataclasses.replace(conn, timeout=max(conn.timeout, CREATE_TIMEOUT))
        http = HttpClient(self.name, conn, self.http.session())
        if self.options.agent_image is not None:
            answer = await post_image(http, self.options, body, token)
        else:
            answer = await self._api(http).call("POST", "", body, creates=True, secrets=[token])
        return RemoteSession(self.name, self.api.read(answer, "session_id"))

    async def end(self, remote: RemoteSession, request: EndRequest) -> None:
        # No in-room end exists (and the plugin leaves sessions to their idle timeout): both
        # paths terminate through lemonslice.com/docs/api-reference/control-self-managed-session.
        try:
            await self.api.call("POST", f"/{remote.id}/control", {"event": "terminate"})
        except ProviderAPIError as exc:
            if exc.status_code not in (400, 404, 409, 410):  # already over: what we want
                raise

    async def status(self, remote: RemoteSession) -> RemoteStatus:
        status = self.api.read(await self.api.call("GET", f"/{remote.id}"), "session_status")
        return RemoteStatus(status, status in ("QUEUED", "ACTIVE"))

    async def check(self) -> str:
        try:  # reading a session that cannot exist bills nothing and still needs a valid key
            await self.api.call("GET", "/livekit-00000000-0000-4000-8000-000000000000")
        except ProviderAPIError as exc:
            if exc.status_code in (401, 402, 403):  # 402: no plan or credits left
                why = f"the API key was refused ({exc.body}): check api_key or LEMONSLICE_API_KEY"
                raise ProviderAPIError(self.name, exc.status_code, why, retryable=False) from None
            if exc.status_code not in (400, 404):
                raise
        return f"API key accepted by {self.options.api_url}"
