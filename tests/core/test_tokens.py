"""The avatar worker's LiveKit token and the LiveKit settings it is signed with."""

from __future__ import annotations

import pytest
from livekit import api

from avatarkit import ConfigurationError
from avatarkit.tokens import DEFAULT_TOKEN_TTL, LiveKitSettings, mint_avatar_token

SECRET = "a-livekit-secret-of-decent-length-0123456789"


def test_the_token_speaks_for_the_agent_in_one_room_for_a_bounded_time() -> None:
    settings = LiveKitSettings.resolve("wss://lk.example.com", "APIkey", SECRET)
    token = mint_avatar_token(
        settings,
        room_name="room-7",
        identity="runway-avatar-agent",
        name="Runway avatar",
        agent_identity="agent-42",
        lifetime=600,
    )
    claims = api.TokenVerifier("APIkey", SECRET).verify(token.reveal())
    assert claims.identity == "runway-avatar-agent"
    assert claims.name == "Runway avatar"
    assert claims.kind == "agent"
    assert claims.video is not None
    assert claims.video.room_join is True and claims.video.room == "room-7"
    assert claims.attributes == {"lk.publish_on_behalf": "agent-42"}
    assert token.reveal() not in repr(token)

    import jwt

    raw = jwt.decode(token.reveal(), options={"verify_signature": False})
    assert 600 <= raw["exp"] - raw["nbf"] <= 600 + 300 + 5  # the session, plus a margin


def test_a_token_for_a_session_of_unknown_lifetime_lasts_the_bounded_default() -> None:
    settings = LiveKitSettings.resolve("wss://lk.example.com", "APIkey", SECRET)
    token = mint_avatar_token(
        settings,
        room_name="room-7",
        identity="avatar",
        name="avatar",
        agent_identity="agent-42",
        lifetime=None,
    )
    import jwt

    api.TokenVerifier("APIkey", SECRET).verify(token.reveal())  # still a valid token
    raw = jwt.decode(token.reveal(), options={"verify_signature": False})
    # livekit reads the clock twice (nbf, exp): they may straddle a second
    assert DEFAULT_TOKEN_TTL <= raw["exp"] - raw["nbf"] <= DEFAULT_TOKEN_TTL + 1
    assert DEFAULT_TOKEN_TTL <= 3600  # not LiveKit's 6 h default


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEKIT_URL", "wss://env.example.com")
    monkeypatch.setenv("LIVEKIT_API_KEY", "envkey")
    monkeypatch.setenv("LIVEKIT_API_SECRET", SECRET)
    settings = LiveKitSettings.resolve()
    assert settings.url == "wss://env.example.com"
    assert settings.api_key.reveal() == "envkey"
    assert SECRET not in repr(settings)


def test_missing_settings_name_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigurationError) as err:
        LiveKitSettings.resolve(url="wss://x.example.com")
    message = str(err.value)
    assert "LIVEKIT_API_KEY" in message and "LIVEKIT_API_SECRET" in message
    assert "LIVEKIT_URL" not in message
