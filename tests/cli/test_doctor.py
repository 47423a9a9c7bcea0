"""``avatarkit doctor`` against Runway's API double and a LiveKit twirp double on 127.0.0.1.

The CLI runs its own event loop (``asyncio.run``), so the doubles serve from a loop in a
background thread. Every run also checks that no secret appears in the output.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from aiohttp import web
from livekit import api
from typer.testing import CliRunner, Result

from avatarkit_cli.app import app
from avatarkit_providers.runway.emulator.api import RunwayAPIServer

T = TypeVar("T")

GOOD_KEY = "rk_good_" + "Zq7Xw2Lp" * 4
WRONG_KEY = "rk_wrong_" + "Mv4Tn8Rb" * 4
LK_KEY = "APIdoctor7f3Kd"
LK_SECRET = "lk_secret_" + "Hs9Qe4Jd" * 5
LK_OTHER_SECRET = "lk_other_" + "Gw2Yc7Up" * 5
SECRETS = (GOOD_KEY, WRONG_KEY, LK_KEY, LK_SECRET, LK_OTHER_SECRET)


class BackgroundLoop:
    """An event loop in a thread, to serve the doubles while the CLI runs its own loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@pytest.fixture
def background() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop()
    yield loop
    loop.close()


@pytest.fixture
def runway(background: BackgroundLoop) -> Iterator[RunwayAPIServer]:
    async def start() -> RunwayAPIServer:
        server = RunwayAPIServer(api_key=GOOD_KEY)
        await server.start()
        return server

    server = background.run(start())
    yield server
    background.run(server.close())


async def _list_rooms(request: web.Request) -> web.Response:
    # A LiveKit server's answer: the request's token must be signed by its key pair.
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    try:
        claims = api.TokenVerifier(LK_KEY, LK_SECRET).verify(token)
    except Exception:
        return web.json_response({"code": "unauthenticated", "msg": "invalid token"}, status=401)
    if not claims.video or not claims.video.room_list:
        return web.json_response({"code": "permission_denied", "msg": "no grant"}, status=403)
    body = api.ListRoomsResponse(rooms=[api.Room(name="a")]).SerializeToString()
    return web.Response(body=body, content_type="application/protobuf")


@pytest.fixture
def livekit_url(background: BackgroundLoop) -> Iterator[str]:
    async def start() -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/twirp/livekit.RoomService/ListRooms", _list_rooms)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    runner = background.run(start())
    yield f"ws://127.0.0.1:{runner.addresses[0][1]}"
    background.run(runner.cleanup())


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections (bound, never listening)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("RUNWAYML_BASE_URL", "LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RUNWAYML_API_SECRET", GOOD_KEY)
    return monkeypatch


@pytest.fixture
def livekit_env(env: pytest.MonkeyPatch, livekit_url: str) -> str:
    env.setenv("LIVEKIT_URL", livekit_url)
    env.setenv("LIVEKIT_API_KEY", LK_KEY)
    env.setenv("LIVEKIT_API_SECRET", LK_SECRET)
    return livekit_url


def doctor(*args: str) -> Result:
    result = CliRunner().invoke(app, ["doctor", *args])
    # a crash also exits 1: only a deliberate exit counts
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    for secret in SECRETS:
        assert secret not in result.output, f"secret {secret[:6]}... printed:\n{result.output}"
    return result


def runway_args(server: RunwayAPIServer, *more: str) -> list[str]:
    return ["runway", "-o", "preset_id=influencer", "-o", f"api_url={server.url}", *more]


