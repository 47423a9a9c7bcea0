"""LemonSlice's options are livekit-plugins-lemonslice's: names, defaults, variable; checked at
get() against what the plugin and LemonSlice's API accept."""

from __future__ import annotations

import inspect
from typing import Any

import attrs
import pytest
from PIL import Image

import avatarkit
from avatarkit import ConfigurationError
from avatarkit_providers.lemonslice.options import DEFAULT_API_URL, LemonSliceOptions
from avatarkit_providers.lemonslice.provider import LemonSliceProvider

KEY = "ls_key_0123456789abcdef"
IMAGE_URL = "https://cdn.example.com/agents/face.png"
# the plugin's own (handled by avatarkit's core, or its extra-payload catch-all)
CORE = {"self", "avatar_participant_identity", "avatar_participant_name", "conn_options", "kwargs"}


@pytest.fixture(autouse=True)
def _no_lemonslice_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEMONSLICE_API_KEY", raising=False)


def options(**given: Any) -> LemonSliceOptions:
    given.setdefault("api_key", KEY)
    if not {"agent_id", "agent_image_url", "agent_image"} & set(given):
        given["agent_id"] = "agent_abc123"
    backend = avatarkit.get("lemonslice", **given).backend
    assert isinstance(backend, LemonSliceProvider)
    return backend.options


def test_names_and_defaults_are_the_official_plugins() -> None:
    from livekit.plugins.lemonslice import api as plugin_api
    from livekit.plugins.lemonslice import avatar as plugin_avatar

    theirs = inspect.signature(plugin_avatar.AvatarSession.__init__).parameters
    ours = {field.name: field.default for field in attrs.fields(LemonSliceOptions)}
    assert set(theirs) - CORE == set(ours)
    for name, parameter in theirs.items():
        if name in CORE or name in ("api_key", "api_url"):
            continue
        default = parameter.default
        assert ours[name] == (None if type(default).__name__ == "NotGiven" else default), name
    assert options().api_url == plugin_api.DEFAULT_API_URL == DEFAULT_API_URL
    assert LemonSliceProvider.default_identity == plugin_avatar._AVATAR_AGENT_IDENTITY
    assert LemonSliceProvider.sample_rate == plugin_avatar.DEFAULT_AUDIO_SAMPLE_RATE


def test_the_avatar_fields_are_those_given_in_the_plugins_order() -> None:
    assert options(agent_id="agent_1").avatar() == {
        "agent_id": "agent_1",
        "audio_sample_rate": 24000,
    }
    given = options(agent_image_url=IMAGE_URL, agent_prompt="calm", agent_idle_prompt="still",
                    idle_timeout=-1, audio_sample_rate=16000, model="pro")  # fmt: skip
    assert list(given.avatar().items()) == [
        ("agent_image_url", IMAGE_URL),
        ("agent_prompt", "calm"),
        ("agent_idle_prompt", "still"),
        ("idle_timeout", -1),
        ("audio_sample_rate", 16000),
        ("model", "pro"),
    ]
    # the image is uploaded on its own, never in the JSON fields
    assert options(agent_image=Image.new("RGB", (8, 8))).avatar() == {"audio_sample_rate": 24000}


def test_the_key_comes_from_the_plugins_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEMONSLICE_API_KEY", "ls-from-env")
    chosen = avatarkit.get("lemonslice", agent_id="a1").backend.options
    assert chosen.api_key.reveal() == "ls-from-env"
    assert options(api_key="ls-given").api_key.reveal() == "ls-given"


def test_the_sample_rate_option_sets_the_rate_the_core_streams_at() -> None:
    backend = avatarkit.get("lemonslice", api_key=KEY, agent_id="a", audio_sample_rate=48000)
    assert backend.backend.sample_rate == 48000
    assert LemonSliceProvider.sample_rate == 24000  # the class default is untouched


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({}, "exactly one of agent_id, agent_image_url or agent_image, got none"),
        ({"agent_id": "a", "agent_image_url": IMAGE_URL}, "got agent_id and agent_image_url"),
        ({"agent_image_url": IMAGE_URL, "agent_image": Image.new("RGB", (4, 4))}, "got agent_"),
        ({"agent_id": ""}, "agent_id must be a non-empty string"),
        ({"agent_id": 7}, "agent_id must be a non-empty string"),
        ({"agent_image_url": "face.png"}, "agent_image_url='face.png' is not in the form"),
        ({"agent_image_url": "ftp://x/y.png"}, "a public http\\(s\\) URL"),
        ({"agent_image": b"\x89PNG"}, "agent_image must be a PIL.Image.Image, got bytes"),
        ({"agent_prompt": ""}, "agent_prompt must be a non-empty string"),
        ({"agent_idle_prompt": 3}, "agent_idle_prompt must be a non-empty string"),
        ({"idle_timeout": 1.5}, "idle_timeout must be a whole number of seconds"),
        ({"idle_timeout": True}, "idle_timeout must be a whole number"),
        ({"idle_timeout": "60"}, "idle_timeout must be a whole number"),
        ({"audio_sample_rate": 8000}, "audio_sample_rate must be one of 16000, 22050, 24000"),
        ({"audio_sample_rate": 24000.0}, "audio_sample_rate must be one of"),
        ({"audio_sample_rate": float("nan")}, "audio_sample_rate must be one of"),
        ({"model": ""}, "model must be a non-empty string"),
        ({"api_url": "lemonslice.com/api"}, "api_url must be an http"),
        ({"api_key": ""}, "an API key is needed: pass api_key=... or set LEMONSLICE_API_KEY"),
        ({"api_key": " k "}, "api_key has spaces"),
        ({"agent_image_uri": IMAGE_URL}, "Did you mean 'agent_image_url'"),
    ],
)
def test_bad_options_fail_at_get(given: dict[str, Any], message: str) -> None:
    if "agent_id" not in given and not any(k.startswith("agent_image") for k in given):
        given = {"agent_id": "a", **given} if given else given
    with pytest.raises(ConfigurationError, match=f"lemonslice: .*{message}"):
        avatarkit.get("lemonslice", **{"api_key": KEY, **given})


def test_the_key_is_never_shown() -> None:
    chosen = options(api_key="ls-secret-123", api_url="https://u:pw@lemonslice.example/api")
    avatar = avatarkit.get("lemonslice", api_key="ls-secret-123", agent_id="a")
    for shown in (repr(chosen), str(chosen), repr(avatar)):
        assert "ls-secret-123" not in shown and "pw@" not in shown
    with pytest.raises(ConfigurationError) as error:
        avatarkit.get("lemonslice", api_key="ls-secret-123", agent_id="a", idle_timeout="x")
    assert "ls-secret-123" not in str(error.value)
