"""The Anam backend: an engine session whose persona joins the room and speaks the agent's
24 kHz audio, received over LiveKit data streams."""

from __future__ import annotations

import functools

from avatarkit import AvatarProvider, CreateRequest, RemoteSession
from avatarkit.http import ProviderAPIError
from avatarkit.json_api import JsonAPI
from avatarkit.secret import Secret

from .options import AnamOptions


class AnamProvider(AvatarProvider[AnamOptions]):
    """Anam's ``POST /v1/engine/session`` with a LiveKit environment: the one request the
    official plugin sends."""

    name = "anam"
    options_class = AnamOptions
    default_identity = "anam-avatar-agent"
    sample_rate = 24000
    reports_playback_start = True  # the official plugin waits for lk.playback_started
    # No limits: Anam's are the account's (3, 5 and 10 minutes per session on the Free, Starter
    # and Explorer plans, none from Growth up: anam.ai/docs/personas/session/duration); the
    # request's maxSessionLengthSeconds is left out, as the official plugin leaves it out.
    # No end: Anam publishes no in-room message and no call that ends a session (its API reads
    # them only: GET /v1/sessions, /v1/sessions/{id}).
    end_api = False

    @functools.cached_property
    def api(self) -> JsonAPI:
        bearer = Secret(f"Bearer {self.options.api_key.reveal()}")
        return JsonAPI(self.http, self.options.api_url, {"Authorization": bearer})

    async def create(self, request: CreateRequest) -> RemoteSession:
        token, session = request.avatar_token, self.options.session_options
        body = {
            "personaConfig": self.options.persona_config,
            "environment": {"livekitUrl": request.livekit_url, "livekitToken": token.reveal()},
            **({"sessionOptions": session} if session else {}),
        }
        keys = [self.options.api_key, token]
        answer = await self.api.call("POST", "/v1/engine/session", body, creates=True, secrets=keys)
        return RemoteSession(self.name, self.api.read(answer, "sessionId"))

    async def check(self) -> str:
        # No session has the nil UUID: reading it bills nothing, and still needs a valid key.
        nil = "00000000-0000-0000-0000-000000000000"
        try:
            await self.api.call("GET", f"/v1/sessions/{nil}", secrets=[self.options.api_key])
        except ProviderAPIError as exc:
            if exc.status_code in (401, 403):
                why = "the API key was refused: check api_key or ANAM_API_KEY"
                raise ProviderAPIError(self.name, exc.status_code, why, retryable=False) from None
            if exc.status_code not in (400, 404):
                raise
        return f"API key accepted by {self.options.api_url}"
