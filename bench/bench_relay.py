"""Benchmark the latency the relay adds between the agent's audio and its sink.

Run: ``python bench/bench_relay.py`` (``--iterations``, ``--utterance``, ``--burst``,
``--rounds``, ``--no-load``, ``--json PATH``).

``avatarkit.relay.AudioRelay`` is the ``AudioOutput`` the AgentSession keeps while avatarkit
is attached: it keeps the current utterance and forwards its frames, from a task of its own,
to a sink (an avatar's output or the room's audio, ``relay.switch(sink)``). This bench feeds
it real ``rtc.AudioFrame``s of 20 ms (16 kHz mono) and times, for each frame, from calling
``capture_frame`` on the relay to the sink's ``capture_frame`` being called. The sink is a
minimal ``AudioOutput`` that records ``time.perf_counter()`` and plays nothing (like
``tests/helpers/outputs.py``'s ``NullOutput``); it reports each utterance played out at its
flush, as a real sink eventually does.

The peer is the same frames given to the same kind of sink directly (no relay), timed the same
way: what the relay adds is the difference. Each iteration runs, in a rotating order, one
utterance of ``--utterance`` seconds (default 1) per contender and per feed:

* ``paced``: one 20 ms frame every 20 ms (real time, as a streaming TTS at its rate);
* ``bursty``: ``--burst`` frames (default 10, 200 ms of audio) back to back with no await
  in between, a burst every 100 ms (a TTS that runs ahead of real time, as most do).

The machine is loaded: a separate process (``python -c 'while 1: pass'``) keeps one core
busy for the whole measurement and is killed at the end (``--no-load`` to skip it). Only the
other process loads the machine; the event loop itself runs nothing but the bench.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import chunks, figure, goal, machine, median, percentile, plural, table, write_json
from livekit import rtc
from livekit.agents.voice.io import AudioOutput, AudioOutputCapabilities

from avatarkit.relay import AudioRelay

RATE = 16000
FRAME_MS = 20
FRAME = RATE * FRAME_MS // 1000  # samples per 20 ms frame
BURST_EVERY = 0.1  # seconds between bursts
GOAL_MS = 1.0
TOLERANCE_MS = 0.25  # absolute spread allowed over the rounds of a difference in ms
FEEDS = ("paced", "bursty")
CONTENDERS = ("relay", "direct")


class RecordingSink(AudioOutput):
    """An ``AudioOutput`` that records when each frame reached it and plays nothing."""

    def __init__(self) -> None:
        super().__init__(
            label="bench.sink",
            sample_rate=RATE,
            capabilities=AudioOutputCapabilities(pause=False),
        )
        self.times: list[float] = []
        self._samples = 0

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        self.times.append(time.perf_counter())
        await super().capture_frame(frame)
        self._samples += frame.samples_per_channel

    def flush(self) -> None:
        super().flush()
        played, self._samples = self._samples / RATE, 0
        # "played out" at once: the relay closes its segment as it would on a real sink
        asyncio.get_running_loop().call_soon(
            lambda: self.on_playback_finished(playback_position=played, interrupted=False)
        )

    def clear_buffer(self) -> None:
        pass


def make_frames(seconds: float, seed: int) -> list[rtc.AudioFrame]:
    rng = np.random.default_rng(seed)
    pcm = (rng.standard_normal(int(seconds * RATE)) * 4000).clip(-32000, 32000).astype(np.int16)
    return [
        rtc.AudioFrame(pcm[i : i + FRAME].tobytes(), RATE, 1, len(pcm[i : i + FRAME]))
        for i in range(0, len(pcm), FRAME)
    ]


async def utterance(
    contender: str, feed: str, frames: list[rtc.AudioFrame], burst: int
) -> list[float]:
    """Feed one utterance; the delay of every frame, capture_frame called -> at the sink, in ms."""
    sink = RecordingSink()
    relay: AudioRelay | None = None
    out: AudioOutput = sink
    if contender == "relay":
        relay = AudioRelay(sample_rate=RATE)
        relay.switch(sink)
        out = relay
        await asyncio.sleep(0)  # the relay's pump is waiting, as it is between utterances
    called: list[float] = []
    start = time.perf_counter()
    for k, frame in enumerate(frames):
        if feed == "paced":
            due = start + k * FRAME_MS / 1000
        else:
            due = start + (k // burst) * BURST_EVERY
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        called.append(time.perf_counter())
        await out.capture_frame(frame)
    out.flush()
    await asyncio.wait_for(out.wait_for_playout(), 5)
    if relay is not None:
        await relay.aclose()
    if len(sink.times) != len(called):
        raise RuntimeError(
            f"{contender}: {len(sink.times)} frames reached the sink of {len(called)}"
        )
    return [(t - c) * 1000 for c, t in zip(called, sink.times, strict=True)]


def start_load() -> subprocess.Popen[bytes]:
    """A separate process that keeps one core busy until killed."""
    return subprocess.Popen([sys.executable, "-c", "while 1: pass"])


async def bench(args: argparse.Namespace) -> dict[tuple[str, str], list[list[float]]]:
    """Per (feed, contender), the per-frame delays of each iteration, in time order."""
    out: dict[tuple[str, str], list[list[float]]] = {(f, c): [] for f in FEEDS for c in CONTENDERS}
    pairs = [(f, c) for f in FEEDS for c in CONTENDERS]
    for f, c in pairs:  # warm-up, untimed
        await utterance(c, f, make_frames(0.2, seed=0), args.burst)
    deadline = time.monotonic() + args.max_seconds
    for i in range(args.iterations):
        if time.monotonic() > deadline:
            break
        frames = make_frames(args.utterance, seed=i + 1)
        order = pairs[i % len(pairs) :] + pairs[: i % len(pairs)]
        for f, c in order:
            out[(f, c)].append(await utterance(c, f, frames, args.burst))
        print(f"  iteration {i + 1}/{args.iterations} done", file=sys.stderr)
    return out


def _flat(iterations: list[list[float]]) -> list[float]:
    return [v for it in iterations for v in it]


def report(
    delays: dict[tuple[str, str], list[list[float]]],
    args: argparse.Namespace,
    load: tuple[float, float],
    loaded: bool,
) -> None:
    print(
        f"relay: {FRAME_MS} ms frames of 16 kHz mono, {args.utterance:g} s utterances; "
        f"bursty: {args.burst} frames back to back every {BURST_EVERY * 1000:.0f} ms; "
        + ("one core kept busy by another process" if loaded else "no load process")
        + f" ({machine()}, load average {load[0]:.1f} -> {load[1]:.1f})"
    )
    rows = []
    for f in FEEDS:
        for c in CONTENDERS:
            v = _flat(delays[(f, c)])
            if not v:
                continue
            rows.append(
                [
                    f"{f}, {c}",
                    str(len(v)),
                    f"{median(v):.3f}",
                    f"{percentile(v, 90):.3f}",
                    f"{percentile(v, 99):.3f}",
                    f"{max(v):.3f}",
                    str(sum(x > GOAL_MS for x in v)),
                ]
            )
    print(
        table(
            [
                "feed, contender",
                "frames",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "max ms",
                f"> {GOAL_MS:g} ms",
            ],
            rows,
        )
    )
    print(
        "  capture_frame() called -> the sink's capture_frame() called, per frame. relay: "
        "through\n  AudioRelay (its own task forwards to the sink); direct: the same frames "
        "to the same sink."
    )
    for f in FEEDS:
        r, d = _flat(delays[(f, "relay")]), _flat(delays[(f, "direct")])
        if r and d:
            added = percentile(r, 99) - percentile(d, 99)
            print(
                f"goal, {f}: relay added latency p99 <= {GOAL_MS:g} ms: "
                f"{'met' if added <= GOAL_MS else 'NOT met'} ({added:.3f} ms; "
                f"p50 {median(r) - median(d):.3f} ms)"
            )
    n = len(delays[("paced", "relay")])
    write_json(
        args.json,
        "relay",
        figures(delays, args, loaded),
        iterations=n,
        round=(
            f"{plural(-(-n // args.rounds), 'interleaved iteration')}, each one utterance of "
            f"{args.utterance:g} s per contender and feed"
            + ("; one core kept busy" if loaded else "")
        ),
    )


def figures(
    delays: dict[tuple[str, str], list[list[float]]], args: argparse.Namespace, loaded: bool
) -> list[dict[str, object]]:
    """The published figures, each with its value per round of ``--rounds`` iterations."""
    n = args.rounds
    where = "one core busy" if loaded else "no load"
    out = []
    for f in FEEDS:
        rounds = chunks(list(range(len(delays[(f, "relay")]))), n)
        relay = [_flat([delays[(f, "relay")][int(i)] for i in idx]) for idx in rounds]
        direct = [_flat([delays[(f, "direct")][int(i)] for i in idx]) for idx in rounds]
        r_all, d_all = _flat(relay), _flat(direct)
        feed = (
            f"paced {FRAME_MS} ms frames"
            if f == "paced"
            else f"bursts of {args.burst} frames of {FRAME_MS} ms"
        )
        out.append(
            figure(
                f"relay.{f}_p99",
                f"relay added latency, {feed}, {where}: p99 relay minus p99 direct",
                percentile(r_all, 99) - percentile(d_all, 99),
                "ms",
                digits=3,
                rounds=[
                    percentile(r, 99) - percentile(d, 99)
                    for r, d in zip(relay, direct, strict=True)
                ],
                spread="absolute",
                tolerance=TOLERANCE_MS,
                peer_text=(
                    f"frames to the sink directly: p99 {percentile(d_all, 99):.3f} ms "
                    f"(relay {percentile(r_all, 99):.3f} ms)"
                ),
                goal=goal("value", "<=", GOAL_MS),
                note=(
                    f"p50 added {median(r_all) - median(d_all):.3f} ms; max through the relay "
                    f"{max(r_all):.3f} ms over {len(r_all):,} frames"
                ),
                readme=f == "paced",
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--iterations", type=int, default=20, help="utterances per contender and feed (20)"
    )
    parser.add_argument("--utterance", type=float, default=1.0, help="seconds each (default 1)")
    parser.add_argument("--burst", type=int, default=10, help="frames per burst (default 10)")
    parser.add_argument(
        "--max-seconds", type=float, default=120.0, help="start no iteration after this"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="cut the iterations into this many rounds"
    )
    parser.add_argument("--no-load", action="store_true", help="no process keeping a core busy")
    parser.add_argument("--json", metavar="PATH", help="also write the figures here as JSON")
    args = parser.parse_args()
    load0 = os.getloadavg()[0]
    spinner = None if args.no_load else start_load()
    try:
        time.sleep(0.5)  # the load is on before the first frame
        delays = asyncio.run(bench(args))
        loaded = spinner is not None and spinner.poll() is None  # still running to the end
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    report(delays, args, (load0, os.getloadavg()[0]), loaded)


if __name__ == "__main__":
    main()
