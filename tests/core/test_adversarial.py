"""What an adversarial review reproduced: bad options that hung start() or the event loop, an
app's raising handler, a room gone mid-create, redirects, malformed answers, unbounded ends,
shared fallbacks and identities, leaked credentials. Each test fails without its fix."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from livekit.agents import AgentSession, APIConnectOptions

import avatarkit
from avatarkit import AvatarClosedError, ConfigurationError
from avatarkit.http import ProviderAPIError, ProviderConnectionError
from avatarkit.options import CoreOptions
from avatarkit.secret import redact
from avatarkit.session import Lifecycle
from avatarkit.tokens import LiveKitSettings, check_livekit_url
from avatarkit_providers.local import worker as local_worker
from avatarkit_providers.local.provider import LocalProvider
from avatarkit_providers.runway.emulator.emulator import RunwayEmulator
from memory_livekit import MemoryLiveKit, MemoryRoom
from tests.helpers.avatars import FAST, local_avatar
from tests.helpers.servers import serve

BOUND = 10.0  # generous: every wait below ends well within it, or the bug is back


async def bounded(aw: Awaitable[Any], seconds: float = BOUND) -> Any:
    return await asyncio.wait_for(aw, seconds)


# -- 1a. LiveKit credentials of the wrong type or form ----------------------------------------


@pytest.mark.parametrize("option", ["livekit_api_key", "livekit_api_secret"])
@pytest.mark.parametrize("value", [123, b"bytes-sekrit-value", object(), "", "has space", "x\n"])
def test_get_refuses_livekit_credentials_of_the_wrong_type_or_form(option: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=option) as err:
        avatarkit.get("local", **{option: value})
    assert "sekrit" not in str(err.value)


@pytest.mark.parametrize("value", [5, "lk.example.com", "wss://", "wss://host name"])
def test_get_refuses_a_livekit_url_of_the_wrong_type_or_form(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="livekit_url"):
        avatarkit.get("local", livekit_url=value)


async def test_start_refuses_its_own_malformed_livekit_arguments_before_anything_runs(
    livekit: MemoryLiveKit, agent_room: MemoryRoom, agent_session: AgentSession[Any]
) -> None:
    avatar = local_avatar(livekit)
    with pytest.raises(ConfigurationError, match="livekit_api_secret"):
        await bounded(
            avatar.start(agent_session, agent_room, livekit_api_secret=123)  # type: ignore[arg-type]
        )
    assert avatar.lifecycle is Lifecycle.STOPPED and avatar.remote_avatars == []
    with pytest.raises(AvatarClosedError):
        await avatar.wait_for_join(timeout=1)


def test_settings_name_a_malformed_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEKIT_API_SECRET", "sekrit-with-newline\n")
    with pytest.raises(ConfigurationError, match="LIVEKIT_API_SECRET") as err:
        LiveKitSettings.resolve("wss://lk.example.com", "key")
    assert "sekrit" not in str(err.value)


async def test_a_failure_preparing_a_remote_fails_over_and_never_hangs_start(
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import avatarkit.session as session_module

    real = session_module.mint_avatar_token
    calls: list[str] = []

    def mint(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["identity"])
        if len(calls) == 1:
            raise RuntimeError("the signing library broke")
        return real(*args, **kwargs)

    monkeypatch.setattr(session_module, "mint_avatar_token", mint)
    avatar = local_avatar(
        livekit,
        avatar_participant_identity="first",
        fallback=local_avatar(livekit, avatar_participant_identity="second"),
    )
    await bounded(avatar.start(agent_session, agent_room))
    await avatar.wait_for_join(timeout=BOUND)
    assert avatar.avatar_identity == "second"  # the first failed, the fallback took over
    await bounded(avatar.aclose())


async def test_a_failure_preparing_the_only_remote_fails_start_and_wait_for_join(
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import avatarkit.session as session_module

    def mint(*_: Any, **__: Any) -> Any:
        raise RuntimeError("the signing library broke")

    monkeypatch.setattr(session_module, "mint_avatar_token", mint)
    avatar = local_avatar(livekit)
    with pytest.raises(RuntimeError, match="signing library"):
        await bounded(avatar.start(agent_session, agent_room))
    with pytest.raises(AvatarClosedError):
        await bounded(avatar.wait_for_join(timeout=1))
    assert avatar.lifecycle is Lifecycle.CLOSED


# -- 1b. an app's handler that raises ------------------------------------------------------


@pytest.mark.parametrize("wait", [None, 0])
async def test_a_raising_handler_of_the_app_never_breaks_the_avatar(
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
    caplog: pytest.LogCaptureFixture,
    wait: float | None,
) -> None:
    def broken_state_handler(_: Any) -> None:
        raise TypeError("the app's bug")

    def broken_metrics_handler(_: Any) -> None:
        raise TypeError("the app's other bug")

    seen: list[str] = []
    avatar = local_avatar(livekit)
    avatar.on("avatar_state_changed", broken_state_handler)
    avatar.on("metrics_collected", broken_metrics_handler)
    avatar.on("avatar_state_changed", lambda ev: seen.append(ev.state))  # runs all the same
    agent_session.on("metrics_collected", broken_metrics_handler)
    await bounded(avatar.start(agent_session, agent_room, wait=wait))
    await avatar.wait_for_join(timeout=BOUND)
    assert avatar.state == "joined" and "joined" in seen
    logged = caplog.text
    assert "broken_state_handler" in logged and "broken_metrics_handler" in logged
    # off() still removes a handler registered through on()
    avatar.off("avatar_state_changed", broken_state_handler)
    await bounded(avatar.aclose())
    assert seen[-1] == "ended"


# -- 2. numbers that are not numbers ---------------------------------------------------------

NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"join_timeout": NAN}, "join_timeout"),
        ({"join_timeout": INF}, "join_timeout"),
        ({"renew_after": NAN}, "renew_after"),
        ({"ack_timeout": INF}, "ack_timeout"),
        ({"conn_options": APIConnectOptions(retry_interval=NAN)}, "retry_interval"),
        ({"conn_options": APIConnectOptions(retry_interval=INF)}, "retry_interval"),
        ({"conn_options": APIConnectOptions(timeout=NAN)}, "timeout"),
        ({"conn_options": APIConnectOptions(timeout=INF)}, "timeout"),
        ({"conn_options": APIConnectOptions(timeout=0)}, "timeout"),
        ({"conn_options": APIConnectOptions(max_retry=1.5)}, "max_retry"),  # type: ignore[arg-type]
        ({"conn_options": APIConnectOptions(max_retry=True)}, "max_retry"),
        ({"seed": NAN}, "seed"),
    ],
)
def test_get_refuses_nan_infinity_and_non_numbers(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        avatarkit.get("local", **options)


def test_conn_options_with_nan_fields_are_refused_even_when_built_by_hand() -> None:
    odd = APIConnectOptions()
    object.__setattr__(odd, "max_retry", -1)  # dataclass validation bypassed
    with pytest.raises(ConfigurationError, match="max_retry"):
        CoreOptions(conn_options=odd)


@pytest.mark.parametrize("timeout", [NAN, INF])
def test_runway_refuses_a_nan_tool_timeout(timeout: float) -> None:
    tool = {"type": "backend_rpc", "name": "x", "description": "d", "timeoutSeconds": timeout}
    with pytest.raises(ConfigurationError, match="timeoutSeconds"):
        avatarkit.get("runway", preset_id="influencer", api_key="sk-test", tools=[tool])


# -- 3. local: the room goes away while the avatar is being created ----------------------


@pytest.mark.parametrize("how", ["room_deleted", "agent_left"])
async def test_local_the_room_going_away_during_create_never_hangs_aclose(
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    creating = asyncio.Event()
    never = asyncio.Event()
    real_start = local_worker.AvatarWorker.start

    async def start(self: local_worker.AvatarWorker) -> None:
        creating.set()
        await never.wait()  # the agent never takes the avatar's tracks: it is gone
        await real_start(self)

    monkeypatch.setattr(local_worker.AvatarWorker, "start", start)
    avatar = local_avatar(livekit)
    backend = avatar.backend
    assert isinstance(backend, LocalProvider)
    await bounded(avatar.start(agent_session, agent_room, wait=0))
    await bounded(creating.wait())
    if how == "room_deleted":
        await livekit.delete_room("room-1")
    else:
        await agent_room.disconnect()
    await bounded(avatar.aclose())
    assert avatar.end_outcome == "not_created"
    assert backend.workers == {}
    await livekit.settle()
    room = livekit.rooms.get("room-1")
    assert room is None or "local-avatar" not in room.participants  # the worker left


# -- 4. a create answered 504 after the session was created ------------------------------


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_a_create_that_may_have_been_carried_out_is_not_resent(
    runway: RunwayEmulator,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
    status: int,
) -> None:
    from tests.helpers.avatars import make_runway_avatar

    runway.faults.next(route="create", status=status, process_first=True)
    avatar = make_runway_avatar(runway, livekit)
    with pytest.raises(ProviderAPIError, match="may have been carried out") as err:
        await bounded(avatar.start(agent_session, agent_room))
    assert err.value.status_code == status
    # one create, one session: a resend would have made a second, taking the END_CALL
    assert len(runway.server.requests_for("create")) == 1
    assert len(runway.server.sessions) == 1


# -- 5. the forced end is bounded as a whole --------------------------------------------------


async def test_a_forced_end_gives_up_on_a_retry_after_beyond_its_budget(
    runway: RunwayEmulator,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.helpers.avatars import make_runway_avatar

    runway.faults.next_session(never_ready=True)  # never joins: ending is forced (DELETE)
    avatar = make_runway_avatar(runway, livekit)
    await bounded(avatar.start(agent_session, agent_room))
    runway.faults.next(route="delete", status=503, retry_after=20, times=None)
    started = time.monotonic()
    await bounded(avatar.aclose(), 30)
    assert time.monotonic() - started < BOUND  # FAST: 2 x 2 s at most, not 20 s per retry
    assert avatar.end_outcome == "failed"
    assert len(runway.server.requests_for("delete")) == 1
    assert "may bill until it times out" in caplog.text


# -- 6. one fallback for two avatars ----------------------------------------------------------


async def test_one_fallback_cannot_serve_two_avatars(livekit: MemoryLiveKit) -> None:
    fallback = local_avatar(livekit)
    local_avatar(livekit, avatar_participant_identity="first", fallback=fallback)
    with pytest.raises(ConfigurationError, match="get\\(\\) a new fallback for each avatar"):
        local_avatar(livekit, avatar_participant_identity="second", fallback=fallback)


async def test_an_avatar_taken_as_a_fallback_cannot_be_started_on_its_own(
    livekit: MemoryLiveKit, agent_room: MemoryRoom, agent_session: AgentSession[Any]
) -> None:
    fallback = local_avatar(livekit)
    local_avatar(livekit, avatar_participant_identity="first", fallback=fallback)
    with pytest.raises(RuntimeError, match="fallback"):
        await fallback.start(agent_session, agent_room)
    assert "local-avatar" not in agent_room.remote_participants


# -- 7. identities -------------------------------------------------------------------------


@pytest.mark.parametrize("fallback", [False, True])
async def test_an_avatar_identity_equal_to_the_agents_is_refused_at_start(
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
    fallback: bool,
) -> None:
    clash = {"avatar_participant_identity": "agent-1"}
    if fallback:
        avatar = local_avatar(livekit, fallback=local_avatar(livekit, **clash))
    else:
        avatar = local_avatar(livekit, **clash)
    with pytest.raises(ConfigurationError, match="agent-1"):
        await bounded(avatar.start(agent_session, agent_room))
    assert avatar.remote_avatars == []  # nothing was created
    await livekit.settle()
    assert agent_room.isconnected()  # the agent was not kicked out
    assert list(livekit.rooms["room-1"].participants) == ["agent-1"]


@pytest.mark.parametrize("identity", [" padded", "padded ", "tab\there", "x" * 129])
def test_get_refuses_identities_that_could_never_work(identity: str) -> None:
    with pytest.raises(ConfigurationError, match="avatar_participant_identity"):
        avatarkit.get("local", avatar_participant_identity=identity)


# -- 8, 10. a provider API that redirects or answers nonsense ------------------------------


class FakeAPI:
    """An aiohttp server on 127.0.0.1 answering every request with ``answer``."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bytes]] = []
        self.answer: Callable[[web.Request], Awaitable[web.StreamResponse]] = self._ok
        self.url = ""

    async def _ok(self, _: web.Request) -> web.StreamResponse:
        return web.json_response({"id": "sess-from-the-wrong-server"})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.method, request.path_qs, await request.read()))
        return await self.answer(request)


