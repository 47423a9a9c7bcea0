"""MyAvatar's provider: create a session that joins the agent's room, end it through the API."""

from __future__ import annotations

from avatarkit import AvatarProvider, CreateRequest, EndRequest, RemoteSession, SessionLimits
from avatarkit.http import ProviderAPIError

from .options import MyAvatarOptions


class MyAvatarProvider(AvatarProvider[MyAvatarOptions]):
    """MyAvatar avatars joining the agent's LiveKit room with the token avatarkit mints."""

    name = "myavatar"
    options_class = MyAvatarOptions
    default_identity = "myavatar-avatar"
    sample_rate = 24000  # what the default stream() sends the avatar
    # MyAvatar ends a session after 30 minutes: the core renews it ahead of that, and the
    # avatar's token lasts no longer (undeclared, it would last DEFAULT_TOKEN_TTL).
    limits = SessionLimits(max_duration=1800, runtime_cap=1800)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.options.api_key.reveal()}"}

    async def create(self, request: CreateRequest) -> RemoteSession:
        response = await self.http.request(  # the core's client: retries, timeouts, errors
            "POST",
            f"{self.options.api_url}/v1/sessions",
            headers=self._headers(),
            json={
                "avatar": self.options.avatar,
                "livekit_url": request.livekit_url,
                "livekit_token": request.avatar_token.reveal(),
            },
            secrets=[self.options.api_key, request.avatar_token],  # redacted from errors
            idempotent=False,  # a timed-out create may have started a session: never resend
        )
        session_id = response.body.get("id") if isinstance(response.body, dict) else None
        if not isinstance(session_id, str):
            raise ProviderAPIError(
                self.name, response.status, "create answered without a session id", retryable=False
            )
        return RemoteSession(provider=self.name, id=session_id)

    async def end(self, remote: RemoteSession, request: EndRequest) -> None:
        # Through the API whether or not the room is up: MyAvatar then takes the avatar out.
        try:
            await self.http.request(
                "DELETE",
                f"{self.options.api_url}/v1/sessions/{remote.id}",
                headers=self._headers(),
                secrets=[self.options.api_key],
            )
        except ProviderAPIError as exc:
            if exc.status_code != 404:  # 404: the session is over already
                raise
