"""Anam options: the official plugin's, with its defaults and variables, checked at get()."""

from __future__ import annotations

from typing import Any

import pytest

import avatarkit
from avatarkit import ConfigurationError
from avatarkit_providers.anam.options import AnamOptions
from avatarkit_providers.anam.provider import AnamProvider

KEY = "anam_key_0123456789abcdef"
AVATAR = "edf6fdcb-acab-44b8-b974-ded72665ee26"
PERSONA = {"name": "Mia", "avatarId": AVATAR}


@pytest.fixture(autouse=True)
def _no_anam_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANAM_API_KEY", raising=False)
    monkeypatch.delenv("ANAM_API_URL", raising=False)


def options(**given: Any) -> AnamOptions:
    given.setdefault("api_key", KEY)
    given.setdefault("persona_config", PERSONA)
    backend = avatarkit.get("anam", **given).backend
    assert isinstance(backend, AnamProvider)
    return backend.options


def test_defaults_are_the_official_plugins() -> None:
    from livekit.plugins import anam
    from livekit.plugins.anam import api as plugin_api
    from livekit.plugins.anam import avatar as plugin_avatar

    got = options(persona_config=anam.PersonaConfig(name="Mia", avatarId=AVATAR))
    assert got.api_url == plugin_api.DEFAULT_API_URL == "https://api.anam.ai"
    assert got.session_options is None
    assert AnamProvider.default_identity == plugin_avatar._AVATAR_AGENT_IDENTITY
    assert AnamProvider.sample_rate == plugin_avatar.SAMPLE_RATE
    # the personaConfig the official plugin sends for the same PersonaConfig
    assert got.persona_config == {
        "type": "ephemeral",
        "name": "Mia",
        "avatarId": AVATAR,
        "llmId": "CUSTOMER_CLIENT_V1",
    }


def test_the_plugins_dataclasses_are_sent_as_it_sends_them() -> None:
    from livekit.plugins import anam

    persona = anam.PersonaConfig(
        name="Mia",
        avatarId=AVATAR,
        avatarModel="cara-4-latest",
        directorNotes=anam.DirectorNotes(expressivity=0.7, presetStyle="warm"),
    )
    session = anam.SessionOptions(video_width=720, video_height=480, show_ai_avatar_disclosure=True)
    got = options(persona_config=persona, session_options=session)
    assert got.persona_config["avatarModel"] == "cara-4-latest"
    assert got.persona_config["directorNotes"] == {"expressivity": 0.7, "presetStyle": "warm"}
    assert got.session_options == {
        "videoWidth": 720,
        "videoHeight": 480,
        "showAIAvatarDisclosure": True,
    }
    # unset parts are left out, as the plugin leaves them out
    bare = options(
        persona_config=anam.PersonaConfig(
            name="Mia", avatarId=AVATAR, directorNotes=anam.DirectorNotes()
        ),
        session_options=anam.SessionOptions(),
    )
    assert "directorNotes" not in bare.persona_config and bare.session_options is None
    assert options(session_options={"show_ai_avatar_disclosure": False}).session_options == {
        "showAIAvatarDisclosure": False
    }


def test_key_and_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANAM_API_KEY", KEY)
    monkeypatch.setenv("ANAM_API_URL", "http://127.0.0.1:1234/")
    got = avatarkit.get("anam", persona_config=PERSONA).backend.options
    assert got.api_key.reveal() == KEY
    assert got.api_url == "http://127.0.0.1:1234"


def test_a_missing_key_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="ANAM_API_KEY"):
        avatarkit.get("anam", persona_config=PERSONA)


