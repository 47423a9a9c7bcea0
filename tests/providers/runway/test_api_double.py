"""The Runway realtime-sessions API double, exercised over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import copy
import functools
import inspect
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from avatarkit_providers.runway.emulator import (
    RUNWAY_PRESETS,
    InvalidTransition,
    RunwayAPIServer,
    Session,
    SessionStatus,
    StateChange,
    is_public_host,
)

KEY = "key_test_7f3a9c1e5b2d4680"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.livekit-secret-grant.sig"
HEADERS = {"Authorization": f"Bearer {KEY}", "X-Runway-Version": "2024-11-06"}
TIMEOUT = aiohttp.ClientTimeout(total=5)
CUSTOM_AVATAR = "3f2b8c4e-9a1d-4e6f-8b7a-5c0d1e2f3a4b"

VALID: dict[str, Any] = {
    "model": "gwm1_avatars",
    "avatar": {"type": "runway-preset", "presetId": "cat-character"},
    "integration": {
        "type": "livekit",
        "url": "wss://demo.livekit.cloud",
        "token": TOKEN,
        "roomName": "room-1",
        "agentIdentity": "agent-1",
    },
}

FULL: dict[str, Any] = {
    **VALID,
    "maxDuration": 120,
    "personality": "A patient cooking teacher.",
    "startScript": "Hi! What are we cooking today?",
    "tools": [
        {
            "type": "client_event",
            "name": "show_recipe",
            "description": "Show a recipe card.",
            "parameters": [
                {"type": "string", "name": "dish", "description": "Dish", "enum": ["a", "b"]},
                {"type": "integer", "name": "servings", "description": "N", "required": True},
                {"type": "number", "name": "scale", "description": "Factor"},
                {"type": "boolean", "name": "vegan", "description": "Vegan?"},
                {"type": "array", "name": "tags", "description": "T", "items": {"type": "string"}},
                {"type": "object", "name": "meta", "description": "M", "properties": []},
            ],
        },
        {
            "type": "backend_rpc",
            "name": "_lookup_pantry2",
            "description": "Check what is in the pantry.",
            "timeoutSeconds": 7.5,
        },
    ],
}

CREATE_PATH = "/v1/realtime_sessions"


# -- helpers -----------------------------------------------------------------------


def changed(base: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with ``path`` set to ``value`` (deleted if value is DELETE)."""
    result = copy.deepcopy(base)
    target: Any = result
    for step in path[:-1]:
        target = target[step]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return result


DELETE = object()


def legacy_body() -> dict[str, Any]:
    body = changed(VALID, ("integration",), DELETE)
    spec = {k: v for k, v in VALID["integration"].items() if k != "type"}
    return {**body, "livekit": spec}


@pytest.fixture
async def make_server() -> AsyncIterator[Callable[..., Awaitable[RunwayAPIServer]]]:
    servers: list[RunwayAPIServer] = []

    async def make(**options: Any) -> RunwayAPIServer:
        options.setdefault("provisioning_delay", 0.05)
        server = RunwayAPIServer(options.pop("api_key", KEY), **options)
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.close()


@pytest.fixture
async def server(make_server: Callable[..., Awaitable[RunwayAPIServer]]) -> RunwayAPIServer:
    return await make_server()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=HEADERS, timeout=TIMEOUT) as session:
        yield session


async def call(
    client: aiohttp.ClientSession,
    server: RunwayAPIServer,
    method: str,
    path: str,
    **kwargs: Any,
) -> tuple[int, Any, Mapping[str, str]]:
    async with client.request(method, server.url + path, **kwargs) as resp:
        text = await resp.text()
        body: Any = text
        if resp.content_type == "application/json":
            body = await resp.json()
        return resp.status, body, resp.headers.copy()


async def create(
    client: aiohttp.ClientSession, server: RunwayAPIServer, body: Any = None
) -> tuple[int, Any]:
    status, data, _ = await call(client, server, "POST", CREATE_PATH, json=body or VALID)
    return status, data


async def created_id(
    client: aiohttp.ClientSession, server: RunwayAPIServer, body: Any = None
) -> str:
    status, data = await create(client, server, body)
    assert status == 200, data
    return str(data["id"])


async def fetch(client: aiohttp.ClientSession, server: RunwayAPIServer, sid: str) -> Any:
    status, data, _ = await call(client, server, "GET", f"{CREATE_PATH}/{sid}")
    assert status == 200, data
    return data


async def poll_until(
    client: aiohttp.ClientSession,
    server: RunwayAPIServer,
    sid: str,
    status: str,
    timeout: float = 3.0,
) -> Any:
    """GET the session until it reports ``status``, as a client would."""
    deadline = time.monotonic() + timeout
    while True:
        data = await fetch(client, server, sid)
        if data["status"] == status:
            return data
        assert time.monotonic() < deadline, f"still {data['status']}, wanted {status}"
        await asyncio.sleep(0.02)


# -- validation ----------------------------------------------------------------------


async def test_full_valid_body_is_accepted_and_stored(
    server: RunwayAPIServer, client: aiohttp.ClientSession
) -> None:
    status, data = await create(client, server, FULL)
    assert status == 200
    assert list(data) == ["id"]
    uuid.UUID(data["id"])
    session = server.session(data["id"])
    assert session.body == FULL
    assert session.max_duration == 120
    livekit = session.livekit
    assert livekit is not None
    assert (livekit.url, livekit.token, livekit.room_name, livekit.agent_identity) == (
        "wss://demo.livekit.cloud",
        TOKEN,
        "room-1",
        "agent-1",
    )
    assert livekit.legacy is False


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"model": "gwm1_avatars", "avatar": VALID["avatar"]}, id="no-integration"),
        pytest.param(
            changed(VALID, ("avatar",), {"type": "custom", "avatarId": CUSTOM_AVATAR}),
            id="custom-avatar",
        ),
        pytest.param(
            changed(
                VALID,
                ("integration",),
                {"type": "elevenlabs", "signedUrl": "wss://api.elevenlabs.io/v1/convai?sig=1"},
            ),
            id="elevenlabs",
        ),
        pytest.param(changed(VALID, ("integration", "agentIdentity"), DELETE), id="no-identity"),
        pytest.param(changed(VALID, ("maxDuration",), 1800), id="max-duration-limit"),
        # the schema lets both forms of the room be sent; the worker joins ``integration``'s
        pytest.param(
            {**legacy_body(), "integration": VALID["integration"]}, id="integration-and-livekit"
        ),
        pytest.param(
            changed(VALID, ("integration", "url"), "https://203.0.113.9.sslip.io:443"),
            id="https-public",
        ),
    ],
)
async def test_other_valid_bodies_are_accepted(
    server: RunwayAPIServer, client: aiohttp.ClientSession, body: dict[str, Any]
) -> None:
    status, data = await create(client, server, body)
    assert status == 200, data
    assert server.session(data["id"]).body == body


