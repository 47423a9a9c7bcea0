"""``bench/run``: run every benchmark, judge each figure's stability, write the tables.

    bench/run            # the full run (~8 min); writes docs/benchmarks.md and the README
    bench/run --quick    # fewer rounds (~3 min), to try it; prints, writes nothing
    bench/run --from bench/last-run/results.json   # rewrite the tables from a saved run

Every bench script runs in its own process with ``--json PATH`` and writes its figures
there (``_common.figure``): avatarkit's value, the official plugin's in the same run where
there is one, and both again per round. This module turns those results into the tables.
The writer (``render``, ``splice`` and what they call) is pure: the same results give the
same text, byte for byte (``bench/test_run.py``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
DOCS = ROOT / "docs" / "benchmarks.md"
README = ROOT / "README.md"
LAST_RUN = BENCH / "last-run"

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
# above this spread a figure is printed as unstable: (max - min) / median of its rounds
THRESHOLD = 0.15

TIMES = "\u00d7"  # multiplication sign
INF = "\u221e"
OPS = {"<=": "\u2264", "<": "<", ">=": "\u2265", ">": ">", "==": "="}


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    timeout: float  # seconds, for the full run


BENCHES = (
    Bench(
        "import",
        "bench_import.py",
        ("--runs", "15", "--rounds", "3"),
        ("--runs", "3", "--rounds", "3"),
        180,
    ),
    Bench(
        "start",
        "bench_start.py",
        ("--iterations", "1000", "--rounds", "5", "--max-seconds", "150"),
        ("--iterations", "60", "--rounds", "3", "--warmup", "3"),
        240,
    ),
    Bench(
        "locate",
        "bench_locate.py",
        ("--cuts", "40"),
        ("--cuts", "8"),
        180,
    ),
    Bench(
        "relay",
        "bench_relay.py",
        # 500 frames per round, feed and contender: a p99 over fewer is its 2nd-largest value
        ("--iterations", "30", "--rounds", "3"),
        ("--iterations", "6", "--rounds", "3"),
        240,
    ),
    Bench(
        "fast_start",
        "bench_fast_start.py",
        ("--iterations", "30", "--rounds", "3", "--provisioning", "0.5"),
        ("--iterations", "3", "--rounds", "3", "--provisioning", "0.5"),
        240,
    ),
    Bench(
        "early_audio",
        "bench_early_audio.py",
        ("--iterations", "6", "--rounds", "3"),
        ("--iterations", "2", "--rounds", "2"),
        360,
    ),
    Bench(
        "loss",
        "bench_loss.py",
        ("--runs", "12", "--seed-runs", "3", "--rounds", "3"),
        ("--runs", "3", "--seed-runs", "1", "--rounds", "3"),
        400,
    ),
    Bench(
        "renewal",
        "bench_renewal.py",
        ("--runs", "3"),
        ("--runs", "1", "--seconds", "5"),
        400,
    ),
    Bench(
        "many",
        "bench_many.py",
        ("--concurrent", "20", "--peer-rounds", "3", "--window", "4", "--sequential", "200"),
        ("--concurrent", "5", "--peer-rounds", "2", "--sequential", "25"),
        600,
    ),
    Bench(
        "render",
        "bench_render.py",
        ("--seconds", "10", "--rounds", "5"),
        ("--seconds", "2", "--rounds", "3"),
        240,
    ),
    Bench(
        "demo",
        "bench_demo.py",
        ("--runs", "3"),
        ("--runs", "1"),
        600,
    ),
)

# The goals of issue 13, each a ratio to the official plugin in one run (or a bound), and
# the figures that answer them; then issue 12's early audio, which has no official-plugin
# counterpart. ``proxy``: the figure measures something near the goal, not the goal.
ISSUE_GOALS: tuple[tuple[str, str, tuple[str, ...], str | None], ...] = (
    ("`start()`, in either start order", "\u2264 1.05\u00d7",
     ("start.avatar_first", "start.session_first"), None),
    ("`start()` \u2192 first avatar video frame", "\u2264 +1 ms", ("fast_start.joined",),
     "proxy: measured to the avatar's video track being published in the agent's room, not "
     "to its first frame"),
    ("agent-side CPU per second of speech", "\u2264 1.2\u00d7", ("many.speak_cpu",),
     "proxy: whole-process CPU, the emulated avatars included, which no bench separates "
     "from the agent's side. The avatar side is the same harness for both, so a whole-process "
     "ratio above the goal means the agent side's is above it too; one below it proves "
     "nothing"),
    ("whole-process CPU per second while the agent is silent", "\u2264 1.1\u00d7",
     ("many.silent_cpu",), None),
    ("memory per session, 20 concurrent", "\u2264 1.15\u00d7", ("many.rss",), None),
    ("relay added latency, p99, on a loaded machine", "\u2264 1 ms",
     ("relay.paced_p99", "relay.bursty_p99"),
     "loaded: another process keeps one core busy; the relay's event loop runs only the "
     "bench. Added: p99 through the relay minus p99 of the same frames to the sink directly"),
    ("idle CPU after N sessions", "flat: no task, track or timer left behind",
     ("many.idle_cpu", "many.left"), None),
    ("first audible word with `early_audio=\"room\"` against `\"hold\"` (issue 12, item 3)",
     "both reported; 0 samples lost or repeated",
     ("early_audio.room", "early_audio.hold", "early_audio.saved", "early_audio.samples"),
     "the avatar provisions for 3 s (Runway takes about 5 s) and joins mid-greeting; no "
     "official plugin has early audio"),
)  # fmt: skip


# -------------------------------------------------------------------------- judging a figure


@dataclass(frozen=True)
class Judged:
    """What ``bench/run`` makes of one figure."""

    fig: dict[str, Any]
    ratio: float | None
    basis: list[float]  # the rounds judged: the ratio per round, else the value per round
    spread: float | None  # relative or absolute, per the figure's rule; None: not judged
    state: str  # "stable" | "unstable" | "exact" | "unchecked" (one round)
    verdict: str | None  # "met" | "not met" | "undecided (...)" | None: no goal


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0 or math.isinf(a) or math.isinf(b):
        return None
    return a / b


def _holds(value: float | None, op: str, target: float) -> bool | None:
    if value is None:
        return None
    return {
        "<=": value <= target,
        "<": value < target,
        ">=": value >= target,
        ">": value > target,
        "==": value == target,
    }[op]


def judge(fig: dict[str, Any], threshold: float = THRESHOLD) -> Judged:
    rounds = list(fig["rounds"])
    peer_rounds = fig.get("peer_rounds")
    ratio = _ratio(fig["value"], fig.get("peer"))
    ratio_rounds = (
        [_ratio(v, p) for v, p in zip(rounds, peer_rounds, strict=True)] if peer_rounds else None
    )
    basis = (
        [math.inf if r is None else r for r in ratio_rounds] if ratio_rounds is not None else rounds
    )

    rule = fig.get("spread", "relative")
    spread: float | None = None
    if rule == "exact":
        state = "exact"
    elif len(basis) < 2:
        state = "unchecked"
    else:
        lo, hi = min(basis), max(basis)
        if math.isinf(lo) or math.isinf(hi):
            spread = 0.0 if lo == hi else math.inf
        elif rule == "absolute":
            spread = hi - lo
        else:
            mid = abs(_median(basis))
            spread = (0.0 if hi == lo else math.inf) if mid == 0 else (hi - lo) / mid
        limit = fig.get("tolerance") if rule == "absolute" else threshold
        state = "stable" if limit is not None and spread <= limit else "unstable"

    verdict: str | None = None
    goal = fig.get("goal")
    if goal:
        on_ratio = goal["on"] == "ratio"
        overall = _holds(ratio if on_ratio else fig["value"], goal["op"], goal["target"])
        per_round = [
            _holds(r, goal["op"], goal["target"])
            for r in ((ratio_rounds or []) if on_ratio else rounds)
        ]
        if overall is None:
            verdict = "no peer"
        elif rule == "exact" or all(r is overall for r in per_round):
            verdict = "met" if overall else "not met"
        else:
            met = sum(r is True for r in per_round)
            verdict = f"undecided: met in {met} of {len(per_round)} rounds"
    return Judged(fig, ratio, basis, spread, state, verdict)


# -------------------------------------------------------------------------- formatting


def fmt_number(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return INF
    text = f"{value:,.{digits}f}"
    # -0.04 to one digit is "-0.0": a sign on a zero says nothing
    return text[1:] if text.startswith("-") and not text.strip("-0.,") else text


def fmt_value(value: float | None, fig: dict[str, Any]) -> str:
    text = fmt_number(value, fig["digits"])
    return text if value is None else f"{text} {fig['unit']}"


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    if math.isinf(ratio):
        return INF
    return f"{ratio:.3f}{TIMES}" if ratio < 0.1 else f"{ratio:.2f}{TIMES}"


def fmt_ratio_cell(j: Judged) -> str:
    """The ratio, or for an unstable figure with a peer its range over the rounds."""
    if j.state == "unstable" and j.fig.get("peer_rounds"):
        return f"**unstable**: {fmt_ratio(min(j.basis))} to {fmt_ratio(max(j.basis))}"
    return fmt_ratio(j.ratio)


def fmt_spread(j: Judged, threshold: float) -> str:
    fig = j.fig
    n = len(j.basis)
    if j.state == "exact":
        return "exact (a count)"
    if j.state == "unchecked":
        return "1 round: unchecked"
    assert j.spread is not None
    if fig.get("spread") == "absolute":
        limit = f"{fig['tolerance']:g} {fig['unit']}"
        amount = INF if math.isinf(j.spread) else f"{j.spread:.{fig['digits']}f} {fig['unit']}"
        return f"{n} rounds: {amount} ({'within' if j.state == 'stable' else 'over'} {limit})"
    percent = j.spread * 100
    if math.isinf(percent):
        amount = INF
    else:
        # one decimal where the rounded figure would read as the threshold itself
        digits = 1 if round(percent) == round(threshold * 100) else 0
        amount = f"{percent:.{digits}f} %"
    over = "" if j.state == "stable" else f", over {threshold * 100:.0f} %"
    return f"{n} rounds: {amount}{over}"


def fmt_headline(j: Judged) -> str:
    """avatarkit's figure, or for an unstable one its range over the rounds, never a number."""
    fig = j.fig
    if j.state == "unstable":
        rounds = fig["rounds"]
        lo = fmt_number(min(rounds), fig["digits"])
        hi = fmt_number(max(rounds), fig["digits"])
        return f"**unstable**: {lo} to {hi} {fig['unit']}"
    return fmt_value(fig["value"], fig)


