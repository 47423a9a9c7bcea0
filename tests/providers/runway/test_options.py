"""Runway options are validated inside get(), with messages that say what to change."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from livekit.agents import APIConnectOptions

import avatarkit
from avatarkit import ConfigurationError
from avatarkit_providers.runway.api import create_body
from avatarkit_providers.runway.emulator import CreateBodyValidator
from avatarkit_providers.runway.options import KNOWN_PRESETS, RunwayOptions
from avatarkit_providers.runway.provider import RunwayProvider

KEY = "key_0123456789abcdef"
AVATAR_UUID = "3f2b8c1e-2d4a-4b7e-9c1a-5e6f7a8b9c0d"


def runway(**options: Any) -> RunwayProvider:
    backend = avatarkit.get("runway", **options).backend
    assert isinstance(backend, RunwayProvider)
    return backend


def test_a_preset_with_a_key_is_accepted() -> None:
    backend = runway(preset_id="influencer", api_key=KEY)
    assert backend.options.avatar == {"type": "runway-preset", "presetId": "influencer"}


def test_a_custom_avatar_is_accepted() -> None:
    backend = runway(avatar_id=AVATAR_UUID, api_key=KEY)
    assert backend.options.avatar == {"type": "custom", "avatarId": AVATAR_UUID}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "exactly one of avatar_id"),
        ({"preset_id": "influencer", "avatar_id": AVATAR_UUID}, "exactly one of avatar_id"),
        ({"avatar_id": "not-a-uuid"}, "avatar_id must be the UUID"),
        ({"preset_id": "influencr"}, "did you mean 'influencer'"),
        ({"preset_id": "Bad Preset!"}, "unknown preset_id"),
        ({"preset_id": "influencer", "max_duration": 1801}, "from 10 to 1800"),
        ({"preset_id": "influencer", "max_duration": 0}, "from 10 to 1800"),
        ({"preset_id": "influencer", "max_duration": 60.5}, "whole number"),
        ({"preset_id": "influencer", "max_duration": True}, "whole number"),
        ({"preset_id": "influencer", "api_url": "ftp://x"}, "api_url must be an http"),
        ({"preset_id": "influencer", "personality": 42}, "personality must be a string"),
        ({"preset_id": "influencer", "presetId": "x"}, "Did you mean 'preset_id'"),
        ({"preset_id": "influencer", "conn_options": {"timeout": 1}}, "APIConnectOptions"),
        ({"preset_id": "influencer", "livekit_url": "example.com"}, "must start with wss://"),
        ({"preset_id": "influencer", "avatar_participant_identity": ""}, "non-empty"),
    ],
)
def test_bad_options_raise_at_get(options: dict[str, Any], message: str) -> None:
    options.setdefault("api_key", KEY)
    with pytest.raises(ConfigurationError, match=message):
        avatarkit.get("runway", **options)


def test_a_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNWAYML_API_SECRET", raising=False)
    with pytest.raises(ConfigurationError, match="RUNWAYML_API_SECRET"):
        avatarkit.get("runway", preset_id="influencer")


def test_key_and_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNWAYML_API_SECRET", KEY)
    monkeypatch.setenv("RUNWAYML_BASE_URL", "http://127.0.0.1:1234")
    backend = runway(preset_id="influencer")
    assert backend.options.api_key is not None and backend.options.api_key.reveal() == KEY
    assert backend.options.api_url == "http://127.0.0.1:1234"


def test_a_preset_outside_the_schemas_enum_is_refused() -> None:
    # The API's presetId is an enum: a preset avatarkit does not know would be a 400 at start().
    with pytest.raises(ConfigurationError, match="unknown preset_id 'space-pirate'"):
        avatarkit.get("runway", preset_id="space-pirate", api_key=KEY)


@pytest.mark.parametrize(
    ("tool", "message"),
    [
        (
            {"type": "webhook", "name": "x", "description": "d"},
            r"tools\[0\]\.type must be 'client_event' or 'backend_rpc'",
        ),
        ({"type": "client_event", "name": "9lives", "description": "d"}, "is invalid"),
        ({"type": "client_event", "name": "has-dash", "description": "d"}, "is invalid"),
        ({"type": "client_event", "name": "x", "description": ""}, "description must have"),
        (
            {"type": "client_event", "name": "x", "description": "d", "timeoutSeconds": 3},
            "unknown keys",
        ),
        (
            {"type": "backend_rpc", "name": "x", "description": "d", "timeoutSeconds": -1},
            "timeoutSeconds must be a number of seconds from 1 to 8",
        ),
        (
            {
                "type": "backend_rpc",
                "name": "x",
                "description": "d",
                "parameters": [{"name": "p", "type": "date", "description": "d"}],
            },
            r"parameters\[0\]\.type is 'date'",
        ),
    ],
)
def test_tools_are_validated(tool: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        avatarkit.get("runway", preset_id="influencer", api_key=KEY, tools=[tool])


def test_secrets_never_appear_in_reprs() -> None:
    avatar = avatarkit.get(
        "runway",
        preset_id="influencer",
        api_key=KEY,
        livekit_api_key="APIkey123",
        livekit_api_secret="lk-secret-abcdef",
    )
    assert isinstance(avatar.backend, RunwayProvider)
    shown = repr(avatar.backend.options) + repr(avatar._options) + str(avatar.backend.options)
    for secret in (KEY, "lk-secret-abcdef", "APIkey123"):
        assert secret not in shown


def test_create_body_uses_the_current_integration_form_by_default() -> None:
    options = RunwayOptions(
        preset_id="influencer",
        api_key=KEY,
        max_duration=600,
        personality="cheerful",
        start_script="Hi!",
        tools=[{"type": "client_event", "name": "wave", "description": "wave a hand"}],
    )
    body = create_body(
        options,
        livekit_url="wss://example.livekit.cloud",
        token=avatarkit.Secret("jwt"),
        room_name="room-1",
        agent_identity="agent-1",
    )
    assert body == {
        "model": "gwm1_avatars",
        "avatar": {"type": "runway-preset", "presetId": "influencer"},
        "integration": {
            "type": "livekit",
            "url": "wss://example.livekit.cloud",
            "token": "jwt",
            "roomName": "room-1",
            "agentIdentity": "agent-1",
        },
        "maxDuration": 600,
        "personality": "cheerful",
        "startScript": "Hi!",
        "tools": [{"type": "client_event", "name": "wave", "description": "wave a hand"}],
    }
    legacy = create_body(
        RunwayOptions(preset_id="influencer", api_key=KEY, legacy_livekit_field=True),
        livekit_url="wss://x.livekit.cloud",
        token=avatarkit.Secret("jwt"),
        room_name="r",
        agent_identity="a",
    )
    assert "integration" not in legacy and legacy["livekit"]["roomName"] == "r"


def test_conn_options_reach_the_http_client() -> None:
    conn = APIConnectOptions(max_retry=1, retry_interval=0.1, timeout=3.0)
    assert runway(preset_id="influencer", api_key=KEY, conn_options=conn).http.conn_options is conn


# -- every limit of Runway's OpenAPI schema, just inside and just outside ----------------
# Source: runwayml/openapi, openapi.json at commit 032445ba2896ba05df86b5e0655e49a231876ae2,
# paths["/v1/realtime_sessions"].post.requestBody. The numbers are written out here, not
# imported, so a wrong constant in options.py fails these tests.

SCHEMA_PRESETS = (
    "game-character",
    "music-superstar",
    "game-character-man",
    "cat-character",
    "influencer",
    "tennis-coach",
    "human-resource",
    "fashion-designer",
    "cooking-teacher",
)
EMOJI = "\U0001f600"  # one code point, two UTF-16 code units: zod counts it twice


def rpc(**fields: Any) -> dict[str, Any]:
    """A valid backend_rpc tool with ``fields`` changed."""
    return {"type": "backend_rpc", "name": "lookup", "description": "Look it up.", **fields}


def param(**fields: Any) -> dict[str, Any]:
    """A valid string parameter with ``fields`` changed."""
    return {"type": "string", "name": "query", "description": "What to look up.", **fields}


def with_param(**fields: Any) -> dict[str, Any]:
    return {"tools": [rpc(parameters=[param(**fields)])]}


def tools_named(count: int) -> list[dict[str, Any]]:
    return [rpc(name=f"tool_{i}") for i in range(count)]


# (id, options just inside the limit, options just outside it, what the error must name)
LIMITS: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("max-duration-min", {"max_duration": 10}, {"max_duration": 9}, "max_duration"),
    ("max-duration-max", {"max_duration": 1800}, {"max_duration": 1801}, "max_duration"),
    ("personality-min", {"personality": "x"}, {"personality": ""}, "personality"),
    (
        "personality-max",
        {"personality": "x" * 10_000},
        {"personality": "x" * 10_001},
        "personality",
    ),
    (
        "personality-utf16",
        {"personality": EMOJI * 5_000},
        {"personality": EMOJI * 5_000 + "x"},
        "personality",
    ),
    ("start-script-min", {"start_script": "x"}, {"start_script": ""}, "start_script"),
    (
        "start-script-max",
        {"start_script": "x" * 2_000},
        {"start_script": "x" * 2_001},
        "start_script",
    ),
    ("tools-count", {"tools": tools_named(20)}, {"tools": tools_named(21)}, "tools has 21"),
    (
        "tool-name-max",
        {"tools": [rpc(name="n" * 64)]},
        {"tools": [rpc(name="n" * 65)]},
        "tools[0].name",
    ),
    ("tool-name-min", {"tools": [rpc(name="n")]}, {"tools": [rpc(name="")]}, "tools[0].name"),
    (
        "tool-name-pattern",
        {"tools": [rpc(name="_Tool_9")]},
        {"tools": [rpc(name="9_tool")]},
        "tools[0].name",
    ),
    (
        "tool-description-max",
        {"tools": [rpc(description="d" * 1024)]},
        {"tools": [rpc(description="d" * 1025)]},
        "tools[0] ('lookup').description",
    ),
    (
        "tool-description-min",
        {"tools": [rpc(description="d")]},
        {"tools": [rpc(description="")]},
        "tools[0] ('lookup').description",
    ),
    (
        "timeout-min",
        {"tools": [rpc(timeoutSeconds=1)]},
        {"tools": [rpc(timeoutSeconds=0.99)]},
        "tools[0] ('lookup').timeoutSeconds",
    ),
    (
        "timeout-max",
        {"tools": [rpc(timeoutSeconds=8)]},
        {"tools": [rpc(timeoutSeconds=8.01)]},
        "tools[0] ('lookup').timeoutSeconds",
    ),
    (
        "parameters-count",
        {"tools": [rpc(parameters=[param(name=f"p{i}") for i in range(20)])]},
        {"tools": [rpc(parameters=[param(name=f"p{i}") for i in range(21)])]},
        "tools[0] ('lookup').parameters has 21",
    ),
    (
        "parameter-name-max",
        with_param(name="p" * 64),
        with_param(name="p" * 65),
        "parameters[0].name",
    ),
    ("parameter-name-min", with_param(name="p"), with_param(name=""), "parameters[0].name"),
    (
        "parameter-name-pattern",
        with_param(name="_p1"),
        with_param(name="p-1"),
        "parameters[0].name",
    ),
    (
        "parameter-description-max",
        with_param(description="d" * 1024),
        with_param(description="d" * 1025),
        "parameters[0].description",
    ),
    (
        "parameter-description-min",
        with_param(description="d"),
        with_param(description=""),
        "parameters[0].description",
    ),
    (
        "parameter-required-boolean",
        with_param(required=False),
        with_param(required="yes"),
        "parameters[0].required",
    ),
    (
        "enum-count",
        with_param(enum=[f"v{i}" for i in range(20)]),
        with_param(enum=[f"v{i}" for i in range(21)]),
        "parameters[0].enum has 21",
    ),
    (
        "enum-value-max",
        with_param(enum=["", "v" * 64]),
        with_param(enum=["v" * 65]),
        "parameters[0].enum[0]",
    ),
    (
        "array-items-type",
        with_param(type="array", items={"type": "boolean"}),
        with_param(type="array", items={"type": "object"}),
        "parameters[0].items.type",
    ),
    (
        "array-items-required",
        with_param(type="array", items={"type": "number"}),
        with_param(type="array"),
        "parameters[0].items",
    ),
    (
        "object-properties-count",
        with_param(type="object", properties=[{"name": f"f{i}"} for i in range(20)]),
        with_param(type="object", properties=[{"name": f"f{i}"} for i in range(21)]),
        "parameters[0].properties has 21",
    ),
    (
        "object-properties-required",
        with_param(type="object", properties=[]),
        with_param(type="object"),
        "parameters[0].properties",
    ),
    (
        "enum-only-on-strings",
        with_param(type="string", enum=["a"]),
        with_param(type="integer", enum=["a"]),
        "unknown keys ['enum']",
    ),
    (
        "tool-names-unique",
        {"tools": [rpc(name="a"), rpc(name="b")]},
        {"tools": [rpc(name="a"), rpc(name="a")]},
        "names must be unique",
    ),
    (
        "avatar-id-v4",
        {"avatar_id": "3F2B8C1E-2D4A-4B7E-BC1A-5E6F7A8B9C0D"},
        {"avatar_id": "3f2b8c1e-2d4a-1b7e-9c1a-5e6f7a8b9c0d"},  # version 1
        "avatar_id",
    ),
    (
        "avatar-id-variant",
        {"avatar_id": "3f2b8c1e-2d4a-4b7e-8c1a-5e6f7a8b9c0d"},
        {"avatar_id": "3f2b8c1e-2d4a-4b7e-cc1a-5e6f7a8b9c0d"},  # variant c
        "avatar_id",
    ),
]


def _options(given: dict[str, Any]) -> dict[str, Any]:
    options = {"api_key": KEY, **given}
    if "avatar_id" not in options:
        options["preset_id"] = "influencer"
    return options


@pytest.mark.parametrize(
    ("inside", "outside", "named"),
    [pytest.param(inside, outside, named, id=name) for name, inside, outside, named in LIMITS],
)
def test_each_schema_limit_holds_at_get(
    inside: dict[str, Any], outside: dict[str, Any], named: str
) -> None:
    backend = runway(**_options(inside))
    # what get() accepts, the emulator (which validates as Runway does) accepts too
    body = create_body(
        backend.options,
        livekit_url="wss://demo.livekit.cloud",
        token=avatarkit.Secret("jwt"),
        room_name="room-1",
        agent_identity="agent-1",
    )
    assert CreateBodyValidator().issues(body) == []
    with pytest.raises(ConfigurationError, match=re.escape(named)) as refused:
        avatarkit.get("runway", **_options(outside))
    assert str(refused.value).startswith("runway: ")


@pytest.mark.parametrize("preset", SCHEMA_PRESETS)
def test_every_preset_of_the_schema_is_accepted(preset: str) -> None:
    assert runway(preset_id=preset, api_key=KEY).options.preset_id == preset


def test_the_preset_list_is_the_schemas_enum() -> None:
    assert KNOWN_PRESETS == SCHEMA_PRESETS


@pytest.mark.parametrize(
    "avatar_id",
    [
        "00000000-0000-0000-0000-000000000000",  # nil: not version 4
        "3f2b8c1e2d4a4b7e9c1a5e6f7a8b9c0d",  # no hyphens
        "{3f2b8c1e-2d4a-4b7e-9c1a-5e6f7a8b9c0d}",
        "urn:uuid:3f2b8c1e-2d4a-4b7e-9c1a-5e6f7a8b9c0d",
        "3f2b8c1e-2d4a-4b7e-9c1a-5e6f7a8b9c0d\n",  # "$" must not forgive a newline
        " 3f2b8c1e-2d4a-4b7e-9c1a-5e6f7a8b9c0d",
    ],
)
def test_avatar_id_must_be_a_v4_uuid_as_written(avatar_id: str) -> None:
    with pytest.raises(ConfigurationError, match="avatar_id must be the UUID"):
        avatarkit.get("runway", avatar_id=avatar_id, api_key=KEY)


@pytest.mark.parametrize(
    ("tool", "named"),
    [
        (rpc(timeoutSeconds=math.nan), "timeoutSeconds"),
        (rpc(timeoutSeconds=True), "timeoutSeconds"),
        (rpc(timeoutSeconds="5"), "timeoutSeconds"),
        (rpc(parameters=param()), "parameters must be a list"),
        (rpc(parameters=[param(enum="a")]), "enum must be a list"),
        (rpc(parameters=[param(enum=[1])]), "enum[0] must be a string"),
        (rpc(parameters=[param(type="array", items={"type": "string", "x": 1})]), "items has"),
        (rpc(parameters=[param(type="array", items="string")]), "items must be a dict"),
        (rpc(parameters=[param(type="object", properties={})]), "properties must be a list"),
        (rpc(parameters=[param(extra=1)]), "unknown keys ['extra']"),
        (rpc(parameters=[param(type="date")]), "type is 'date'"),
        (rpc(parameters=["query"]), "parameters[0] must be a dict"),
        (rpc(name=7), "tools[0].name must be a string"),
        (rpc(description=None), "description must be a string"),
        ("lookup", "tools[0] must be a dict"),
    ],
)
def test_malformed_tools_are_refused_naming_the_field(tool: Any, named: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(named)):
        avatarkit.get("runway", preset_id="influencer", api_key=KEY, tools=[tool])


def test_whitespace_counts_as_text_as_it_does_for_runway() -> None:
    # minLength 1 is the schema's only lower bound: "  " is a (poor) personality, not an error
    backend = runway(preset_id="influencer", api_key=KEY, personality="  ", start_script=" ")
    assert (backend.options.personality, backend.options.start_script) == ("  ", " ")


def test_a_long_value_is_not_echoed_whole_in_the_error() -> None:
    with pytest.raises(ConfigurationError) as refused:
        avatarkit.get("runway", preset_id="influencer", api_key=KEY, personality="x" * 20_000)
    assert "got 20000" in str(refused.value) and len(str(refused.value)) < 300