PRESET_OPTIONS = "Invalid option: expected one of " + "|".join(f'"{p}"' for p in RUNWAY_PRESETS)
NOT_PUBLIC = "Invalid URL: host must resolve to a public address"
BAD_SCHEME = "Invalid URL: expected a wss:// or https:// URL"
TOOL = {"type": "client_event", "name": "show", "description": "Show it."}
INVALID = [
    (
        "model-missing",
        changed(VALID, ("model",), DELETE),
        'Invalid input: expected "gwm1_avatars"',
        ["model"],
    ),
    (
        "model-wrong",
        changed(VALID, ("model",), "gen4_turbo"),
        'Invalid input: expected "gwm1_avatars"',
        ["model"],
    ),
    (
        "avatar-missing",
        changed(VALID, ("avatar",), DELETE),
        "Invalid input: expected object, received undefined",
        ["avatar"],
    ),
    (
        "avatar-type",
        changed(VALID, ("avatar", "type"), "photo"),
        'Invalid option: expected one of "runway-preset"|"custom"',
        ["avatar", "type"],
    ),
    (
        "preset-unknown",
        changed(VALID, ("avatar", "presetId"), "dragon"),
        PRESET_OPTIONS,
        ["avatar", "presetId"],
    ),
    (
        "custom-not-uuid",
        changed(VALID, ("avatar",), {"type": "custom", "avatarId": "my-avatar"}),
        "Invalid UUID",
        ["avatar", "avatarId"],
    ),
    (
        "avatar-extra-key",
        changed(VALID, ("avatar", "avatarId"), CUSTOM_AVATAR),
        "Unrecognized key: avatarId",
        ["avatar"],
    ),
    (
        "integration-type",
        changed(VALID, ("integration", "type"), "zoom"),
        'Invalid option: expected one of "livekit"|"elevenlabs"',
        ["integration", "type"],
    ),
    (
        "url-http",
        changed(VALID, ("integration", "url"), "http://demo.livekit.cloud"),
        BAD_SCHEME,
        ["integration", "url"],
    ),
    (
        "url-ws",
        changed(VALID, ("integration", "url"), "ws://demo.livekit.cloud"),
        BAD_SCHEME,
        ["integration", "url"],
    ),
    (
        "url-no-host",
        changed(VALID, ("integration", "url"), "wss://"),
        BAD_SCHEME,
        ["integration", "url"],
    ),
    (
        "token-missing",
        changed(VALID, ("integration", "token"), DELETE),
        "Invalid input: expected string, received undefined",
        ["integration", "token"],
    ),
    (
        "room-empty",
        changed(VALID, ("integration", "roomName"), ""),
        "Too small: expected string to have >=1 characters",
        ["integration", "roomName"],
    ),
    (
        "identity-number",
        changed(VALID, ("integration", "agentIdentity"), 5),
        "Invalid input: expected string, received number",
        ["integration", "agentIdentity"],
    ),
    (
        "integration-extra-key",
        changed(VALID, ("integration", "extra"), 1),
        "Unrecognized key: extra",
        ["integration"],
    ),
    (
        "signed-url-private",
        changed(VALID, ("integration",), {"type": "elevenlabs", "signedUrl": "wss://10.0.0.8/x"}),
        NOT_PUBLIC,
        ["integration", "signedUrl"],
    ),
    (
        "max-duration-too-big",
        changed(VALID, ("maxDuration",), 1801),
        "Too big: expected number to be <=1800",
        ["maxDuration"],
    ),
    (
        "max-duration-zero",
        changed(VALID, ("maxDuration",), 0),
        "Too small: expected number to be >=10",
        ["maxDuration"],
    ),
    (
        "max-duration-negative",
        changed(VALID, ("maxDuration",), -30),
        "Too small: expected number to be >=10",
        ["maxDuration"],
    ),
    (
        "max-duration-fraction",
        changed(VALID, ("maxDuration",), 1.5),
        "Invalid input: expected int, received number",
        ["maxDuration"],
    ),
    (
        "max-duration-string",
        changed(VALID, ("maxDuration",), "60"),
        "Invalid input: expected number, received string",
        ["maxDuration"],
    ),
    (
        "max-duration-bool",
        changed(VALID, ("maxDuration",), True),
        "Invalid input: expected number, received boolean",
        ["maxDuration"],
    ),
    (
        "personality-number",
        changed(VALID, ("personality",), 42),
        "Invalid input: expected string, received number",
        ["personality"],
    ),
    (
        "start-script-null",
        changed(VALID, ("startScript",), None),
        "Invalid input: expected string, received null",
        ["startScript"],
    ),
    (
        "tools-object",
        changed(VALID, ("tools",), TOOL),
        "Invalid input: expected array, received object",
        ["tools"],
    ),
    (
        "tool-type",
        changed(VALID, ("tools",), [{**TOOL, "type": "webhook"}]),
        'Invalid option: expected one of "client_event"|"backend_rpc"',
        ["tools", 0, "type"],
    ),
    (
        "tool-name-digit",
        changed(VALID, ("tools",), [{**TOOL, "name": "1st"}]),
        "Invalid string: must match pattern /^[a-zA-Z_][a-zA-Z0-9_]*$/",
        ["tools", 0, "name"],
    ),
    (
        "tool-name-dash",
        changed(VALID, ("tools",), [{**TOOL, "name": "get-weather"}]),
        "Invalid string: must match pattern /^[a-zA-Z_][a-zA-Z0-9_]*$/",
        ["tools", 0, "name"],
    ),
    (
        "tool-no-description",
        changed(VALID, ("tools",), [{"type": "client_event", "name": "x"}]),
        "Invalid input: expected string, received undefined",
        ["tools", 0, "description"],
    ),
    (
        "client-event-timeout",
        changed(VALID, ("tools",), [{**TOOL, "timeoutSeconds": 5}]),
        "Unrecognized key: timeoutSeconds",
        ["tools", 0],
    ),
    (
        "rpc-timeout-string",
        changed(VALID, ("tools",), [{**TOOL, "type": "backend_rpc", "timeoutSeconds": "5"}]),
        "Invalid input: expected number, received string",
        ["tools", 0, "timeoutSeconds"],
    ),
    (
        "parameter-type",
        changed(
            VALID,
            ("tools",),
            [{**TOOL, "parameters": [{"type": "date", "name": "d", "description": "D"}]}],
        ),
        'Invalid option: expected one of "string"|"integer"|"number"|"boolean"|"array"|"object"',
        ["tools", 0, "parameters", 0, "type"],
    ),
    (
        "array-parameter-no-items",
        changed(
            VALID,
            ("tools",),
            [{**TOOL, "parameters": [{"type": "array", "name": "a", "description": "A"}]}],
        ),
        "Invalid input: expected object, received undefined",
        ["tools", 0, "parameters", 0, "items"],
    ),
    (
        "integer-parameter-enum",
        changed(
            VALID,
            ("tools",),
            [
                {
                    **TOOL,
                    "parameters": [
                        {"type": "integer", "name": "n", "description": "N", "enum": ["1"]}
                    ],
                }
            ],
        ),
        "Unrecognized key: enum",
        ["tools", 0, "parameters", 0],
    ),
    ("unknown-key", changed(VALID, ("voice",), "warm"), "Unrecognized key: voice", []),
    ("unknown-keys", {**VALID, "voice": "warm", "fps": 30}, "Unrecognized keys: voice, fps", []),
    ("body-array", [VALID], "Invalid input: expected object, received array", []),
    (
        "legacy-with-type",
        changed(legacy_body(), ("livekit", "type"), "livekit"),
        "Unrecognized key: type",
        ["livekit"],
    ),
]


