"""Helpers shared by the benchmarks: order statistics and plain-text tables."""

from __future__ import annotations

import math
import platform
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` percentile (0-100) of ``values`` by the nearest-rank method."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A text table in ``bench_render.py``'s style: right-aligned cells, ``|`` between."""
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    # the first column (a label) is left-aligned, the figures right-aligned
    def line(cells: Sequence[str]) -> str:
        out = [f"{cells[0]:<{widths[0]}}"]
        out += [f"{c:>{w}}" for c, w in zip(cells[1:], widths[1:], strict=True)]
        return " | ".join(out)

    head = line(headers)
    return "\n".join([head, "-" * len(head), *(line(r) for r in rows)])


def machine() -> str:
    """A one-line description of where the figures were taken."""
    import os

    return (
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs"
    )
