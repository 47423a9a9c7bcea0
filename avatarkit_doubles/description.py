"""How a provider describes its API to the double engine: routes, auth, validation, and where
the create request carries the avatar's LiveKit URL and token. Light: attrs only."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs

Action = Literal["create", "end", "status"]


@attrs.frozen
class Route:
    """One endpoint of the emulated API. ``path`` is an aiohttp pattern; ``{id}`` in it is the
    session's id."""

    method: str
    path: str
    action: Action
    status: int = 200
    answer: Callable[[DoubleSession], Any] = lambda _: {}
    """The JSON body answered on success."""


@attrs.frozen
class ApiDescription:
    """An avatar service's API, as much of it as the provider uses."""

    name: str
    """The provider's name; the avatar's video says ``"<name> (emulated)"``."""
    auth_header: str
    """The header that carries the API key, e.g. ``x-api-key`` or ``Authorization``."""
    routes: tuple[Route, ...]
    join: Callable[[Mapping[str, Any]], tuple[str, str]]
    """(LiveKit URL, avatar token) from a create request's JSON body."""
    validate: Callable[[Mapping[str, Any]], str | None] = lambda _: None
    """Why a create body would be refused with a 400 (None: accepted)."""
    auth_prefix: str = ""
    """What comes before the key in :attr:`auth_header`, e.g. ``"Bearer "``."""
    ended_status: int = 404
    """The answer to an end call for a session that is already over."""
    api_prefix: str = ""
    """The path under the server's root where the provider's ``api_url`` points, e.g. ``/v2``."""
    id_prefix: str = "s"


@attrs.define(eq=False)
class DoubleSession:
    """One emulated remote session."""

    id: str
    body: dict[str, Any] = attrs.field(repr=False)
    status: Literal["starting", "active", "ended", "failed"] = "starting"
    ended_by: str | None = None
    """``"api"`` (an end call), ``"agent_left"``, ``"cap"`` or ``"fault"``."""
    end_calls: int = 0
    """End calls received for it, including ones after it was over."""

    @property
    def active(self) -> bool:
        return self.status in ("starting", "active")