@pytest.mark.parametrize(
    ("body", "message", "path"),
    [pytest.param(body, message, path, id=name) for name, body, message, path in INVALID],
)
async def test_invalid_body_is_rejected_with_the_api_message(
    server: RunwayAPIServer,
    client: aiohttp.ClientSession,
    body: Any,
    message: str,
    path: list[str | int],
) -> None:
    status, data, _ = await call(client, server, "POST", CREATE_PATH, json=body)
    assert status == 400
    assert data["error"] == message
    assert data["issues"][0] == {
        "code": data["issues"][0]["code"],
        "path": path,
        "message": message,
    }
    assert server.sessions == {}
    assert server.requests_for("create")[-1].error == message


# -- every limit of Runway's OpenAPI schema, just inside and just outside ------------------
# Source: runwayml/openapi, openapi.json at commit 032445ba2896ba05df86b5e0655e49a231876ae2,
# paths["/v1/realtime_sessions"].post.requestBody. Numbers written out, not imported.

EMOJI = "\U0001f600"  # two UTF-16 code units, so zod counts it twice
PARAM: dict[str, Any] = {"type": "string", "name": "query", "description": "What."}
RPC: dict[str, Any] = {
    "type": "backend_rpc",
    "name": "lookup",
    "description": "Look it up.",
    "parameters": [PARAM],
}
LIMIT_BASE: dict[str, Any] = {**VALID, "tools": [RPC]}
P0: tuple[str | int, ...] = ("tools", 0, "parameters", 0)


def too_small(n: int, what: str = "string", unit: str = "characters") -> str:
    return f"Too small: expected {what} to have >={n} {unit}"


def too_big(n: int, what: str = "string", unit: str = "characters") -> str:
    return f"Too big: expected {what} to have <={n} {unit}"


def many(n: int, make: Callable[[int], Any]) -> list[Any]:
    return [make(i) for i in range(n)]


PATTERN = "Invalid string: must match pattern /^[a-zA-Z_][a-zA-Z0-9_]*$/"
# (id, path in LIMIT_BASE, value just inside, value just outside, error, issue path)
LIMITS: list[tuple[str, tuple[str | int, ...], Any, Any, str, tuple[str | int, ...]]] = [
    ("max-duration-min", ("maxDuration",), 10, 9, "Too small: expected number to be >=10", ()),
    ("max-duration-max", ("maxDuration",), 1800, 1801, "Too big: expected number to be <=1800", ()),
    ("personality-min", ("personality",), "x", "", too_small(1), ()),
    ("personality-max", ("personality",), "x" * 10_000, "x" * 10_001, too_big(10_000), ()),
    (
        "personality-utf16",
        ("personality",),
        EMOJI * 5_000,
        EMOJI * 5_000 + "x",
        too_big(10_000),
        (),
    ),
    ("start-script-min", ("startScript",), "x", "", too_small(1), ()),
    ("start-script-max", ("startScript",), "x" * 2_000, "x" * 2_001, too_big(2_000), ()),
    (
        "tools-count",
        ("tools",),
        many(20, lambda i: {**RPC, "name": f"t{i}"}),
        many(21, lambda i: {**RPC, "name": f"t{i}"}),
        too_big(20, "array", "items"),
        (),
    ),
    ("tool-name-max", ("tools", 0, "name"), "n" * 64, "n" * 65, too_big(64), ()),
    ("tool-name-min", ("tools", 0, "name"), "n", "", too_small(1), ()),
    ("tool-name-pattern", ("tools", 0, "name"), "_Tool_9", "9_tool", PATTERN, ()),
    (
        "tool-description-max",
        ("tools", 0, "description"),
        "d" * 1024,
        "d" * 1025,
        too_big(1024),
        (),
    ),
    ("tool-description-min", ("tools", 0, "description"), "d", "", too_small(1), ()),
    (
        "timeout-min",
        ("tools", 0, "timeoutSeconds"),
        1,
        0.99,
        "Too small: expected number to be >=1",
        (),
    ),
    (
        "timeout-max",
        ("tools", 0, "timeoutSeconds"),
        8,
        8.01,
        "Too big: expected number to be <=8",
        (),
    ),
    (
        "parameters-count",
        ("tools", 0, "parameters"),
        many(20, lambda i: {**PARAM, "name": f"p{i}"}),
        many(21, lambda i: {**PARAM, "name": f"p{i}"}),
        too_big(20, "array", "items"),
        (),
    ),
    ("parameter-name-max", (*P0, "name"), "p" * 64, "p" * 65, too_big(64), ()),
    ("parameter-name-min", (*P0, "name"), "p", "", too_small(1), ()),
    ("parameter-name-pattern", (*P0, "name"), "_p1", "p-1", PATTERN, ()),
    ("parameter-description-max", (*P0, "description"), "d" * 1024, "d" * 1025, too_big(1024), ()),
    ("parameter-description-min", (*P0, "description"), "d", "", too_small(1), ()),
    (
        "parameter-required-boolean",
        (*P0, "required"),
        False,
        "yes",
        "Invalid input: expected boolean, received string",
        (),
    ),
    (
        "enum-count",
        (*P0, "enum"),
        many(20, str),
        many(21, str),
        too_big(20, "array", "items"),
        (),
    ),
    ("enum-value-max", (*P0, "enum"), ["", "v" * 64], ["v" * 65], too_big(64), (*P0, "enum", 0)),
    (
        "array-items-type",
        P0,
        {**PARAM, "type": "array", "items": {"type": "boolean"}},
        {**PARAM, "type": "array", "items": {"type": "object"}},
        'Invalid option: expected one of "string"|"integer"|"number"|"boolean"',
        (*P0, "items", "type"),
    ),
    (
        "object-properties-count",
        P0,
        {**PARAM, "type": "object", "properties": many(20, lambda i: {"name": f"f{i}"})},
        {**PARAM, "type": "object", "properties": many(21, lambda i: {"name": f"f{i}"})},
        too_big(20, "array", "items"),
        (*P0, "properties"),
    ),
    (
        "object-properties-required",
        P0,
        {**PARAM, "type": "object", "properties": []},
        {**PARAM, "type": "object"},
        "Invalid input: expected array, received undefined",
        (*P0, "properties"),
    ),
    (
        "tool-names-unique",
        ("tools",),
        [RPC, {**RPC, "name": "other"}],
        [RPC, RPC],
        "Tool names must be unique: 'lookup' is also tools[0]",
        ("tools", 1, "name"),
    ),
    ("token-max", ("integration", "token"), "t" * 2048, "t" * 2049, too_big(2048), ()),
    ("token-min", ("integration", "token"), "t", "", too_small(1), ()),
    ("room-name-max", ("integration", "roomName"), "r" * 256, "r" * 257, too_big(256), ()),
    ("room-name-min", ("integration", "roomName"), "r", "", too_small(1), ()),
    (
        "agent-identity-max",
        ("integration", "agentIdentity"),
        "a" * 256,
        "a" * 257,
        too_big(256),
        (),
    ),
    ("agent-identity-min", ("integration", "agentIdentity"), "a", "", too_small(1), ()),
    (
        "avatar-id-version",
        ("avatar",),
        {"type": "custom", "avatarId": "3F2B8C1E-2D4A-4B7E-BC1A-5E6F7A8B9C0D"},
        {"type": "custom", "avatarId": "3f2b8c1e-2d4a-1b7e-9c1a-5e6f7a8b9c0d"},
        "Invalid UUID",
        ("avatar", "avatarId"),
    ),
    (
        "avatar-id-variant",
        ("avatar",),
        {"type": "custom", "avatarId": "3f2b8c1e-2d4a-4b7e-8c1a-5e6f7a8b9c0d"},
        {"type": "custom", "avatarId": "3f2b8c1e-2d4a-4b7e-cc1a-5e6f7a8b9c0d"},
        "Invalid UUID",
        ("avatar", "avatarId"),
    ),
    (
        "preset-enum",
        ("avatar", "presetId"),
        "cooking-teacher",
        "space-pirate",
        PRESET_OPTIONS,
        (),
    ),
]


