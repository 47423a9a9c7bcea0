"""``avatarkit compare``: the same scripted agent through several providers, measured alike."""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from . import _doubles
from ._output import console, quiet_logs

if TYPE_CHECKING:
    import avatarkit
    from avatarkit.doubles import ProviderDouble

    from .capture import FrameCapture, Moment, Still
    from .clips import Utterance
    from .report import ProviderStills


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)


def compare(
    providers: Annotated[
        str, typer.Option("--providers", "-p", help="Comma-separated provider names.")
    ] = "local,runway",
    runs: Annotated[int, typer.Option(min=1, max=50, help="Sessions per provider.")] = 3,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option", "-o", help="PROVIDER.KEY=VALUE, an option for one provider (repeatable)."
        ),
    ] = None,
    size: Annotated[int, typer.Option(help="Video size for the built-in providers.")] = 256,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    report_to: Annotated[
        Path | None,
        typer.Option(
            "--report",
            dir_okay=False,
            help="Also write a self-contained HTML page there: the avatars side by side at "
            "the same moments of the script, plots across runs, how each session ended.",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show livekit's logs.")] = False,
) -> None:
    """Run the same scripted agent audio through each provider, several times, in one app,
    and report join latency, first-frame latency, audio/video offset, frames dropped,
    errors and how each session ended (with --report, as an HTML page too). A provider with
    a double runs on it here (Runway against its emulator) unless given credentials
    (-o runway.api_key=...)."""
    import avatarkit

    names = [p.strip() for p in providers.split(",") if p.strip()]
    try:
        infos = [avatarkit.provider_info(name) for name in names]
    except avatarkit.ConfigurationError as exc:  # an unknown name, with a suggestion
        raise typer.BadParameter(str(exc), param_hint="--providers") from None
    given = _parse_options(option or [], infos)
    if report_to is not None and not report_to.parent.is_dir():  # say so before the runs
        raise typer.BadParameter(f"no folder {report_to.parent}", param_hint="--report")
    doubles = {name: _doubles.load(name, param_hint="--providers") for name in names}
    quiet_logs(verbose)
    try:
        report = asyncio.run(
            _compare(doubles, given, runs, size, quiet=as_json, report_to=report_to)
        )
    except avatarkit.ConfigurationError as exc:
        raise typer.BadParameter(str(exc), param_hint="--option") from None
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        _print(report)
        if report_to is not None:
            console().print(Text(f"Report: {report_to}"))
    raise typer.Exit(1 if any(p["errors"] for p in report["providers"]) else 0)


def _parse_options(
    items: list[str], infos: list[avatarkit.ProviderInfo]
) -> dict[str, dict[str, Any]]:
    from avatarkit.options import CoreOptions

    from . import _options

    # the core's options (join_timeout, ...) apply to every provider
    core = {doc.name: doc.type for doc in _options.describe(CoreOptions)}
    types = {
        info.name: core | {doc.name: doc.type for doc in _options.describe(info.options_class())}
        for info in infos
    }
    given: dict[str, dict[str, Any]] = {info.name: {} for info in infos}
    for item in items:
        target, eq, raw = item.partition("=")
        provider, dot, key = target.partition(".")
        if not eq or not dot or provider not in given:
            raise typer.BadParameter(
                f"{item!r}: write PROVIDER.KEY=VALUE for one of {', '.join(given)}",
                param_hint="--option",
            )
        kind = types[provider].get(key)
        given[provider][key] = raw if kind is None else _options.convert(kind, raw)
    return given


async def _compare(
    doubles: dict[str, ProviderDouble | None],
    given: dict[str, dict[str, Any]],
    runs: int,
    size: int,
    *,
    quiet: bool,
    report_to: Path | None = None,
) -> dict[str, Any]:
    from avatarkit_cli.clips import bundled_utterances
    from avatarkit_cli.measure import av_offset, frames_dropped
    from avatarkit_cli.scenario import LiveKitEnv, run_scenario

    out = console()
    names = list(doubles)
    utterances = bundled_utterances()[:1]
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    labels: dict[str, str] = {}
    stills = _Stills(utterances[0]) if report_to is not None else None
    async with LiveKitEnv.open() as env:
        for run in range(runs):  # interleaved, so drift on the machine hits all alike
            for name in names:
                capture = stills.capture() if stills is not None else None
                async with _doubles.offline(name, doubles[name], given[name], size=size) as go:
                    label = labels[name] = go.label
                    try:
                        result = await run_scenario(
                            name,
                            go.options,
                            env=env if capture is None else capture.attach(env),
                            utterances=utterances,
                            room_name=f"avatarkit-compare-{secrets.token_hex(3)}",
                            pause=0.0,
                        )
                    finally:
                        if capture is not None and stills is not None:
                            stills.keep(name, run + 1, await capture.aclose())
                rec = result.recording
                offset = av_offset(rec) if rec is not None else None
                row = {
                    "run": run + 1,
                    "join_latency_s": result.join_latency,
                    "first_frame_latency_s": result.first_frame_latency,
                    "av_offset_ms": None if offset is None else round(offset * 1000),
                    "frames": len(rec.video_times) if rec is not None else 0,
                    "frames_dropped": frames_dropped(rec) if rec is not None else 0,
                    "error": result.error,
                    "end_outcome": result.end_outcome,
                    "remote_status": result.remote_status,
                }
                results[name].append(row)
                if not quiet:
                    out.print(Text(f"  {label} run {run + 1}: {_brief(row)}"))
    report = {
        "in_memory_room": env.in_memory,
        "runs": runs,
        "providers": [_summary(name, labels[name], rows) for name, rows in results.items()],
    }
    if report_to is not None and stills is not None:
        from . import report as html_report

        html_report.write(report_to, report, stills.best, utterances[0], stills.moments)
    return report


class _Stills:
    """For --report: a :class:`~avatarkit_cli.capture.FrameCapture` on each session, and for
    each provider the stills of its first run that showed the most moments."""

    def __init__(self, utterance: Utterance) -> None:
        from .capture import script_moments

        self.utterance = utterance
        self.moments: list[Moment] = script_moments(utterance)
        self.best: dict[str, ProviderStills] = {}

    def capture(self) -> FrameCapture:
        from .capture import FrameCapture

        return FrameCapture(self.utterance, self.moments)

    def keep(self, name: str, run: int, stills: list[Still]) -> None:
        from .report import ProviderStills

        def shown(s: list[Still]) -> int:
            return sum(still.rgb is not None for still in s)

        best = self.best.get(name)
        if best is None or shown(stills) > shown(best.stills):
            self.best[name] = ProviderStills(run, stills)


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _summary(name: str, label: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    ended: dict[str, int] = {}
    for row in rows:
        key = f"{row['end_outcome']} / {row['remote_status']}"
        ended[key] = ended.get(key, 0) + 1
    return {
        "provider": name,
        "label": label,
        "join_latency_s": _median([r["join_latency_s"] for r in rows]),
        "first_frame_latency_s": _median([r["first_frame_latency_s"] for r in rows]),
        "av_offset_ms": _median([r["av_offset_ms"] for r in rows]),
        "frames_dropped": sum(r["frames_dropped"] for r in rows),
        "frames": sum(r["frames"] for r in rows),
        "errors": [r["error"] for r in rows if r["error"]],
        "ended": ended,
        "runs": rows,
    }


def _brief(row: dict[str, Any]) -> str:
    if row["error"]:
        return f"error: {row['error']}"
    return (
        f"joined {row['join_latency_s']:.2f}s, first frame {row['first_frame_latency_s']:.2f}s, "
        f"{row['frames_dropped']} dropped, ended {row['end_outcome']} / {row['remote_status']}"
    )


def _fmt(value: float | None, unit: str, scale: float = 1.0) -> str:
    return "-" if value is None else f"{value * scale:.0f} {unit}"


def _print(report: dict[str, Any]) -> None:
    where = "in-memory room" if report["in_memory_room"] else "LiveKit server"
    table = Table(
        title=Text(f"avatarkit compare: {report['runs']} runs each, {where} (medians)"),
        title_justify="left",
    )
    for column in ("provider", "join", "first frame", "A/V offset", "dropped", "errors", "ended"):
        table.add_column(column, overflow="fold")
    for p in report["providers"]:
        table.add_row(
            Text(p["label"]),
            _fmt(p["join_latency_s"], "ms", 1000),
            _fmt(p["first_frame_latency_s"], "ms", 1000),
            _fmt(p["av_offset_ms"], "ms"),
            f"{p['frames_dropped']} of {p['frames']}",
            str(len(p["errors"])),
            Text("; ".join(f"{k} x{v}" for k, v in p["ended"].items())),
        )
    console().print(table)
