"""Console output shared by the CLI's commands: a rich console and redacted check lines."""

from __future__ import annotations

import os

from rich.console import Console
from rich.text import Text

from avatarkit.secret import Secret, redact

from ._options import is_secret_name


def quiet_logs(verbose: bool) -> None:
    """Show warnings from avatarkit; livekit's own chatter only with ``--verbose``.

    The scripted sessions of ``demo`` and ``compare`` make livekit-agents log things that
    are expected there (no pause support, an agent that does not listen for
    ``lk.playback_started``); they would bury the progress lines.
    """
    import logging

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(name)s: %(message)s"
    )
    if not verbose:
        logging.getLogger("livekit").setLevel(logging.CRITICAL)


def console() -> Console:
    """A console on the current stdout (no syntax highlighting of our plain messages)."""
    return Console(highlight=False)


def describe_secret(label: str, value: str | Secret) -> str:
    """``LIVEKIT_API_SECRET set (40 chars)``: whether a credential is there, never what it is."""
    text = value.reveal() if isinstance(value, Secret) else value
    return f"{label} set ({len(text)} chars)"


def env_secrets() -> list[Secret]:
    """Values of environment variables whose names suggest credentials."""
    return [Secret(v) for k, v in os.environ.items() if v and is_secret_name(k)]


class Checks:
    """Prints ✓/!/✗ lines with fix hints, counts failures and warnings, and redacts every
    known secret.

    A warning is something needed later that this run does not need (e.g. LiveKit settings
    for a local check); ``strict=True`` counts warnings as failures. Secrets are redacted
    from everything printed, as a last line of defence: the checks themselves only ever
    print a credential's length.
    """

    def __init__(
        self, out: Console, secrets: list[Secret] | None = None, *, strict: bool = False
    ) -> None:
        self.out = out
        self.strict = strict
        self.failures = 0
        self.warnings = 0
        self._secrets: list[Secret] = []
        for secret in secrets or []:
            self.add_secret(secret)

    def add_secret(self, value: str | Secret | None) -> None:
        if value:
            secret = Secret(value)
            if secret not in self._secrets:
                self._secrets.append(secret)
                # longest first, so a secret containing another is replaced whole
                self._secrets.sort(key=lambda s: len(s.reveal()), reverse=True)

    def redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def section(self, title: str) -> None:
        self.out.print(Text(self.redact(title), style="bold"), soft_wrap=True)

    def ok(self, message: str) -> None:
        self._line("✓", "green", message)

    def fail(self, message: str, fix: str | None = None) -> None:
        self.failures += 1
        self._line("✗", "red", message)
        self._fix(fix)

    def _fix(self, fix: str | None) -> None:
        if fix:
            self.out.print(Text("    fix: " + self.redact(fix), style="yellow"), soft_wrap=True)

    def warn(self, message: str, fix: str | None = None) -> None:
        if self.strict:
            self.fail(message, fix)
            return
        self.warnings += 1
        self._line("!", "yellow", message)
        self._fix(fix)

    def note(self, message: str) -> None:
        self._line("·", "dim", message)

    def _line(self, symbol: str, style: str, message: str) -> None:
        self.out.print(
            Text.assemble(("  " + symbol + " ", style), self.redact(message)), soft_wrap=True
        )

    def summary(self) -> None:
        warned = (
            f"{self.warnings} warning{'' if self.warnings == 1 else 's'}" if self.warnings else ""
        )
        if self.failures:
            noun = "problem" if self.failures == 1 else "problems"
            also = f" (and {warned})" if warned else ""
            self.out.print(Text(f"{self.failures} {noun} found{also}.", style="bold red"))
        elif warned:
            self.out.print(
                Text(f"No problems found; {warned} (--strict fails on them).", style="bold yellow")
            )
        else:
            self.out.print(Text("All checks passed.", style="bold green"))
