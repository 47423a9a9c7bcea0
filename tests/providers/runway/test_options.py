"""Runway options are validated inside get(), with messages that say what to change."""

from __future__ import annotations

from typing import Any

import pytest
from livekit.agents import APIConnectOptions

import avatarkit
from avatarkit import ConfigurationError
from avatarkit_providers.runway.api import create_body
from avatarkit_providers.runway.options import RunwayOptions
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
        ({"preset_id": "influencer", "max_duration": 1801}, "from 1 to 1800"),
        ({"preset_id": "influencer", "max_duration": 0}, "from 1 to 1800"),
        ({"preset_id": "influencer", "max_duration": 60.5}, "whole number"),
        ({"preset_id": "influencer", "api_url": "ftp://x"}, "api_url must be an http"),
        ({"preset_id": "influencer", "personality": "  "}, "personality must be a non-empty"),
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


def test_an_unknown_but_well_formed_preset_passes_since_runway_adds_presets() -> None:
    assert runway(preset_id="space-pirate", api_key=KEY).options.preset_id == "space-pirate"


@pytest.mark.parametrize(
    ("tool", "message"),
    [
        ({"type": "webhook", "name": "x", "description": "d"}, "tool type must be"),
        ({"type": "client_event", "name": "9lives", "description": "d"}, "is invalid"),
        ({"type": "client_event", "name": "has-dash", "description": "d"}, "is invalid"),
        ({"type": "client_event", "name": "x", "description": ""}, "non-empty description"),
        (
            {"type": "client_event", "name": "x", "description": "d", "timeoutSeconds": 3},
            "unknown keys",
        ),
        (
            {"type": "backend_rpc", "name": "x", "description": "d", "timeoutSeconds": -1},
            "timeoutSeconds must be a positive",
        ),
        (
            {
                "type": "backend_rpc",
                "name": "x",
                "description": "d",
                "parameters": [{"name": "p", "type": "date", "description": "d"}],
            },
            "has type 'date'",
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
