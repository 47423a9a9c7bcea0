"""Simli's double: its compose-token and LiveKit agents calls as the provider uses them.

The shared engine checks one API key on every route and serves only session routes; Simli
keys the token call, leaves the agents call open (its session token is the credential) and
has an active-session count. :class:`SimliApiDouble` adds that on top of the engine.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import attrs
from aiohttp import web

from avatarkit.doubles import Offline, Served
from avatarkit.secret import MASK
from avatarkit_doubles import ApiDescription, DoubleSession, Route
from avatarkit_doubles.engine import ApiDouble
from avatarkit_doubles.provider_double import DescribedDouble

from .options import SimliConfig

KEY_HEADER = "x-simli-api-key"
TOKEN_PATH, AGENTS_PATH, COUNT_PATH = (
    "/compose/token", "/integrations/livekit/agents", "/ratelimiter/sessions")  # fmt: skip
# "Tina", one of Simli's default faces (docs.simli.com/api-reference/preset-faces)
STOCK_FACE = "cace3ef7-a4c4-425d-a8cf-a5358eb0c427"


def _validate(body: Mapping[str, Any]) -> str | None:
    # LiveKitInitializationRequest: all three are required strings
    for name in ("session_token", "livekit_token", "livekit_url"):
        if not isinstance(body.get(name), str) or not body[name]:
            return f"{name} is required"
    return None


def _validate_token(body: Any) -> str | None:
    # StartStreamingSessionRequest: faceId required; the rest typed when given
    if not isinstance(body, dict) or not isinstance(body.get("faceId"), str):
        return "faceId is required"
    for name, kind in (("handleSilence", bool), ("maxSessionLength", int), ("maxIdleTime", int)):
        if name in body and not isinstance(body[name], kind):
            return f"{name} must be a {kind.__name__}"
    return None


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None


def _answer(session: DoubleSession) -> dict[str, Any]:
    return {"status": "success", "session_id": session.id, "destination": "ZW11bGF0ZWQ="}


SIMLI = ApiDescription(
    name="simli",
    auth_header=KEY_HEADER,
    routes=(
        Route("POST", AGENTS_PATH, "create", answer=_answer),
        # served by SimliApiDouble itself (the engine's actions are per session)
        Route("POST", TOKEN_PATH, "status"),
        Route("GET", COUNT_PATH, "status"),
    ),
    validate=_validate,
    join=lambda body: (body["livekit_url"], body["livekit_token"]),
    id_prefix="simli-",
)


class SimliApiDouble(ApiDouble):
    """The engine's double with Simli's two calls: the keyed token call (its requests have no
    action in :attr:`requests`), then the open agents call (action ``create``)."""

    def __init__(self, description: ApiDescription = SIMLI, **kwargs: Any) -> None:
        super().__init__(description, **kwargs)
        self.tokens: dict[str, dict[str, Any]] = {}
        """Session tokens issued and not used yet, with the token request's body."""

    def _handler(self, route: Route) -> Callable[[web.Request], Any]:
        own = {TOKEN_PATH: self._token, COUNT_PATH: self._count}.get(route.path)
        return own or super()._handler(route)

    def _check_auth(self, request: web.Request) -> web.Response | None:
        if request.path == self.description.api_prefix + AGENTS_PATH:
            return None  # no key: the session token is checked in _create
        return super()._check_auth(request)

    async def _token(self, request: web.Request) -> web.StreamResponse:
        if denied := self._check_auth(request):
            return denied
        body = await _json(request)
        if problem := _validate_token(body):
            return web.json_response({"detail": problem}, status=422)
        token = f"st_{secrets.token_hex(12)}"
        self.tokens[token] = body
        return web.json_response({"session_token": token})

    async def _count(self, request: web.Request) -> web.StreamResponse:
        if denied := self._check_auth(request):
            return denied
        return web.json_response({"currentUsage": len(self.active_sessions())})

    async def _create(self, request: web.Request, route: Route) -> web.StreamResponse:
        body = await _json(request)
        token = body.get("session_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or self.tokens.pop(token, None) is None:
            return web.json_response({"error": "invalid or used session token"}, status=400)
        return await super()._create(request, route)

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        response = await super()._record(request, handler)
        # The engine masks a fixed list of credential headers; Simli's is not among them.
        # No await since the engine appended this request's record: it is the last one.
        record = self.requests[-1]
        headers = {k: MASK if k.lower() == KEY_HEADER else v for k, v in record.headers.items()}
        self.requests[-1] = attrs.evolve(record, headers=headers)
        return response


class SimliDouble(DescribedDouble):
    description = SIMLI
    url_env = None  # the official plugin reads no URL variable: api_url points it here
    key_env = "SIMLI_API_KEY"  # what Simli's LiveKit guide puts in SimliConfig(api_key=...)

    @contextlib.asynccontextmanager
    async def offline(self, given: Mapping[str, Any], *, size: int) -> AsyncIterator[Offline]:
        # The key lives in simli_config, so a given simli_config means the user's account.
        if "simli_config" in given:
            yield Offline(self.description.name, dict(given))
            return
        # The engine's own face video (256 px, labelled emulated): sizing it would mean
        # importing the local provider, which providers may not do.
        async with SimliApiDouble() as double:
            config = SimliConfig(api_key=double.api_key, face_id=STOCK_FACE)
            options = {"simli_config": config, **given, "api_url": double.url}
            yield Offline(self.label, options, double=double)

    @contextlib.asynccontextmanager
    async def serve(self, *, port: int, runtime_cap: float) -> AsyncIterator[Served]:
        async with SimliApiDouble(port=port, runtime_cap=runtime_cap) as double:
            title = "simli API double (emulated, no account)"
            yield Served(title, double.url, {self.key_env: double.api_key})