def test_passes_with_a_good_key_and_creates_nothing(
    runway: RunwayAPIServer, livekit_env: str
) -> None:
    result = doctor(*runway_args(runway))
    out = result.output
    assert result.exit_code == 0, out
    assert "✗" not in out
    assert "✓ installed: avatarkit" in out
    assert "✓ options valid" in out and "preset_id='influencer' (-o)" in out
    assert "api_key: RUNWAYML_API_SECRET set (40 chars)" in out
    assert f"✓ LIVEKIT_URL = {livekit_env}" in out
    assert f"LIVEKIT_API_KEY set ({len(LK_KEY)} chars)" in out
    assert f"LIVEKIT_API_SECRET set ({len(LK_SECRET)} chars)" in out
    assert "✓ avatar token minted" in out
    assert "accepted the API key pair (1 active room)" in out
    assert f"✓ runway: API key accepted by {runway.url}" in out
    assert "All checks passed." in out
    # one authenticated GET of a session that cannot exist; nothing billable
    assert [(r.method, r.route, r.status) for r in runway.requests] == [("GET", "get", 404)]
    assert runway.sessions == {}


@pytest.mark.parametrize("source", ["env", "option"])
def test_a_wrong_key_fails_with_a_fix(
    runway: RunwayAPIServer, livekit_env: str, env: pytest.MonkeyPatch, source: str
) -> None:
    more: list[str] = []
    if source == "env":
        env.setenv("RUNWAYML_API_SECRET", WRONG_KEY)
    else:
        more = ["-o", f"api_key={WRONG_KEY}"]
    result = doctor(*runway_args(runway, *more))
    out = result.output
    assert result.exit_code == 1, out
    assert f"✗ runway: {runway.url} rejected the API key (401)" in out
    assert "fix: check api_key (-o) or RUNWAYML_API_SECRET" in out
    expected = "api_key (-o) set" if source == "option" else "RUNWAYML_API_SECRET set"
    assert f"{expected} ({len(WRONG_KEY)} chars)" in out
    assert [r.status for r in runway.requests] == [401]


def test_a_missing_key_names_the_variable(
    runway: RunwayAPIServer, livekit_env: str, env: pytest.MonkeyPatch
) -> None:
    env.delenv("RUNWAYML_API_SECRET")
    result = doctor(*runway_args(runway))
    out = result.output
    assert result.exit_code == 1, out
    assert "✗ runway: an API key is needed" in out
    assert "fix: set RUNWAYML_API_SECRET (or pass -o api_key=...)" in out
    assert "accepted the API key pair" in out  # the LiveKit checks still run
    assert runway.requests == []  # no credential check without a key


@pytest.mark.parametrize(
    ("option", "message"),
    [
        # converted to an int: the validator sees 5000, not '5000'
        ("max_duration=5000", "max_duration must be a whole number of seconds from 10 to 1800"),
        ("preset=influencer", "unknown option 'preset'. Did you mean 'preset_id'?"),
        ("avatar_id=not-a-uuid", "avatar_id must be the UUID of a custom avatar"),
    ],
)
def test_a_bad_option_fails_with_the_validation_message(
    runway: RunwayAPIServer, livekit_env: str, option: str, message: str
) -> None:
    result = doctor(*runway_args(runway, "-o", option))
    out = result.output
    assert result.exit_code == 1, out
    assert f"✗ options: runway: {message}" in out
    if option.startswith("max_duration"):
        assert "got 5000" in out
    name = option.partition("=")[0]
    assert f"fix: change {name}: -o {name}=..." in out or "fix: use -o preset_id=..." in out
    assert out.count("✗") == 1
    assert runway.requests == []


def test_every_bad_option_is_reported_in_one_run(runway: RunwayAPIServer, livekit_env: str) -> None:
    result = doctor(
        *runway_args(runway),
        "-o",
        "max_duration=5000",
        "-o",
        "avatar_id=not-a-uuid",
        "-o",
        "join_timeout=0",  # a core option, validated by the core's own validator
        "-o",
        "personalty=cheerful",
        "-o",
        f"api_key={WRONG_KEY}x",  # a valid (if wrong) key: checked only once options pass
    )
    out = result.output
    assert result.exit_code == 1, out
    assert "✗ options: runway: max_duration must be a whole number" in out
    assert "fix: change max_duration: -o max_duration=..." in out
    assert "✗ options: runway: avatar_id must be the UUID of a custom avatar" in out
    assert "fix: change avatar_id: -o avatar_id=..." in out
    assert "✗ options: runway: join_timeout must be a finite, positive number of seconds" in out
    assert "✗ options: runway: unknown option 'personalty'. Did you mean 'personality'?" in out
    assert "fix: use -o personality=..." in out
    assert "4 problems found." in out
    assert f"{WRONG_KEY}x" not in out
    assert runway.requests == []  # no credential check with bad options


