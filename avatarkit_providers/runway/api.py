"""Runway's realtime-sessions API, typed: the create body, and create / get / cancel calls."""

from __future__ import annotations

import datetime
import re
from typing import Any, Literal, get_args

import attrs

from avatarkit.http import HttpClient, ProviderAPIError
from avatarkit.secret import Secret, redact

from .options import RunwayOptions

API_VERSION = "2024-11-06"
MODEL = "gwm1_avatars"

Status = Literal["NOT_READY", "READY", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"]
ACTIVE: frozenset[Status] = frozenset({"NOT_READY", "READY", "RUNNING"})
_SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
"""A session id as Runway gives them (UUIDs): it goes into URL paths, so nothing else."""


def _when(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


@attrs.frozen
class RealtimeSession:
    """A realtime session as ``GET /v1/realtime_sessions/{id}`` describes it."""

    id: str
    status: Status
    created_at: datetime.datetime | None
    queued: bool = False
    """NOT_READY only: waiting for capacity."""
    session_key: Secret | None = attrs.field(default=None, repr=False)
    """READY only: the key for ``/consume`` (unused when Runway joins your room)."""
    expires_at: datetime.datetime | None = None
    duration: float | None = None
    """COMPLETED only: how long it ran, in seconds."""
    failure: str | None = None
    """FAILED only: what went wrong, for people."""
    failure_code: str | None = None
    """FAILED only: a stable code, for programs."""

    @property
    def active(self) -> bool:
        """Still provisioning or running (and billing)."""
        return self.status in ACTIVE

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RealtimeSession:
        """Parse a session; ``ValueError`` saying what is missing or malformed."""
        if not isinstance(data.get("id"), str) or data.get("status") not in get_args(Status):
            raise ValueError(
                f"a session needs a string id and a known status, got status "
                f"{str(data.get('status'))[:40]!r}"
            )
        key = data.get("sessionKey")
        return cls(
            id=str(data["id"]),
            status=data["status"],
            created_at=_when(data.get("createdAt")),
            queued=bool(data.get("queued", False)),
            session_key=Secret(key) if isinstance(key, str) else None,
            expires_at=_when(data.get("expiresAt")),
            duration=data.get("duration"),
            failure=data.get("failure"),
            failure_code=data.get("failureCode"),
        )


def create_body(
    options: RunwayOptions,
    *,
    livekit_url: str,
    token: Secret,
    room_name: str,
    agent_identity: str,
) -> dict[str, Any]:
    """The ``POST /v1/realtime_sessions`` body for joining a LiveKit room."""
    room = {
        "url": livekit_url,
        "token": token.reveal(),
        "roomName": room_name,
        "agentIdentity": agent_identity,
    }
    body: dict[str, Any] = {"model": MODEL, "avatar": options.avatar}
    if options.legacy_livekit_field:
        body["livekit"] = room  # deprecated; some accounts reject it (livekit/agents#5547)
    else:
        body["integration"] = {"type": "livekit", **room}
    if options.max_duration is not None:
        body["maxDuration"] = options.max_duration
    if options.personality is not None:
        body["personality"] = options.personality
    if options.start_script is not None:
        body["startScript"] = options.start_script
    if options.tools:
        body["tools"] = [dict(tool) for tool in options.tools]
    return body


class RunwayAPI:
    """Calls to Runway's realtime-sessions endpoints through the core's HTTP client."""

    def __init__(self, http: HttpClient, base_url: str, api_key: Secret) -> None:
        self._http = http
        self._base = base_url.rstrip("/") + "/v1/realtime_sessions"
        self._api_key = api_key

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._api_key.reveal()}",
            "X-Runway-Version": API_VERSION,
        }

    async def create_session(self, body: dict[str, Any]) -> str:
        """Create a session; returns its id."""
        token = body.get("integration", body.get("livekit", {})).get("token")
        secrets = [self._api_key, *([Secret(token)] if token else [])]
        response = await self._http.request(
            "POST",
            self._base,
            headers=self._headers(),
            json=body,
            secrets=secrets,
            idempotent=False,  # a resent create would start a second session
        )
        session_id = response.body.get("id") if isinstance(response.body, dict) else None
        if not isinstance(session_id, str) or not _SESSION_ID.match(session_id):
            got = redact(str(response.body), secrets)[:200] or "(empty body)"
            raise ProviderAPIError(
                "runway",
                response.status,
                "create answered without a usable session id (a session may have been "
                f"created that avatarkit cannot end); the answer began: {got}",
                retryable=False,
            )
        return session_id

    def _session_url(self, session_id: str) -> str:
        if not _SESSION_ID.match(session_id):
            raise ValueError(f"not a Runway session id: {session_id[:80]!r}")
        return f"{self._base}/{session_id}"

    async def get_session(self, session_id: str) -> RealtimeSession:
        """The session's current state."""
        response = await self._http.request(
            "GET", self._session_url(session_id), headers=self._headers(), secrets=[self._api_key]
        )
        if not isinstance(response.body, dict):
            raise ProviderAPIError("runway", response.status, "unreadable session", retryable=False)
        try:
            return RealtimeSession.from_json(response.body)
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderAPIError(
                "runway", response.status, f"unreadable session: {exc}", retryable=False
            ) from None

    async def cancel_session(self, session_id: str) -> None:
        """Cancel an active session. A session that has already ended counts as cancelled."""
        try:
            await self._http.request(
                "DELETE",
                self._session_url(session_id),
                headers=self._headers(),
                secrets=[self._api_key],
            )
        except ProviderAPIError as exc:
            # Runway refuses to cancel a session that is over; that is the outcome we want.
            if (
                exc.status_code in (400, 404, 409)
                and not (await self.get_session(session_id)).active
            ):
                return
            raise
