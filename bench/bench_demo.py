"""The demo's wall time against the length of its script.

    python bench/bench_demo.py [--runs 3]

Runs ``avatarkit demo`` (each provider) as a user would, in fresh processes, and compares
the wall time with the script's own length: both utterances plus the pause between them.
The goal is the script's length + 5 s at most.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, median, table

from avatarkit_cli.clips import bundled_utterances

PAUSE = 1.0  # run_scenario's pause between utterances
GOAL_OVER = 5.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    utterances = bundled_utterances()
    script = sum(u.duration for u in utterances) + PAUSE * (len(utterances) - 1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for provider in ("runway", "local"):
            times = []
            for run in range(args.runs):
                out = Path(tmp) / f"{provider}-{run}.mp4"
                started = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-m", "avatarkit_cli", "demo", "-p", provider, "-o", str(out)],
                    check=True,
                    capture_output=True,
                    timeout=120,
                )
                times.append(time.perf_counter() - started)
            wall = median(times)
            rows.append(
                [
                    provider,
                    str(args.runs),
                    f"{script:.1f}",
                    f"{wall:.1f}",
                    f"{wall - script:+.1f}",
                    "met" if wall - script <= GOAL_OVER else "NOT met",
                ]
            )
    print(f"avatarkit demo, wall time in fresh processes ({machine()})")
    print(
        table(["provider", "runs", "script s", "wall s (median)", "over script", "goal +5 s"], rows)
    )


if __name__ == "__main__":
    main()