@pytest.mark.parametrize(
    ("path", "inside", "outside", "message", "issue_path"),
    [pytest.param(*case[1:], id=case[0]) for case in LIMITS],
)
async def test_each_schema_limit_holds_at_the_emulator(
    server: RunwayAPIServer,
    client: aiohttp.ClientSession,
    path: tuple[str | int, ...],
    inside: Any,
    outside: Any,
    message: str,
    issue_path: tuple[str | int, ...],
) -> None:
    status, data = await create(client, server, changed(LIMIT_BASE, path, inside))
    assert status == 200, data
    status, data = await create(client, server, changed(LIMIT_BASE, path, outside))
    assert status == 400, data
    assert data["error"] == message
    assert data["issues"][0]["message"] == message
    assert data["issues"][0]["path"] == list(issue_path or path)
    assert len(server.sessions) == 1


@pytest.mark.parametrize("field", ["roomName", "token", "agentIdentity"])
async def test_the_legacy_livekit_form_has_the_same_limits(
    server: RunwayAPIServer, client: aiohttp.ClientSession, field: str
) -> None:
    limit = {"roomName": 256, "token": 2048, "agentIdentity": 256}[field]
    inside = changed(legacy_body(), ("livekit", field), "x" * limit)
    outside = changed(legacy_body(), ("livekit", field), "x" * (limit + 1))
    assert (await create(client, server, inside))[0] == 200
    status, data = await create(client, server, outside)
    assert (status, data["error"]) == (400, too_big(limit))
    assert data["issues"][0]["path"] == ["livekit", field]


@pytest.mark.parametrize("preset", RUNWAY_PRESETS)
async def test_every_preset_of_the_schema_is_accepted(
    server: RunwayAPIServer, client: aiohttp.ClientSession, preset: str
) -> None:
    assert (await create(client, server, changed(VALID, ("avatar", "presetId"), preset)))[0] == 200


@pytest.mark.parametrize(
    "url",
    [
        "wss://localhost",
        "wss://localhost:7880",
        "wss://127.0.0.1:7880",
        "wss://127.1",
        "wss://10.1.2.3",
        "wss://172.16.5.4",
        "wss://192.168.0.10",
        "wss://169.254.169.254",
        "wss://[::1]:7880",
        "wss://[::ffff:10.0.0.1]",
        "wss://[fd00::1]",
        "wss://livekit.local",
        "wss://app.localhost",
        "wss://livekit",
        "https://0.0.0.0",
    ],
)
async def test_private_livekit_hosts_are_rejected(
    server: RunwayAPIServer, client: aiohttp.ClientSession, url: str
) -> None:
    status, data = await create(client, server, changed(VALID, ("integration", "url"), url))
    assert status == 400
    assert data["error"] == NOT_PUBLIC
    assert data["issues"][0]["path"] == ["integration", "url"]


async def test_allow_private_livekit_urls_accepts_a_local_server(
    make_server: Callable[..., Awaitable[RunwayAPIServer]], client: aiohttp.ClientSession
) -> None:
    server = await make_server(allow_private_livekit_urls=True)
    for url in ("ws://127.0.0.1:7880", "wss://localhost:7881", "http://livekit.local"):
        status, data = await create(client, server, changed(VALID, ("integration", "url"), url))
        assert status == 200, (url, data)
    status, data = await create(
        client, server, changed(VALID, ("integration", "url"), "ftp://127.0.0.1")
    )
    assert (status, data["error"]) == (400, BAD_SCHEME)


@pytest.mark.parametrize(
    ("host", "public"),
    [
        ("demo.livekit.cloud", True),
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("LOCALHOST", False),
        ("127.0.0.1", False),
        ("100.64.0.1", False),
        ("example.internal", False),
        ("0x7f.1", False),
        ("1.2.3.4.5", False),
        ("", False),
    ],
)
def test_is_public_host(host: str, public: bool) -> None:
    assert is_public_host(host) is public


async def test_malformed_and_empty_bodies(
    server: RunwayAPIServer, client: aiohttp.ClientSession
) -> None:
    status, data, _ = await call(
        client,
        server,
        "POST",
        CREATE_PATH,
        data=b'{"model": ',
        headers={"Content-Type": "application/json"},
    )
    assert (status, data) == (400, {"error": "Invalid JSON in request body"})
    status, data, _ = await call(client, server, "POST", CREATE_PATH, data=b"")
    assert status == 400
    assert data["error"] == "Invalid input: expected object, received undefined"
    assert server.sessions == {}


async def test_legacy_livekit_key_is_accepted_by_default(
    server: RunwayAPIServer, client: aiohttp.ClientSession
) -> None:
    sid = await created_id(client, server, legacy_body())
    livekit = server.session(sid).livekit
    assert livekit is not None
    assert livekit.legacy is True
    assert (livekit.url, livekit.token, livekit.room_name) == (
        "wss://demo.livekit.cloud",
        TOKEN,
        "room-1",
    )


async def test_legacy_livekit_key_rejected_like_issue_5547(
    make_server: Callable[..., Awaitable[RunwayAPIServer]], client: aiohttp.ClientSession
) -> None:
    server = await make_server(reject_legacy_livekit=True)
    status, data = await create(client, server, legacy_body())
    assert status == 400
    assert data["error"] == "Unrecognized key: livekit"
    # The supported form still works on the same server.
    assert (await create(client, server, VALID))[0] == 200
    assert len(server.sessions) == 1


async def test_custom_avatar_ids_restrict_custom_avatars(
    make_server: Callable[..., Awaitable[RunwayAPIServer]], client: aiohttp.ClientSession
) -> None:
    server = await make_server(custom_avatar_ids=[CUSTOM_AVATAR])
    known = changed(VALID, ("avatar",), {"type": "custom", "avatarId": CUSTOM_AVATAR})
    unknown = changed(known, ("avatar", "avatarId"), str(uuid.uuid4()))
    assert (await create(client, server, known))[0] == 200
    status, data = await create(client, server, unknown)
    assert (status, data["error"]) == (400, "Avatar not found")


# -- headers -----------------------------------------------------------------------

ROUTE_CALLS = [("POST", CREATE_PATH), ("GET", f"{CREATE_PATH}/x"), ("DELETE", f"{CREATE_PATH}/x")]


