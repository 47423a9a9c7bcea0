"""The Runway backend: create, stream and end hooks over Runway's realtime-sessions API."""

from __future__ import annotations

import json

from avatarkit import (
    AvatarProvider,
    CreateRequest,
    EndRequest,
    RemoteSession,
    RemoteStatus,
    SessionLimits,
)
from avatarkit.errors import ConfigurationError
from avatarkit.http import HttpClient, ProviderAPIError

from .api import RealtimeSession, RunwayAPI, create_body
from .log import logger
from .options import MAX_DURATION, RunwayOptions

END_CALL = json.dumps({"type": "END_CALL"}).encode()
# A session id that cannot exist, in the form the API validates (a v4 UUID: the nil UUID is
# not one, and may be answered 400 rather than 404)
_NO_SESSION = "00000000-0000-4000-8000-000000000000"


class RunwayProvider(AvatarProvider[RunwayOptions]):
    """Runway Characters joining the agent's LiveKit room (``integration: livekit``)."""

    name = "runway"
    options_class = RunwayOptions
    default_identity = "runway-avatar-agent"
    sample_rate = 16000
    # Runway ends sessions after ~300 s whatever maxDuration says (livekit/agents#6427).
    limits = SessionLimits(max_duration=MAX_DURATION, runtime_cap=300.0)

    def __init__(self, options: RunwayOptions, http: HttpClient) -> None:
        super().__init__(options, http)
        assert options.api_key is not None  # the options validator guarantees it
        self.api = RunwayAPI(http, options.api_url, options.api_key)

    def session_lifetime(self) -> float:
        return float(self.options.max_duration or MAX_DURATION)

    async def create(self, request: CreateRequest) -> RemoteSession:
        body = create_body(
            self.options,
            livekit_url=request.livekit_url,
            token=request.avatar_token,
            room_name=request.room_name,
            agent_identity=request.agent_identity,
        )
        session_id = await self.api.create_session(body)
        return RemoteSession(provider=self.name, id=session_id)

    async def end(self, remote: RemoteSession, request: EndRequest) -> None:
        if request.graceful:
            assert request.room is not None
            # Runway's worker ends on this through its "user ended the call" path (COMPLETED).
            await request.room.local_participant.publish_data(
                END_CALL, reliable=True, destination_identities=[request.avatar_identity]
            )
            logger.debug("sent END_CALL", extra={"session_id": remote.id})
        else:
            await self.api.cancel_session(remote.id)
            logger.debug("cancelled session", extra={"session_id": remote.id})

    async def status(self, remote: RemoteSession) -> RemoteStatus:
        state = await self.api.get_session(remote.id)
        return RemoteStatus(state.status, state.active, state.failure_code or state.failure)

    async def check(self) -> str:
        # Asking for a session that cannot exist costs nothing and still needs a valid key:
        # 404 means the key was accepted, 401/403 that it was not.
        try:
            await self.api.get_session(_NO_SESSION)
        except ProviderAPIError as exc:
            if exc.status_code in (401, 403):
                raise ConfigurationError(
                    f"runway: {self.options.api_url} rejected the API key ({exc.status_code}): "
                    "check api_key or RUNWAYML_API_SECRET"
                ) from None
            if exc.status_code != 404:
                raise
        return f"API key accepted by {self.options.api_url}"

    async def get_session(self, session_id: str) -> RealtimeSession:
        """The typed state of a realtime session (e.g. ``failure_code`` when FAILED)."""
        return await self.api.get_session(session_id)
