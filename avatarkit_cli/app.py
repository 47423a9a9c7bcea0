"""The ``avatarkit`` command's typer app.

Each command lives in a module of this package that defines ``register(app)``; the modules
named in :data:`_COMMANDS` are registered, in that order. Keep start-up light: a command
module imports livekit-agents, provider code or numpy only inside its command's body, so
``avatarkit --help`` and ``avatarkit providers`` stay fast.
"""

from __future__ import annotations

import importlib

import typer

import avatarkit

_COMMANDS = ("providers", "doctor", "demo", "compare", "emulate")
"""Command modules of this package, registered in this order."""

app = typer.Typer(
    name="avatarkit",
    help="Avatars for LiveKit Agents voice agents, from any provider.",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"avatarkit {avatarkit.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Avatars for LiveKit Agents voice agents, from any provider."""


def _register(commands: tuple[str, ...]) -> None:
    for name in commands:
        importlib.import_module(f"avatarkit_cli.{name}").register(app)


_register(_COMMANDS)