@pytest.mark.parametrize(("method", "path"), ROUTE_CALLS, ids=["create", "get", "delete"])
@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        pytest.param(
            {"X-Runway-Version": "2024-11-06"}, 401, "Missing Authorization header", id="no-auth"
        ),
        pytest.param(
            {**HEADERS, "Authorization": "Bearer key_wrong"}, 401, "Invalid API key", id="wrong-key"
        ),
        pytest.param(
            {**HEADERS, "Authorization": f"Basic {KEY}"},
            401,
            "Invalid Authorization header: expected Bearer",
            id="basic",
        ),
        pytest.param(
            {"Authorization": "Bearer key_wrong"}, 401, "Invalid API key", id="auth-before-version"
        ),
        pytest.param(
            {"Authorization": f"Bearer {KEY}"},
            400,
            "Missing X-Runway-Version header",
            id="no-version",
        ),
        pytest.param(
            {**HEADERS, "X-Runway-Version": "2023-09-06"},
            400,
            "Invalid X-Runway-Version header; supported: 2024-11-06",
            id="old-version",
        ),
    ],
)
async def test_auth_and_version_headers_are_enforced(
    server: RunwayAPIServer,
    method: str,
    path: str,
    headers: dict[str, str],
    status: int,
    message: str,
) -> None:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as bare:
        got, data, _ = await call(bare, server, method, path, headers=headers, json=VALID)
    assert (got, data) == (status, {"error": message})
    assert server.sessions == {}


async def test_any_of_several_api_keys_is_accepted(
    make_server: Callable[..., Awaitable[RunwayAPIServer]],
) -> None:
    server = await make_server(api_key=["key_one", "key_two"])
    async with aiohttp.ClientSession(timeout=TIMEOUT) as bare:
        for key in ("key_one", "key_two"):
            headers = {**HEADERS, "Authorization": f"Bearer {key}"}
            status, _, _ = await call(
                bare, server, "POST", CREATE_PATH, headers=headers, json=VALID
            )
            assert status == 200
    assert len(server.sessions) == 2


async def test_unknown_paths_and_methods_answer_json(
    server: RunwayAPIServer, client: aiohttp.ClientSession
) -> None:
    status, data, _ = await call(client, server, "GET", "/v1/tasks")
    assert (status, data) == (404, {"error": "Not Found"})
    status, data, headers = await call(client, server, "PUT", CREATE_PATH)
    assert (status, data) == (405, {"error": "Method Not Allowed"})
    assert "POST" in headers["Allow"]


# -- state machine ---------------------------------------------------------------------


async def test_session_walks_the_happy_path_through_get(
    make_server: Callable[..., Awaitable[RunwayAPIServer]], client: aiohttp.ClientSession
) -> None:
    server = await make_server(provisioning_delay=0.3)
    sid = await created_id(client, server)
    first = await fetch(client, server, sid)
    assert first == {
        "id": sid,
        "createdAt": first["createdAt"],
        "status": "NOT_READY",
        "queued": False,
    }
    assert first["createdAt"].endswith("Z") and len(first["createdAt"]) == 24

    ready = await poll_until(client, server, sid, "READY")
    assert set(ready) == {"id", "createdAt", "status", "sessionKey", "expiresAt"}
    assert ready["sessionKey"] and ready["expiresAt"] > ready["createdAt"]

    server.mark_running(sid)
    running = await fetch(client, server, sid)
    assert running == {"id": sid, "createdAt": first["createdAt"], "status": "RUNNING"}

    server.complete(sid, duration=42.4)
    done = await fetch(client, server, sid)
    assert done == {
        "id": sid,
        "createdAt": first["createdAt"],
        "status": "COMPLETED",
        "duration": 42,  # whole seconds: an integer in Runway's schema
    }
    session = server.session(sid)
    assert session.statuses == [
        SessionStatus.NOT_READY,
        SessionStatus.READY,
        SessionStatus.RUNNING,
        SessionStatus.COMPLETED,
    ]
    assert [c.reason for c in session.history] == ["created", "provisioned", "control", "control"]
    ready_at = session.history[1].at - session.history[0].at
    assert 0.28 <= ready_at < 1.0


async def test_complete_defaults_duration_to_time_since_creation(
    server: RunwayAPIServer, client: aiohttp.ClientSession
) -> None:
    sid = await created_id(client, server)
    await server.wait_for_status(sid, SessionStatus.READY, timeout=2)
    await asyncio.sleep(0.15)
    server.complete(sid)
    duration = server.session(sid).duration
    assert duration is not None and 0.19 <= duration < 1.0
    assert (await fetch(client, server, sid))["duration"] == round(duration)


async def test_queued_then_provisioning_then_ready(
    make_server: Callable[..., Awaitable[RunwayAPIServer]], client: aiohttp.ClientSession
) -> None:
    server = await make_server(queue_delay=0.2, provisioning_delay=0.4)
    sid = await created_id(client, server)
    assert (await fetch(client, server, sid))["queued"] is True
    await asyncio.sleep(0.35)
    provisioning = await fetch(client, server, sid)
    assert (provisioning["status"], provisioning["queued"]) == ("NOT_READY", False)
    await poll_until(client, server, sid, "READY")


async def test_runtime_cap_completes_running_session_and_is_not_reset_by_running(
    make_server: Callable[..., Awaitable[RunwayAPIServer]], client: aiohttp.ClientSession
) -> None:
    server = await make_server(provisioning_delay=0.05, runtime_cap=0.3)
    sid = await created_id(client, server, changed(VALID, ("maxDuration",), 1800))
    await server.wait_for_status(sid, SessionStatus.READY, timeout=2)
    await asyncio.sleep(0.2)
    server.mark_running(sid)
    done = await poll_until(client, server, sid, "COMPLETED")
    session = server.session(sid)
    ready, completed = session.history[1], session.history[-1]
    assert completed.reason == "runtime_cap"
    assert completed.previous is SessionStatus.RUNNING
    # Counted from READY: a cap restarted at RUNNING would end ~0.5 s after READY.
    assert 0.29 <= completed.at - ready.at < 0.45
    # counted from creation; whole seconds in the answer
    assert session.duration is not None and 0.33 <= session.duration < 1.0
    assert done["duration"] == round(session.duration)
    assert server.active_sessions() == []


async def test_runtime_cap_also_ends_a_session_left_ready(
    make_server: Callable[..., Awaitable[RunwayAPIServer]], client: aiohttp.ClientSession
) -> None:
    server = await make_server(provisioning_delay=0.05, runtime_cap=0.15)
    sid = await created_id(client, server)
    ready = await poll_until(client, server, sid, "READY")
    done = await poll_until(client, server, sid, "COMPLETED")
    assert done["createdAt"] == ready["createdAt"]
    assert server.session(sid).history[-1].previous is SessionStatus.READY


async def test_max_duration_ends_the_session_before_the_cap(
    make_server: Callable[..., Awaitable[RunwayAPIServer]], client: aiohttp.ClientSession
) -> None:
    server = await make_server(runtime_cap=30, max_duration_scale=0.02)
    sid = await created_id(client, server, changed(VALID, ("maxDuration",), 10))
    session = await server.wait_for_status(sid, SessionStatus.READY, timeout=2)
    server.mark_running(sid)
    assert session.expires_at is not None
    assert (session.expires_at - session.history[1].timestamp).total_seconds() == pytest.approx(
        0.2, abs=0.01
    )
    await poll_until(client, server, sid, "COMPLETED")
    assert session.history[-1].reason == "max_duration"
    assert 0.19 <= session.history[-1].at - session.history[1].at < 0.4


