"""MyAvatar's double: its sessions API as the provider uses it, on avatarkit's double engine.

Light: the engine (aiohttp, livekit) loads when the double starts, for ``avatarkit demo``,
``compare`` or ``emulate``, the conformance kit or the tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from avatarkit_doubles import ApiDescription, Route
from avatarkit_doubles.provider_double import DescribedDouble

_FIELDS = ("avatar", "livekit_url", "livekit_token")


def _validate(body: Mapping[str, Any]) -> str | None:
    for field in _FIELDS:
        if not isinstance(body.get(field), str) or not body[field].strip():
            return f"{field} is required (a non-empty string)"
    if unknown := sorted(set(body) - set(_FIELDS)):
        return f"unknown fields {unknown}"
    return None


MYAVATAR = ApiDescription(
    name="myavatar",
    auth_header="Authorization",
    auth_prefix="Bearer ",
    id_prefix="ses_",
    routes=(
        Route("POST", "/v1/sessions", "create", status=201, answer=lambda s: {"id": s.id}),
        Route("DELETE", "/v1/sessions/{id}", "end", status=204),  # 404 once it is over
    ),
    validate=_validate,
    join=lambda body: (body["livekit_url"], body["livekit_token"]),
)


class MyAvatarDouble(DescribedDouble):
    description = MYAVATAR
    url_env = None  # the provider reads no URL variable: `api_url` points it at the double
    key_env = "MYAVATAR_API_KEY"
    defaults = {"avatar": "anna"}  # an avatar id the double accepts
