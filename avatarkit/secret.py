"""A string wrapper that keeps credentials out of reprs, logs and error messages."""

from __future__ import annotations

from typing import Final


class Secret:
    """Holds a credential; ``str()`` and ``repr()`` never show it, only :meth:`reveal` does."""

    __slots__ = ("_value",)

    def __init__(self, value: str | Secret) -> None:
        self._value: Final = value.reveal() if isinstance(value, Secret) else value

    def reveal(self) -> str:
        """The credential itself, for the one place that must send it."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__


def redact(text: str, secrets: list[Secret]) -> str:
    """Replace every occurrence of the given secrets in ``text`` (e.g. a server's echo)."""
    for secret in secrets:
        value = secret.reveal()
        if len(value) >= 4:
            text = text.replace(value, "********")
    return text
