"""Finding a provider's double (see :mod:`avatarkit.doubles`) for ``demo``, ``compare`` and
``emulate``: the command line names no provider, each one's plugin declares its double."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import typer

import avatarkit
from avatarkit.doubles import Offline, ProviderDouble


def with_doubles() -> list[str]:
    """Installed providers that declare a double (imports none of them)."""
    return [info.name for info in avatarkit.providers() if info.spec.double is not None]


def load(name: str, *, param_hint: str) -> ProviderDouble | None:
    """``name``'s double, or None if it declares none; an unknown name is a BadParameter."""
    try:
        return avatarkit.provider_info(name).load_double()
    except avatarkit.ConfigurationError as exc:  # unknown (with a suggestion) or a bad plugin
        raise typer.BadParameter(str(exc), param_hint=param_hint) from None


def require(name: str, *, param_hint: str) -> ProviderDouble:
    """``name``'s double; a provider without one is a BadParameter listing those with one."""
    double = load(name, param_hint=param_hint)
    if double is None:
        raise typer.BadParameter(
            f"{name} cannot run here with no account: its plugin declares no double "
            f"(ProviderSpec.double). Choose one of: {', '.join(with_doubles()) or 'none'}",
            param_hint=param_hint,
        )
    return double


@contextlib.asynccontextmanager
async def offline(
    name: str, double: ProviderDouble | None, given: Mapping[str, Any], *, size: int
) -> AsyncIterator[Offline]:
    """How to run ``name`` here: through its double, else as the user's options say."""
    if double is None:
        yield Offline(name, dict(given))
        return
    async with double.offline(given, size=size) as run:
        yield run
