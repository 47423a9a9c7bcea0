"""Tavus' options are livekit-plugins-tavus' options: names, defaults, variables, aliases."""

from __future__ import annotations

import pytest

import avatarkit
from avatarkit import ConfigurationError
from avatarkit_providers.tavus.options import DEFAULT_FACE_ID, DEFAULT_PAL_ID, TavusOptions


def options(**given: object) -> TavusOptions:
    return TavusOptions(**given)  # type: ignore[arg-type]


def test_defaults_are_the_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAVUS_API_KEY", "tk-from-env")
    chosen = options()
    assert chosen.api_url == "https://tavusapi.com/v2"
    assert chosen.api_key is not None and chosen.api_key.reveal() == "tk-from-env"
    assert chosen.conversation() == {"pal_id": DEFAULT_PAL_ID, "face_id": DEFAULT_FACE_ID}
    # a PAL of the user's own carries its own face: no stock face is sent with it
    assert options(pal_id="p1").conversation() == {"pal_id": "p1"}


def test_variables_come_after_options_and_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAVUS_API_KEY", "k")
    monkeypatch.setenv("TAVUS_FACE_ID", "r-env")
    monkeypatch.setenv("TAVUS_PAL_ID", "p-env")
    assert options().conversation() == {"pal_id": "p-env", "face_id": "r-env"}
    with pytest.warns(DeprecationWarning, match="'replica_id' is deprecated, use 'face_id'"):
        assert options(replica_id="r-old").face_id == "r-old"
    assert options(face_id="r-new", replica_id="r-old").face_id == "r-new"


def test_deprecated_variables_are_read_last_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAVUS_API_KEY", "k")
    monkeypatch.setenv("TAVUS_PERSONA_ID", "p-old")
    with pytest.warns(DeprecationWarning, match="TAVUS_PERSONA_ID"):
        assert options().pal_id == "p-old"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"face_id": ""}, "face_id must be a non-empty string"),
        ({"face_id": "r 1"}, "face_id='r 1' is not in the form"),
        ({"pal_id": 12}, "pal_id must be a non-empty string"),
        ({"api_url": "tavusapi.com"}, "api_url must be an http"),
        ({"api_key": ""}, "an API key is needed: pass api_key=... or set TAVUS_API_KEY"),
    ],
)
def test_bad_options_fail_at_get(
    given: dict[str, object], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TAVUS_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match=message):
        avatarkit.get("tavus", **{"api_key": "k", **given})


def test_the_key_is_never_shown() -> None:
    chosen = options(api_key="tk-secret-123", api_url="https://u:pw@tavus.example/v2")
    assert "tk-secret-123" not in repr(chosen) and "pw" not in repr(chosen)
