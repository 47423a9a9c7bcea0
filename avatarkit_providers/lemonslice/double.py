"""LemonSlice's double: its self-managed sessions API as the provider uses it, on the shared
engine (create, the ``terminate`` control event, status)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from avatarkit.doubles import Offline
from avatarkit_doubles import ApiDescription, DoubleSession, Route
from avatarkit_doubles.provider_double import DescribedDouble

from .options import SAMPLE_RATES, SOURCES

# GET /sessions/{id} answers session_status (lemonslice.com/docs/api-reference/get-session).
_STATUS = {"starting": "QUEUED", "active": "ACTIVE", "ended": "COMPLETED", "failed": "FAILED"}


def _validate(body: Mapping[str, Any]) -> str | None:
    # What lemonslice.com/docs/api-reference/create-session requires (the sample rates are
    # the plugin's); a multipart create (agent_image) is not JSON and is refused by the engine.
    if body.get("transport_type") != "livekit":
        return "transport_type must be 'livekit'"
    if ("agent_id" in body) == ("agent_image_url" in body):
        return "exactly one of agent_id or agent_image_url must be provided"
    properties = body.get("properties")
    if not isinstance(properties, dict) or not all(
        isinstance(properties.get(k), str) and properties[k]
        for k in ("livekit_url", "livekit_token")
    ):
        return "properties.livekit_url and properties.livekit_token are required"
    timeout = body.get("idle_timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int)):
        return "idle_timeout must be an integer"
    rate = body.get("audio_sample_rate", 24000)
    if type(rate) is not int or rate not in SAMPLE_RATES:
        return f"audio_sample_rate must be one of {SAMPLE_RATES}"
    return None


def _status(session: DoubleSession) -> dict[str, Any]:
    return {"session_status": _STATUS[session.status]}


LEMONSLICE = ApiDescription(
    name="lemonslice",
    auth_header="X-API-Key",
    api_prefix="/api/liveai/sessions",
    id_prefix="livekit-",
    routes=(
        Route("POST", "", "create", answer=lambda session: {"session_id": session.id}),
        Route("POST", "/{id}/control", "end", answer=lambda _: {"success": True}),
        Route("GET", "/{id}", "status", answer=_status),
    ),
    validate=_validate,
    join=lambda body: (body["properties"]["livekit_url"], body["properties"]["livekit_token"]),
)


class LemonSliceDouble(DescribedDouble):
    description = LEMONSLICE
    url_env = None  # the Python plugin reads no URL variable: api_url points it here
    key_env = "LEMONSLICE_API_KEY"

    @contextlib.asynccontextmanager
    async def offline(self, given: Mapping[str, Any], *, size: int) -> AsyncIterator[Offline]:
        # An avatar source is required, and one only: add a stock one unless the user gave
        # one (a `defaults` entry would clash with theirs) or uses the real service.
        if "api_key" not in given and not any(name in given for name in SOURCES):
            given = {"agent_id": "agent_emulated", **given}
        async with super().offline(given, size=size) as offline:
            yield offline