def test_options_that_only_fail_together_are_reported_by_get(
    runway: RunwayAPIServer, livekit_env: str
) -> None:
    both = "00000000-0000-4000-8000-000000000000"
    result = doctor(*runway_args(runway, "-o", f"avatar_id={both}"))
    out = result.output
    assert result.exit_code == 1, out
    assert "✗ options: runway: give exactly one of avatar_id" in out
    assert "1 problem found." in out


def test_unset_livekit_settings_are_a_warning_that_says_what_it_means(
    runway: RunwayAPIServer,
) -> None:
    result = doctor(*runway_args(runway))
    out = result.output
    assert result.exit_code == 0, out
    assert "✗" not in out
    assert (
        "! LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET not set: not needed for this "
        "check, but needed when the avatar joins a real LiveKit server"
    ) in out
    assert "fix: export LIVEKIT_URL=wss://" in out and "-o livekit_api_secret=..." in out
    assert "token minted" not in out
    assert "✓ runway: API key accepted" in out  # the provider check still runs
    assert "No problems found; 1 warning" in out


def test_a_local_check_passes_without_livekit_settings() -> None:
    result = doctor("local")
    assert result.exit_code == 0, result.output
    assert "✓ local: nothing remote to check" in result.output


def test_strict_fails_on_unset_livekit_settings(runway: RunwayAPIServer) -> None:
    result = doctor("local", "--strict")
    out = result.output
    assert result.exit_code == 1, out
    assert "✗ LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET not set" in out
    assert "1 problem found." in out


