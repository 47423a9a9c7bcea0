"""Beyond Presence's double: its speech-to-video sessions API as the provider uses it, on the
shared engine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from avatarkit_doubles import ApiDescription, DoubleSession, Route
from avatarkit_doubles.provider_double import DescribedDouble

_REQUIRED = ("avatar_id", "url", "token")  # docs.bey.dev, "Create Speech-to-Video Session"


def _validate(body: Mapping[str, Any]) -> str | None:
    for field in _REQUIRED:
        if not isinstance(body.get(field), str) or not body[field]:
            return f"{field} is required (a non-empty string)"
    if body.get("transport", "livekit") != "livekit":
        return "transport: the only allowed value is 'livekit'"
    return None


def _answer(session: DoubleSession) -> dict[str, Any]:
    # Bey's session response; the token is write-only, so never echoed. Bey documents only
    # the "to_start" status type: past it the double says its own word (active, ended).
    state = "to_start" if session.status == "starting" else session.status
    return {
        "id": session.id,
        "avatar_id": session.body["avatar_id"],
        "status": {"type": state},
        "url": session.body["url"],
        "transport": "livekit",
    }


BEY = ApiDescription(
    name="bey",
    auth_header="x-api-key",
    routes=(
        Route("POST", "/v1/sessions", "create", status=201, answer=_answer),
        Route("GET", "/v1/sessions/{id}", "status", answer=_answer),
    ),
    validate=_validate,
    join=lambda body: (body["url"], body["token"]),
)


class BeyDouble(DescribedDouble):
    description = BEY
    url_env = "BEY_API_URL"
    key_env = "BEY_API_KEY"
