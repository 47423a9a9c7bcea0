"""LiveKit Inference options: the official plugin's names, defaults and variables, checked at
get() with messages that name the option."""

from __future__ import annotations

from typing import Any

import pytest
from livekit.agents import inference

import avatarkit
from avatarkit import ConfigurationError
from avatarkit_providers.inference.options import DEFAULT_URL, STAGING_URL
from avatarkit_providers.inference.provider import InferenceProvider

KEY, SECRET = "APIkey123", "secret_0123456789abcdef0123456789"
_ENV = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "LIVEKIT_INFERENCE_URL",
        "LIVEKIT_INFERENCE_API_KEY", "LIVEKIT_INFERENCE_API_SECRET")  # fmt: skip


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


def backend(**options: Any) -> InferenceProvider:
    provider = avatarkit.get("inference", **options).backend
    assert isinstance(provider, InferenceProvider)
    return provider


def test_defaults_are_the_official_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEKIT_API_KEY", KEY)
    monkeypatch.setenv("LIVEKIT_API_SECRET", SECRET)
    ours = backend(model="lemonslice/agent_abc")
    theirs = inference.AvatarSession("lemonslice/agent_abc")
    assert ours.options.base_url == theirs._base_url == DEFAULT_URL
    assert ours.options.api_key.reveal() == theirs._api_key == KEY
    assert ours.options.api_secret.reveal() == theirs._api_secret == SECRET
    assert ours.default_identity == theirs.avatar_identity == "lemonslice-inference-avatar"
    assert (ours.options.provider, ours.options.avatar_id) == ("lemonslice", "agent_abc")
    assert ours.options.extra_kwargs is None
    assert ours.sample_rate == 24000 and ours.reports_playback_start


def test_the_inference_variables_come_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEKIT_API_KEY", "APIroom")
    monkeypatch.setenv("LIVEKIT_API_SECRET", "room_secret")
    monkeypatch.setenv("LIVEKIT_INFERENCE_API_KEY", KEY)
    monkeypatch.setenv("LIVEKIT_INFERENCE_API_SECRET", SECRET)
    monkeypatch.setenv("LIVEKIT_INFERENCE_URL", "http://127.0.0.1:9/v1/")
    options = backend(model="lemonslice").options
    theirs = inference.AvatarSession("lemonslice")
    assert options.api_key.reveal() == theirs._api_key == KEY
    assert options.api_secret.reveal() == theirs._api_secret == SECRET
    assert options.base_url == "http://127.0.0.1:9/v1"  # trailing / dropped, as the plugin does
    given = backend(model="lemonslice", api_key="APIgiven", api_secret="given_secret").options
    assert (given.api_key.reveal(), given.api_secret.reveal()) == ("APIgiven", "given_secret")


def test_a_staging_project_uses_the_staging_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEKIT_URL", "wss://p-1.staging.livekit.cloud")
    options = backend(model="lemonslice", api_key=KEY, api_secret=SECRET).options
    assert options.base_url == STAGING_URL
    assert inference.AvatarSession("lemonslice", api_key=KEY, api_secret=SECRET)._base_url == (
        STAGING_URL
    )


def test_the_payload_maps_the_lemonslice_options_as_the_plugin() -> None:
    extra = {"image_url": "https://x.test/a.png", "prompt": "smile", "idle_prompt": "wait",
             "idle_timeout": 30, "voice": "calm"}  # fmt: skip
    options = backend(model="lemonslice", extra_kwargs=extra, api_key=KEY, api_secret=SECRET)
    assert options.options.payload() == {
        "image_url": "https://x.test/a.png", "prompt": "smile", "idle_prompt": "wait",
        "idle_timeout_s": 30, "extra_kwargs": {"voice": "calm"},
    }  # fmt: skip
    extra["prompt"] = "changed later"  # the options hold a copy
    assert options.options.payload()["prompt"] == "smile"


def test_there_are_no_deprecated_aliases() -> None:
    # the official plugin has none: a former name is an unknown option, with a suggestion
    with pytest.raises(ConfigurationError, match="Did you mean 'base_url'"):
        avatarkit.get("inference", model="lemonslice", api_key=KEY, api_secret=SECRET, baseurl="x")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"model": ""}, "model must be a string"),
        ({"model": 3}, "model must be a string"),
        ({"model": "lemonslice/a\nb"}, "model must be a string"),
        ({"model": "lemonslise/agent_abc"}, "did you mean 'lemonslice'"),
        ({"model": "tavus"}, "provider 'tavus' is unknown"),
        ({"extra_kwargs": ["prompt"]}, "extra_kwargs must be a dict"),
        ({"extra_kwargs": {1: "x"}}, "extra_kwargs must be a dict with string keys"),
        ({"extra_kwargs": {"prompt": ""}}, r"extra_kwargs\['prompt'\] must be a non-empty"),
        ({"extra_kwargs": {"idle_prompt": 3}}, r"extra_kwargs\['idle_prompt'\] must be"),
        ({"extra_kwargs": {"image_url": "a.png"}}, r"extra_kwargs\['image_url'\] must be an http"),
        (
            {"model": "lemonslice/agent_abc", "extra_kwargs": {"image_url": "https://x.test/a"}},
            "not both",
        ),
        ({"extra_kwargs": {"idle_timeout": 0}}, r"extra_kwargs\['idle_timeout'\] must be a whole"),
        ({"extra_kwargs": {"idle_timeout": 30.5}}, "whole number of seconds"),
        ({"extra_kwargs": {"idle_timeout": True}}, "whole number of seconds"),
        ({"extra_kwargs": {"idle_timeout": float("nan")}}, "whole number of seconds"),
        ({"extra_kwargs": {"scale": float("inf")}}, "JSON values only"),
        ({"extra_kwargs": {"when": object()}}, "JSON values only"),
        ({"base_url": "agent-gateway.livekit.cloud"}, "base_url must be an http"),
        ({"base_url": 8}, "base_url must be an http"),
        ({"api_key": " APIkey"}, "api_key has spaces"),
        ({"api_secret": 42}, "api_secret must be a string"),
    ],
)
def test_bad_options_raise_at_get(options: dict[str, Any], message: str) -> None:
    options = {"model": "lemonslice", "api_key": KEY, "api_secret": SECRET, **options}
    with pytest.raises(ConfigurationError, match=message):
        avatarkit.get("inference", **options)


def test_the_model_is_required() -> None:
    with pytest.raises(ConfigurationError, match=r"inference: .*'model'"):
        avatarkit.get("inference", api_key=KEY, api_secret=SECRET)


@pytest.mark.parametrize("name", ["api_key", "api_secret"])
def test_a_missing_credential_names_its_variables(name: str) -> None:
    given = {"api_key": KEY, "api_secret": SECRET}
    del given[name]
    variable = name.upper()
    with pytest.raises(
        ConfigurationError, match=f"LIVEKIT_INFERENCE_{variable} or LIVEKIT_{variable}"
    ):
        avatarkit.get("inference", model="lemonslice", **given)


def test_credentials_stay_out_of_reprs() -> None:
    provider = backend(model="lemonslice", api_key=KEY, api_secret=SECRET,
                       base_url="https://user:pw@gw.test/v1?sig=abc")  # fmt: skip
    shown = repr(provider.options)
    assert KEY not in shown and SECRET not in shown and "pw" not in shown and "abc" not in shown