def fmt_peer(j: Judged) -> str:
    fig = j.fig
    text, value = fig.get("peer_text"), fig.get("peer")
    if value is None:
        return text or "-"
    return f"{text}: {fmt_value(value, fig)}" if text else fmt_value(value, fig)


def fmt_goal(j: Judged) -> str:
    goal = j.fig.get("goal")
    if not goal:
        return "-"
    if goal.get("text"):
        text = str(goal["text"])
    elif goal["on"] == "ratio":
        text = f"{OPS[goal['op']]} {goal['target']:g}{TIMES}"
    else:
        text = f"{OPS[goal['op']]} {goal['target']:g} {j.fig['unit']}"
    verdict = j.verdict or ""
    return f"{text}: **{verdict}**" if verdict in ("met", "not met") else f"{text}: {verdict}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def fmt_duration(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


def stamp_line(stamp: dict[str, Any]) -> str:
    load = stamp.get("load") or []
    loads = " \u2192 ".join(f"{x:.1f}" for x in load)
    return (
        f"Measured by `bench/run{' --quick' if stamp.get('quick') else ''}` on "
        f"{stamp['date']} at commit `{stamp['commit']}`, on {stamp['machine']}"
        + (f" (load average {loads}, start \u2192 end)" if loads else "")
        + f"; the run took {fmt_duration(stamp['seconds'])}."
    )


