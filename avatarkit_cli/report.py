"""The HTML page of ``avatarkit compare --report``: one self-contained file.

It shows the avatars side by side at the same moments of the script (stills kept by
:mod:`avatarkit_cli.capture`), plots of join latency, first-frame latency and A/V offset across
runs (drawn by matplotlib), how each session ended, and the errors. Everything is inside the
file: pictures and plots are ``data:`` URIs, the style is inline, there is no script, and the
page's Content-Security-Policy forbids the browser to fetch anything, so it reads the same
offline, attached to an issue or years later.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from .capture import Moment, Still, speech_levels, speech_onset
from .clips import Utterance

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
DASH = "&ndash;"  # no value
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


@attrs.frozen
class ProviderStills:
    """The stills shown for one provider, and the run (from 1) they are from."""

    run: int
    stills: list[Still]


def write(
    path: Path,
    report: dict[str, Any],
    stills: dict[str, ProviderStills],
    utterance: Utterance,
    moments: Sequence[Moment],
) -> None:
    """Write the page for ``report`` (what ``compare --json`` prints) to ``path``."""
    path.write_text(render(report, stills, utterance, moments), encoding="utf-8")


def render(
    report: dict[str, Any],
    stills: dict[str, ProviderStills],
    utterance: Utterance,
    moments: Sequence[Moment],
) -> str:
    """The page, as text."""
    providers = report["providers"]
    colors = {p["provider"]: COLORS[i % len(COLORS)] for i, p in enumerate(providers)}
    where = "an in-memory room" if report["in_memory_room"] else "a LiveKit server's room"
    runs = report["runs"]
    import avatarkit

    made = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>avatarkit compare</title>",
        f"<style>{_STYLE}</style>",
        "</head><body>",
        "<h1>avatarkit compare</h1>",
        f'<p class="meta">{len(providers)} provider{"s" if len(providers) != 1 else ""}, '
        f"{runs} run{'s' if runs != 1 else ''} each, in {where} · made {_e(made)} with "
        f"avatarkit {_e(avatarkit.__version__)}</p>",
        _summary(providers, colors),
        _frames(providers, stills, utterance, moments, colors),
        _plots(providers, runs, colors),
        _sessions(providers),
        _errors(providers),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px;
  color: #1d1d1f; background: #fff; max-width: 1320px; }
h1 { margin: 0 0 4px; font-size: 26px; }
h2 { margin: 28px 0 8px; font-size: 19px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
p { margin: 6px 0; line-height: 1.4; }
.meta, .note { color: #666; font-size: 14px; }
table { border-collapse: collapse; font-size: 14px; }
th, td { padding: 5px 10px; text-align: left; border-bottom: 1px solid #eee;
  vertical-align: top; }
th { background: #f6f6f6; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
  margin-right: 6px; }
tr.failed td { background: #fff2f2; }
.error { color: #b00020; }
.ok { color: #1b7f3a; }
table.frames th, table.frames td { border: none; padding: 4px; text-align: center; }
table.frames th.provider { text-align: left; width: 140px; background: none; }
table.frames td img { width: 150px; height: auto; border-radius: 4px; display: block; }
.missing { width: 150px; height: 150px; display: flex; align-items: center;
  justify-content: center; background: #f1f1f1; color: #888; font-size: 12px;
  border-radius: 4px; }
.moment { font-weight: 600; }
.when { color: #666; font-size: 12px; font-weight: 400; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; }
img.plot { border: 1px solid #eee; border-radius: 4px; }
img.script { width: 100%; max-width: 1290px; }
ul.errors li { margin-bottom: 6px; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _ms(seconds: float | None) -> str:
    return DASH if seconds is None else f"{seconds * 1000:.0f} ms"


def _provider_cell(p: dict[str, Any], colors: dict[str, str]) -> str:
    swatch = f'<span class="swatch" style="background:{colors[p["provider"]]}"></span>'
    return f"{swatch}{_e(p['label'])}"


def _ended(ended: dict[str, int]) -> str:
    return "<br>".join(f"{_e(k)} &times;{v}" for k, v in ended.items())


def _summary(providers: list[dict[str, Any]], colors: dict[str, str]) -> str:
    rows = []
    for p in providers:
        errors = len(p["errors"])
        rows.append(
            "<tr>"
            f"<td>{_provider_cell(p, colors)}</td>"
            f'<td class="num">{_ms(p["join_latency_s"])}</td>'
            f'<td class="num">{_ms(p["first_frame_latency_s"])}</td>'
            f'<td class="num">{_offset(p["av_offset_ms"])}</td>'
            f'<td class="num">{p["frames_dropped"]} of {p["frames"]}</td>'
            f'<td class="num {"error" if errors else "ok"}">{errors}</td>'
            f"<td>{_ended(p['ended'])}</td>"
            "</tr>"
        )
    return (
        "<h2>Summary</h2>"
        '<p class="note">Medians over the runs. Join: from <code>avatar.start()</code> to the '
        "avatar's video being published; first frame: to its first frame arriving in the room; "
        "A/V offset: how late its mouth moves after its sound (negative: early). Ended: how "
        "avatarkit ended the session / the provider's final status.</p>"
        "<table><tr><th>provider</th><th>join</th><th>first frame</th><th>A/V offset</th>"
        "<th>frames dropped</th><th>errors</th><th>ended</th></tr>" + "".join(rows) + "</table>"
    )


def _offset(ms: float | None) -> str:
    if ms is None:
        return DASH
    return f"{ms:+.0f} ms" if round(ms) else "0 ms"


def _frames(
    providers: list[dict[str, Any]],
    stills: dict[str, ProviderStills],
    utterance: Utterance,
    moments: Sequence[Moment],
    colors: dict[str, str],
) -> str:
    head = "".join(
        f'<th><span class="moment">{i}</span> <span class="when">{m.at:.2f} s · '
        f"{_e(m.label)}</span></th>"
        for i, m in enumerate(moments, 1)
    )
    rows = []
    for p in providers:
        shown = stills.get(p["provider"])
        run = f'<br><span class="when">run {shown.run}</span>' if shown else ""
        cells = []
        for i, moment in enumerate(moments, 1):
            still = next((s for s in shown.stills if s.moment == moment), None) if shown else None
            if still is None or still.rgb is None:
                note = still.note if still is not None else "not captured"
                cells.append(f'<td><div class="missing">{_e(note)}</div></td>')
                continue
            alt = f"{p['label']} at moment {i} ({moment.at:.2f} s)"
            cells.append(
                f'<td><img class="still" alt="{_e(alt)}" src="{_png(still.rgb)}" '
                f'width="{still.rgb.shape[1]}" height="{still.rgb.shape[0]}"></td>'
            )
        rows.append(
            f'<tr><th class="provider">{_provider_cell(p, colors)}{run}</th>{"".join(cells)}</tr>'
        )
    return (
        "<h2>The same moments of the script</h2>"
        f"<p>The agent says “{_e(utterance.text)}” ({utterance.duration:.1f} s). Each column "
        "is one moment of it, counted from the first sound heard in the room; each picture is "
        "what the room showed of that avatar then.</p>"
        f'<img class="plot script" alt="the script, with the moments compared" '
        f'src="{_svg(_script_figure(utterance, moments))}">'
        f'<table class="frames"><tr><th class="provider"></th>{head}</tr>'
        + "".join(rows)
        + "</table>"
    )


def _plots(providers: list[dict[str, Any]], runs: int, colors: dict[str, str]) -> str:
    metrics = (
        ("join latency", "join_latency_s", 1000.0, "ms"),
        ("first-frame latency", "first_frame_latency_s", 1000.0, "ms"),
        ("A/V offset (video after audio)", "av_offset_ms", 1.0, "ms"),
    )
    images = [
        f'<img class="plot metric" alt="{_e(title)} across runs" '
        f'src="{_svg(_metric_figure(title, key, scale, unit, providers, runs, colors))}">'
        for title, key, scale, unit in metrics
    ]
    return (
        "<h2>Across runs</h2>"
        '<p class="note">Each point is one run; runs alternate between the providers, so a '
        "slow moment of the machine hits them alike. A missing point: the run gave no value "
        "(an error, or an A/V offset too weak to measure).</p>"
        f'<div class="plots">{"".join(images)}</div>'
    )


def _sessions(providers: list[dict[str, Any]]) -> str:
    rows = []
    for p in providers:
        for r in p["runs"]:
            failed = bool(r["error"])
            rows.append(
                f'<tr class="{"failed" if failed else ""}">'
                f"<td>{_e(p['label'])}</td><td class='num'>{r['run']}</td>"
                f'<td class="num">{_ms(r["join_latency_s"])}</td>'
                f'<td class="num">{_ms(r["first_frame_latency_s"])}</td>'
                f'<td class="num">{_offset(r["av_offset_ms"])}</td>'
                f'<td class="num">{r["frames_dropped"]} of {r["frames"]}</td>'
                f"<td>{_e(r['end_outcome']) if r['end_outcome'] else DASH}</td>"
                f"<td>{_e(r['remote_status']) if r['remote_status'] else DASH}</td>"
                f'<td class="{"error" if failed else "ok"}">'
                f"{_e(r['error']) if failed else 'none'}</td>"
                "</tr>"
            )
    return (
        "<h2>How each session ended</h2>"
        '<p class="note">avatarkit&rsquo;s end: how it ended the session (graceful: the avatar was '
        "told to stop and left). The provider&rsquo;s status: what its API said of the session "
        "afterwards.</p>"
        "<table><tr><th>provider</th><th>run</th><th>join</th><th>first frame</th>"
        "<th>A/V offset</th><th>frames dropped</th><th>avatarkit&rsquo;s end</th>"
        "<th>provider&rsquo;s status</th><th>error</th></tr>" + "".join(rows) + "</table>"
    )


def _errors(providers: list[dict[str, Any]]) -> str:
    items = [
        f"<li><b>{_e(p['label'])}</b>, run {r['run']}: "
        f'<span class="error">{_e(r["error"])}</span></li>'
        for p in providers
        for r in p["runs"]
        if r["error"]
    ]
    if not items:
        return '<h2>Errors</h2><p class="ok">None: every session ran to its end.</p>'
    return f'<h2>Errors ({len(items)})</h2><ul class="errors">{"".join(items)}</ul>'


# --- pictures -------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    # a Figure of its own, not pyplot's: no global state, no GUI backend
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _svg(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _png(rgb: Any) -> str:
    from matplotlib.image import imsave

    buf = io.BytesIO()
    imsave(buf, rgb, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _metric_figure(
    title: str,
    key: str,
    scale: float,
    unit: str,
    providers: list[dict[str, Any]],
    runs: int,
    colors: dict[str, str],
) -> Figure:
    fig = _figure(4.3, 3.0)
    ax = fig.add_subplot()
    for p in providers:
        xs = [r["run"] for r in p["runs"]]
        ys = [math.nan if r[key] is None else r[key] * scale for r in p["runs"]]
        label = p["label"] + ("" if any(not math.isnan(y) for y in ys) else " (no value)")
        ax.plot(
            xs,
            ys,
            marker="o",
            markersize=5,
            linewidth=1.5,
            color=colors[p["provider"]],
            label=label,
        )
    if key == "av_offset_ms":
        ax.axhline(0, color="#999", linewidth=0.8, linestyle=":")
    else:
        ax.set_ylim(bottom=0)
    ax.set_xticks(range(1, runs + 1))
    ax.set_xlim(0.5, runs + 0.5)
    ax.set_xlabel("run")
    ax.set_ylabel(unit)
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", frameon=False)
    return fig


def _script_figure(utterance: Utterance, moments: Sequence[Moment]) -> Figure:
    import numpy as np

    from .capture import WINDOW

    levels = speech_levels(utterance.pcm, utterance.sample_rate)
    peak = float(levels.max()) if len(levels) and levels.max() > 0 else 1.0
    t = np.arange(len(levels)) * WINDOW
    fig = _figure(12.9, 1.5)
    ax = fig.add_subplot()
    ax.fill_between(t, -levels / peak, levels / peak, color="#9aa7b8", linewidth=0)
    _, threshold = speech_onset(utterance)
    end = max([utterance.duration, *(m.at for m in moments)]) + 0.1
    for i, moment in enumerate(moments, 1):
        ax.axvline(moment.at, color="#d62728", linewidth=1)
        ax.annotate(
            str(i),
            (moment.at, 1.0),
            xytext=(3, -2),
            textcoords="offset points",
            va="top",
            fontsize=9,
            color="#d62728",
            fontweight="bold",
        )
    ax.axhline(threshold / peak, color="#999", linewidth=0.6, linestyle=":")
    ax.set_xlim(0, end)
    ax.set_ylim(-1.05, 1.05)
    ax.set_yticks([])
    ax.set_xlabel(
        "seconds into the script (speech level; dotted: the level taken as its start)", fontsize=9
    )
    ax.tick_params(labelsize=8)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    return fig
