"""Benchmark the ``local`` avatar's CPU face renderer.

Run: ``python bench/bench_render.py`` (``--seconds`` to change the clip length,
``--no-realtime`` to skip the real-time-paced runs, ``--rounds`` and ``--json PATH`` for
``bench/run``).

Per frame size, at 30 fps with 16 kHz speech-like audio:

* offline: ``FaceVideoGenerator.render_offline`` as fast as possible -> frames per second
  and multiple of real time, plus the process CPU time it costs per second of video;
* real time: the generator's own paced iterator for ``--seconds`` of speech, measuring
  process CPU time (``time.process_time``) as a % of one core, and frames dropped.

Rounds: the offline render is repeated ``--rounds`` times (each round renders the clip
again until it has lasted 0.5 s); the real-time run is cut into ``--rounds`` windows of
equal frame count, each with its own CPU %.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import figure, goal, median, write_json
from livekit import rtc
from livekit.agents.voice.avatar import AudioSegmentEnd

from avatarkit_providers.local.video import FaceVideoGenerator

SAMPLE_RATE = 16000
FPS = 30.0
SIZES = (256, 512, 1024)
MIN_ROUND = 0.5  # seconds each offline round renders for, at least


def speech_like(seconds: float, seed: int = 0) -> NDArray[np.int16]:
    """Voiced buzz + noise, shaped into ~4 syllables a second with pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    pitch = 140 + 20 * np.sin(2 * np.pi * 0.7 * t)
    voiced = np.sign(np.sin(2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE)) * 0.08
    noise = rng.normal(0, 0.05, t.size)
    envelope = np.clip(np.sin(2 * np.pi * 3.7 * t), 0, None) ** 0.6
    envelope *= (np.sin(2 * np.pi * 0.25 * t) > -0.7).astype(float)  # sentence pauses
    return (np.clip((voiced + noise) * envelope, -1, 1) * 32767).astype(np.int16)


@dataclass
class Row:
    size: int
    offline_fps: float
    cpu_per_video_s: float  # CPU seconds per second of video, offline
    realtime_cpu: float | None = None  # fraction of one core, real-time paced
    dropped: int | None = None
    realtime_frames: int | None = None
    offline_rounds: list[float] = field(default_factory=list)  # fps per repeat
    realtime_rounds: list[float] = field(default_factory=list)  # CPU fraction per window


