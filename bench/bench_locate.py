"""Where the user stopped hearing: ``locate()``'s error on Opus-coded audio.

After a loss (or a pause), avatarkit finds how much of the utterance the avatar played by
matching the last audio the avatar published against what was sent. On a real server that
audio is Opus-coded. This cuts utterances at random points, codes what was "played" through
Opus (memory_livekit's round trip, as the realistic in-memory server does) and reports how
often ``locate()`` finds the cut and how far off it is, for noise and for a voiced,
speech-like signal, at 24, 32 and 48 kbps.

    python bench/bench_locate.py [--cuts N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import figure, machine, percentile, table

from avatarkit.playback import locate
from memory_livekit.opus import SAMPLE_RATE, OpusRoundTrip

TAIL = 0.4  # seconds of the avatar's last audio matched (the tracker keeps more)
LOOKAHEAD = 312  # samples (6.5 ms) of encoder lookahead at the start of Opus's output


def signal(kind: str, seconds: float, seed: int) -> np.ndarray:  # type: ignore[type-arg]
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    if kind == "noise":
        return (rng.standard_normal(n) * 4000).clip(-32000, 32000).astype(np.int16)
    t = np.arange(n) / SAMPLE_RATE  # voiced: a gliding pitch, harmonics, syllable envelope
    f0 = 110 + 50 * np.sin(2 * np.pi * rng.uniform(0.3, 0.9) * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 16))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * rng.uniform(2.5, 4.5) * t)
    pcm = voiced * envelope + rng.standard_normal(n) * 0.05
    return (pcm / np.abs(pcm).max() * 12000).astype(np.int16)


def measure(kind: str, bitrate: int, cuts: int, seed: int) -> tuple[int, list[float]]:
    """(cuts found, errors in ms of those found)."""
    rng = np.random.default_rng(seed)
    found, errors = 0, []
    for i in range(cuts):
        sent = signal(kind, 3.0, seed * 1000 + i)
        cut = int(rng.uniform(0.6, 2.9) * SAMPLE_RATE)
        heard = np.concatenate(OpusRoundTrip(bitrate).code(sent[:cut]))
        # what the user heard: the decoded stream, which holds the original up to its length
        # less the encoder's lookahead (whole 20 ms frames only)
        end = heard.size - LOOKAHEAD
        at = locate(sent, heard[-int(TAIL * SAMPLE_RATE) :])
        if at is not None:
            found += 1
            errors.append((at - end) / SAMPLE_RATE * 1000)
    return found, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cuts", type=int, default=40, help="cut points per signal and rate")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    print(f"locate() on Opus-coded audio, {args.cuts} cuts each ({machine()})")
    rows, figures = [], []
    for kind in ("noise", "voiced"):
        for bitrate in (24_000, 32_000, 48_000):
            found, errors = measure(kind, bitrate, args.cuts, seed=bitrate // 1000)
            size = [abs(e) for e in errors]
            rows.append([
                kind, f"{bitrate // 1000} kbps", f"{found}/{args.cuts}",
                f"{percentile(errors, 50):+.1f}" if errors else "-",
                f"{percentile(size, 95):.1f}" if size else "-",
                f"{max(size):.1f}" if size else "-",
            ])  # fmt: skip
            if bitrate == 24_000:
                figures.append(
                    figure(
                        f"locate.{kind}_found",
                        f"locate() on {kind} coded at 24 kbps: cuts found",
                        found / args.cuts * 100,
                        "%",
                        rounds=[found / args.cuts * 100],
                        spread="exact",
                    )
                )
                figures.append(
                    figure(
                        f"locate.{kind}_p95",
                        f"locate() on {kind} coded at 24 kbps: |error| p95",
                        percentile(size, 95) if size else None,
                        "ms",
                        rounds=[percentile(size, 95)] if size else [],
                        digits=1,
                        spread="absolute",
                        tolerance=2.0,
                        note="against what the user heard (the decoded stream); a negative "
                        "error replays that much twice, a positive one drops it",
                    )
                )
    print(table(["signal", "bitrate", "found", "error p50 ms", "|error| p95 ms", "max ms"], rows))
    if args.json:
        args.json.write_text(json.dumps({"figures": figures}, indent=2))


if __name__ == "__main__":
    main()
