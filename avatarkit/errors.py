"""Errors raised by avatarkit. Importing this module is cheap (no livekit import)."""

from __future__ import annotations


class AvatarkitError(Exception):
    """Base class of every error avatarkit raises on purpose."""


class ConfigurationError(AvatarkitError, ValueError):
    """An option or setting is wrong or missing; the message says what to change."""


class UnknownProviderError(ConfigurationError, LookupError):
    """No installed provider has the requested name."""

    def __init__(self, name: str, installed: list[str], suggestion: str | None) -> None:
        hint = f" Did you mean {suggestion!r}?" if suggestion else ""
        listed = ", ".join(repr(n) for n in installed) or "none"
        super().__init__(
            f"no avatar provider named {name!r}.{hint} Installed providers: {listed}. "
            "A provider is installed by a package that declares an entry point "
            "in the 'avatarkit' group."
        )
        self.name = name
        self.installed = installed
        self.suggestion = suggestion


class AvatarClosedError(AvatarkitError):
    """The avatar session was closed (or its room went away) while it was starting."""
