"""The LiveKit Inference backend: the gateway creates the provider's session (LemonSlice) with
LiveKit's own account and mints the avatar's room token itself; the agent's audio goes over
LiveKit data streams at the rate the gateway reports; ended through the gateway's terminate."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from livekit import rtc

from avatarkit import AvatarProvider, CreateRequest, EndRequest, RemoteSession, StreamRequest

# The plugin's own headers (User-Agent, and the job's ids inside a job) and gateway JWT.
from avatarkit._compat import inference_gateway_auth
from avatarkit.http import ProviderAPIError
from avatarkit.json_api import JsonAPI
from avatarkit.log import logger
from avatarkit.secret import Secret
from avatarkit.streaming import RoomAudioOutput

from .options import InferenceOptions

if TYPE_CHECKING:
    from livekit.agents.voice.io import AudioOutput

    from avatarkit.http import HttpClient

DEFAULT_SAMPLE_RATE = 16000  # the plugin's rate when the gateway reports none


class InferenceProvider(AvatarProvider[InferenceOptions]):
    """Avatars billed through LiveKit Inference (``model="lemonslice/<agent_id>"``)."""

    name = "inference"
    options_class = InferenceOptions
    # The agent's audio is captured at 24 kHz (LemonSlice's own rate, and most TTS'), then
    # resampled to the rate the gateway reports for the session (see stream()).
    sample_rate = 24000
    reports_playback_start = True  # the plugin waits for lk.playback_started
    # limits: none published for inference avatars; the gateway clamps idle_timeout to bounds
    # it does not publish, and mints the avatar's token itself (its lifetime is not ours).

    def __init__(self, options: InferenceOptions, http: HttpClient) -> None:
        super().__init__(options, http)
        self.default_identity = f"{options.provider}-inference-avatar"

    def api(self, **headers: str) -> JsonAPI:
        # a fresh gateway JWT per call, as the plugin (it lives 600 s)
        create_access_token, get_inference_headers = inference_gateway_auth()
        token = create_access_token(self.options.api_key.reveal(), self.options.api_secret.reveal())
        return JsonAPI(self.http, self.options.base_url, {
            **get_inference_headers(), "Authorization": Secret(f"Bearer {token}"),
            "X-LiveKit-Inference-Provider": self.options.provider, **headers})  # fmt: skip

    async def create(self, request: CreateRequest) -> RemoteSession:
        # No token in the body: the gateway mints the avatar's from these room fields.
        body = {
            "provider": self.options.provider,
            "livekit_url": request.livekit_url,
            "room_name": request.room_name,
            "room_sid": await request.room.sid,
            "avatar_identity": request.avatar_identity,
            "avatar_name": request.avatar_name,
            "agent_identity": request.agent_identity,
            **self.options.payload(),
        }
        api = self.api(**{"Idempotency-Key": uuid.uuid4().hex})  # one per start, as the plugin
        answer = await api.call("POST", "/avatar/sessions", body, creates=True)
        session_id = api.read(answer, "provider_session_id")  # what terminate needs
        rate, token = answer.get("sample_rate"), answer.get("terminate_token")
        return RemoteSession(self.name, session_id, {
            "session_id": answer.get("session_id"),  # the gateway's own id, for support
            "terminate_token": Secret(token) if isinstance(token, str) and token else None,
            "sample_rate": rate if type(rate) is int and rate > 0 else DEFAULT_SAMPLE_RATE,
        })  # fmt: skip

    def stream(self, request: StreamRequest) -> AudioOutput:
        return RoomAudioOutput(request.room, destination_identity=request.avatar_identity,
                               sample_rate=request.remote.details["sample_rate"],
                               wait_remote_track=rtc.TrackKind.KIND_VIDEO,
                               clear_buffer_timeout=None, wait_playback_start=True)  # fmt: skip

    async def end(self, remote: RemoteSession, request: EndRequest) -> None:
        # No in-room end: both paths use the gateway's terminate, as the plugin's aclose().
        if (token := remote.details.get("terminate_token")) is None:  # an older gateway
            logger.warning("the gateway gave no terminate_token: %s cannot be ended", remote.id)
            return  # it runs to its provider's idle timeout, as with the plugin
        await self._terminate(remote.id, token)

    async def _terminate(self, session_id: str, token: Secret) -> None:
        body = {"provider": self.options.provider, "provider_session_id": session_id,
                "terminate_token": token.reveal()}  # fmt: skip
        try:
            await self.api().call("POST", "/avatar/sessions/terminate", body, secrets=[token])
        except ProviderAPIError as exc:
            if exc.status_code not in (404, 409, 410):  # already over: the outcome we want
                raise

    async def check(self) -> str:
        # Terminating a session that cannot exist bills nothing and still needs a valid JWT.
        try:
            await self._terminate("avatarkit-check", Secret("0" * 64))
        except ProviderAPIError as exc:
            if exc.status_code in (401, 403):
                raise ProviderAPIError("inference", exc.status_code, "the gateway refused the "
                    "LiveKit key pair: check api_key / api_secret (or LIVEKIT_INFERENCE_API_KEY, "
                    "LIVEKIT_API_KEY and their secrets)", retryable=False) from None  # fmt: skip
            if exc.status_code not in (400, 422):
                raise
        return f"LiveKit key pair accepted by {self.options.base_url}"
