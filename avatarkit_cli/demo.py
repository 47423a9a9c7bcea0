"""``avatarkit demo``: a whole avatar session with no account and no server, to an MP4."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from ._builtin import provider_options
from ._output import console, quiet_logs

DEFAULT_OUTPUT = Path("avatarkit-demo.mp4")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    provider: str = typer.Option(
        "runway", "--provider", "-p", help="runway (emulated in-process) or local."
    ),
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the MP4.")
    ] = DEFAULT_OUTPUT,
    size: int = typer.Option(512, help="Avatar video width and height, in pixels."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show livekit's logs too."),
) -> None:
    """Run a whole session: an agent speaks a bundled clip, the avatar is created, joins,
    lip-syncs it and is ended; its audio and video are written to an MP4.

    With LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET set it runs in that server's
    room (join it to watch live); otherwise in an in-memory room. Runway is always the
    local emulator here: no Runway account is used.
    """
    if provider not in ("runway", "local"):
        raise typer.BadParameter("choose runway or local", param_hint="--provider")
    quiet_logs(verbose)
    raise typer.Exit(asyncio.run(_demo(provider, output, size)))


async def _demo(provider: str, output: Path, size: int) -> int:
    from avatarkit_cli.clips import bundled_utterances
    from avatarkit_cli.scenario import LiveKitEnv, run_scenario

    out = console()
    utterances = bundled_utterances()
    room_name = f"avatarkit-demo-{secrets.token_hex(3)}"
    async with (
        LiveKitEnv.open() as env,
        provider_options(provider, {}, size=size) as (label, options),
    ):
        where = "an in-memory room" if env.in_memory else f"room {room_name} at {env.url}"
        out.print(Text(f"avatarkit demo: {label} avatar in {where}"))
        with out.status(f"{label}: starting…") as status:

            def on_event(at: float, event: str, detail: str) -> None:
                status.update(f"{label}: {event}")
                out.print(Text(f"  {at:6.2f}s  {event}  {detail}"))

            result = await run_scenario(
                provider,
                options,
                env=env,
                utterances=utterances,
                room_name=room_name,
                record_to=output,
                on_event=on_event,
            )

    table = Table(title=Text(f"Timeline: {label}"), title_justify="left")
    table.add_column("t (s)", justify="right")
    table.add_column("event")
    table.add_column("detail", overflow="fold")
    for at, event, detail in result.events:
        table.add_row(f"{at:.2f}", event, Text(detail))
    out.print(table)
    if result.error:
        out.print(Text(f"the avatar failed: {result.error}", style="red"))
        return 1
    duration, frames = _probe(output)
    out.print(Text(f"wrote {output} ({duration:.1f} s, {frames} video frames) — {label}"))
    return 0


def _probe(path: Path) -> tuple[float, int]:
    import av

    with av.open(str(path)) as container:
        frames = container.streams.video[0].frames
        duration = (container.duration or 0) / 1_000_000
    return duration, frames
