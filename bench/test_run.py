"""bench/run's table writer: deterministic, and honest about unstable figures.

Run: ``.venv/bin/python -m pytest bench/test_run.py`` (pyproject's testpaths are ``tests``
and ``examples``, so the main suite does not collect it).
"""

from __future__ import annotations

import copy
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _run
from _common import figure, goal

STAMP = {
    "date": "2026-12-01 10:00 UTC",
    "commit": "abc1234",
    "machine": "Linux x86_64, 2 cores, Python 3.11.7",
    "load": [0.5, 1.2],
    "seconds": 601.4,
    "quick": False,
}


def results() -> dict[str, Any]:
    """Fixed results, one of each kind of figure."""
    return {
        "stamp": dict(STAMP),
        "threshold": 0.15,
        "benches": [
            {
                "name": "start",
                "command": "python bench/bench_start.py --iterations 500",
                "seconds": 31.2,
                "rounds": "100 iterations",
                "figures": [
                    figure(
                        "start.avatar_first",
                        "`start()`, avatar first",
                        0.79,
                        "ms",
                        digits=2,
                        rounds=[0.78, 0.80, 0.79],
                        peer=0.63,
                        peer_rounds=[0.62, 0.64, 0.63],
                        peer_text="official plugin",
                        goal=goal("ratio", "<=", 1.05),
                        readme=True,
                    ),
                    figure(
                        "start.noisy",
                        "a figure whose rounds disagree",
                        1.0,
                        "ms",
                        digits=2,
                        rounds=[0.5, 1.0, 1.5],
                        goal=goal("value", "<=", 1.2),
                        readme=True,
                    ),
                ],
            },
            {
                "name": "loss",
                "command": "python bench/bench_loss.py",
                "seconds": 80.0,
                "figures": [
                    figure(
                        "loss.samples",
                        "samples lost",
                        0,
                        "samples",
                        rounds=[0, 0, 0],
                        spread="exact",
                        goal=goal("value", "==", 0),
                        readme=True,
                    ),
                    figure(
                        "fast_start.joined",
                        "a difference",
                        0.4,
                        "ms",
                        digits=1,
                        rounds=[0.2, 0.5, 0.4],
                        spread="absolute",
                        tolerance=1.0,
                        goal=goal("value", "<=", 1.0),
                    ),
                    figure(
                        "loss.never",
                        "never audible in one round",
                        math.inf,
                        "ms",
                        rounds=[200.0, math.inf],
                    ),
                ],
            },
            {
                "name": "relay",
                "command": "python bench/bench_relay.py",
                "seconds": 60.0,
                "figures": [
                    figure(
                        "relay.paced_p99",
                        "relay added latency, p99",
                        0.12,
                        "ms",
                        digits=3,
                        rounds=[0.10, 0.12, 0.13],
                        spread="absolute",
                        tolerance=0.25,
                        peer_text="frames to the sink directly: p99 0.005 ms",
                        goal=goal("value", "<=", 1.0),
                    ),
                ],
            },
            {
                "name": "demo",
                "command": "python bench/bench_demo.py",
                "seconds": 600.0,
                "error": "timed out after 600 s",
            },
        ],
    }


README = """# avatarkit

## Install

pip install

## Measured

<!-- bench:begin -->
old table
<!-- bench:end -->

## Docs

more
"""


def test_render_is_deterministic() -> None:
    a = _run.render(results())
    b = _run.render(copy.deepcopy(results()))
    assert a == b
    # and through a JSON round trip, as bench/run --from reads a saved run
    c = _run.render(json.loads(json.dumps(results())))
    assert a == c


def test_render_uses_only_its_input() -> None:
    docs, readme = _run.render(results())
    assert STAMP["date"] in docs and STAMP["commit"] in readme
    changed = results()
    changed["benches"][0]["figures"][0]["value"] = 0.9
    assert _run.render(changed)[0] != docs