async def test_fail_and_cancel_control_methods_show_through_get(
    server: RunwayAPIServer, client: aiohttp.ClientSession
) -> None:
    failing = await created_id(client, server)
    server.fail(failing, "INTERNAL.AVATAR_CRASHED", "The avatar worker crashed.")
    assert await fetch(client, server, failing) == {
        "id": failing,
        "createdAt": server.session(failing).to_json()["createdAt"],
        "status": "FAILED",
        "failure": "The avatar worker crashed.",
        "failureCode": "INTERNAL.AVATAR_CRASHED",
    }
    cancelled = await created_id(client, server)
    await server.wait_for_status(cancelled, SessionStatus.READY, timeout=2)
    server.mark_running(cancelled)
    server.cancel(cancelled)
    assert set(await fetch(client, server, cancelled)) == {"id", "createdAt", "status"}
    assert (await fetch(client, server, cancelled))["status"] == "CANCELLED"


async def test_invalid_transitions_raise(
    server: RunwayAPIServer, client: aiohttp.ClientSession
) -> None:
    sid = await created_id(client, server)
    with pytest.raises(InvalidTransition):
        server.mark_running(sid)  # still NOT_READY
    with pytest.raises(InvalidTransition):
        server.complete(sid)
    server.cancel(sid)
    for control in (server.cancel, server.mark_ready, server.complete):
        with pytest.raises(InvalidTransition):
            control(sid)
    with pytest.raises(InvalidTransition):
        server.fail(sid, "X")
    with pytest.raises(KeyError):
        server.session("nope")
    assert server.session(sid).status is SessionStatus.CANCELLED


async def test_wait_for_status_times_out(
    server: RunwayAPIServer, client: aiohttp.ClientSession
) -> None:
    server.faults.next_session(never_ready=True)
    sid = await created_id(client, server)
    with pytest.raises(TimeoutError):
        await server.wait_for_status(sid, SessionStatus.READY, timeout=0.1)


# -- DELETE ----------------------------------------------------------------------------


async def test_delete_cancels_an_active_session(
    server: RunwayAPIServer, client: aiohttp.ClientSession
) -> None:
    provisioning = await created_id(client, server)
    running = await created_id(client, server)
    await server.wait_for_status(running, SessionStatus.READY, timeout=2)
    server.mark_running(running)
    for sid in (provisioning, running):
        status, body, _ = await call(client, server, "DELETE", f"{CREATE_PATH}/{sid}")
        assert (status, body) == (204, "")
        assert (await fetch(client, server, sid))["status"] == "CANCELLED"
        assert server.session(sid).history[-1].reason == "delete"
    assert server.active_sessions() == []


async def test_delete_of_an_ended_session_is_a_204_no_op(
    server: RunwayAPIServer, client: aiohttp.ClientSession
) -> None:
    sid = await created_id(client, server)
    await server.wait_for_status(sid, SessionStatus.READY, timeout=2)
    server.complete(sid, duration=3.0)
    status, _, _ = await call(client, server, "DELETE", f"{CREATE_PATH}/{sid}")
    assert status == 204
    assert await fetch(client, server, sid) == {
        "id": sid,
        "createdAt": server.session(sid).to_json()["createdAt"],
        "status": "COMPLETED",
        "duration": 3.0,
    }
    cancelled = await created_id(client, server)
    for _ in range(2):
        status, _, _ = await call(client, server, "DELETE", f"{CREATE_PATH}/{cancelled}")
        assert status == 204
    assert server.session(cancelled).statuses.count(SessionStatus.CANCELLED) == 1


async def test_delete_of_an_ended_session_can_answer_an_error(
    make_server: Callable[..., Awaitable[RunwayAPIServer]], client: aiohttp.ClientSession
) -> None:
    server = await make_server(ended_delete_status=409)
    sid = await created_id(client, server)
    server.fail(sid, "INTERNAL")
    status, data, _ = await call(client, server, "DELETE", f"{CREATE_PATH}/{sid}")
    assert (status, data) == (409, {"error": "Realtime session is not active"})
    assert server.session(sid).status is SessionStatus.FAILED


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_unknown_session_id_is_404(
    server: RunwayAPIServer, client: aiohttp.ClientSession, method: str
) -> None:
    status, data, _ = await call(client, server, method, f"{CREATE_PATH}/{uuid.uuid4()}")
    assert (status, data) == (404, {"error": "Not found"})


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize(
    "session_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid", "X" * 36]
)
async def test_a_session_id_that_is_not_a_v4_uuid_is_400(
    server: RunwayAPIServer, client: aiohttp.ClientSession, method: str, session_id: str
) -> None:
    # the nil UUID is not a v4 UUID: a probe with it gets a 400, not a 404
    status, data, _ = await call(
        client, server, method, f"{CREATE_PATH}/{session_id}", headers=HEADERS
    )
    assert status == 400, data
    assert data["error"] == "Invalid UUID"


async def test_the_runway_check_probes_with_a_valid_v4_uuid(server: RunwayAPIServer) -> None:
    import avatarkit

    avatar = avatarkit.get("runway", preset_id="influencer", api_key=KEY, api_url=server.url)
    assert await avatar.backend.check() == f"API key accepted by {server.url}"
    (probe,) = [r for r in server.requests if r.method == "GET"]
    assert uuid.UUID(probe.path.rsplit("/", 1)[1]).version == 4
    await avatar.aclose()


# -- HTTP faults -----------------------------------------------------------------------


async def test_status_fault_hits_its_route_the_given_number_of_times(
    server: RunwayAPIServer, client: aiohttp.ClientSession
) -> None:
    sid = await created_id(client, server)
    server.faults.next(route="create", times=2, status=503)
    statuses = []
    for _ in range(3):
        status, _ = await create(client, server)
        statuses.append(status)
        # Other routes are untouched by a create fault.
        await fetch(client, server, sid)
    assert statuses == [503, 503, 200]
    records = server.requests_for("create")
    assert [r.status for r in records] == [200, 503, 503, 200]
    assert records[1].fault is not None and records[1].fault.status == 503
    assert records[1].error == "Service Unavailable"
    assert len(server.sessions) == 2
    assert server.faults.pending == 0


async def test_fault_bodies_json_default_custom_and_raw(
    server: RunwayAPIServer, client: aiohttp.ClientSession
) -> None:
    server.faults.next(route="get", status=500)
    server.faults.next(route="get", status=500, body={"error": "boom", "code": "E1"})
    server.faults.next(route="get", status=502, body="<html>Bad gateway</html>")
    path = f"{CREATE_PATH}/{uuid.uuid4()}"
    assert (await call(client, server, "GET", path))[:2] == (
        500,
        {"error": "Internal Server Error"},
    )
    assert (await call(client, server, "GET", path))[:2] == (500, {"error": "boom", "code": "E1"})
    status, text, headers = await call(client, server, "GET", path)
    assert (status, text) == (502, "<html>Bad gateway</html>")
    assert headers["Content-Type"].startswith("text/plain")


