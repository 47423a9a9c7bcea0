"""An aiohttp double of Runway's realtime-sessions API, served on 127.0.0.1.

Answers like ``api.dev.runwayml.com`` for ``POST/GET/DELETE /v1/realtime_sessions``:
same headers, validation, status codes and session states, with clock-driven
provisioning, a runtime cap, scripted faults, request records and listeners.

Choices where the real API is not documented:

- Auth is checked before the version header (401 wins over 400).
- Error bodies are ``{"error": <first issue>, "issues": [{code, path, message}, ...]}``
  for validation failures, ``{"error": <message>}`` otherwise.
- ``GET``/``DELETE`` of an unknown id answer ``404 {"error": "Not found"}``.
- ``DELETE`` of an active session answers ``204`` and cancels it. ``DELETE`` of an ended
  session changes nothing and answers ``ended_delete_status`` (default ``204``: idempotent,
  like Runway's task DELETE, so best-effort cleanup never errors).
- Faults are applied before authentication, as a gateway in front of the API would.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from contextvars import ContextVar
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

import attrs
from aiohttp import web

from .faults import ROUTES, FaultInjector, HTTPFault
from .sessions import (
    REDACTED,
    Session,
    SessionCreatedListener,
    SessionRegistry,
    SessionStatus,
    StateChangeListener,
    redact,
)
from .validation import (
    API_VERSION,
    MISSING,
    RUNWAY_PRESETS,
    CreateBodyValidator,
    ValidationIssue,
)

__all__ = ["RecordedRequest", "RunwayAPIServer"]

logger = logging.getLogger("avatarkit_providers.runway.emulator")

_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_UUID_V4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", re.I)


@attrs.define
class _Exchange:
    """What the middleware and handlers learn about one request, for its record."""

    body: Any = MISSING
    error: str | None = None
    session_id: str | None = None
    dropped: bool = False


# aiohttp runs a request's middleware and handler in one task, so a context variable
# carries the exchange without relying on request storage keys, which vary across versions.
_EXCHANGE: ContextVar[_Exchange] = ContextVar("avatarkit_providers.runway_emulator_exchange")


@attrs.frozen
class RecordedRequest:
    """One request the double received and what it answered.

    ``status`` is None when the connection was dropped. ``body`` is the parsed JSON body and
    ``headers`` the request headers, both with credentials masked. ``at`` is
    ``time.monotonic()`` on arrival, ``timestamp`` wall-clock UTC.
    """

    method: str
    path: str
    route: str | None
    status: int | None
    body: Any
    headers: Mapping[str, str]
    at: float
    timestamp: datetime
    session_id: str | None = None
    error: str | None = None
    fault: HTTPFault | None = None


def _redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in _SECRET_HEADERS or "token" in lowered or "secret" in lowered:
            scheme, _, rest = value.partition(" ")
            # Keep the scheme so a test can still tell "Bearer" from "Basic".
            value = f"{scheme} {REDACTED}" if rest else REDACTED
        result[name] = value
    return result


def _error(
    status: int,
    message: str,
    *,
    issues: list[ValidationIssue] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body: dict[str, Any] = {"error": message}
    _EXCHANGE.get().error = message
    if issues:
        body["issues"] = [issue.to_json() for issue in issues]
    return web.json_response(body, status=status, headers=headers)


class RunwayAPIServer:
    """Runway realtime-sessions API double, usable as ``async with`` or via :meth:`make_app`.

    ``api_key``: the accepted secret(s). ``port=0`` picks a free port. Timing (seconds):
    ``provisioning_delay`` NOT_READY -> READY, ``queue_delay`` spent queued first,
    ``runtime_cap`` after which READY/RUNNING sessions end COMPLETED (Runway's ~300 s),
    ``max_duration_scale`` real seconds per ``maxDuration`` second (shrink it in tests).
    Validation: ``presets``, ``custom_avatar_ids`` (None accepts any UUID),
    ``allow_private_livekit_urls``, ``reject_legacy_livekit`` (reproduces
    livekit/agents#5547). ``ended_delete_status``: answer to DELETE of an ended session.
    """

    def __init__(
        self,
        api_key: str | Collection[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        provisioning_delay: float = 0.5,
        queue_delay: float = 0.0,
        runtime_cap: float = 300.0,
        max_duration_scale: float = 1.0,
        presets: Collection[str] = RUNWAY_PRESETS,
        custom_avatar_ids: Collection[str] | None = None,
        allow_private_livekit_urls: bool = False,
        reject_legacy_livekit: bool = False,
        ended_delete_status: int = 204,
        api_version: str = API_VERSION,
    ) -> None:
        keys = [api_key] if isinstance(api_key, str) else list(api_key)
        if not keys or not all(keys):
            raise ValueError("at least one non-empty API key is required")
        self._api_keys = [k.encode() for k in keys]
        self.host = host
        self._requested_port = port
        self.api_version = api_version
        self.ended_delete_status = ended_delete_status
        self.custom_avatar_ids = None if custom_avatar_ids is None else set(custom_avatar_ids)
        #: Replace with ``attrs.evolve(server.validator, ...)`` to change rules at runtime.
        self.validator = CreateBodyValidator(
            presets=tuple(presets),
            allow_private_livekit_urls=allow_private_livekit_urls,
            reject_legacy_livekit=reject_legacy_livekit,
        )
        #: Scripted HTTP and session faults.
        self.faults = FaultInjector()
        #: Sessions, their clock and control methods (also exposed directly below).
        self.registry = SessionRegistry(
            provisioning_delay=provisioning_delay,
            queue_delay=queue_delay,
            runtime_cap=runtime_cap,
            max_duration_scale=max_duration_scale,
        )
        self._requests: list[RecordedRequest] = []
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # -- serving ------------------------------------------------------------------

    def make_app(self) -> web.Application:
        """A new aiohttp application serving this double's routes and state."""
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/v1/realtime_sessions", self._create, name="create")
        app.router.add_get("/v1/realtime_sessions/{id}", self._get, name="get", allow_head=False)
        app.router.add_delete("/v1/realtime_sessions/{id}", self._delete, name="delete")
        return app

    async def start(self) -> None:
        """Serve on ``host:port``; idempotent."""
        if self._runner is not None:
            return
        # A short shutdown timeout so close() never waits long on a slow-fault request.
        runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self._requested_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        logger.debug("Runway API double listening on %s", self.url)

    async def close(self) -> None:
        """Stop serving and stop every session clock; records and sessions stay readable."""
        await self.registry.aclose()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> RunwayAPIServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def port(self) -> int:
        """The bound port; only once started."""
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL to use as ``RUNWAYML_BASE_URL`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    # -- inspection ---------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        return list(self._requests)

    def requests_for(
        self, route: str | None = None, *, method: str | None = None
    ) -> list[RecordedRequest]:
        """Recorded requests filtered by route name (create/get/delete) and/or method."""
        return [
            r
            for r in self._requests
            if (route is None or r.route == route) and (method is None or r.method == method)
        ]

    @property
    def sessions(self) -> dict[str, Session]:
        """Every session by id, ended ones included (a snapshot)."""
        return self.registry.sessions

    def session(self, session_id: str) -> Session:
        """The session with this id; ``KeyError`` if unknown."""
        return self.registry.get(session_id)

    def active_sessions(self) -> list[Session]:
        """Sessions not yet ended (NOT_READY, READY, RUNNING)."""
        return self.registry.active()

    def on_session_created(self, callback: SessionCreatedListener) -> Callable[[], None]:
        """Call ``callback(session)`` (sync, or async as a task) for each created session.

        Returns a function that unsubscribes.
        """
        return self.registry.on_created(callback)

    def on_state_change(self, callback: StateChangeListener) -> Callable[[], None]:
        """Call ``callback(session, change)`` on every transition; returns an unsubscribe."""
        return self.registry.on_state_change(callback)

    async def wait_for_status(
        self, session_id: str, *statuses: SessionStatus, timeout: float = 5.0
    ) -> Session:
        """Wait until the session reaches one of ``statuses``; ``TimeoutError`` otherwise."""
        return await self.registry.wait_for_status(session_id, *statuses, timeout=timeout)

    # -- control (for the emulator and tests) ----------------------------------------

    def mark_ready(self, session_id: str) -> Session:
        """NOT_READY -> READY now."""
        return self.registry.mark_ready(session_id)

    def mark_running(self, session_id: str) -> Session:
        """READY -> RUNNING (the avatar joined the room)."""
        return self.registry.mark_running(session_id)

    def complete(self, session_id: str, duration: float | None = None) -> Session:
        """READY/RUNNING -> COMPLETED, e.g. on END_CALL; records the duration."""
        return self.registry.complete(session_id, duration)

    def fail(self, session_id: str, failure_code: str, failure: str = "Session failed.") -> Session:
        """Active -> FAILED with a stable ``failureCode`` and human ``failure`` text."""
        return self.registry.fail(session_id, failure_code, failure)

    def cancel(self, session_id: str) -> Session:
        """Active -> CANCELLED, as DELETE does."""
        return self.registry.cancel(session_id)

    # -- HTTP plumbing -------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        at, timestamp = time.monotonic(), datetime.now(timezone.utc)
        route = request.match_info.route.name
        if route not in ROUTES:
            route = None
        fault = self.faults.take_http(route) if route is not None else None
        status: int | None = None
        exchange = _Exchange()
        token = _EXCHANGE.set(exchange)
        try:
            if request.method == "POST":
                await self._read_body(request, exchange)
            response = await self._respond(request, handler, fault)
            status = None if exchange.dropped else response.status
            return response
        finally:
            body = exchange.body
            self._requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.path,
                    route=route,
                    status=status,
                    body=None if body is MISSING else redact(body),
                    headers=_redact_headers(request.headers),
                    at=at,
                    timestamp=timestamp,
                    session_id=exchange.session_id or request.match_info.get("id"),
                    error=exchange.error,
                    fault=fault,
                )
            )
            _EXCHANGE.reset(token)
            logger.debug("%s %s -> %s", request.method, request.path, status or "dropped")

    @staticmethod
    async def _read_body(request: web.Request, exchange: _Exchange) -> None:
        raw = await request.read()
        if not raw.strip():
            return
        try:
            exchange.body = json.loads(raw)
        except ValueError:
            exchange.error = "Invalid JSON in request body"

    async def _respond(
        self, request: web.Request, handler: _Handler, fault: HTTPFault | None
    ) -> web.StreamResponse:
        if fault is None:
            return await self._handle(request, handler)
        if not fault.replaces_response:
            # A slow (or header-only) fault: the work is done now, the answer comes late.
            response = await self._handle(request, handler)
        else:
            if fault.process_first:
                await self._handle(request, handler)
            response = self._fault_response(fault)
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.drop:
            if request.transport is not None:
                request.transport.close()
            _EXCHANGE.get().dropped = True
            return web.Response(status=204)
        response.headers.update(fault.response_headers())
        return response

    @staticmethod
    def _fault_response(fault: HTTPFault) -> web.StreamResponse:
        if fault.status is None:  # dropped; the response is never written
            return web.Response(status=204)
        body = fault.default_body() if fault.body is None else fault.body
        if isinstance(body, (dict, list)):
            if isinstance(body, dict) and isinstance(body.get("error"), str):
                _EXCHANGE.get().error = body["error"]
            return web.json_response(body, status=fault.status)
        data = body.encode() if isinstance(body, str) else bytes(body)
        return web.Response(body=data, status=fault.status, content_type="text/plain")

    async def _handle(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        try:
            if request.match_info.route.name in ROUTES:
                denied = self._check_headers(request)
                if denied is not None:
                    return denied
            return await handler(request)
        except web.HTTPException as exc:
            # aiohttp's own 404/405 come as exceptions; answer them in the API's JSON shape.
            allow = exc.headers.get("Allow")
            _EXCHANGE.get().error = exc.reason
            return _error(exc.status, exc.reason, headers={"Allow": allow} if allow else None)

    def _check_headers(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization")
        if auth is None:
            return _error(401, "Missing Authorization header")
        scheme, _, key = auth.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return _error(401, "Invalid Authorization header: expected Bearer")
        candidate = key.strip().encode()
        # Compare against every key so timing does not reveal which, if any, matched.
        matched = [hmac.compare_digest(candidate, k) for k in self._api_keys]
        if not any(matched):
            return _error(401, "Invalid API key")
        version = request.headers.get("X-Runway-Version")
        if version is None:
            return _error(400, "Missing X-Runway-Version header")
        if version != self.api_version:
            return _error(400, f"Invalid X-Runway-Version header; supported: {self.api_version}")
        return None

    # -- handlers -------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.StreamResponse:
        exchange = _EXCHANGE.get()
        if exchange.error is not None:
            return _error(400, exchange.error)
        body = exchange.body
        # An empty body stays MISSING, which the validator reports as zod's "undefined".
        issues = self.validator.issues(body)
        if issues:
            return _error(400, issues[0].message, issues=issues)
        assert isinstance(body, dict)
        avatar = body["avatar"]
        if (
            self.custom_avatar_ids is not None
            and avatar["type"] == "custom"
            and avatar["avatarId"] not in self.custom_avatar_ids
        ):
            issue = ValidationIssue("custom", ("avatar", "avatarId"), "Avatar not found")
            return _error(400, issue.message, issues=[issue])
        session = self.registry.create(body, self.faults.take_session())
        exchange.session_id = session.id
        return web.json_response({"id": session.id})

    def _find(self, request: web.Request) -> Session | web.StreamResponse:
        """The session the path names, or the error the API answers: 400 for an id that is
        not a v4 UUID (the nil UUID included: it is not v4), 404 for an unknown one."""
        session_id = request.match_info["id"]
        if not _UUID_V4.fullmatch(session_id):
            issue = ValidationIssue("invalid_format", ("id",), "Invalid UUID")
            return _error(400, issue.message, issues=[issue])
        try:
            return self.registry.get(session_id)
        except KeyError:
            return _error(404, "Not found")

    async def _get(self, request: web.Request) -> web.StreamResponse:
        session = self._find(request)
        if not isinstance(session, Session):
            return session
        return web.json_response(session.to_json())

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        session = self._find(request)
        if not isinstance(session, Session):
            return session
        if session.active:
            self.registry.cancel(session.id, reason="delete")
            return web.Response(status=204)
        if 200 <= self.ended_delete_status < 300:
            return web.Response(status=self.ended_delete_status)
        return _error(self.ended_delete_status, "Realtime session is not active")