async def _serve() -> AsyncIterator[FakeAPI]:
    api = FakeAPI()
    async with serve(api.handle) as api.url:
        yield api


@pytest.fixture
async def api() -> AsyncIterator[FakeAPI]:
    async for served in _serve():
        yield served


@pytest.fixture
async def elsewhere() -> AsyncIterator[FakeAPI]:
    async for served in _serve():
        yield served


def runway_at(api_url: str, livekit: MemoryLiveKit) -> avatarkit.AvatarkitSession:
    return avatarkit.get(
        "runway",
        preset_id="influencer",
        api_key="sk-test-runway-key",
        api_url=api_url,
        livekit_url=livekit.url,
        livekit_api_key=livekit.api_key,
        livekit_api_secret=livekit.api_secret,
        conn_options=FAST,
    )


@pytest.mark.parametrize("status", [307, 308, 302, 301])
async def test_a_redirect_is_an_error_and_the_token_never_leaves(
    api: FakeAPI,
    elsewhere: FakeAPI,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
    status: int,
) -> None:
    async def redirect(_: web.Request) -> web.StreamResponse:
        location = f"http://user:pw@{elsewhere.url[7:]}/v1/realtime_sessions?sig=qs-sekrit"
        return web.Response(status=status, headers={"Location": location})

    api.answer = redirect
    avatar = runway_at(api.url, livekit)
    with pytest.raises(ProviderAPIError) as err:
        await bounded(avatar.start(agent_session, agent_room))
    message = str(err.value)
    assert err.value.status_code == status
    assert f"{elsewhere.url}/v1/realtime_sessions" in message  # says where it pointed...
    assert "qs-sekrit" not in message and "pw" not in message  # ...without its credentials
    assert elsewhere.seen == []  # the body with the avatar's LiveKit token never went there
    assert len(api.seen) == 1 and avatar.remote_session is None


