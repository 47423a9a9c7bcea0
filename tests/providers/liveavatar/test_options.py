"""LiveAvatar's options are those of livekit.plugins.liveavatar.AvatarSession, checked in get()."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from livekit.plugins import liveavatar as official
from livekit.plugins.liveavatar import avatar as official_avatar

import avatarkit
from avatarkit import ConfigurationError, Secret
from avatarkit_providers.liveavatar.options import DEFAULT_API_URL, LiveAvatarOptions
from avatarkit_providers.liveavatar.provider import SANDBOX_SECONDS, LiveAvatarProvider

KEY = "liveavatar_key_0123456789abcdef"
AVATAR = "65f9e3c9-d48b-4118-b73a-4ae2e3cbb8f0"


@pytest.fixture(autouse=True)
def no_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LIVEAVATAR_API_KEY", "LIVEAVATAR_AVATAR_ID"):
        monkeypatch.delenv(name, raising=False)


def liveavatar(**options: Any) -> LiveAvatarProvider:
    backend = avatarkit.get("liveavatar", **options).backend
    assert isinstance(backend, LiveAvatarProvider)
    return backend


async def test_the_options_and_defaults_are_the_official_ones() -> None:
    names = set(inspect.signature(official.AvatarSession.__init__).parameters) - {"self"}
    core = {"avatar_participant_identity", "avatar_participant_name", "conn_options"}
    assert {a.alias for a in LiveAvatarOptions.__attrs_attrs__} == names - core

    plugin = official.AvatarSession(avatar_id=AVATAR, api_key=KEY)
    ours = liveavatar(avatar_id=AVATAR, api_key=KEY)
    assert ours.options.api_url == plugin._api._api_url == DEFAULT_API_URL
    assert ours.options.is_sandbox is plugin._is_sandbox is False
    assert ours.options.video_quality is plugin._video_quality is None
    assert ours.default_identity == plugin.avatar_identity
    assert ours.sample_rate == official_avatar.SAMPLE_RATE
    assert ours.session_lifetime() is None  # the tier's limit is not published


def test_the_variables_are_read_and_options_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEAVATAR_API_KEY", KEY)
    monkeypatch.setenv("LIVEAVATAR_AVATAR_ID", AVATAR)
    from_env = liveavatar()
    assert from_env.options.api_key == Secret(KEY) and from_env.options.avatar_id == AVATAR
    given = liveavatar(api_key="another_key_012345", avatar_id="other-avatar")
    assert given.options.api_key == Secret("another_key_012345")
    assert given.options.avatar_id == "other-avatar"


def test_the_other_options_are_taken_as_given() -> None:
    backend = liveavatar(
        avatar_id=AVATAR, api_key=KEY, api_url="https://la.example/v1/sessions/",
        is_sandbox=True, video_quality="very_high",
    )  # fmt: skip
    assert backend.options.api_url == "https://la.example/v1/sessions"
    assert backend.options.is_sandbox is True and backend.options.video_quality == "very_high"
    assert backend.session_lifetime() == SANDBOX_SECONDS  # a sandbox session lasts a minute


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"api_key": KEY}, "pass avatar_id=... or set LIVEAVATAR_AVATAR_ID"),
        ({"api_key": KEY, "avatar_id": "my avatar"}, "avatar_id='my avatar' is not in the form"),
        ({"api_key": KEY, "avatar_id": 42}, "avatar_id must be a non-empty string"),
        ({"api_key": KEY, "avatar_id": ""}, "avatar_id must be a non-empty string"),
        ({"avatar_id": AVATAR}, "pass api_key=... or set LIVEAVATAR_API_KEY"),
        ({"avatar_id": AVATAR, "api_key": f" {KEY}"}, "api_key has spaces"),
        ({"avatar_id": AVATAR, "api_key": KEY, "api_url": "api.liveavatar.com"}, "api_url must"),
        ({"avatar_id": AVATAR, "api_key": KEY, "is_sandbox": "yes"}, "is_sandbox must be True"),
        ({"avatar_id": AVATAR, "api_key": KEY, "is_sandbox": 1}, "is_sandbox must be True"),
        ({"avatar_id": AVATAR, "api_key": KEY, "video_quality": "hihg"}, "did you mean 'high'?"),
        ({"avatar_id": AVATAR, "api_key": KEY, "video_quality": "1080p"}, "use one of very_high"),
        ({"avatar_id": AVATAR, "api_key": KEY, "avatar": AVATAR}, "Did you mean 'avatar_id'?"),
    ],
)
def test_each_mistake_is_refused_at_get_naming_the_option(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=r"^liveavatar: ") as error:
        avatarkit.get("liveavatar", **options)
    assert message in str(error.value)
    assert KEY not in str(error.value)


def test_the_key_never_shows() -> None:
    backend = liveavatar(avatar_id=AVATAR, api_key=KEY)
    assert KEY not in repr(backend.options) and KEY not in str(backend.options)
    assert backend.options.api_key.reveal() == KEY