async def test_rate_limit_faults_carry_retry_headers(
    server: RunwayAPIServer, client: aiohttp.ClientSession
) -> None:
    server.faults.next(route="create", status=429, retry_after=2)
    server.faults.next(route="create", status=429, retry_after_ms=250)
    server.faults.next(route="create", status=429, retry_after="Wed, 21 Oct 2026 07:28:00 GMT")
    status, data, headers = await call(client, server, "POST", CREATE_PATH, json=VALID)
    assert (status, data, headers["Retry-After"]) == (429, {"error": "Too Many Requests"}, "2")
    assert "retry-after-ms" not in headers
    status, _, headers = await call(client, server, "POST", CREATE_PATH, json=VALID)
    assert (status, headers["retry-after-ms"]) == (429, "250")
    assert "Retry-After" not in headers
    _, _, headers = await call(client, server, "POST", CREATE_PATH, json=VALID)
    assert headers["Retry-After"] == "Wed, 21 Oct 2026 07:28:00 GMT"


async def test_should_retry_header_on_error_and_on_success(
    server: RunwayAPIServer, client: aiohttp.ClientSession
) -> None:
    server.faults.next(route="create", status=500, should_retry=False)
    server.faults.next(route="create", status=400, should_retry=True, headers={"X-Trace": "t1"})
    server.faults.next(route="create", should_retry=False)
    status, _, headers = await call(client, server, "POST", CREATE_PATH, json=VALID)
    assert (status, headers["x-should-retry"]) == (500, "false")
    status, _, headers = await call(client, server, "POST", CREATE_PATH, json=VALID)
    assert (status, headers["x-should-retry"], headers["X-Trace"]) == (400, "true", "t1")
    # Without a status the request is handled normally and only gains the header.
    status, data, headers = await call(client, server, "POST", CREATE_PATH, json=VALID)
    assert (status, headers["x-should-retry"]) == (200, "false")
    assert list(server.sessions) == [data["id"]]


async def test_slow_response_delays_the_answer(
    server: RunwayAPIServer, client: aiohttp.ClientSession
) -> None:
    server.faults.next(route="create", delay=0.3)
    server.faults.next(route="get", delay=0.2, status=503)
    started = time.monotonic()
    status, data = await create(client, server)
    assert status == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    status, _, _ = await call(client, server, "GET", f"{CREATE_PATH}/{data['id']}")
    assert status == 503
    assert time.monotonic() - started >= 0.2


async def test_slow_response_trips_a_client_timeout_but_the_session_exists(
    server: RunwayAPIServer, client: aiohttp.ClientSession
) -> None:
    server.faults.next(route="create", delay=0.5)
    with pytest.raises(asyncio.TimeoutError):
        await call(
            client,
            server,
            "POST",
            CREATE_PATH,
            json=VALID,
            timeout=aiohttp.ClientTimeout(total=0.1),
        )
    # The work was done; only the answer was late: the client now has an orphan session.
    assert len(server.active_sessions()) == 1


async def test_dropped_connection(server: RunwayAPIServer, client: aiohttp.ClientSession) -> None:
    sid = await created_id(client, server)
    # aiohttp retries an idempotent request once when the server disconnects, so two
    # drops are needed before a GET fails on the client side.
    server.faults.next(route="get", drop=True, times=2)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await fetch(client, server, sid)
    dropped = server.requests_for("get")
    assert [r.status for r in dropped] == [None, None]
    assert all(r.fault is not None and r.fault.drop for r in dropped)
    # A single drop is absorbed by that retry; the records show both attempts.
    server.faults.next(route="get", drop=True)
    assert (await fetch(client, server, sid))["id"] == sid
    assert [r.status for r in server.requests_for("get")] == [None, None, None, 200]


async def test_dropped_create_with_and_without_processing(
    server: RunwayAPIServer, client: aiohttp.ClientSession
) -> None:
    server.faults.next(route="create", drop=True, delay=0.05)
    with pytest.raises(aiohttp.ClientConnectionError):
        await create(client, server)
    assert server.sessions == {}
    server.faults.next(route="create", drop=True, process_first=True)
    with pytest.raises(aiohttp.ClientConnectionError):
        await create(client, server)
    # The response was lost after the session was created.
    assert len(server.active_sessions()) == 1
    assert server.requests_for("create")[-1].session_id == server.active_sessions()[0].id


async def test_lost_delete_response_still_cancels(
    server: RunwayAPIServer, client: aiohttp.ClientSession
) -> None:
    sid = await created_id(client, server)
    server.faults.next(route="delete", status=502, process_first=True)
    status, _, _ = await call(client, server, "DELETE", f"{CREATE_PATH}/{sid}")
    assert status == 502
    assert server.session(sid).status is SessionStatus.CANCELLED


async def test_persistent_and_any_route_faults_until_cleared(
    server: RunwayAPIServer, client: aiohttp.ClientSession
) -> None:
    server.faults.next(times=None, status=500)
    for method, path in ROUTE_CALLS:
        assert (await call(client, server, method, path, json=VALID))[0] == 500
    assert (await create(client, server))[0] == 500
    assert server.faults.pending == 1
    server.faults.clear()
    assert (await create(client, server))[0] == 200


async def test_faults_answer_before_authentication(server: RunwayAPIServer) -> None:
    server.faults.next(route="create", status=503)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as bare:
        status, _, _ = await call(bare, server, "POST", CREATE_PATH, json=VALID)
        assert status == 503
        status, _, _ = await call(bare, server, "POST", CREATE_PATH, json=VALID)
        assert status == 401


def test_fault_arguments_are_checked() -> None:
    server = RunwayAPIServer(KEY)
    with pytest.raises(ValueError, match="unknown route"):
        server.faults.next(route="consume", status=500)
    with pytest.raises(ValueError, match="no status"):
        server.faults.next(drop=True, status=500)
    with pytest.raises(ValueError, match="times"):
        server.faults.next(times=0, status=500)
    with pytest.raises(ValueError, match="HTTP status"):
        server.faults.next(status=99)
    with pytest.raises(ValueError):
        RunwayAPIServer("")


# -- session faults --------------------------------------------------------------------


async def test_session_fault_slow_provisioning_applies_to_the_next_session_only(
    server: RunwayAPIServer, client: aiohttp.ClientSession
) -> None:
    server.faults.next_session(provisioning_delay=0.5)
    slow = await created_id(client, server)
    normal = await created_id(client, server)
    await server.wait_for_status(normal, SessionStatus.READY, timeout=2)
    assert (await fetch(client, server, slow))["status"] == "NOT_READY"
    await poll_until(client, server, slow, "READY")
    session = server.session(slow)
    assert session.history[1].at - session.history[0].at >= 0.45


async def test_session_fault_provisioning_fails(
    server: RunwayAPIServer, client: aiohttp.ClientSession
) -> None:
    server.faults.next_session(failure_code="INTERNAL.CAPACITY", failure="No capacity.")
    sid = await created_id(client, server)
    failed = await poll_until(client, server, sid, "FAILED")
    assert (failed["failureCode"], failed["failure"]) == ("INTERNAL.CAPACITY", "No capacity.")
    assert server.session(sid).history[-1].reason == "provisioning_failed"


async def test_session_fault_never_ready(
    server: RunwayAPIServer, client: aiohttp.ClientSession
) -> None:
    server.faults.next_session(never_ready=True)
    sid = await created_id(client, server)
    await asyncio.sleep(0.3)
    assert (await fetch(client, server, sid))["status"] == "NOT_READY"
    server.mark_ready(sid)
    assert (await fetch(client, server, sid))["status"] == "READY"


