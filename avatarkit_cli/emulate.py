"""``avatarkit emulate runway``: serve the Runway emulator for a real LiveKit server."""

from __future__ import annotations

import asyncio

import typer
from rich.text import Text

from ._output import console


def register(app: typer.Typer) -> None:
    app.command("emulate")(emulate)


def emulate(
    provider: str = typer.Argument(..., help="The service to emulate: runway."),
    port: int = typer.Option(8787, help="Port on 127.0.0.1."),
    runtime_cap: float = typer.Option(300.0, help="Seconds after which sessions end."),
) -> None:
    """Serve an emulated provider API. Its avatars join your LiveKit server, so agents run
    against it unchanged: point RUNWAYML_BASE_URL at it and use the key it prints."""
    if provider != "runway":
        raise typer.BadParameter("only runway can be emulated", param_hint="PROVIDER")
    asyncio.run(_serve(port, runtime_cap))


async def _serve(port: int, runtime_cap: float) -> None:
    from avatarkit_providers.runway.emulator.emulator import RunwayEmulator

    out = console()
    async with RunwayEmulator(port=port, runtime_cap=runtime_cap) as emulator:
        out.print(Text(f"Runway emulator on {emulator.url} (emulated, no Runway account)"))
        out.print(Text(f"  export RUNWAYML_BASE_URL={emulator.url}"))
        out.print(Text(f"  export RUNWAYML_API_SECRET={emulator.api_key}   # the emulator's own"))
        out.print("Ctrl-C to stop.")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass
