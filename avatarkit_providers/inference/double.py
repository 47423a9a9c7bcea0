"""LiveKit Inference's avatar gateway, emulated on the shared engine.

The real gateway authenticates a LiveKit JWT (signed with the project's key pair, with an
``inference`` grant) and mints the avatar's room token itself, so its double must hold the
project's secret: it verifies the signature as the gateway does and signs the worker's token
with it. :class:`GatewayDouble` is that engine, given the LiveKit server's key pair."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import hmac
import json
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import attrs
from aiohttp import web
from livekit import api

from avatarkit.doubles import Offline, Served
from avatarkit.errors import ConfigurationError
from avatarkit.tokens import ATTRIBUTE_PUBLISH_ON_BEHALF, DEFAULT_TOKEN_TTL
from avatarkit_doubles import ApiDescription, DoubleSession, Route
from avatarkit_doubles.engine import ApiDouble
from avatarkit_doubles.provider_double import DescribedDouble

from .options import PROVIDERS

# The inputs of the avatar token's mint, "so all three are required" (the plugin's docstring),
# and where the avatar joins.
_ROOM_FIELDS = ("livekit_url", "room_name", "avatar_identity", "agent_identity")


def _validate(body: Mapping[str, Any]) -> str | None:
    if body.get("provider") not in PROVIDERS:
        return f"unknown provider {body.get('provider')!r}"
    for field in _ROOM_FIELDS:
        if not isinstance(body.get(field), str) or not body[field]:
            return f"{field} is required"
    if "avatar_id" in body and "image_url" in body:
        return "pass either avatar_id or image_url, not both"
    return None


def _no_token(body: Mapping[str, Any]) -> tuple[str, str]:
    raise TypeError("the gateway mints the avatar's token: use GatewayDouble, given the secret")


INFERENCE = ApiDescription(
    name="inference",
    auth_header="Authorization",
    auth_prefix="Bearer ",
    api_prefix="/v1",
    id_prefix="ls_",
    routes=(
        Route("POST", "/avatar/sessions", "create"),
        Route("POST", "/avatar/sessions/terminate", "end", answer=lambda _: {"terminated": True}),
    ),
    validate=_validate,
    join=_no_token,
)


class GatewayDouble(ApiDouble):
    """The gateway for the LiveKit project ``api_key`` / ``api_secret``: it accepts JWTs they
    signed and mints the avatars' tokens with them. Answers ``sample_rate`` as the rate."""

    def __init__(self, *, api_key: str, api_secret: str, sample_rate: int = 24000,
                 **kwargs: Any) -> None:  # fmt: skip
        self.api_secret = api_secret
        self.sample_rate = sample_rate
        self.gateway_claims: list[api.access_token.Claims] = []
        """The claims of every gateway JWT accepted, in order."""
        self.minted: list[str] = []
        """The avatar tokens minted, in order: one per session."""
        self._token_of: dict[int, tuple[Mapping[str, Any], str]] = {}
        self._replays: dict[str, Any] = {}
        create, end = INFERENCE.routes
        routes = (attrs.evolve(create, answer=self._answer), end)
        description = attrs.evolve(INFERENCE, routes=routes, join=self._join)
        super().__init__(description, api_key=api_key, **kwargs)

    async def __aenter__(self) -> GatewayDouble:
        await super().__aenter__()
        return self

    def terminate_token(self, session_id: str) -> str:
        return hmac.new(self.api_secret.encode(), session_id.encode(), hashlib.sha256).hexdigest()

    def _answer(self, session: DoubleSession) -> dict[str, Any]:
        return {"session_id": f"avs_{session.id}", "provider_session_id": session.id,
                "terminate_token": self.terminate_token(session.id),
                "sample_rate": self.sample_rate}  # fmt: skip

    def _join(self, body: Mapping[str, Any]) -> tuple[str, str]:
        # asked again for a session's body (its record, the parity harness): the token minted
        # for it then, not a second one, so what is checked is what the avatar was given
        given, token = self._token_of.get(id(body), (None, ""))
        if given is body:
            return body["livekit_url"], token
        token = (
            api.AccessToken(self.api_key, self.api_secret)
            .with_kind("agent")
            .with_identity(body["avatar_identity"])
            .with_name(body.get("avatar_name") or body["avatar_identity"])
            .with_grants(api.VideoGrants(room_join=True, room=body["room_name"]))
            .with_attributes(
                {
                    ATTRIBUTE_PUBLISH_ON_BEHALF: body["agent_identity"],
                    "lk.avatar_provider": body["provider"],
                }
            )
            .with_ttl(datetime.timedelta(seconds=DEFAULT_TOKEN_TTL))
            .to_jwt()
        )
        self.minted.append(token)
        self._token_of[id(body)] = (body, token)
        return body["livekit_url"], token

    def _check_auth(self, request: web.Request) -> web.Response | None:
        given = request.headers.get("Authorization", "")
        try:
            claims = api.TokenVerifier(self.api_key, self.api_secret).verify(
                given.removeprefix("Bearer ")
            )
        except Exception:  # a bad signature, another project's key, expired, not a JWT
            return web.json_response({"error": "invalid token"}, status=401)
        if claims.inference is None or not claims.inference.perform:
            return web.json_response({"error": "the token has no inference grant"}, status=403)
        self.gateway_claims.append(claims)
        return None

    async def _create(self, request: web.Request, route: Route) -> web.StreamResponse:
        # the gateway replays the first answer to a repeated Idempotency-Key
        key = request.headers.get("Idempotency-Key")
        if key is not None and key in self._replays:
            return web.json_response(self._replays[key])
        response = await super()._create(request, route)
        if key is not None and response.status == 200 and isinstance(response, web.Response):
            self._replays[key] = json.loads(response.body)  # type: ignore[arg-type]
        return response

    async def _end(self, request: web.Request, route: Route) -> web.StreamResponse:
        # the session is named in the body, and the gateway's HMAC proves whose it is
        body = await request.json()
        session = self.sessions.get(str(body.get("provider_session_id")))
        if session is None:
            return web.json_response({"error": "not found"}, status=404)
        token = str(body.get("terminate_token", ""))
        if not hmac.compare_digest(token, self.terminate_token(session.id)):
            return web.json_response({"error": "invalid terminate_token"}, status=403)
        session.end_calls += 1
        if not session.active:
            status = self.description.ended_status
            return web.json_response({"error": "session is over"}, status=status)
        self.end(session, "api")
        return web.json_response(route.answer(session), status=route.status)


def _project() -> tuple[str, str]:
    key, secret = os.environ.get("LIVEKIT_API_KEY"), os.environ.get("LIVEKIT_API_SECRET")
    if not (os.environ.get("LIVEKIT_URL") and key and secret):
        raise ConfigurationError(
            "inference (emulated): the gateway signs the avatar's room token with your LiveKit "
            "project's secret, so its double needs that project: set LIVEKIT_URL, "
            "LIVEKIT_API_KEY and LIVEKIT_API_SECRET (an in-memory room's secret is unknown to it)"
        )
    return key, secret


class InferenceDouble(DescribedDouble):
    description = INFERENCE
    url_env = "LIVEKIT_INFERENCE_URL"
    key_env = "LIVEKIT_INFERENCE_API_KEY"
    defaults: ClassVar[Mapping[str, Any]] = {"model": "lemonslice"}

    @contextlib.asynccontextmanager
    async def offline(self, given: Mapping[str, Any], *, size: int) -> AsyncIterator[Offline]:
        if "api_key" in given:  # the user's project: the real gateway
            yield Offline(self.description.name, {**self.defaults, **given})
            return
        from avatarkit_providers.local.video import FaceVideoGenerator

        key, secret = _project()

        def video() -> FaceVideoGenerator:
            return FaceVideoGenerator(width=size, height=size, fps=30, label=self.label)

        async with GatewayDouble(api_key=key, api_secret=secret, video=video) as double:
            options = {**self.defaults, "api_key": key, "api_secret": secret, **given}
            yield Offline(self.label, {**options, "base_url": double.url}, double=double)

    @contextlib.asynccontextmanager
    async def serve(self, *, port: int, runtime_cap: float) -> AsyncIterator[Served]:
        key, secret = _project()
        async with GatewayDouble(
            api_key=key, api_secret=secret, port=port, runtime_cap=runtime_cap
        ) as double:
            title = "LiveKit Inference avatar gateway double (emulated, for your LIVEKIT_* project)"
            yield Served(title, double.url, {"LIVEKIT_INFERENCE_URL": double.url})
