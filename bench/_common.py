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


# -------------------------------------------------------------------------- machine-readable
#
# Every bench script takes ``--json PATH`` and writes there, besides its human tables, the
# figures ``bench/run`` publishes: one dict per figure (see ``figure``), each with the value
# per round so that ``bench/run`` can judge how stable it is.


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 run``, ``3 runs``."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def chunks(values: Sequence[float], n: int) -> list[list[float]]:
    """``values`` cut into ``n`` contiguous rounds, in order (the last ones may be shorter)."""
    n = max(1, min(n, len(values)))
    size, extra = divmod(len(values), n)
    out: list[list[float]] = []
    start = 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(list(values[start:end]))
        start = end
    return out


def figure(
    fid: str,
    what: str,
    value: float | None,
    unit: str,
    *,
    rounds: Sequence[float],
    digits: int = 0,
    peer: float | None = None,
    peer_rounds: Sequence[float] | None = None,
    peer_text: str | None = None,
    goal: dict[str, object] | None = None,
    spread: str = "relative",
    tolerance: float | None = None,
    note: str | None = None,
    readme: bool = False,
) -> dict[str, object]:
    """One published figure.

    ``value`` is avatarkit's figure over every sample of the run, and ``rounds`` the same
    figure computed on each round alone, in time order. ``peer`` / ``peer_rounds`` are the
    official plugin's (or the named peer's, ``peer_text``), measured in the same run,
    interleaved; the ratio is value / peer, overall and per round. ``bench/run`` judges the
    stability of the ratio when there is a peer, else of the value, by ``spread``:
    "relative" ((max - min) / median of the rounds, against bench/run's threshold),
    "absolute" (max - min against ``tolerance``, in the figure's unit: for differences near
    zero) or "exact" (a count, which has no noise to judge). ``goal``: see :func:`goal`.
    ``readme``: the figure is also shown in the README's table.
    """
    if (peer is None) != (peer_rounds is None):
        raise ValueError("peer and peer_rounds go together")
    if peer_rounds is not None and len(peer_rounds) != len(rounds):
        raise ValueError("one peer value per round")
    return {
        "id": fid,
        "what": what,
        "value": value,
        "unit": unit,
        "digits": digits,
        "rounds": [float(r) for r in rounds],
        "peer": peer,
        "peer_rounds": None if peer_rounds is None else [float(r) for r in peer_rounds],
        "peer_text": peer_text,
        "spread": spread,
        "tolerance": tolerance,
        "goal": goal,
        "note": note,
        "readme": readme,
    }


def goal(on: str, op: str, target: float, text: str | None = None) -> dict[str, object]:
    """A goal: the figure's ``value`` (``on="value"``) or its ratio to the peer
    (``on="ratio"``) ``op`` ``target``, where ``op`` is one of ``<= < >= > ==``. ``text``
    overrides how the goal is written (bench/run writes ``op target unit`` otherwise)."""
    if op not in ("<=", "<", ">=", ">", "=="):
        raise ValueError(f"unknown op {op!r}")
    return {"on": on, "op": op, "target": target, "text": text}


def write_json(
    path: str | None, bench: str, figures: list[dict[str, object]], **extra: object
) -> None:
    """Write ``figures`` (and anything in ``extra``) to ``path``; nothing when ``path`` is None."""
    if path is None:
        return
    import json
    import os

    data = {
        "bench": bench,
        "machine": machine(),
        "load": os.getloadavg()[0],
        "figures": figures,
        **extra,
    }
    with open(path, "w") as f:
        json.dump(data, f, indent=1)
