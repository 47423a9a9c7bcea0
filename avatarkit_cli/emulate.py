"""``avatarkit emulate PROVIDER``: serve a provider's emulated API for a real LiveKit server."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import typer
from rich.text import Text

from . import _doubles
from ._output import console

if TYPE_CHECKING:
    from avatarkit.doubles import ProviderDouble


def register(app: typer.Typer) -> None:
    app.command("emulate")(emulate)


def emulate(
    provider: str = typer.Argument(
        ..., help="The provider whose API to emulate (its double must serve one): runway, ..."
    ),
    port: int = typer.Option(8787, help="Port on 127.0.0.1."),
    runtime_cap: float = typer.Option(300.0, help="Seconds after which sessions end."),
) -> None:
    """Serve an emulated provider API. Its avatars join your LiveKit server, so agents run
    against it unchanged: set the variables it prints (e.g. RUNWAYML_BASE_URL and the
    emulator's own key) and start your agent."""
    double = _doubles.load(provider, param_hint="PROVIDER")
    if double is None or not double.can_serve():
        servable = [
            name
            for name in _doubles.with_doubles()
            if (d := _doubles.load(name, param_hint="PROVIDER")) is not None and d.can_serve()
        ]
        why = "its plugin declares no double" if double is None else "it has no remote API"
        raise typer.BadParameter(
            f"{provider} cannot be emulated: {why}. "
            f"Providers that can: {', '.join(servable) or 'none installed'}",
            param_hint="PROVIDER",
        )
    asyncio.run(_serve(double, port, runtime_cap))


async def _serve(double: ProviderDouble, port: int, runtime_cap: float) -> None:
    out = console()
    async with double.serve(port=port, runtime_cap=runtime_cap) as served:
        out.print(Text(f"{served.title} on {served.url}"))
        for name, value in served.env.items():
            out.print(Text(f"  export {name}={value}"))
        out.print("Ctrl-C to stop.")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass
