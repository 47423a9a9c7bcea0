"""``avatarkit providers``: the installed providers and their options.

Reads only the registry and each provider's light options module: no livekit-agents, no
provider code. A default read from the environment is shown as ``$VARIABLE``, never as its
value. The listing is plain indented lines wrapped to the terminal (no table cells to cut
off), so it reads at 80 columns and copies cleanly.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

import avatarkit
from avatarkit.errors import UnknownProviderError
from avatarkit.options import CoreOptions

from . import _options
from ._output import console

_MAX_WIDTH = 100
"""Lines wrap at the terminal's width, but no wider: long lines are hard to read."""
_INDENT = "  "
_DETAIL = "      "


def register(app: typer.Typer) -> None:
    app.command("providers")(providers)


def providers(
    name: str | None = typer.Argument(
        None, metavar="PROVIDER", help="Show only this provider (and the core's options)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """List the installed avatar providers and the options each one accepts."""
    installed = avatarkit.providers()
    if name is not None:
        try:
            installed = [avatarkit.provider_info(name)]
        except UnknownProviderError as exc:
            raise typer.BadParameter(
                f"{exc} (avatarkit providers lists them all)", param_hint="'PROVIDER'"
            ) from None
    described = [_describe(info) for info in installed]
    core = _options.describe(CoreOptions)
    if as_json:
        report = {
            "providers": [item for item, _ in described],
            "core_options": [doc.to_json() for doc in core],
        }
        typer.echo(json.dumps(report, indent=2))
        return

    out = console()
    width = max(min(out.width, _MAX_WIDTH), 40)  # below 40 the indents leave no room
    if not described:
        out.print("No avatar providers are installed.")
        return
    _heading(out, "Avatar providers")
    names = max(len(item["name"]) for item, _ in described)
    for item, _ in described:
        where = (
            f"{item['distribution']} {item['version'] or ''}".rstrip()
            if item["distribution"]
            else f"registered at run time ({item['provider']})"
        )
        _wrapped(out, f"{item['name']:<{names}}  {where}", width, bold=len(item["name"]))
        hang = _INDENT + " " * (names + 2)
        _wrapped(out, item["summary"], width, first=hang, rest=hang)

    for item, docs in described:
        out.print()
        _heading(out, f"{item['name']} options: avatarkit.get({item['name']!r}, ...)")
        if item["options_error"]:
            _wrapped(out, f"could not read them: {item['options_error']}", width)
        elif not docs:
            _wrapped(out, "none declared", width)
        for doc in docs:
            _option(out, doc, width)
    out.print()
    _heading(out, "Options every provider accepts (avatarkit's core)")
    for doc in core:
        _option(out, doc, width)


def _heading(out: Console, title: str) -> None:
    out.print(Text(title, style="bold"), soft_wrap=True)


def _option(out: Console, doc: _options.OptionDoc, width: int) -> None:
    """``  name: type = default`` then the description, indented beneath it."""
    default = "(required)" if doc.required else f"= {doc.default_display}"
    _wrapped(out, f"{doc.name}: {doc.type} {default}", width, bold=len(doc.name))
    if doc.description:
        _wrapped(out, doc.description, width, first=_DETAIL, rest=_DETAIL)


def _wrapped(
    out: Console,
    text: str,
    width: int,
    *,
    first: str = _INDENT,
    rest: str = _DETAIL,
    bold: int = 0,
) -> None:
    """Print ``text`` wrapped to ``width`` with a hanging indent; its first ``bold`` chars
    bold. Wrapped here rather than by rich so continuation lines keep the indent."""
    lines = textwrap.wrap(
        text, width, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False
    ) or [first.rstrip()]
    for i, line in enumerate(lines):
        styled = Text(line)
        if i == 0 and bold:
            styled.stylize("bold", len(first), len(first) + bold)
        out.print(styled, soft_wrap=True)


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