# -------------------------------------------------------------------------- the tables


def _figures(results: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """(bench result, figure) in the results' order; a failed bench has figure None."""
    out: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    for bench in results["benches"]:
        if bench.get("error"):
            out.append((bench, None))
        else:
            out.extend((bench, fig) for fig in bench["figures"])
    return out


def stability_rule(threshold: float) -> str:
    return (
        "Every figure is measured in rounds, in time order (what a round is: the last "
        "column of the list of commands below). Its spread is (max \u2212 min) / median of "
        "its per-round values: of the ratio to the peer when there is one, else of the value. "
        f"Above {threshold * 100:.0f} % the figure is printed as **unstable**, with its range "
        "over the rounds instead of a number. A difference near zero is judged by the "
        "absolute spread against the tolerance its row states, and a count is exact. A goal "
        "is met or not met only when every round agrees; otherwise it is undecided."
    )


def render(results: dict[str, Any]) -> tuple[str, str]:
    """(docs block, README block) for ``results``; both end with a newline."""
    threshold = float(results.get("threshold", THRESHOLD))
    stamp = results["stamp"]
    judged: dict[str, Judged] = {}
    docs = [
        BEGIN,
        "<!-- Written by bench/run from its results; edit bench/_run.py, not this text. -->",
        "",
        stamp_line(stamp),
        "",
        stability_rule(threshold),
        "",
        _row(
            [
                "bench",
                "figure",
                "avatarkit",
                "peer, same run",
                "ratio",
                "goal",
                "spread over rounds",
                "notes",
            ]
        ),
        _row(["---"] * 8),
    ]
    readme_rows = []
    for bench, fig in _figures(results):
        name = f"`{bench['name']}`"
        if fig is None:
            docs.append(_row([name, "**failed**", "-", "-", "-", "-", "-", bench["error"]]))
            readme_rows.append(
                _row([f"`{bench['name']}` bench", "**failed**", "-", "-", bench["error"]])
            )
            continue
        j = judge(fig, threshold)
        judged[fig["id"]] = j
        docs.append(
            _row(
                [
                    name,
                    fig["what"],
                    fmt_headline(j),
                    fmt_peer(j),
                    fmt_ratio_cell(j),
                    fmt_goal(j),
                    fmt_spread(j, threshold),
                    fig.get("note") or "",
                ]
            )
        )
        if fig.get("readme"):
            peer = fmt_peer(j)
            if j.ratio is not None:
                peer += f" (ratio {fmt_ratio_cell(j)})"
            readme_rows.append(
                _row([fig["what"], fmt_headline(j), peer, fmt_goal(j), fmt_spread(j, threshold)])
            )

    docs += ["", "### The goals of issue 13, and issue 12's early audio", ""]
    docs.append(_row(["goal", "target", "measured (ratio to the official plugin)", "result"]))
    docs.append(_row(["---"] * 4))
    for what, target, ids, caveat in ISSUE_GOALS:
        found = [judged[i] for i in ids if i in judged]
        measured = "; ".join(
            f"{j.fig['id']}: {fmt_ratio_cell(j) if j.ratio is not None else fmt_headline(j)}"
            for j in found
        )
        if not ids:
            result = caveat or "not measured"
        elif not found:
            result = "not measured in this run"
        else:
            verdicts = "; ".join(
                f"{j.fig['id']}: {fmt_goal(j) if j.fig.get('goal') else 'no goal set'}"
                + (" (unstable)" if j.state == "unstable" else "")
                for j in found
            )
            result = f"{verdicts}. {caveat}" if caveat else verdicts
        docs.append(_row([what, target, measured or "-", result]))

    docs += ["", "### Commands", ""]
    docs.append(_row(["bench", "command", "took", "one round"]))
    docs.append(_row(["---"] * 4))
    for bench in results["benches"]:
        docs.append(
            _row(
                [
                    f"`{bench['name']}`",
                    f"`{bench['command']}`",
                    fmt_duration(bench["seconds"]),
                    bench.get("rounds", ""),
                ]
            )
        )
    docs.append(END)

    readme = [
        BEGIN,
        "<!-- Written by bench/run from its results; edit bench/_run.py, not this text. -->",
        "",
        stamp_line(stamp)
        + " Every peer figure comes from the same run, interleaved. All figures, the goals "
        "and the stability rule: [docs/benchmarks.md](docs/benchmarks.md).",
        "",
        _row(["what", "avatarkit", "official plugin (or peer), same run", "goal", "stability"]),
        _row(["---"] * 5),
        *readme_rows,
        END,
    ]
    return "\n".join(docs) + "\n", "\n".join(readme) + "\n"


def splice(text: str, block: str, *, section: str | None = None) -> str:
    """``text`` with the part from BEGIN to END (markers included) replaced by ``block``.

    ``section``: the markers must lie inside that ``## `` section (for the README).
    """
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start or text.find(BEGIN, start + 1) >= 0:
        raise ValueError(f"expected one {BEGIN} ... {END} pair")
    if section is not None:
        head = text.rfind("\n## ", 0, start)
        if head < 0 or not text.startswith(f"\n## {section}\n", head):
            raise ValueError(f"the markers are not in the '## {section}' section")
        if "\n## " in text[start:end]:
            raise ValueError("the markers span more than one section")
    stop = end + len(END)
    if text[stop : stop + 1] == "\n":
        stop += 1
    return text[:start] + block + text[stop:]


# -------------------------------------------------------------------------- running


def git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    try:
        dirty = git("--no-optional-locks", "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        dirty = ""
    return f"{commit} + uncommitted changes" if dirty else commit


def machine() -> str:
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )


def run_bench(bench: Bench, quick: bool, out: Path, python: str) -> dict[str, Any]:
    args = bench.quick if quick else bench.full
    json_path = out / f"{bench.name}.json"
    log_path = out / f"{bench.name}.txt"
    cmd = [python, str(BENCH / bench.script), *args, "--json", str(json_path)]
    shown = " ".join(["python", f"bench/{bench.script}", *args])
    result: dict[str, Any] = {"name": bench.name, "command": shown}
    t0 = time.monotonic()
    timeout = bench.timeout / 2 if quick else bench.timeout
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
        log_path.write_text(f"$ {shown}\n{proc.stdout}\n--- stderr ---\n{proc.stderr}")
        if proc.returncode != 0:
            tail = " / ".join(proc.stderr.strip().splitlines()[-2:])
            result["error"] = f"exit {proc.returncode}: {tail[-300:]}"
        else:
            data = json.loads(json_path.read_text())
            result["figures"] = data["figures"]
            result["load"] = data.get("load")
            result["rounds"] = data.get("round", "")
        print(proc.stdout, flush=True)
    except subprocess.TimeoutExpired as exc:
        out_text = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        log_path.write_text(f"$ {shown}\n{out_text}\n(timed out after {timeout:.0f} s)\n")
        result["error"] = f"timed out after {timeout:.0f} s"
    result["seconds"] = round(time.monotonic() - t0, 1)
    return result


def run_all(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    python = sys.executable
    chosen = [b for b in BENCHES if not args.only or b.name in args.only]
    started = time.monotonic()
    load0 = os.getloadavg()[0]
    benches = []
    for i, bench in enumerate(chosen):
        print(f"== [{i + 1}/{len(chosen)}] {bench.name} ==", flush=True)
        result = run_bench(bench, args.quick, out, python)
        status = result.get("error") or "ok"
        print(f"== {bench.name}: {status}, {fmt_duration(result['seconds'])} ==\n", flush=True)
        benches.append(result)
    return {
        "stamp": {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": git_commit(),
            "machine": machine(),
            "load": [round(load0, 1), round(os.getloadavg()[0], 1)],
            "seconds": round(time.monotonic() - started, 1),
            "quick": args.quick,
        },
        "threshold": args.threshold,
        "benches": benches,
    }


def write_tables(results: dict[str, Any]) -> None:
    docs_block, readme_block = render(results)
    DOCS.write_text(splice(DOCS.read_text(), docs_block))
    README.write_text(splice(README.read_text(), readme_block, section="Measured"))


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="bench/run",
        description="Run every benchmark, judge each figure's stability, write the tables.",
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds; writes nothing")
    parser.add_argument(
        "--only", type=lambda s: s.split(","), help="comma-separated bench names; writes nothing"
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help="write the tables even with --quick or --only (not for publishing)",
    )
    parser.add_argument("--no-write", action="store_true", help="print the tables only")
    parser.add_argument(
        "--from", dest="source", metavar="RESULTS", help="render a saved results.json, no run"
    )
    parser.add_argument(
        "--threshold", type=float, default=THRESHOLD, help="relative spread allowed (0.15)"
    )
    args = parser.parse_args()
    if args.only:
        unknown = set(args.only) - {b.name for b in BENCHES}
        if unknown:
            parser.error(f"unknown bench: {', '.join(sorted(unknown))}")

    if args.source:
        results = json.loads(Path(args.source).read_text())
        results["threshold"] = args.threshold
    else:
        try:
            import livekit.plugins.runway  # noqa: F401
        except ImportError:
            print(
                "bench/run: the official plugin is not installed, and every ratio needs it.\n"
                "Install the bench extra once (this needs the network): "
                "scripts/setup cli,bench",
                file=sys.stderr,
            )
            sys.exit(2)
        partial = bool(args.quick or args.only)
        out = Path(tempfile.mkdtemp(prefix="avatarkit-bench-")) if partial else LAST_RUN
        if not partial:
            shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True, exist_ok=True)
        results = run_all(args, out)
        (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
        print(
            f"results and each bench's full output: {out.relative_to(ROOT) if not partial else out}"
        )

    docs_block, _ = render(results)
    print(docs_block)
    partial = bool(results["stamp"].get("quick") or args.only)
    if args.no_write or (partial and not args.write):
        print("(tables not written: --quick, --only or --no-write)")
        return
    write_tables(results)
    print(f"wrote {DOCS.relative_to(ROOT)} and the README's '## Measured' section")
    failed = [b["name"] for b in results["benches"] if b.get("error")]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
