"""Provider discovery through the 'avatarkit' entry-point group, and get()'s errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import attrs
import pytest

import avatarkit
from avatarkit import ConfigurationError, ProviderSpec, UnknownProviderError


def test_runway_is_discovered_through_its_entry_point() -> None:
    info = avatarkit.provider_info("runway")
    assert info.distribution == "avatarkit-livekit"
    assert info.version == avatarkit.__version__
    assert "Runway" in info.summary
    assert info.spec.provider == "avatarkit_providers.runway.provider:RunwayProvider"
    assert [p.name for p in avatarkit.providers()].count("runway") == 1


def test_listing_providers_imports_no_provider_code_and_no_livekit_agents() -> None:
    code = (
        "import sys, json, avatarkit\n"
        "names = [p.name for p in avatarkit.providers()]\n"
        "heavy = [m for m in sys.modules if m.startswith('livekit') "
        "or m in ('avatarkit_providers.runway.provider', 'avatarkit.session', 'aiohttp')]\n"
        "print(json.dumps({'names': names, 'heavy': heavy}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    result = json.loads(out)
    assert "runway" in result["names"]
    assert result["heavy"] == []


def test_unknown_name_lists_installed_providers_and_suggests_the_closest() -> None:
    with pytest.raises(UnknownProviderError) as err:
        avatarkit.get("runwya", preset_id="influencer")
    assert err.value.suggestion == "runway"
    assert "'runway'" in str(err.value) and "Did you mean 'runway'?" in str(err.value)
    assert isinstance(err.value, ConfigurationError)


def test_unknown_name_without_close_match_has_no_suggestion() -> None:
    with pytest.raises(UnknownProviderError) as err:
        avatarkit.get("zzzzzz")
    assert err.value.suggestion is None
    assert "Did you mean" not in str(err.value)


def test_a_third_party_provider_is_listed_and_gettable(
    third_party: Callable[[ProviderSpec], None],
) -> None:
    third_party(
        ProviderSpec(
            name="echo",
            summary="test provider",
            provider="tests.helpers.echo:EchoProvider",
            options="tests.helpers.echo:EchoOptions",
        )
    )
    info = avatarkit.provider_info("echo")
    assert info.distribution is None  # registered by hand, not from a distribution
    avatar = avatarkit.get("echo", color="blue")
    assert avatar.provider == "echo"
    assert avatar.avatar_identity == "echo-avatar"
    assert avatar.backend.options.color == "blue"


def test_a_name_registered_twice_is_an_error(
    third_party: Callable[[ProviderSpec], None],
) -> None:
    third_party(ProviderSpec("runway", "impostor", "tests.helpers.echo:EchoProvider"))
    with pytest.raises(ConfigurationError, match="registered twice"):
        avatarkit.providers()


def test_a_spec_pointing_at_something_else_fails_clearly(
    third_party: Callable[[ProviderSpec], None],
) -> None:
    third_party(ProviderSpec("notaprovider", "x", "tests.helpers.echo:EchoOptions"))
    with pytest.raises(ConfigurationError, match=r"not an avatarkit\.AvatarProvider"):
        avatarkit.get("notaprovider")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "Bad Name", "summary": "", "provider": "a.b:C"},
        {"name": "ok", "summary": "", "provider": "not a path"},
        {"name": "ok", "summary": "", "provider": "a.b:C", "options": "a.b"},
    ],
)
def test_provider_spec_is_validated(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        ProviderSpec(**kwargs)


@attrs.frozen(kw_only=True)
class ShadowingOptions:
    """Options of a provider that reuse a core option's name (and one its own)."""

    color: str = "red"
    join_timeout: float = 5.0


def test_a_provider_option_named_like_a_core_option_is_refused(
    third_party: Callable[[ProviderSpec], None],
) -> None:
    third_party(
        ProviderSpec(
            name="shadow",
            summary="an option the core would take",
            provider="tests.helpers.echo:EchoProvider",
            options="tests.core.test_registry:ShadowingOptions",
        )
    )
    with pytest.raises(ConfigurationError) as err:
        avatarkit.providers()
    message = str(err.value)
    assert "'shadow'" in message and "'join_timeout'" in message
    assert "core option" in message and "rename" in message