def test_persona_config_is_required() -> None:
    with pytest.raises(ConfigurationError, match="persona_config"):
        avatarkit.get("anam", api_key=KEY)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"persona_config": "Mia"}, "persona_config must be a PersonaConfig or a dict, got str"),
        ({"persona_config": {**PERSONA, "avatar_id": AVATAR}}, "has no field 'avatar_id'"),
        ({"persona_config": {"avatarId": AVATAR}}, r"persona_config.name must be a non-empty"),
        ({"persona_config": {**PERSONA, "name": " "}}, r"persona_config.name must be a non-empty"),
        ({"persona_config": {"name": "Mia"}}, r"persona_config.avatarId must be an avatar's UUID"),
        ({"persona_config": {**PERSONA, "avatarId": "mia"}}, "avatarId must be an avatar's UUID"),
        (
            {"persona_config": {**PERSONA, "avatarModel": "Cara-3"}},
            r"avatarModel='Cara-3' is unknown: did you mean 'cara-3'",
        ),
        ({"persona_config": {**PERSONA, "avatarModel": "gpt-4"}}, "avatarModel='gpt-4' is unknown"),
        (
            {"persona_config": {**PERSONA, "directorNotes": "warm"}},
            "directorNotes must be a DirectorNotes or a dict",
        ),
        (
            {"persona_config": {**PERSONA, "directorNotes": {"expressivity": 1.5}}},
            "expressivity must be a number from 0 to 1, got 1.5",
        ),
        (
            {"persona_config": {**PERSONA, "directorNotes": {"expressivity": float("nan")}}},
            "expressivity must be a number from 0 to 1, got nan",
        ),
        (
            {"persona_config": {**PERSONA, "directorNotes": {"expressivity": True}}},
            "expressivity must be a number from 0 to 1",
        ),
        (
            {"persona_config": {**PERSONA, "directorNotes": {"presetStyle": "hapy"}}},
            "presetStyle='hapy' is unknown: did you mean 'happy'",
        ),
        (
            {
                "persona_config": {
                    **PERSONA,
                    "directorNotes": {"presetStyle": "warm", "customStylePrompt": "calm"},
                }
            },
            "set presetStyle or customStylePrompt, not both",
        ),
        (
            {"persona_config": {**PERSONA, "directorNotes": {"customStylePrompt": ""}}},
            "customStylePrompt must be a non-empty string",
        ),
        ({"session_options": {"video_width": 720}}, "set video_width and video_height together"),
        ({"session_options": {"video_height": 480}}, "set video_width and video_height together"),
        (
            {"session_options": {"video_width": 720.0, "video_height": 480}},
            "video_width must be a whole number of pixels",
        ),
        (
            {"session_options": {"video_width": 720, "video_height": 0}},
            "video_height must be a whole number of pixels",
        ),
        (
            {"session_options": {"show_ai_avatar_disclosure": "yes"}},
            "show_ai_avatar_disclosure must be a bool",
        ),
        ({"session_options": 720}, "session_options must be a SessionOptions or a dict"),
        ({"api_url": "api.anam.ai"}, "api_url must be an http"),
        ({"api_key": 123}, "api_key must be a string"),
        ({"persona": PERSONA}, "Did you mean 'persona_config'"),
    ],
)
def test_bad_options_raise_at_get(given: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as err:
        options(**given)
    assert str(err.value).startswith("anam: ")


def test_new_models_and_presets_pass_since_anam_adds_them() -> None:
    notes = {"presetStyle": "mischievous", "expressivity": 0}
    got = options(persona_config={**PERSONA, "avatarModel": "cara-5", "directorNotes": notes})
    assert got.persona_config["avatarModel"] == "cara-5"
    assert got.persona_config["directorNotes"] == notes
    # an empty model is no model, as the plugin treats it
    assert (
        "avatarModel" not in options(persona_config={**PERSONA, "avatarModel": ""}).persona_config
    )


def test_the_key_stays_out_of_reprs_and_errors() -> None:
    got = options()
    assert KEY not in repr(got) and KEY not in repr(
        avatarkit.get("anam", api_key=KEY, persona_config=PERSONA)
    )
    with pytest.raises(ConfigurationError) as err:
        options(api_url="ftp://x")
    assert KEY not in str(err.value)