async def test_session_fault_queued(server: RunwayAPIServer, client: aiohttp.ClientSession) -> None:
    server.faults.next_session(queued_for=0.3)
    sid = await created_id(client, server)
    assert (await fetch(client, server, sid))["queued"] is True
    await poll_until(client, server, sid, "READY")
    assert server.session(sid).history[1].at - server.session(sid).history[0].at >= 0.3


# -- records, listeners, secrets ------------------------------------------------------------


async def test_requests_are_recorded_with_secrets_masked(
    server: RunwayAPIServer, client: aiohttp.ClientSession
) -> None:
    before = time.monotonic()
    sid = await created_id(client, server)
    await fetch(client, server, sid)
    await call(client, server, "DELETE", f"{CREATE_PATH}/{sid}")
    post, get, delete = server.requests
    assert (post.method, post.path, post.route, post.status) == ("POST", CREATE_PATH, "create", 200)
    assert (get.method, get.route, get.status, get.body) == ("GET", "get", 200, None)
    assert (delete.route, delete.status, delete.session_id) == ("delete", 204, sid)
    assert post.session_id == sid and post.error is None
    assert post.body["integration"]["token"] == "[REDACTED]"
    assert post.body["integration"]["roomName"] == "room-1"
    assert post.headers["Authorization"] == "Bearer [REDACTED]"
    assert post.headers["X-Runway-Version"] == "2024-11-06"
    assert before <= post.at <= get.at <= delete.at
    assert server.session(sid).redacted_body()["integration"]["token"] == "[REDACTED]"
    assert server.session(sid).body["integration"]["token"] == TOKEN


async def test_secrets_never_leak_into_responses_records_or_logs(
    server: RunwayAPIServer, client: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answers: list[str] = []
    sid = await created_id(client, server, FULL)
    answers.append(repr(await fetch(client, server, sid)))
    await server.wait_for_status(sid, SessionStatus.READY, timeout=2)
    answers.append(repr(await fetch(client, server, sid)))
    near_key = {**HEADERS, "Authorization": f"Bearer {KEY}x"}
    for headers in (near_key, {**HEADERS, "Authorization": f"Basic {KEY}"}):
        answers.append(
            repr(await call(client, server, "POST", CREATE_PATH, json=FULL, headers=headers))
        )
    # Rejected bodies that carry the token are recorded too, and must be masked.
    too_long = changed(FULL, ("maxDuration",), 5000)
    answers.append(repr(await call(client, server, "POST", CREATE_PATH, json=too_long)))
    typo = changed(FULL, ("integration", "tokn"), TOKEN)
    answers.append(repr(await call(client, server, "POST", CREATE_PATH, json=typo)))
    answers.append(repr(await call(client, server, "POST", CREATE_PATH, data=f'{{"t": "{TOKEN}"')))
    server.fail(sid, "X")
    answers.append(repr(await fetch(client, server, sid)))

    everything = "\n".join(
        [
            *answers,
            repr(server.requests),
            repr(server.sessions),
            repr(server.session(sid).livekit),
            caplog.text,
        ]
    )
    assert "/v1/realtime_sessions" in caplog.text  # the log was captured at all
    assert KEY not in everything
    assert TOKEN not in everything


async def test_listeners_see_creation_and_every_transition(
    server: RunwayAPIServer, client: aiohttp.ClientSession
) -> None:
    created: list[str] = []
    async_created = asyncio.Event()
    changes: list[tuple[str, SessionStatus | None, SessionStatus, str]] = []

    async def start_worker(session: Session) -> None:
        await asyncio.sleep(0)
        assert session.livekit is not None and session.livekit.token == TOKEN
        async_created.set()

    def record(session: Session, change: StateChange) -> None:
        changes.append((session.id, change.previous, change.status, change.reason))

    server.on_session_created(lambda s: created.append(s.id))
    server.on_session_created(start_worker)
    server.on_state_change(record)
    sid = await created_id(client, server)
    assert created == [sid]
    await asyncio.wait_for(async_created.wait(), 2)
    await server.wait_for_status(sid, SessionStatus.READY, timeout=2)
    server.mark_running(sid)
    await call(client, server, "DELETE", f"{CREATE_PATH}/{sid}")
    NR, RD, RN, CA = (
        SessionStatus.NOT_READY,
        SessionStatus.READY,
        SessionStatus.RUNNING,
        SessionStatus.CANCELLED,
    )
    assert changes == [
        (sid, NR, RD, "provisioned"),
        (sid, RD, RN, "control"),
        (sid, RN, CA, "delete"),
    ]


async def test_ready_listener_sees_session_key_and_unsubscribe_works(
    server: RunwayAPIServer, client: aiohttp.ClientSession
) -> None:
    seen: list[dict[str, Any]] = []
    unsubscribe = server.on_state_change(lambda s, c: seen.append(s.to_json()))
    first = await created_id(client, server)
    await server.wait_for_status(first, SessionStatus.READY, timeout=2)
    assert seen[-1]["status"] == "READY" and seen[-1]["sessionKey"]
    unsubscribe()
    server.cancel(first)
    assert len(seen) == 1


async def test_failing_listeners_do_not_break_the_api(
    server: RunwayAPIServer, client: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(session: Session) -> None:
        raise RuntimeError("listener bug")

    async def broken_async(session: Session) -> None:
        raise RuntimeError("async listener bug")

    server.on_session_created(broken)
    server.on_session_created(broken_async)
    status, data = await create(client, server)
    assert status == 200
    await asyncio.sleep(0.05)
    assert "listener bug" in caplog.text and "async listener bug" in caplog.text
    assert server.session(data["id"]).active


# -- serving -----------------------------------------------------------------------------


async def test_make_app_embeds_in_another_application(client: aiohttp.ClientSession) -> None:
    double = RunwayAPIServer(KEY, provisioning_delay=0.01)
    parent = web.Application()
    parent.add_subapp("/runway", double.make_app())
    runner = web.AppRunner(parent, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        base = f"http://127.0.0.1:{runner.addresses[0][1]}/runway"
        async with client.post(f"{base}{CREATE_PATH}", json=VALID) as resp:
            assert resp.status == 200
            sid = (await resp.json())["id"]
        await double.wait_for_status(sid, SessionStatus.READY, timeout=2)
        assert double.requests[0].route == "create"
    finally:
        await double.close()
        await runner.cleanup()


async def test_start_close_and_fixed_port() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    server = RunwayAPIServer(KEY, port=port)
    with pytest.raises(RuntimeError):
        _ = server.url
    async with server:
        await server.start()  # idempotent
        assert server.url == f"http://127.0.0.1:{port}"
    await server.close()  # idempotent
    async with aiohttp.ClientSession(timeout=TIMEOUT) as bare:
        with pytest.raises(aiohttp.ClientConnectionError):
            await bare.get(f"http://127.0.0.1:{port}{CREATE_PATH}/x")


# Bound every test in time: each runs under a hard deadline, whatever it awaits.
TEST_DEADLINE = 20.0


def _bounded(test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    @functools.wraps(test)
    async def run(*args: Any, **kwargs: Any) -> None:
        await asyncio.wait_for(test(*args, **kwargs), TEST_DEADLINE)

    return run


for _name, _test in list(globals().items()):
    if _name.startswith("test_") and inspect.iscoroutinefunction(_test):
        globals()[_name] = _bounded(_test)
