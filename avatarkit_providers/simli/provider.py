"""The Simli backend: a compose session token, then Simli's LiveKit agents call; its avatar
joins the room and speaks the agent's 16 kHz audio, received over LiveKit data streams."""

from __future__ import annotations

import functools

from avatarkit import AvatarProvider, CreateRequest, ProviderAPIError, RemoteSession, Secret
from avatarkit.json_api import JsonAPI

from .options import SimliOptions


class SimliProvider(AvatarProvider[SimliOptions]):
    """Simli's ``/integrations/livekit/agents``, as ``livekit.plugins.simli`` starts it."""

    name = "simli"
    options_class = SimliOptions
    default_identity = "simli-avatar-agent"
    # api.simli.ai/openapi.yaml has no ceiling for maxSessionLength (3600 s by default there,
    # 600 in the plugin) and no end call. Simli ends a session at the length asked, which
    # session_lifetime() returns (the core renews ahead of it), after max_idle_time without
    # speech, or when the agent leaves; to end it sooner the core takes the avatar out.
    end_api = False

    @functools.cached_property
    def api(self) -> JsonAPI:
        key = self.options.simli_config.api_key
        return JsonAPI(self.http, self.options.api_url, {"x-simli-api-key": key})

    def session_lifetime(self) -> float:
        return float(self.options.simli_config.max_session_length)

    async def create(self, request: CreateRequest) -> RemoteSession:
        # A session token bills nothing until it is used: its call may be resent.
        config = self.options.simli_config
        answer = await self.api.call("POST", "/compose/token", config.create_json())
        token = Secret(self.api.read(answer, "session_token"))
        # No API key on the agents call (security: [] in Simli's OpenAPI; the plugin sends
        # none either): the session token is the credential.
        agents = JsonAPI(self.http, self.options.api_url, {})
        body = {"session_token": token.reveal(), "livekit_token": request.avatar_token.reveal(),
                "livekit_url": request.livekit_url}  # fmt: skip
        secrets = [token, request.avatar_token]
        path = "/integrations/livekit/agents"
        answer = await agents.call("POST", path, body, creates=True, secrets=secrets)
        return RemoteSession(self.name, agents.read(answer, "session_id", secrets=secrets))

    async def check(self) -> str:
        # Simli's active-session count bills nothing and needs a valid key (401 otherwise).
        try:
            await self.api.call("GET", "/ratelimiter/sessions")
        except ProviderAPIError as exc:
            if exc.status_code not in (401, 403):
                raise
            message = "the API key was refused: check simli_config.api_key"
            raise ProviderAPIError("simli", exc.status_code, message, retryable=False) from None
        return f"API key accepted by {self.options.api_url}"
