"""The Tavus backend: a conversation whose replica joins the room and speaks the agent's
24 kHz audio, received over LiveKit data streams; ended through Tavus' end call."""

from __future__ import annotations

import functools
import secrets

from avatarkit import (
    AvatarProvider,
    CreateRequest,
    EndRequest,
    RemoteSession,
    RemoteStatus,
    SessionLimits,
)
from avatarkit.http import ProviderAPIError
from avatarkit.json_api import JsonAPI

from .options import TavusOptions

# Tavus ends a conversation at max_call_duration, 3600 s by default and at most
# (docs.tavus.io, "Call Duration and Timeout").
MAX_CALL_DURATION = 3600.0


class TavusProvider(AvatarProvider[TavusOptions]):
    """Tavus' conversational video interface with ``transport_type: livekit``."""

    name = "tavus"
    options_class = TavusOptions
    default_identity = "tavus-avatar-agent"
    sample_rate = 24000
    limits = SessionLimits(max_duration=MAX_CALL_DURATION)

    @functools.cached_property
    def api(self) -> JsonAPI:
        return JsonAPI(self.http, self.options.api_url, {"x-api-key": self.options.api_key})

    async def create(self, request: CreateRequest) -> RemoteSession:
        body = {
            **self.options.conversation(),
            "properties": {
                "livekit_ws_url": request.livekit_url,
                "livekit_room_token": request.avatar_token.reveal(),
            },
            "conversation_name": f"lk_conversation_{secrets.token_hex(6)}",
        }
        answer = await self.api.call(
            "POST", "/conversations", body, creates=True, secrets=[request.avatar_token]
        )
        return RemoteSession(self.name, self.api.read(answer, "conversation_id"))

    async def end(self, remote: RemoteSession, request: EndRequest) -> None:
        # Tavus has no in-room end: both paths use the API, which the official plugin never calls.
        try:
            await self.api.call("POST", f"/conversations/{remote.id}/end")
        except ProviderAPIError as exc:
            if exc.status_code not in (400, 404, 409):  # already over: the outcome we want
                raise

    async def status(self, remote: RemoteSession) -> RemoteStatus:
        answer = await self.api.call("GET", f"/conversations/{remote.id}")
        state = str(answer.get("status")) if isinstance(answer, dict) else "unknown"
        return RemoteStatus(state, active=state == "active")

    async def check(self) -> str:
        # Ending a conversation that cannot exist bills nothing and still needs a valid key.
        try:
            await self.api.call("POST", "/conversations/c000000000000/end")
        except ProviderAPIError as exc:
            if exc.status_code in (401, 403):
                raise ProviderAPIError(
                    "tavus", exc.status_code, "the API key was refused: check api_key or "
                    "TAVUS_API_KEY", retryable=False) from None  # fmt: skip
            if exc.status_code not in (400, 404):
                raise
        return f"API key accepted by {self.options.api_url}"
