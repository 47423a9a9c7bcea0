"""``avatarkit providers``: the installed providers and their options.

Reads only the registry and each provider's light options module: no livekit-agents, no
provider code. A default read from the environment is shown as ``$VARIABLE``, never as its
value.
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

import avatarkit
from avatarkit.options import CoreOptions

from . import _options
from ._output import console


def register(app: typer.Typer) -> None:
    app.command("providers")(providers)


def providers(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """List the installed avatar providers and the options each one accepts."""
    described = [_describe(info) for info in avatarkit.providers()]
    core = _options.describe(CoreOptions)
    if as_json:
        report = {
            "providers": [item for item, _ in described],
            "core_options": [doc.to_json() for doc in core],
        }
        typer.echo(json.dumps(report, indent=2))
        return

    out = console()
    if not described:
        out.print("No avatar providers are installed.")
        return
    table = Table(title=Text("Avatar providers"), title_justify="left")
    for column in ("Provider", "Distribution", "Version", "Summary"):
        table.add_column(column, overflow="fold")
    for item, _ in described:
        cells = (item["name"], item["distribution"] or "-", item["version"] or "-", item["summary"])
        table.add_row(*(Text(cell) for cell in cells))
    out.print(table)

    for item, docs in described:
        out.print()
        title = f"{item['name']} options: avatarkit.get({item['name']!r}, ...)"
        if item["options_error"]:
            out.print(Text(f"{title}\n  could not read them: {item['options_error']}"))
            continue
        if not item["options"]:
            out.print(Text(f"{title}\n  none declared"))
            continue
        out.print(_options_table(title, docs))
    out.print()
    out.print(_options_table("Options every provider accepts (avatarkit's core)", core))


def _options_table(title: str, docs: list[_options.OptionDoc]) -> Table:
    options = Table(title=Text(title), title_justify="left")
    options.add_column("Option", no_wrap=True)
    options.add_column("Type", overflow="fold")
    options.add_column("Default", overflow="fold")
    options.add_column("Description", ratio=1)
    for doc in docs:
        cells = (doc.name, doc.type, doc.default_display, doc.description or "")
        options.add_row(*(Text(cell) for cell in cells))
    return options


def _describe(info: avatarkit.ProviderInfo) -> tuple[dict[str, Any], list[_options.OptionDoc]]:
    docs: list[_options.OptionDoc] = []
    error: str | None = None
    try:
        docs = _options.describe(info.options_class())
    except Exception as exc:  # a broken third-party options module must not hide the rest
        error = f"{type(exc).__name__}: {exc}"
    item = {
        "name": info.name,
        "distribution": info.distribution,
        "version": info.version,
        "summary": info.summary,
        "provider": info.spec.provider,
        "options_class": info.spec.options,
        "options": [doc.to_json() for doc in docs],
        "options_error": error,
    }
    return item, docs
