"""Bey options: the official plugin's names, defaults and variables, validated at get()."""

from __future__ import annotations

from typing import Any

import pytest
from livekit.plugins.bey import avatar as official

import avatarkit
from avatarkit import ConfigurationError
from avatarkit_providers.bey.provider import BeyProvider

KEY = "sk-bey-0123456789abcdef"


@pytest.fixture(autouse=True)
def _no_bey_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BEY_API_KEY", raising=False)
    monkeypatch.delenv("BEY_API_URL", raising=False)


def bey(**options: Any) -> BeyProvider:
    backend = avatarkit.get("bey", **options).backend
    assert isinstance(backend, BeyProvider)
    return backend


def test_the_defaults_are_the_official_plugins() -> None:
    backend = bey(api_key=KEY)
    assert backend.options.avatar_id is None
    assert backend.options.avatar == official.EGE_STOCK_AVATAR_ID
    assert backend.options.api_url == official._DEFAULT_API_URL
    assert backend.default_identity == official._AVATAR_AGENT_IDENTITY
    assert backend.sample_rate == official.SAMPLE_RATE
    assert backend.reports_playback_start is False  # its DataStreamAudioOutput waits for none


def test_an_avatar_id_is_sent_as_given() -> None:
    assert bey(api_key=KEY, avatar_id="b63ba4e6-d346-45d0-ad28-5ddffaac0bd0_v2").options.avatar == (
        "b63ba4e6-d346-45d0-ad28-5ddffaac0bd0_v2"
    )


def test_key_and_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEY_API_KEY", KEY)
    monkeypatch.setenv("BEY_API_URL", "http://127.0.0.1:1234/")
    backend = bey()
    assert backend.options.api_key.reveal() == KEY
    assert backend.options.api_url == "http://127.0.0.1:1234"


def test_options_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEY_API_KEY", "sk-from-env")
    monkeypatch.setenv("BEY_API_URL", "http://127.0.0.1:1234")
    backend = bey(api_key=KEY, api_url="https://eu.example.com")
    assert backend.options.api_key.reveal() == KEY
    assert backend.options.api_url == "https://eu.example.com"


def test_a_missing_key_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match=r"bey: an API key is needed.*BEY_API_KEY"):
        avatarkit.get("bey")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"avatar_id": ""}, "avatar_id must be a non-empty string"),
        ({"avatar_id": "   "}, "avatar_id must be a non-empty string"),
        ({"avatar_id": 42}, "avatar_id must be a non-empty string"),
        ({"avatar_id": "b9be11b8 89fb"}, "avatar_id='b9be11b8 89fb' is not in the form"),
        ({"api_url": "api.bey.dev"}, "api_url must be an http"),
        ({"api_url": 3}, "api_url must be an http"),
        ({"api_key": " sk-x\n"}, "api_key has spaces"),
        ({"api_key": 123}, "api_key must be a string"),
        ({"avatarId": "x"}, "avatar_id"),
    ],
)
def test_bad_options_raise_at_get(options: dict[str, Any], message: str) -> None:
    options.setdefault("api_key", KEY)
    with pytest.raises(ConfigurationError, match=message):
        avatarkit.get("bey", **options)


def test_the_plugin_has_no_deprecated_aliases() -> None:
    # livekit.plugins.bey.AvatarSession has none, so neither does this provider.
    with pytest.raises(ConfigurationError):
        avatarkit.get("bey", api_key=KEY, avatar="x")


def test_secrets_never_appear_in_reprs_or_errors() -> None:
    avatar = avatarkit.get("bey", api_key=KEY, livekit_api_secret="lk-secret-abcdef")
    assert isinstance(avatar.backend, BeyProvider)
    shown = repr(avatar.backend.options) + str(avatar.backend.options) + repr(avatar._options)
    assert KEY not in shown and "lk-secret-abcdef" not in shown
    with pytest.raises(ConfigurationError) as err:
        avatarkit.get("bey", api_key=KEY, avatar_id="a b")
    assert KEY not in str(err.value)