def test_stable_figure_is_published_with_its_ratio_and_verdict() -> None:
    docs, readme = _run.render(results())
    row = next(line for line in docs.splitlines() if "`start()`, avatar first" in line)
    assert "0.79 ms" in row
    assert "official plugin: 0.63 ms" in row
    assert "1.25\u00d7" in row  # 0.79 / 0.63
    assert "**not met**" in row
    assert "3 rounds: 1 %" in row  # the ratio per round: 1.258, 1.250, 1.254
    assert "`start()`, avatar first" in readme


def test_unstable_figure_is_not_published_as_a_number() -> None:
    docs, readme = _run.render(results())
    for text in (docs, readme):
        row = next(line for line in text.splitlines() if "rounds disagree" in line)
        assert "**unstable**: 0.50 to 1.50 ms" in row
        assert "| 1.00 ms" not in row
        assert "over 15 %" in row
        assert "undecided: met in 2 of 3 rounds" in row


def test_exact_absolute_infinite_and_failed() -> None:
    docs, _ = _run.render(results())
    lines = docs.splitlines()
    exact = next(line for line in lines if "samples lost" in line)
    assert "exact (a count)" in exact and "**met**" in exact
    diff = next(line for line in lines if "a difference" in line)
    assert "0.4 ms" in diff and "within 1 ms" in diff
    never = next(line for line in lines if "never audible" in line)
    assert "**unstable**" in never
    failed = next(line for line in lines if line.startswith("| `demo`") and "failed" in line)
    assert "timed out after 600 s" in failed


def test_issue_goals_table_lists_every_goal() -> None:
    docs, _ = _run.render(results())
    for what, *_ in _run.ISSUE_GOALS:
        assert what in docs
    goals = docs.split("### The goals")[1].split("### Commands")[0]
    relay = next(line for line in goals.splitlines() if "relay added latency" in line)
    assert "relay.paced_p99: 0.120 ms" in relay and "**met**" in relay
    assert "relay.bursty_p99" not in relay  # not in these results: not shown as measured
    early = next(line for line in goals.splitlines() if "early_audio" in line)
    assert "not measured in this run" in early


def test_splice_replaces_only_the_marked_block() -> None:
    _, block = _run.render(results())
    out = _run.splice(README, block, section="Measured")
    assert out.startswith("# avatarkit\n\n## Install\n\npip install\n\n## Measured\n\n")
    assert out.endswith("\n## Docs\n\nmore\n")
    assert "old table" not in out
    assert _run.splice(out, block, section="Measured") == out  # idempotent


def test_splice_refuses_markers_elsewhere() -> None:
    moved = README.replace("## Measured", "## Other")
    with pytest.raises(ValueError):
        _run.splice(moved, "x\n", section="Measured")
    with pytest.raises(ValueError):
        _run.splice("no markers here", "x\n")


def test_number_formats() -> None:
    assert _run.fmt_number(-0.04, 1) == "0.0"
    assert _run.fmt_number(-0.4, 1) == "-0.4"
    assert _run.fmt_number(12345.6, 0) == "12,346"
    assert _run.fmt_number(math.inf, 0) == "\u221e"
    near = figure("n", "n", 1.0, "ms", rounds=[0.93, 1.0, 1.08])  # 15.0... %, over 15 %
    assert _run.fmt_spread(_run.judge(near), 0.15).startswith("3 rounds: 15.0 %")


def test_judge_rules() -> None:
    rel = figure("a", "a", 10.0, "ms", rounds=[9.0, 10.0, 11.0])
    assert _run.judge(rel).state == "unstable"  # 20 % > 15 %
    assert _run.judge(rel, threshold=0.25).state == "stable"
    one = figure("b", "b", 10.0, "ms", rounds=[10.0])
    assert _run.judge(one).state == "unchecked"
    ratio = figure("c", "c", 2.0, "ms", rounds=[2.0, 4.0], peer=2.0, peer_rounds=[2.0, 4.0])
    judged = _run.judge(ratio)
    assert judged.basis == [1.0, 1.0] and judged.state == "stable"  # the ratio is judged
