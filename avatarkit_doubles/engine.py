"""The double engine: serves an :class:`ApiDescription` on 127.0.0.1 as the provider's API,
and runs an avatar worker per session that joins the room with the token of the request.

What every double gets from it:

- auth: a missing or wrong key is a 401; a create body the description refuses is a 400;
- sessions: ``starting`` until the worker has joined, then ``active``; an end call, the agent
  leaving the room (the worker leaves with it), the runtime cap or a fault ends it once;
- a record of every request (credentials masked) and of every end call;
- fault switches: HTTP answers (status, ``retry-after``, a delay) per action, and worker
  faults (never joins, leaves after a while, freezes).

The Runway emulator (:mod:`avatarkit_providers.runway.emulator`) is the fuller model this
generalises: it also plays Runway's state machine and validation to the letter.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import itertools
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any

import attrs
from aiohttp import web
from livekit import rtc

from avatarkit.doubles import SessionRecord
from avatarkit.secret import MASK
from avatarkit_providers.local.video import FaceVideoGenerator
from avatarkit_providers.local.worker import AvatarWorker

from .description import Action, ApiDescription, DoubleSession, Route

logger = logging.getLogger("avatarkit.doubles")

_CREDENTIAL_HEADERS = {"authorization", "x-api-key", "api-key", "x-api-secret"}


@attrs.define
class _Exchange:
    body: Any = None
    action: Action | None = None


# aiohttp runs a request's middleware and handler in one task: a context variable carries what
# the handler learns to the record, with no request storage keys (which vary across versions).
_EXCHANGE: ContextVar[_Exchange] = ContextVar("avatarkit_doubles_exchange")


@attrs.frozen
class Recorded:
    """One request the double received: body parsed, credentials masked."""

    method: str
    path: str
    action: Action | None
    status: int
    headers: Mapping[str, str]
    body: Any


@attrs.define
class HttpFault:
    """The next answer to an action: ``status`` (with ``retry_after``) after ``delay`` s."""

    action: Action
    status: int = 500
    retry_after: float | None = None
    delay: float = 0.0
    times: int = 1


@attrs.define
class WorkerFault:
    """What the next session's worker does wrong."""

    never_join: bool = False
    leave_after: float | None = None
    stall_after: float | None = None


class Faults:
    """Fault switches, consumed in order."""

    def __init__(self) -> None:
        self.http: list[HttpFault] = []
        self.workers: list[WorkerFault] = []

    def next(self, action: Action, status: int = 500, **kwargs: Any) -> None:
        """Answer the next ``action`` request(s) with ``status``."""
        self.http.append(HttpFault(action, status, **kwargs))

    def next_worker(self, **kwargs: Any) -> None:
        """Make the next session's worker misbehave (see :class:`WorkerFault`)."""
        self.workers.append(WorkerFault(**kwargs))

    def take(self, action: Action) -> HttpFault | None:
        for fault in self.http:
            if fault.action == action:
                fault.times -= 1
                if fault.times <= 0:
                    self.http.remove(fault)
                return fault
        return None


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a LiveKit JWT, unverified (the double does not hold the server's
    secret; the room checks the signature when the worker joins)."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


