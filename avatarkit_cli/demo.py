"""``avatarkit demo``: a whole avatar session with no account and no server, to an MP4."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from . import _doubles
from ._output import console, quiet_logs

if TYPE_CHECKING:
    from avatarkit.doubles import ProviderDouble

DEFAULT_OUTPUT = Path("avatarkit-demo.mp4")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    provider: str = typer.Option(
        "runway",
        "--provider",
        "-p",
        help="An installed provider that can run here with no account (its plugin declares "
        "a double): runway (emulated in-process), local, ...",
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
    room (join it to watch live); otherwise in an in-memory room. A cloud provider runs
    against its emulator here (Runway's, say), labelled so: no account is used.
    """
    double = _doubles.require(provider, param_hint="--provider")
    quiet_logs(verbose)
    raise typer.Exit(asyncio.run(_demo(provider, double, output, size)))


async def _demo(provider: str, double: ProviderDouble, output: Path, size: int) -> int:
    from avatarkit_cli.clips import bundled_utterances
    from avatarkit_cli.scenario import LiveKitEnv, run_scenario

    out = console()
    utterances = bundled_utterances()
    room_name = f"avatarkit-demo-{secrets.token_hex(3)}"
    async with (
        LiveKitEnv.open() as env,
        double.offline({}, size=size) as run,
    ):
        label = run.label
        where = "an in-memory room" if env.in_memory else f"room {room_name} at {env.url}"
        out.print(Text(f"avatarkit demo: {label} avatar in {where}"))
        with out.status(f"{label}: starting…") as status:

            def on_event(at: float, event: str, detail: str) -> None:
                status.update(f"{label}: {event}")
                out.print(Text(f"  {at:6.2f}s  {event}  {detail}"))

            result = await run_scenario(
                provider,
                run.options,
                env=env,
                utterances=utterances,
                room_name=room_name,
                record_to=output,
                on_event=on_event,
            )

    # the timeline went out live above; a one-line summary closes it
    if result.error:
        out.print(Text(f"{label}: the avatar failed: {result.error}", style="red"))
        return 1
    duration, frames = _probe(output)
    out.print(
        Text(
            f"{label}: joined in {_seconds(result.join_latency)}, first frame in "
            f"{_seconds(result.first_frame_latency)}; wrote {output} ({duration:.1f} s, "
            f"{frames} video frames)"
        )
    )
    return 0


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _probe(path: Path) -> tuple[float, int]:
    import av

    with av.open(str(path)) as container:
        frames = container.streams.video[0].frames
        duration = (container.duration or 0) / 1_000_000
    return duration, frames
