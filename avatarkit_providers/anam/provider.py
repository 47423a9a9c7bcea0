"""The Anam backend: an engine session whose persona joins the room and speaks the agent's
24 kHz audio, received over LiveKit data streams."""

from __future__ import annotations

import functools
from typing import Any

from avatarkit import AvatarProvider, CreateRequest, RemoteSession, SessionLimits
from avatarkit.http import ProviderAPIError
from avatarkit.json_api import JsonAPI
from avatarkit.secret import Secret

from .options import AnamOptions

# The nil UUID: no session has it (Anam's ids are UUIDs), so reading it bills nothing.
NO_SESSION = "00000000-0000-0000-0000-000000000000"


class AnamProvider(AvatarProvider[AnamOptions]):
    """Anam's ``POST /v1/engine/session`` with a LiveKit environment: the one request the
    official plugin sends."""

    name = "anam"
    options_class = AnamOptions
    default_identity = "anam-avatar-agent"
    sample_rate = 24000
    reports_playback_start = True  # the official plugin waits for lk.playback_started
    # Anam's limits are the account's, not the request's: 3, 5 and 10 minutes per session on
    # the Free, Starter and Explorer plans, none from Growth up (maxSessionLengthSeconds,
    # which the official plugin does not send; anam.ai/docs/personas/session/duration).
    limits = SessionLimits()
    # Anam publishes no call that ends a session (its API reference only reads them:
    # GET /v1/sessions, /v1/sessions/{id}) and no in-room message: the core takes its
    # persona out of the room.
    end_api = False

    @functools.cached_property
    def api(self) -> JsonAPI:
        bearer = Secret(f"Bearer {self.options.api_key.reveal()}")
        return JsonAPI(self.http, self.options.api_url, {"Authorization": bearer})

    async def create(self, request: CreateRequest) -> RemoteSession:
        body: dict[str, Any] = {
            "personaConfig": self.options.persona_config,
            "environment": {
                "livekitUrl": request.livekit_url,
                "livekitToken": request.avatar_token.reveal(),
            },
        }
        if self.options.session_options is not None:
            body["sessionOptions"] = self.options.session_options
        answer = await self.api.call(
            "POST", "/v1/engine/session", body, creates=True,
            secrets=[self.options.api_key, request.avatar_token])  # fmt: skip
        return RemoteSession(self.name, self.api.read(answer, "sessionId"))

    async def check(self) -> str:
        # Reading a session that cannot exist bills nothing and still needs a valid key.
        try:
            await self.api.call("GET", f"/v1/sessions/{NO_SESSION}", secrets=[self.options.api_key])
        except ProviderAPIError as exc:
            if exc.status_code in (401, 403):
                raise ProviderAPIError(
                    "anam", exc.status_code, "the API key was refused: check api_key or "
                    "ANAM_API_KEY", retryable=False) from None  # fmt: skip
            if exc.status_code not in (400, 404):
                raise
        return f"API key accepted by {self.options.api_url}"
