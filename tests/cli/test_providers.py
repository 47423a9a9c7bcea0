"""``avatarkit providers``, the CLI's skeleton, and its light start-up."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from typer.testing import CliRunner

import avatarkit
from avatarkit import ProviderSpec
from avatarkit.options import CoreOptions
from avatarkit_cli import _options
from avatarkit_cli._options import convert
from avatarkit_cli.app import app
from avatarkit_providers.runway.options import RunwayOptions

RUNWAY_KEY = "rk_listing_" + "Pq3Ws8Ze" * 4
THIRD_PARTY_TOKEN = "tp_token_" + "Yb6Nc1Vx" * 3

HEAVY = (
    "livekit.agents",
    "avatarkit.session",
    "avatarkit_providers.runway.provider",
    "avatarkit_providers.local.provider",
    "numpy",
)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNWAYML_API_SECRET", RUNWAY_KEY)
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps table cells to the terminal width


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None, result.output
    assert result.exit_code == 0, result.output
    assert RUNWAY_KEY not in result.output
    assert THIRD_PARTY_TOKEN not in result.output
    return result.output


def _listing() -> dict[str, dict[str, Any]]:
    return _listing_of("providers", "--json")


def _listing_of(*args: str) -> dict[str, dict[str, Any]]:
    data = json.loads(_invoke(*args))
    assert set(data) == {"providers", "core_options"}
    return {p["name"]: p for p in data["providers"]}


def test_providers_table_lists_runway_and_local_with_their_options() -> None:
    out = _invoke("providers")
    for expected in (
        "runway",
        "local",
        "avatarkit-livekit",
        avatarkit.__version__,
        "Runway Characters",
    ):
        assert expected in out
    for option in ("preset_id", "avatar_id", "max_duration", "api_key", "width", "fps", "seed"):
        assert option in out
    # env-read defaults are shown as the variable, never as its value
    assert "$RUNWAYML_API_SECRET" in out
    assert "$RUNWAYML_BASE_URL" in out
    # attribute docstrings describe the options
    assert "UUID of a custom avatar made in Runway" in out
    # types keep their brackets (no rich markup eats them)
    assert "Mapping[str, tuple[int, int, int]]" in out


def test_the_listing_reads_at_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    # the providers this distribution ships, so the bound holds whatever else is installed
    shipped = [p for p in avatarkit.providers() if p.distribution == "avatarkit-livekit"]
    assert {p.name for p in shipped} == {
        *("anam", "bey", "inference", "lemonslice", "liveavatar", "local", "runway", "simli"),
        "tavus",
    }
    monkeypatch.setattr(avatarkit, "providers", lambda: shipped)
    monkeypatch.setenv("COLUMNS", "80")
    out = _invoke("providers")
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in out
    flat = " ".join(out.split())  # wrapped lines joined: every description whole
    for docs in (_options.describe(RunwayOptions), _options.describe(CoreOptions)):
        for doc in docs:
            assert re.search(rf"^  {doc.name}: ", out, re.MULTILINE), doc.name
            assert doc.description and doc.description in flat, doc.name
    assert "$RUNWAYML_API_SECRET" in out
    # 152 lines for the nine shipped providers and 14 core options today (77 for two
    # providers; rich's tables took 159 for two at this width, cutting cells off with '…')
    assert len(lines) <= 160, out


def test_one_provider_can_be_listed_alone() -> None:
    out = _invoke("providers", "runway")
    assert "runway options: avatarkit.get('runway', ...)" in out
    assert "Options every provider accepts" in out
    assert "local options" not in out and "  width: " not in out
    listing = _listing_of("providers", "runway", "--json")
    assert list(listing) == ["runway"]

    result = CliRunner().invoke(app, ["providers", "runwya"])
    assert result.exit_code == 2, result.output
    assert "Did you mean 'runway'?" in result.output


def test_providers_json_is_machine_readable() -> None:
    listing = _listing()
    assert {"runway", "local"} <= set(listing)
    runway = listing["runway"]
    assert runway["distribution"] == "avatarkit-livekit"
    assert runway["version"] == avatarkit.__version__
    assert runway["provider"] == "avatarkit_providers.runway.provider:RunwayProvider"
    options = {o["name"]: o for o in runway["options"]}
    assert options["max_duration"] == {
        "name": "max_duration",
        "type": "int | None",
        "required": False,
        "default": None,
        "default_from_env": [],
        "secret": False,
        "description": options["max_duration"]["description"],
    }
    assert "10-1800" in options["max_duration"]["description"]
    assert options["api_key"]["secret"] is True
    assert options["api_key"]["default"] is None
    assert options["api_key"]["default_from_env"] == ["RUNWAYML_API_SECRET"]
    assert options["api_url"]["default_from_env"] == ["RUNWAYML_BASE_URL"]
    assert options["legacy_livekit_field"]["default"] is False
    local = {o["name"]: o for o in listing["local"]["options"]}
    assert local["width"]["default"] == 512
    assert local["fps"]["type"] == "float"
    assert local["colors"]["default"] == {}


def _env_token() -> str | None:
    return os.environ.get("MYAVATAR_TOKEN")


@attrs.frozen(kw_only=True)
class ThirdPartyOptions:
    """Options of a provider from another package."""

    token: str | None = attrs.field(factory=_env_token)
    """Read from MYAVATAR_TOKEN."""
    region: str = attrs.field(factory=lambda: "eu", metadata={"env": "MYAVATAR_REGION"})
    password: str = "hunter2-default"
    mood: str = "calm"


def test_a_third_party_provider_is_listed_without_its_secrets(
    third_party: Callable[[ProviderSpec], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MYAVATAR_TOKEN", THIRD_PARTY_TOKEN)
    third_party(
        ProviderSpec(
            name="thirdparty",
            summary="someone else's avatars",
            provider="tests.helpers.echo:EchoProvider",
            options="tests.cli.test_providers:ThirdPartyOptions",
        )
    )
    third_party(ProviderSpec("bare", "no options declared", "tests.helpers.echo:EchoProvider"))
    listing = _listing()
    options = {o["name"]: o for o in listing["thirdparty"]["options"]}
    assert listing["thirdparty"]["distribution"] is None
    assert options["token"]["default_from_env"] == ["MYAVATAR_TOKEN"]
    assert options["token"]["secret"] is True
    assert options["region"]["default_from_env"] == ["MYAVATAR_REGION"]
    assert options["password"]["default"] == "********"  # a secret-named plain default
    assert options["mood"]["default"] == "calm"
    assert listing["bare"]["options"] == []

    out = _invoke("providers")
    assert "$MYAVATAR_TOKEN" in out and "$MYAVATAR_REGION" in out
    assert "hunter2-default" not in out
    assert "none declared" in out


@pytest.mark.parametrize(
    ("type_text", "raw", "expected"),
    [
        ("int | None", "5000", 5000),
        ("int | None", "none", None),
        ("int", "abc", "abc"),  # left for the option's validator to report
        ("float", "24.5", 24.5),
        ("float", "30", 30.0),
        ("bool", "yes", True),
        ("bool", "0", False),
        ("str | None", "42", "42"),
        ("Secret | None", "123456", "123456"),
        ("Optional[int]", "7", 7),
        ("Mapping[str, tuple[int, int, int]]", '{"skin": [1, 2, 3]}', {"skin": [1, 2, 3]}),
        ("tuple[dict[str, Any], ...]", "[]", []),
        ("", "plain", "plain"),
    ],
)
def test_command_line_values_are_converted_by_the_option_type(
    type_text: str, raw: str, expected: Any
) -> None:
    assert convert(type_text, raw) == expected
    assert type(convert(type_text, raw)) is type(expected)


def test_help_lists_the_commands() -> None:
    out = _invoke("--help")
    assert "providers" in out and "doctor" in out


def test_start_up_is_light() -> None:
    code = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from avatarkit_cli.app import app\n"
        f"heavy = {HEAVY!r}\n"
        "report = {}\n"
        "for args in (['--help'], ['providers'], ['providers', '--json'], ['doctor', '--help'],\n"
        "             ['demo', '--help'], ['compare', '--help'], ['emulate', '--help']):\n"
        "    result = CliRunner().invoke(app, args)\n"
        "    loaded = [m for m in heavy if m in sys.modules]\n"
        "    # runway's summary: listed by providers, not by any help\n"
        "    listed = 'Runway Characters' in result.output\n"
        "    report[' '.join(args)] = [result.exit_code, listed, loaded]\n"
        "print(json.dumps(report))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    report = json.loads(out)
    assert report == {
        "--help": [0, False, []],
        "providers": [0, True, []],
        "providers --json": [0, True, []],
        "doctor --help": [0, False, []],
        "demo --help": [0, False, []],
        "compare --help": [0, False, []],
        "emulate --help": [0, False, []],
    }


def test_the_console_script_entry_point_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "avatarkit_cli", "--version"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip() == f"avatarkit {avatarkit.__version__}"


def test_the_core_options_every_provider_accepts_are_listed() -> None:
    from avatarkit.options import CORE_OPTIONS

    report = json.loads(_invoke("providers", "--json"))
    assert [o["name"] for o in report["core_options"]] == list(CORE_OPTIONS)
    assert all(o["description"] for o in report["core_options"])
    assert "Options every provider accepts" in _invoke("providers")
