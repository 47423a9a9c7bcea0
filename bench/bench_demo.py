"""The demo's wall time against the length of its script.

    python bench/bench_demo.py [--runs 3] [--json PATH]

Runs ``avatarkit demo`` (each provider) as a user would, in fresh processes, and compares
the wall time with the script's own length: both utterances plus the pause between them.
The goal is the script's length + 5 s at most. Each run is a round.
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

from _common import figure, goal, machine, median, table, write_json

from avatarkit_cli.clips import bundled_utterances

PAUSE = 1.0  # run_scenario's pause between utterances
GOAL_OVER = 5.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", metavar="PATH", help="also write the figures here as JSON")
    args = parser.parse_args()
    utterances = bundled_utterances()
    script = sum(u.duration for u in utterances) + PAUSE * (len(utterances) - 1)
    rows = []
    figures = []
    providers = ("runway", "local")
    times: dict[str, list[float]] = {p: [] for p in providers}
    with tempfile.TemporaryDirectory() as tmp:
        # the providers take turns, the order rotating run by run
        for run in range(args.runs):
            for provider in providers[run % 2 :] + providers[: run % 2]:
                out = Path(tmp) / f"{provider}-{run}.mp4"
                started = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-m", "avatarkit_cli", "demo", "-p", provider, "-o", str(out)],
                    check=True,
                    capture_output=True,
                    timeout=120,
                )
                times[provider].append(time.perf_counter() - started)
    for provider in providers:
        wall = median(times[provider])
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
        label = "runway (emulated)" if provider == "runway" else provider
        figures.append(
            figure(
                f"demo.{provider}",
                f"`avatarkit demo -p {provider}` wall time, {label}, fresh process",
                wall,
                "s",
                digits=1,
                rounds=times[provider],
                goal=goal("value", "<=", script + GOAL_OVER, f"script + {GOAL_OVER:g} s"),
                note=(
                    f"the script is {script:.1f} s (two utterances and a pause); "
                    f"{wall - script:+.1f} s over it"
                ),
                readme=provider == "runway",
            )
        )
    print(f"avatarkit demo, wall time in fresh processes ({machine()})")
    print(
        table(["provider", "runs", "script s", "wall s (median)", "over script", "goal +5 s"], rows)
    )
    write_json(
        args.json,
        "demo",
        figures,
        runs=args.runs,
        round="one `avatarkit demo` process per provider, in a rotating order",
    )


if __name__ == "__main__":
    main()
