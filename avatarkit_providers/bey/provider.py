"""The Beyond Presence backend: a speech-to-video session whose worker joins the room and
speaks the agent's 16 kHz audio, received over LiveKit data streams."""

from __future__ import annotations

import functools

from avatarkit import AvatarProvider, CreateRequest, RemoteSession, SessionLimits
from avatarkit.http import ProviderAPIError
from avatarkit.json_api import JsonAPI

from .options import BeyOptions


class BeyProvider(AvatarProvider[BeyOptions]):
    """Bey's ``POST /v1/sessions`` with ``transport: livekit``."""

    name = "bey"
    options_class = BeyOptions
    default_identity = "bey-avatar-agent"
    sample_rate = 16000  # what Bey's worker renders (the official plugin's SAMPLE_RATE)
    # The API takes no duration and publishes none; the Free plan's 3-minute cap per session
    # (docs.bey.dev/production/concurrency) is the account's, not the API's, so not declared.
    limits = SessionLimits()
    # Bey publishes no end call for speech-to-video sessions (its API reference lists create,
    # retrieve and list) and no in-room message: the core takes its avatar out of the room.
    end_api = False

    @functools.cached_property
    def api(self) -> JsonAPI:
        return JsonAPI(self.http, self.options.api_url, {"x-api-key": self.options.api_key})

    async def create(self, request: CreateRequest) -> RemoteSession:
        body = {
            "transport": "livekit",
            "avatar_id": self.options.avatar,
            "url": request.livekit_url,
            "token": request.avatar_token.reveal(),
        }
        answer = await self.api.call(
            "POST", "/v1/sessions", body, creates=True, secrets=[request.avatar_token]
        )
        return RemoteSession(self.name, self.api.read(answer, "id"))

    async def check(self) -> str:
        # Bey's own key check (docs.bey.dev/api-reference/introduction): nothing is created.
        try:
            await self.api.call("GET", "/v1/auth/verify")
        except ProviderAPIError as exc:
            if exc.status_code in (401, 403):
                raise ProviderAPIError(
                    "bey", exc.status_code, "the API key was refused: check api_key or "
                    "BEY_API_KEY", retryable=False) from None  # fmt: skip
            raise
        return f"API key accepted by {self.options.api_url}"