async def _huge(_: web.Request) -> web.StreamResponse:
    return web.json_response({"id": "a" * 10, "padding": "x" * (2 << 20)})


async def _text(_: web.Request) -> web.StreamResponse:
    return web.Response(text="<html>welcome to the proxy</html>", content_type="text/html")


async def _no_id(_: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "READY"})


async def _path_id(_: web.Request) -> web.StreamResponse:
    return web.json_response({"id": "../../v1/organization"})


async def _echo_token(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    return web.json_response({"echo": body["integration"]["token"]})


@pytest.mark.parametrize("answer", [_huge, _text, _no_id, _path_id, _echo_token])
async def test_a_malformed_create_answer_leaves_nothing_and_says_so(
    api: FakeAPI,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
    answer: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> None:
    api.answer = answer
    avatar = runway_at(api.url, livekit)
    with pytest.raises((ProviderAPIError, ProviderConnectionError)) as err:
        await bounded(avatar.start(agent_session, agent_room))
    message = str(err.value)
    assert "the answer began" in message or "bytes" in message  # says what came back
    assert "eyJ" not in message  # no part of the avatar's JWT
    assert avatar.remote_session is None and avatar.end_outcome == "not_created"
    assert [method for method, _, _ in api.seen] == ["POST"]  # not resent, nothing deleted
    assert avatar.lifecycle is Lifecycle.CLOSED


# -- 9. credentials in URLs -------------------------------------------------------------------


def test_credentials_in_a_url_stay_out_of_messages_and_reprs() -> None:
    url = "wss://user:pa55word@lk.example.com/rtc?access_token=tok3n"
    assert "pa55word" not in redact(f"failed: {url}") and "tok3n" not in redact(url)
    with pytest.raises(ConfigurationError) as err:
        check_livekit_url(url.replace("lk.example.com", "lk example.com"))
    assert "pa55word" not in str(err.value) and "tok3n" not in str(err.value)
    options = CoreOptions(livekit_url=url)
    settings = LiveKitSettings.resolve(url, "key", "secret")
    for text in (repr(options), repr(settings)):
        assert "pa55word" not in text and "tok3n" not in text
        assert "lk.example.com" in text
    runway = avatarkit.get(
        "runway", preset_id="influencer", api_key="sk-x", api_url="https://u:pa55word@api.x/"
    )
    assert "pa55word" not in repr(runway.backend.options)