class ApiDouble:
    """A provider's API, emulated from its :class:`ApiDescription`. ``async with`` it, then
    point the provider's ``api_url`` at :attr:`url` with :attr:`api_key`. It is an
    :class:`~avatarkit.doubles.Observable`, for the conformance kit."""

    def __init__(
        self,
        description: ApiDescription,
        *,
        api_key: str | None = None,
        port: int = 0,
        runtime_cap: float | None = None,
        video: Callable[[], FaceVideoGenerator] | None = None,
    ) -> None:
        self.description = description
        self.api_key = api_key or f"key_emulated_{description.name}"
        self.runtime_cap = runtime_cap
        self.faults = Faults()
        self.requests: list[Recorded] = []
        """Every request answered, in order."""
        self.arrivals: list[str] = []
        """``"METHOD /path"`` of every request as it arrives, answered yet or not."""
        self.sessions: dict[str, DoubleSession] = {}
        self.workers: dict[str, AvatarWorker] = {}
        self._port = port
        label = f"{description.name} (emulated)"
        self._video = video or (lambda: FaceVideoGenerator(width=256, height=256, label=label))
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self.url = ""

    def session_records(self) -> list[SessionRecord]:
        join = self.description.join
        return [
            SessionRecord(s.id, s.active, s.end_calls, join(s.body)[1])
            for s in self.sessions.values()
        ]

    def fail_next_create(self, status: int) -> None:
        self.faults.next("create", status)

    def next_worker(self, *, never_join: bool = False, leave_after: float | None = None) -> None:
        self.faults.next_worker(never_join=never_join, leave_after=leave_after)

    def active_sessions(self) -> list[DoubleSession]:
        return [s for s in self.sessions.values() if s.active]

    def requests_for(self, action: Action) -> list[Recorded]:
        return [r for r in self.requests if r.action == action]

    async def __aenter__(self) -> ApiDouble:
        app = web.Application(middlewares=[self._record])
        for route in self.description.routes:
            handler = self._handler(route)
            app.router.add_route(route.method, self.description.api_prefix + route.path, handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}{self.description.api_prefix}"
        return self

    async def __aexit__(self, *_: object) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(w.aclose() for w in self.workers.values()), return_exceptions=True)
        self.workers.clear()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- HTTP ---------------------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.arrivals.append(f"{request.method} {request.path}")
        raw = await request.read()
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            body = raw.decode(errors="replace")
        exchange = _Exchange(body)
        reset = _EXCHANGE.set(exchange)
        try:
            response: web.StreamResponse = await handler(request)
        finally:
            _EXCHANGE.reset(reset)
        headers = {
            k: (MASK if k.lower() in _CREDENTIAL_HEADERS else v) for k, v in request.headers.items()
        }
        self.requests.append(
            Recorded(request.method, request.path, exchange.action, response.status, headers, body)
        )
        return response

    def _handler(self, route: Route) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.StreamResponse:
            _EXCHANGE.get().action = route.action
            if denied := self._check_auth(request):
                return denied
            if fault := self.faults.take(route.action):
                await asyncio.sleep(fault.delay)
                headers = (
                    {} if fault.retry_after is None else {"retry-after": f"{fault.retry_after:g}"}
                )
                return web.json_response({"error": "fault"}, status=fault.status, headers=headers)
            respond: Callable[[web.Request, Route], Awaitable[web.StreamResponse]]
            respond = getattr(self, f"_{route.action}")
            return await respond(request, route)

        return handle

    def _check_auth(self, request: web.Request) -> web.Response | None:
        given = request.headers.get(self.description.auth_header, "")
        prefix = self.description.auth_prefix
        key = given[len(prefix) :] if given.startswith(prefix) else ""
        if not hmac.compare_digest(key.encode(), self.api_key.encode()):
            return web.json_response({"error": "invalid API key"}, status=401)
        return None

    async def _create(self, request: web.Request, route: Route) -> web.StreamResponse:
        body = _EXCHANGE.get().body
        if not isinstance(body, dict):
            return web.json_response({"error": "the body must be a JSON object"}, status=400)
        if problem := self.description.validate(body):
            return web.json_response({"error": problem}, status=400)
        try:
            url, token = self.description.join(body)
        except (KeyError, TypeError) as exc:
            return web.json_response({"error": f"missing LiveKit field {exc}"}, status=400)
        session = DoubleSession(f"{self.description.id_prefix}{next(self._ids):06d}", body)
        self.sessions[session.id] = session
        fault = self.faults.workers.pop(0) if self.faults.workers else WorkerFault()
        self._spawn(self._run_worker(session, url, token, fault))
        return web.json_response(route.answer(session), status=route.status)

    def _find(self, request: web.Request) -> DoubleSession | web.Response:
        session = self.sessions.get(request.match_info.get("id", ""))
        return session or web.json_response({"error": "not found"}, status=404)

    async def _end(self, request: web.Request, route: Route) -> web.StreamResponse:
        session = self._find(request)
        if isinstance(session, web.Response):
            return session
        session.end_calls += 1
        if not session.active:
            status = self.description.ended_status
            return web.json_response({"error": "session is over"}, status=status)
        self.end(session, "api")
        return web.json_response(route.answer(session), status=route.status)

    async def _status(self, request: web.Request, route: Route) -> web.StreamResponse:
        session = self._find(request)
        if isinstance(session, web.Response):
            return session
        return web.json_response(route.answer(session), status=route.status)

    # -- sessions and workers -----------------------------------------------------------

    def end(self, session: DoubleSession, by: str, *, failed: bool = False) -> None:
        """End ``session`` (once): its worker leaves the room."""
        if not session.active:
            return
        session.status, session.ended_by = ("failed" if failed else "ended"), by
        if worker := self.workers.pop(session.id, None):
            self._spawn(worker.aclose())

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_worker(
        self, session: DoubleSession, url: str, token: str, fault: WorkerFault
    ) -> None:
        if fault.never_join:
            return
        agent = token_claims(token).get("attributes", {}).get("lk.publish_on_behalf", "")
        try:
            worker = await AvatarWorker.join(url, token, agent_identity=agent, video=self._video())
        except Exception as exc:
            logger.warning("%s double: the avatar could not join: %r", self.description.name, exc)
            self.end(session, "fault", failed=True)
            return
        if not session.active:  # ended while joining
            await worker.aclose()
            return
        session.status = "active"
        self.workers[session.id] = worker

        def on_left(participant: rtc.RemoteParticipant) -> None:
            if participant.identity == agent:  # the real workers leave with their agent
                self.end(session, "agent_left")

        worker.room.on("participant_disconnected", on_left)
        # taken out of the room (RoomService RemoveParticipant): the real services end then
        worker.room.on("disconnected", lambda *_: self.end(session, "removed"))
        self._spawn(self._faults_and_cap(session, worker, fault))

    async def _faults_and_cap(
        self, session: DoubleSession, worker: AvatarWorker, fault: WorkerFault
    ) -> None:
        if fault.stall_after is not None:
            await asyncio.sleep(fault.stall_after)
            worker.stall()
        if fault.leave_after is not None:
            await asyncio.sleep(fault.leave_after)
            self.end(session, "fault", failed=True)
        if self.runtime_cap is not None:
            await asyncio.sleep(self.runtime_cap)
            self.end(session, "cap")