def bench_offline(size: int, pcm: NDArray[np.int16], rounds: int = 1) -> Row:
    gen = FaceVideoGenerator(width=size, height=size, fps=FPS, sample_rate=SAMPLE_RATE)
    list(gen.render_offline(pcm[: SAMPLE_RATE // 2]))  # warm caches
    frames, wall, cpu = 0, 0.0, 0.0
    per_round = []
    for _ in range(max(1, rounds)):
        # a round renders the clip again until it has lasted MIN_ROUND s: one pass of a
        # short clip takes a few ms, where the scheduler's noise alone is 10 %
        n, w, c = 0, 0.0, 0.0
        while n == 0 or w < MIN_ROUND:
            wall0, cpu0 = time.perf_counter(), time.process_time()
            n += sum(1 for _ in gen.render_offline(pcm))
            w += time.perf_counter() - wall0
            c += time.process_time() - cpu0
        per_round.append(n / w)
        frames, wall, cpu = frames + n, wall + w, cpu + c
    video_seconds = frames / FPS
    return Row(
        size=size,
        offline_fps=frames / wall,
        cpu_per_video_s=cpu / video_seconds,
        offline_rounds=per_round,
    )


async def bench_realtime(row: Row, pcm: NDArray[np.int16], rounds: int = 1) -> None:
    gen = FaceVideoGenerator(width=row.size, height=row.size, fps=FPS, sample_rate=SAMPLE_RATE)
    step = SAMPLE_RATE // 50
    for i in range(0, len(pcm), step):
        chunk = pcm[i : i + step]
        await gen.push_audio(rtc.AudioFrame(chunk.tobytes(), SAMPLE_RATE, 1, len(chunk)))
    await gen.push_audio(AudioSegmentEnd())

    frames = 0
    expected = int(len(pcm) / SAMPLE_RATE * FPS)
    window = max(1, expected // max(1, rounds))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    marks = [(cpu0, wall0)]  # (CPU, wall) every ``window`` frames
    async for item in gen:
        if isinstance(item, rtc.VideoFrame):
            frames += 1
            if frames % window == 0 and len(marks) <= rounds:
                marks.append((time.process_time(), time.perf_counter()))
        elif isinstance(item, AudioSegmentEnd):
            break
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await gen.aclose()
    row.realtime_cpu = cpu / wall
    row.realtime_rounds = [
        (c1 - c0) / (w1 - w0) for (c0, w0), (c1, w1) in itertools.pairwise(marks)
    ] or [row.realtime_cpu]
    row.dropped = gen.stats.frames_dropped
    row.realtime_frames = frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length (default 10)")
    parser.add_argument("--no-realtime", action="store_true", help="offline numbers only")
    parser.add_argument(
        "--rounds", type=int, default=1, help="offline repeats and real-time windows"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures here as JSON")
    args = parser.parse_args()

    pcm = speech_like(args.seconds)
    rows = []
    for size in SIZES:
        row = bench_offline(size, pcm, args.rounds)
        if not args.no_realtime:
            asyncio.run(bench_realtime(row, pcm, args.rounds))
        rows.append(row)

    print(f"local face renderer, {FPS:g} fps, {args.seconds:g} s of 16 kHz speech-like audio")
    header = (
        f"{'size':>10} | {'offline fps':>11} | {'x real time':>11} | "
        f"{'CPU/s video':>11} | {'real-time CPU':>13} | {'dropped':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        rt = "-" if r.realtime_cpu is None else f"{r.realtime_cpu * 100:.1f} %"
        dropped = "-" if r.dropped is None else f"{r.dropped}/{r.realtime_frames}"
        print(
            f"{f'{r.size}x{r.size}':>10} | {r.offline_fps:>11.0f} | "
            f"{r.offline_fps / FPS:>10.0f}x | {r.cpu_per_video_s * 100:>9.1f} % | "
            f"{rt:>13} | {dropped:>7}"
        )
    print(
        "CPU/s video: process CPU time per second of video when rendering offline, as % of "
        "one core.\nreal-time CPU: process CPU time / wall time while the generator paces "
        "itself at fps (% of one core)."
    )
    write_json(
        args.json,
        "render",
        figures(rows, args),
        round=(
            f"offline: at least {MIN_ROUND:g} s of rendering the {args.seconds:g} s clip, per "
            f"size; real time: 1/{args.rounds} of the paced run"
        ),
    )


def figures(rows: list[Row], args: argparse.Namespace) -> list[dict[str, object]]:
    out = []
    for r in rows:
        px = f"{r.size}x{r.size}"
        if r.realtime_cpu is not None:
            out.append(
                figure(
                    f"render.realtime_{r.size}",
                    f"local renderer {px} @ {FPS:g} fps, paced in real time: CPU",
                    r.realtime_cpu * 100,
                    "% of one core",
                    digits=1,
                    rounds=[c * 100 for c in r.realtime_rounds],
                    goal=goal("value", "<", 25.0) if r.size == 512 else None,
                    note=f"{r.dropped} of {r.realtime_frames} frames dropped",
                    readme=r.size == 512,
                )
            )
        out.append(
            figure(
                f"render.offline_{r.size}",
                f"local renderer {px}, offline",
                r.offline_fps,
                "fps",
                rounds=r.offline_rounds,
                goal=goal("value", ">=", 10 * FPS, f"\u2265 10\u00d7 real time ({10 * FPS:g} fps)")
                if r.size == 512
                else None,
                note=(
                    f"{r.offline_fps / FPS:.0f}x real time; median of {len(r.offline_rounds)} "
                    f"rounds of at least {MIN_ROUND:g} s {median(r.offline_rounds):.0f} fps"
                ),
                readme=r.size == 512,
            )
        )
    return out


if __name__ == "__main__":
    main()
