"""Simli's options are those of livekit.plugins.simli.AvatarSession, validated inside get()."""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Any

import pytest
from livekit.plugins import simli as official

import avatarkit
from avatarkit import ConfigurationError, Secret
from avatarkit_providers.simli import SimliConfig
from avatarkit_providers.simli.options import DEFAULT_API_URL, SimliOptions
from avatarkit_providers.simli.provider import SimliProvider

KEY = "simli_key_0123456789abcdef"
FACE = "cace3ef7-a4c4-425d-a8cf-a5358eb0c427"


def simli(**options: Any) -> SimliProvider:
    backend = avatarkit.get("simli", **options).backend
    assert isinstance(backend, SimliProvider)
    return backend


def test_the_config_class_matches_the_official_one_field_for_field() -> None:
    def shape(cls: type) -> list[tuple[str, Any]]:
        return [(f.name, f.default) for f in dataclasses.fields(cls)]

    assert shape(SimliConfig) == shape(official.SimliConfig)
    ours = SimliConfig(api_key=KEY, face_id=FACE, max_session_length=90, max_idle_time=5)
    theirs = official.SimliConfig(api_key=KEY, face_id=FACE, max_session_length=90, max_idle_time=5)
    assert ours.create_json() == theirs.create_json()
    assert SimliConfig(KEY, FACE).create_json() == official.SimliConfig(KEY, FACE).create_json()


def test_the_options_are_the_official_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    names = set(inspect.signature(official.AvatarSession.__init__).parameters) - {"self"}
    core = {"avatar_participant_identity", "avatar_participant_name", "conn_options"}
    assert {a.alias for a in SimliOptions.__attrs_attrs__} == names - core
    # the plugin's api_url default is in its body: build one without its HTTP session
    monkeypatch.setattr(official.AvatarSession, "_ensure_http_session", lambda self: None)
    plugin = official.AvatarSession(simli_config=official.SimliConfig(KEY, FACE))
    assert (
        plugin.api_url
        == DEFAULT_API_URL
        == simli(simli_config=SimliConfig(KEY, FACE)).options.api_url
    )
    assert simli(simli_config=SimliConfig(KEY, FACE)).default_identity == plugin.avatar_identity


@pytest.mark.parametrize("config_class", [SimliConfig, official.SimliConfig])
def test_either_config_class_is_accepted_and_copied(config_class: Any) -> None:
    config = config_class(api_key=KEY, face_id=FACE, max_session_length=120)
    backend = simli(simli_config=config, api_url="https://simli.example/")
    config.face_id = "changed-after-get"  # the app's object no longer matters
    assert backend.options.simli_config.face_id == FACE
    assert backend.options.simli_config.api_key == Secret(KEY)
    assert backend.options.api_url == "https://simli.example"
    assert backend.session_lifetime() == 120.0


def test_a_key_already_in_a_secret_is_accepted() -> None:
    backend = simli(simli_config=SimliConfig(api_key=Secret(KEY), face_id=FACE))
    assert backend.options.simli_config.api_key == Secret(KEY)


def test_the_plugin_reads_no_variable_and_neither_does_get(monkeypatch: pytest.MonkeyPatch) -> None:
    # Simli's guide reads SIMLI_API_KEY in the app and passes it in; the plugin reads nothing
    monkeypatch.setenv("SIMLI_API_KEY", KEY)
    with pytest.raises(ConfigurationError, match="api_key must be your Simli API key"):
        avatarkit.get("simli", simli_config=SimliConfig(api_key="", face_id=FACE))


def config(**fields: Any) -> SimliConfig:
    return SimliConfig(**{"api_key": KEY, "face_id": FACE, **fields})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, r"simli_config=SimliConfig\(api_key=..., face_id=...\) is needed$"),
        ({"simli_config": {"api_key": KEY}}, "is needed, got dict"),
        ({"simli_config": config(api_key="")}, "simli_config.api_key .* got nothing"),
        ({"simli_config": config(api_key=None)}, "simli_config.api_key .* got nothing"),
        ({"simli_config": config(api_key=Secret(""))}, "simli_config.api_key .* got nothing"),
        ({"simli_config": config(api_key=12345)}, "simli_config.api_key .* got int"),
        ({"simli_config": config(api_key=f" {KEY}\n")}, "api_key has spaces"),
        ({"simli_config": config(face_id="")}, "simli_config.face_id='' is not a Simli face"),
        ({"simli_config": config(face_id=f"{FACE}/x")}, "simli_config.face_id=.* is not"),
        ({"simli_config": config(face_id=7)}, "simli_config.face_id=7 is not"),
        ({"simli_config": config(emotion_id="happy_0")}, "emotion_id='happy_0' is not an emotion"),
        ({"simli_config": config(max_session_length=0)}, "max_session_length must be a whole"),
        ({"simli_config": config(max_session_length=-5)}, "max_session_length must be a whole"),
        ({"simli_config": config(max_session_length=60.5)}, "max_session_length .* got 60.5"),
        ({"simli_config": config(max_session_length=math.nan)}, "max_session_length .* got nan"),
        ({"simli_config": config(max_session_length=math.inf)}, "max_session_length .* got inf"),
        ({"simli_config": config(max_session_length="600")}, "max_session_length .* got '600'"),
        ({"simli_config": config(max_idle_time=True)}, "max_idle_time .* got True"),
        ({"simli_config": config(max_idle_time=0)}, "max_idle_time must be a whole"),
        ({"simli_config": config(), "api_url": "ftp://simli"}, "api_url must be an http"),
        ({"simli_config": config(), "api_url": 5}, "api_url must be an http"),
        ({"simli_config": config(), "simli_confg": 1}, "Did you mean 'simli_config'"),
        ({"simli_config": config(), "api_key": KEY}, "unknown option 'api_key'"),
    ],
)
def test_bad_options_raise_at_get(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=f"^simli: .*{message}"):
        avatarkit.get("simli", **options)


def test_the_key_is_never_shown() -> None:
    avatar = avatarkit.get("simli", simli_config=official.SimliConfig(KEY, FACE))
    options = avatar.backend.options
    for text in (repr(avatar), repr(options), str(options), repr(options.simli_config)):
        assert KEY not in text
    assert KEY not in repr(SimliConfig(KEY, FACE))
    with pytest.raises(ConfigurationError) as error:
        avatarkit.get("simli", simli_config=SimliConfig(f"{KEY} ", FACE))
    assert KEY not in str(error.value)
