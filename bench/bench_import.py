"""Benchmark the cost of importing avatarkit against the seed plugin, in fresh processes.

Run: ``python bench/bench_import.py`` (``--runs`` processes per contender, default 15;
``--rounds`` to cut them into rounds for the stability check; ``--json PATH`` for
``bench/run``).

Each run starts a new interpreter that times its own import with ``time.perf_counter()``
(in-process) while the parent times the whole child (interpreter start-up included).
Contenders, interleaved round by round:

* ``avatarkit``: ``import avatarkit; avatarkit.providers()`` (discovering every installed
  provider through its entry point, as ``avatarkit.get`` and the CLI do);
* ``seed``: ``import livekit.plugins.runway``, the official Runway plugin;
* ``python``: an empty interpreter (``pass``), the start-up floor of the child wall time.

The check column says whether ``livekit.agents`` or a provider's implementation module was
imported by the child: for avatarkit it must be "no".
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import chunks, figure, goal, machine, median, percentile, plural, table, write_json

GOAL_MS = 300.0
HEAVY = (
    "livekit.agents",
    "avatarkit_providers.runway.provider",
    "avatarkit_providers.local.provider",
)
CHILD_TIMEOUT = 60.0

# Runs in the child: time the statement, then report the time and the heavy modules loaded.
CHILD = """
import json, sys, time
t0 = time.perf_counter()
{stmt}
t1 = time.perf_counter()
heavy = [m for m in {heavy!r} if m in sys.modules]
print(json.dumps({{"ms": (t1 - t0) * 1000, "heavy": heavy, "extra": {extra}}}))
"""

CONTENDERS = {
    "avatarkit": (
        "import avatarkit\nproviders = avatarkit.providers()",
        "[p.name for p in providers]",
    ),
    "seed": ("import livekit.plugins.runway", "None"),
    "python": ("pass", "None"),
}


def run_child(name: str) -> tuple[float, float, list[str], object]:
    """(in-process ms, child wall ms, heavy modules, extra) for one fresh process."""
    stmt, extra = CONTENDERS[name]
    code = CHILD.format(stmt=stmt, heavy=HEAVY, extra=extra)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    wall = (time.perf_counter() - t0) * 1000
    if proc.returncode != 0:
        raise RuntimeError(f"{name} child failed ({proc.returncode}):\n{proc.stderr}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return data["ms"], wall, data["heavy"], data["extra"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="processes per contender")
    parser.add_argument(
        "--max-seconds", type=float, default=180.0, help="stop starting rounds after this"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="cut the runs into this many rounds (default 3)"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures here as JSON")
    args = parser.parse_args()

    names = list(CONTENDERS)
    # one discarded round: writes any missing .pyc files and warms the OS file cache
    for name in names:
        run_child(name)

    inproc: dict[str, list[float]] = {n: [] for n in names}
    wall: dict[str, list[float]] = {n: [] for n in names}
    heavy: dict[str, set[str]] = {n: set() for n in names}
    found: object = None
    deadline = time.monotonic() + args.max_seconds
    for i in range(args.runs):
        if time.monotonic() > deadline:
            break
        # rotate the order each round so no contender always runs first (or last)
        for name in names[i % len(names) :] + names[: i % len(names)]:
            ms, w, h, extra = run_child(name)
            inproc[name].append(ms)
            wall[name].append(w)
            heavy[name].update(h)
            if name == "avatarkit":
                found = extra

    rows = []
    for name in names:
        ms, w = inproc[name], wall[name]
        check = ", ".join(sorted(heavy[name])) if heavy[name] else "no"
        rows.append(
            [
                name,
                str(len(ms)),
                f"{median(ms):.0f}",
                f"{percentile(ms, 90):.0f}",
                f"{median(w):.0f}",
                f"{percentile(w, 90):.0f}",
                check,
            ]
        )
    ratio = median(inproc["avatarkit"]) / median(inproc["seed"])
    wall_ratio = median(wall["avatarkit"]) / median(wall["seed"])
    ak = median(inproc["avatarkit"])

    print(f"import cost in fresh processes ({machine()})")
    print(
        "  avatarkit = import avatarkit; avatarkit.providers()   "
        "seed = import livekit.plugins.runway   python = empty interpreter"
    )
    print(
        table(
            [
                "contender",
                "runs",
                "import ms (median)",
                "p90",
                "process ms (median)",
                "p90",
                "heavy modules loaded",
            ],
            rows,
        )
    )
    print(f"providers found by avatarkit: {found}")
    print(
        f"avatarkit / seed: {ratio:.3f} (import), {wall_ratio:.3f} (whole process); "
        f"avatarkit is {1 / ratio:.1f}x faster to import"
    )
    verdict = "met" if ak < GOAL_MS and not heavy["avatarkit"] else "NOT met"
    print(
        f"goal: avatarkit import < {GOAL_MS:.0f} ms without livekit.agents or provider code: "
        f"{verdict} ({ak:.0f} ms)"
    )
    groups = list(
        zip(
            chunks(inproc["avatarkit"], args.rounds),
            chunks(inproc["seed"], args.rounds),
            strict=True,
        )
    )
    print(
        f"rounds of {len(groups[0][0])} processes: avatarkit / seed per round "
        + ", ".join(f"{median(a) / median(s):.3f}" for a, s in groups)
    )
    print(
        "import ms: time.perf_counter() around the statement inside the child. process ms: "
        "the child's wall time seen by the parent (interpreter start-up and exit included)."
    )
    heavy_ak = sorted(heavy["avatarkit"])
    write_json(
        args.json,
        "import",
        [
            figure(
                "import",
                "`import avatarkit` + `providers()`, fresh process",
                ak,
                "ms",
                peer=median(inproc["seed"]),
                peer_text="`import livekit.plugins.runway`",
                rounds=[median(a) for a, _ in groups],
                peer_rounds=[median(s) for _, s in groups],
                goal=goal("value", "<", GOAL_MS),
                note=(
                    f"{len(found) if isinstance(found, list) else 0} providers installed; "
                    + (
                        "no livekit-agents or provider module imported"
                        if not heavy_ak
                        else "imported " + ", ".join(heavy_ak)
                    )
                ),
                readme=True,
            ),
            figure(
                "import.heavy",
                "heavy modules imported by `import avatarkit` + `providers()`",
                len(heavy_ak),
                "modules",
                rounds=[len(heavy_ak)],
                spread="exact",
                goal=goal("value", "==", 0),
                note=", ".join(heavy_ak) or "livekit.agents and provider modules stay unimported",
            ),
        ],
        runs=len(inproc["avatarkit"]),
        round=(
            f"{plural(len(groups[0][0]), 'fresh process', 'fresh processes')} per "
            "contender, in a rotating order"
        ),
    )


if __name__ == "__main__":
    main()
