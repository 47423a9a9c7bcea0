"""`avatarkit emulate runway`: a Runway API a real agent can be pointed at; providers
without a remote API are refused."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from typer.testing import CliRunner

from avatarkit_cli.app import app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_emulate_serves_the_runway_api_until_stopped() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "avatarkit_cli", "emulate", "runway", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/v1/realtime_sessions/00000000-0000-4000-8000-000000000000"
        status = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and status is None:
            try:
                urllib.request.urlopen(url, timeout=2)
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                time.sleep(0.2)
        assert status == 401  # it is Runway's API: no key, no answer
        request = urllib.request.Request(
            url,
            headers={
                "Authorization": "Bearer key_emulated_runway",
                "X-Runway-Version": "2024-11-06",
            },
        )
        try:
            urllib.request.urlopen(request, timeout=2)
        except urllib.error.HTTPError as exc:
            assert exc.code == 404  # the printed key is accepted; the session does not exist
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert f"RUNWAYML_BASE_URL=http://127.0.0.1:{port}" in out
    assert "emulated" in out


def test_a_provider_with_no_remote_api_cannot_be_emulated() -> None:
    result = CliRunner().invoke(app, ["emulate", "local"])
    assert result.exit_code == 2
    said = " ".join(result.output.replace("│", " ").split())  # unwrapped from rich's box
    assert "local cannot be emulated: it has no remote API" in said
    can = said.partition("Providers that can: ")[2]
    assert "runway" in can and "tavus" in can and "local" not in can


def test_an_unknown_provider_is_refused_with_a_suggestion() -> None:
    result = CliRunner().invoke(app, ["emulate", "runwya"])
    assert result.exit_code == 2
    assert "runway" in result.output
