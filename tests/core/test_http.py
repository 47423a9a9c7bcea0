"""The shared HTTP client against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from livekit.agents import APIConnectOptions, APIStatusError

from avatarkit.http import (
    HttpClient,
    ProviderAPIError,
    ProviderConnectionError,
    ProviderTimeoutError,
    retry_after,
    should_retry,
)
from avatarkit.secret import Secret
from tests.helpers.servers import serve

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
KEY = Secret("sk_live_verysecret")


class Scripted:
    """A server answering each request with the next scripted handler (the last repeats)."""

    def __init__(self) -> None:
        self.script: list[Handler] = []
        self.seen: list[float] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(time.monotonic())
        handler = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return await handler(request)


@pytest.fixture
async def server() -> AsyncIterator[Scripted]:
    scripted = Scripted()
    async with serve(scripted.handle) as url:
        scripted.url = f"{url}/v1/thing"
        yield scripted


def reply(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Handler:
    async def handler(_: web.Request) -> web.StreamResponse:
        if body is None:
            return web.Response(status=status, headers=headers)
        return web.json_response(body, status=status, headers=headers)

    return handler


def slow(delay: float) -> Handler:
    async def handler(_: web.Request) -> web.StreamResponse:
        await asyncio.sleep(delay)
        return web.json_response({"ok": True})

    return handler


async def drop(request: web.Request) -> web.StreamResponse:
    assert request.transport is not None
    request.transport.close()
    return web.Response()


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    http = HttpClient("test", APIConnectOptions(max_retry=2, retry_interval=0.05, timeout=0.5))
    yield http
    await http.aclose()


async def test_success_returns_parsed_json(server: Scripted, client: HttpClient) -> None:
    server.script = [reply(200, {"id": "abc"})]
    response = await client.request("POST", server.url, json={"x": 1})
    assert response.status == 200 and response.body == {"id": "abc"}
    assert len(server.seen) == 1


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503])
async def test_transient_statuses_are_retried(
    server: Scripted, client: HttpClient, status: int
) -> None:
    server.script = [reply(status, {"error": "busy"}), reply(200, {"id": "ok"})]
    response = await client.request("GET", server.url)
    assert response.body == {"id": "ok"}
    assert len(server.seen) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_fail_at_once_with_the_message_and_never_the_key(
    server: Scripted, client: HttpClient, status: int
) -> None:
    server.script = [reply(status, {"error": f"Unrecognized key: livekit {KEY.reveal()}"})]
    with pytest.raises(ProviderAPIError) as err:
        await client.request("POST", server.url, secrets=[KEY])
    assert len(server.seen) == 1
    assert err.value.status_code == status
    assert "Unrecognized key: livekit" in str(err.value)
    assert KEY.reveal() not in str(err.value) and KEY.reveal() not in repr(err.value)
    assert isinstance(err.value, APIStatusError)  # catchable as livekit's own error


async def test_retries_are_bounded_by_max_retry(server: Scripted, client: HttpClient) -> None:
    server.script = [reply(500, {"error": "down"})]
    with pytest.raises(ProviderAPIError, match="500"):
        await client.request("GET", server.url)
    assert len(server.seen) == 3  # the first try and max_retry=2 retries


async def test_x_should_retry_overrides_the_status(server: Scripted, client: HttpClient) -> None:
    server.script = [reply(500, {"error": "no"}, {"x-should-retry": "false"})]
    with pytest.raises(ProviderAPIError):
        await client.request("GET", server.url)
    assert len(server.seen) == 1

    server.script = [reply(400, {"error": "yes"}, {"x-should-retry": "true"}), reply(200, {})]
    server.seen.clear()
    assert (await client.request("GET", server.url)).status == 200
    assert len(server.seen) == 2


async def test_retry_after_ms_is_honoured(server: Scripted, client: HttpClient) -> None:
    server.script = [reply(429, {"error": "slow down"}, {"retry-after-ms": "300"}), reply(200, {})]
    await client.request("GET", server.url)
    assert server.seen[1] - server.seen[0] >= 0.29  # waited at least what was asked


async def test_a_retry_after_longer_than_the_cap_fails_instead_of_waiting(
    server: Scripted, client: HttpClient
) -> None:
    server.script = [reply(429, {"error": "later"}, {"retry-after": "3600"})]
    with pytest.raises(ProviderAPIError, match="429"):
        await client.request("GET", server.url)
    assert len(server.seen) == 1


async def test_dropped_connections_are_retried_then_reported(
    server: Scripted, client: HttpClient
) -> None:
    server.script = [drop, reply(200, {"id": "x"})]
    assert (await client.request("GET", server.url)).body == {"id": "x"}

    server.script = [drop]
    with pytest.raises(ProviderConnectionError):
        await client.request("GET", server.url)


async def test_the_timeout_bounds_the_whole_request(server: Scripted, client: HttpClient) -> None:
    # The connection is instant; only the response is slow. A connect-only timeout (the
    # official plugin's) would wait for it.
    server.script = [slow(5.0)]
    started = time.monotonic()
    with pytest.raises(ProviderTimeoutError, match="timed out"):
        await client.request("GET", server.url)
    assert len(server.seen) == 3
    assert time.monotonic() - started < 4.0


async def test_an_unreachable_server_is_a_connection_error() -> None:
    http = HttpClient("test", APIConnectOptions(max_retry=0, timeout=1.0))
    with pytest.raises(ProviderConnectionError, match="test API"):
        await http.request("GET", "http://127.0.0.1:9/nothing")
    await http.aclose()


async def test_a_given_session_is_used_and_not_closed(server: Scripted) -> None:
    server.script = [reply(200, {})]
    async with aiohttp.ClientSession() as session:
        http = HttpClient("test", APIConnectOptions(), session)
        await http.request("GET", server.url)
        await http.aclose()
        assert not session.closed


def test_should_retry_and_retry_after_parsing() -> None:
    assert should_retry(503, {}) and should_retry(409, {}) and not should_retry(404, {})
    assert not should_retry(503, {"x-should-retry": "false"})
    assert retry_after({"retry-after-ms": "1500"}) == 1.5
    assert retry_after({"retry-after": "2"}) == 2.0
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480.0) == 10.0
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None


async def test_a_non_idempotent_request_is_not_resent_after_a_timeout(
    server: Scripted, client: HttpClient
) -> None:
    server.script = [slow(5.0)]
    with pytest.raises(ProviderTimeoutError, match="may have been carried out"):
        await client.request("POST", server.url, idempotent=False)
    assert len(server.seen) == 1  # it reached the server once: never twice


async def test_a_non_idempotent_request_is_not_resent_after_a_dropped_connection(
    server: Scripted, client: HttpClient
) -> None:
    server.script = [drop, reply(200, {"id": "x"})]
    with pytest.raises(ProviderConnectionError):
        await client.request("POST", server.url, idempotent=False)
    assert len(server.seen) == 1


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (503, {"Retry-After": "0"}),
        (429, {}),
        (408, {}),
        (409, {}),
        (502, {"x-should-retry": "true"}),
    ],
)
async def test_a_non_idempotent_request_is_retried_on_a_status_saying_it_was_not_carried_out(
    server: Scripted, client: HttpClient, status: int, headers: dict[str, str]
) -> None:
    server.script = [reply(status, {"error": "busy"}, headers), reply(200, {"id": "x"})]
    response = await client.request("POST", server.url, idempotent=False)
    assert response.body == {"id": "x"} and len(server.seen) == 2


async def test_a_refused_connection_is_retried_even_for_a_create() -> None:
    http = HttpClient("test", APIConnectOptions(max_retry=2, retry_interval=0.01, timeout=1.0))
    started = time.monotonic()
    with pytest.raises(ProviderConnectionError):
        await http.request("POST", "http://127.0.0.1:9/nothing", idempotent=False)
    await http.aclose()
    assert time.monotonic() - started >= 0.1  # waited between retries: it did retry


@pytest.mark.parametrize("key_at", [450, 480, 489])
async def test_a_key_straddling_the_cut_of_an_error_body_never_leaks_in_part(
    server: Scripted, client: HttpClient, key_at: int
) -> None:
    token = Secret("eyJhbGciOiJIUzI1NiJ9.the-avatars-livekit-jwt.signature")
    text = "x" * key_at + token.reveal() + " and more"
    server.script = [reply(400, {"echo": text})]  # no message field: the whole body is shown
    with pytest.raises(ProviderAPIError) as err:
        await client.request("POST", server.url, secrets=[token], idempotent=False)
    message = str(err.value)
    # not even a piece of it: redacted first, then cut
    assert all(token.reveal()[:n] not in message for n in range(8, len(token.reveal())))
    assert "eyJhbGci" not in message and len(err.value.body or "") < 600
