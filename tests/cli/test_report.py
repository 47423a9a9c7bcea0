"""`avatarkit compare --report`: one self-contained page, loaded in a real headless Chromium.

The browser is Debian's ``chromium`` (``./scripts/setup cli,dev`` installs it). The page is
loaded over the DevTools protocol (a websocket, with aiohttp), which tells what the browser
fetched, what it logged and whether every picture and plot decoded; a second run of the
browser takes the screenshot, which must not be blank.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
import pytest
from numpy.typing import NDArray
from typer.testing import CliRunner

from avatarkit import ProviderSpec
from avatarkit_cli.app import app
from avatarkit_cli.report import CSP

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
WIDTH = 1360  # the browser window's, in CSS pixels: the page is made for about 1320
MOMENTS = 7  # capture.script_moments: the first sound, five inside the speech, one after

# In the page: wait for every picture to decode, then say what there is.
PROBE = """(async () => {
  const images = [...document.images];
  await Promise.all(images.map((img) => img.decode().catch(() => null)));
  return {
    images: images.map((img) => ({
      kind: img.className,
      alt: img.alt,
      decoded: img.complete && img.naturalWidth > 0 && img.naturalHeight > 0,
      shown: img.getBoundingClientRect().width > 0 && img.getBoundingClientRect().height > 0,
    })),
    missing: [...document.querySelectorAll(".missing")].map((d) => d.textContent),
    text: document.body.innerText,
    width: document.documentElement.scrollWidth,
    height: document.documentElement.scrollHeight,
  };
})()"""


def test_the_report_shows_every_provider_plots_and_endings_and_renders_offline(
    tmp_path: Path, third_party: Callable[[ProviderSpec], None]
) -> None:
    assert CHROMIUM.exists(), "needs Debian's chromium: ./scripts/setup cli,dev installs it"
    # A provider that never joins, so the page has an error to show.
    third_party(
        ProviderSpec(
            "echo",
            "never joins",
            "tests.helpers.echo:EchoProvider",
            "tests.helpers.echo:EchoOptions",
        )
    )
    page = tmp_path / "compare.html"
    result = CliRunner().invoke(
        app,
        [
            "compare",
            *("--providers", "local,runway,echo", "--runs", "2", "--size", "64", "--json"),
            *("-o", "echo.join_timeout=0.5", "--report", str(page)),
        ],
    )
    assert result.exit_code == 1, result.output  # echo's errors
    report = json.loads(result.output)
    html = page.read_text(encoding="utf-8")

    # Self-contained: everything it shows is in the file, and its policy forbids fetching.
    assert f'content="{CSP}"' in html
    assert re.findall(r'\b(?:src|href)="(?!data:)', html) == []
    assert "<script" not in html

    # The frames are the avatars' own, and they move with the script.
    for label in ("local", "runway (emulated)"):
        stills = _stills(html, label)
        assert len(stills) == MOMENTS
        assert all(s.shape == (64, 64, 3) for s in stills)
        # the first sound (mouth at rest) against the speech: the mouth has moved (it is a
        # few dozen of the 64x64 pixels)
        moved = [(np.abs(s.astype(int) - stills[0]).max(axis=2) > 40).sum() for s in stills]
        assert max(moved[1:-1]) >= 10, moved

    started = time.monotonic()
    seen = asyncio.run(_load(page, tmp_path / "profile"))
    probe = seen["probe"]

    # Every picture and plot decoded and is on the page.
    kinds = [img["kind"] for img in probe["images"]]
    assert kinds.count("still") == 2 * MOMENTS  # local and runway; echo never showed video
    assert kinds.count("plot metric") == 3  # join, first frame, A/V offset
    assert kinds.count("plot script") == 1
    assert [img for img in probe["images"] if not (img["decoded"] and img["shown"])] == []
    assert probe["missing"] == ["the avatar's video never arrived"] * MOMENTS  # echo's row

    # Nothing was fetched but the page, and the browser complained of nothing (a blocked
    # fetch would be logged as a Content-Security-Policy violation).
    fetched = {
        e["params"]["request"]["url"]
        for e in seen["events"]
        if e["method"] == "Network.requestWillBeSent"
    }
    assert {url for url in fetched if not url.startswith("data:")} == {page.as_uri()}
    logged = [e["params"]["entry"] for e in seen["events"] if e["method"] == "Log.entryAdded"]
    assert [entry for entry in logged if entry["level"] in ("error", "warning")] == []

    # How each session ended, and the errors, as the JSON says.
    text = probe["text"]
    by_name = {p["provider"]: p for p in report["providers"]}
    assert "graceful" in text and "COMPLETED" in text and "ENDED" in text
    (echo_error, *_) = by_name["echo"]["errors"]
    assert echo_error.startswith("echo avatar did not join")
    assert text.count(echo_error) >= 2  # in its runs' rows and in the list of errors
    assert "Errors (2)" in text

    # A screenshot of the whole page, which is not blank.
    shot = tmp_path / "compare.png"
    assert probe["width"] <= WIDTH  # nothing sticks out sideways
    size = (WIDTH, min(probe["height"], 6000))
    _screenshot(page, shot, size, tmp_path / "profile-shot")
    pixels = _decode_png(shot.read_bytes())
    assert pixels.shape == (size[1], size[0], 3)
    assert pixels.std() > 20
    assert (pixels.min(axis=2) < 200).mean() > 0.05  # a fair share of it is not white
    print(f"browser checks and screenshot: {time.monotonic() - started:.1f} s")


def _stills(html: str, label: str) -> list[NDArray[np.uint8]]:
    found = re.findall(
        rf'<img class="still" alt="{re.escape(label)} at moment \d[^"]*" '
        r'src="data:image/png;base64,([^"]+)"',
        html,
    )
    return [_decode_png(base64.b64decode(data)) for data in found]


def _decode_png(data: bytes) -> NDArray[np.uint8]:
    with av.open(io.BytesIO(data), format="png_pipe") as container:
        frame = next(container.decode(video=0))
        pixels: NDArray[np.uint8] = frame.to_ndarray(format="rgb24")
    return pixels


def _screenshot(page: Path, out: Path, size: tuple[int, int], profile: Path) -> None:
    subprocess.run(
        [
            str(CHROMIUM),
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={out}",
            f"--window-size={size[0]},{size[1]}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert out.exists()


async def _load(page: Path, profile: Path) -> dict[str, Any]:
    """Load ``page`` in Chromium and run :data:`PROBE`; what it found, and the DevTools
    events seen (requests, log entries)."""
    browser = await asyncio.create_subprocess_exec(
        str(CHROMIUM),
        *FLAGS,
        f"--user-data-dir={profile}",
        f"--window-size={WIDTH},900",
        "--remote-debugging-port=0",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        port = await _devtools_port(profile)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            async with http.ws_connect(url, max_msg_size=0) as ws:
                devtools = _DevTools(ws)
                for domain in ("Page", "Network", "Log"):
                    await devtools.call(f"{domain}.enable")
                await devtools.call("Page.navigate", url=page.as_uri())
                await devtools.until("Page.loadEventFired")
                found = await devtools.call(
                    "Runtime.evaluate", expression=PROBE, awaitPromise=True, returnByValue=True
                )
                assert "exceptionDetails" not in found, found
                return {"probe": found["result"]["value"], "events": devtools.events}
    finally:
        browser.terminate()
        await browser.wait()


async def _devtools_port(profile: Path, timeout: float = 30.0) -> int:
    # Chromium writes the port it chose to the profile once it listens.
    active = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if active.exists():
            first = active.read_text().split("\n", 1)[0].strip()
            if first.isdigit():
                return int(first)
        await asyncio.sleep(0.05)
    pytest.fail(f"Chromium did not open its DevTools port within {timeout:g} s")


class _DevTools:
    """Calls over one DevTools websocket, one at a time; events are kept as they come."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        self._ws = ws
        self._id = 0
        self.events: list[dict[str, Any]] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        await self._ws.send_json({"id": self._id, "method": method, "params": params})
        while True:
            message = await self._receive()
            if message.get("id") == self._id:
                assert "error" not in message, f"{method}: {message['error']}"
                result: dict[str, Any] = message["result"]
                return result

    async def until(self, event: str) -> None:
        while not any(e["method"] == event for e in self.events):
            await self._receive()

    async def _receive(self) -> dict[str, Any]:
        message: dict[str, Any] = await asyncio.wait_for(self._ws.receive_json(), 30)
        if "method" in message:
            self.events.append(message)
        return message
