"""Tavus' double: its conversations API as the provider uses it, on the shared engine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from avatarkit_doubles import ApiDescription, DoubleSession, Route
from avatarkit_doubles.provider_double import DescribedDouble


def _validate(body: Mapping[str, Any]) -> str | None:
    if not isinstance(body.get("pal_id"), str):
        return "pal_id is required"
    properties = body.get("properties")
    if not isinstance(properties, dict) or not properties.get("livekit_room_token"):
        return "properties.livekit_room_token is required for transport_type livekit"
    return None


def _answer(session: DoubleSession) -> dict[str, Any]:
    status = "active" if session.active else "ended"
    return {**session.body, "conversation_id": session.id, "status": status}


TAVUS = ApiDescription(
    name="tavus",
    auth_header="x-api-key",
    api_prefix="/v2",
    id_prefix="c",
    routes=(
        Route("POST", "/conversations", "create", answer=_answer),
        Route("POST", "/conversations/{id}/end", "end"),
        Route("GET", "/conversations/{id}", "status", answer=_answer),
    ),
    validate=_validate,
    join=lambda body: (
        body["properties"]["livekit_ws_url"],
        body["properties"]["livekit_room_token"],
    ),
)


class TavusDouble(DescribedDouble):
    description = TAVUS
    url_env = None  # the official plugin reads no URL variable: api_url points it here
    key_env = "TAVUS_API_KEY"