def test_half_set_livekit_settings_fail(env: pytest.MonkeyPatch) -> None:
    env.setenv("LIVEKIT_URL", "wss://myproject.livekit.cloud")
    result = doctor("local")
    out = result.output
    assert result.exit_code == 1, out
    assert "✓ LIVEKIT_URL = wss://myproject.livekit.cloud" in out
    for name in ("LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        assert f"✗ {name} not set, though LIVEKIT_URL is" in out
        assert f"fix: export {name}=..." in out
    assert "2 problems found." in out


def test_unset_livekit_settings_do_not_hide_real_problems(runway: RunwayAPIServer) -> None:
    result = doctor("local", "-o", "width=63")
    out = result.output
    assert result.exit_code == 1, out
    assert "✗ options: local: width must be a whole number of pixels in 64..2048" in out
    assert "1 problem found (and 1 warning)." in out


def test_livekit_settings_can_come_from_options(runway: RunwayAPIServer, livekit_url: str) -> None:
    result = doctor(
        *runway_args(runway),
        "-o",
        f"livekit_url={livekit_url}",
        "-o",
        f"livekit_api_key={LK_KEY}",
        "-o",
        f"livekit_api_secret={LK_SECRET}",
    )
    out = result.output
    assert result.exit_code == 0, out
    assert f"✓ livekit_url (-o) = {livekit_url}" in out
    assert f"livekit_api_secret (-o) set ({len(LK_SECRET)} chars)" in out
    assert "accepted the API key pair" in out


def test_a_livekit_url_without_a_scheme_fails(
    runway: RunwayAPIServer, livekit_env: str, env: pytest.MonkeyPatch
) -> None:
    env.setenv("LIVEKIT_URL", "myproject.livekit.cloud")
    result = doctor(*runway_args(runway))
    out = result.output
    assert result.exit_code == 1, out
    assert "✗ LIVEKIT_URL = myproject.livekit.cloud: not a LiveKit URL" in out
    assert "starting with wss://" in out


def test_an_unreachable_livekit_server_is_reported_as_unreachable(
    runway: RunwayAPIServer, livekit_env: str, env: pytest.MonkeyPatch, closed_port: int
) -> None:
    env.setenv("LIVEKIT_URL", f"wss://127.0.0.1:{closed_port}")
    result = doctor(*runway_args(runway))
    out = result.output
    assert result.exit_code == 1, out
    assert f"✗ LiveKit server at wss://127.0.0.1:{closed_port} unreachable" in out
    assert "rejected" not in out
    assert "--skip-livekit-server" in out

    skipped = doctor(*runway_args(runway, "--skip-livekit-server"))
    assert skipped.exit_code == 0, skipped.output
    assert "LiveKit server not contacted (--skip-livekit-server)" in skipped.output


def test_a_wrong_livekit_key_pair_is_reported_as_rejected(
    runway: RunwayAPIServer, livekit_env: str, env: pytest.MonkeyPatch
) -> None:
    env.setenv("LIVEKIT_API_SECRET", LK_OTHER_SECRET)
    result = doctor(*runway_args(runway))
    out = result.output
    assert result.exit_code == 1, out
    assert "rejected the API key pair (401 unauthenticated" in out
    assert "unreachable" not in out
    assert "fix: LIVEKIT_API_KEY and LIVEKIT_API_SECRET must be a key pair" in out


def test_an_unknown_provider_suggests_the_closest_name(livekit_env: str) -> None:
    result = doctor("runwya")
    out = result.output
    assert result.exit_code == 1, out
    assert "no avatar provider named 'runwya'. Did you mean 'runway'?" in out
    assert "fix:" in out


def test_option_values_are_converted_by_type(livekit_env: str) -> None:
    result = doctor(
        "local",
        "-o",
        "width=640",
        "-o",
        "fps=24.5",
        "-o",
        "portrait=none",
        "-o",
        'colors={"skin": [1, 2, 3]}',
    )
    out = result.output
    assert result.exit_code == 0, out
    assert "width=640 (-o)" in out and "fps=24.5 (-o)" in out and "portrait=None (-o)" in out
    assert "colors={'skin': [1, 2, 3]} (-o)" in out
    assert "✓ local: nothing remote to check" in out


def test_without_a_provider_every_provider_and_livekit_are_checked(livekit_env: str) -> None:
    result = doctor()
    out = result.output
    assert result.exit_code == 0, out
    assert "Provider local" in out and "Provider runway" in out
    assert "api_key: RUNWAYML_API_SECRET set (40 chars)" in out
    # what the app passes in code (a preset) is a note, not a failure
    assert "· runway: give exactly one of avatar_id" in out
    assert "accepted the API key pair" in out


def test_without_a_provider_one_with_no_key_here_is_a_note_named_it_fails(
    livekit_env: str, env: pytest.MonkeyPatch
) -> None:
    # nine providers ship together: a machine configures the ones it uses
    env.delenv("RUNWAYML_API_SECRET")
    result = doctor()
    assert result.exit_code == 0, result.output
    assert "· not configured here (RUNWAYML_API_SECRET not set)" in result.output
    named = doctor("runway", "-o", "preset_id=influencer")
    out = named.output
    assert named.exit_code == 1, out
    assert "✗ runway: an API key is needed" in out
    assert "fix: set RUNWAYML_API_SECRET" in out
    assert "1 problem found." in out


@pytest.mark.parametrize(
    "args",
    [
        ("-o", "preset_id=influencer"),  # a provider's option without the provider
        ("runway", "-o", GOOD_KEY),  # not KEY=VALUE: never echoed
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    result = doctor(*args)
    assert result.exit_code == 2, result.output
