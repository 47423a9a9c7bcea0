"""A string wrapper that keeps credentials out of reprs, logs and error messages."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

MASK = "********"
# a URL's userinfo (``wss://user:pass@host``) and query (``?token=...``) may hold credentials
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@?#]*@")
_URL_QUERY = re.compile(r"(?P<url>[A-Za-z][A-Za-z0-9+.-]*://[^\s?#'\"<>]*)\?[^\s#'\"<>]*")


class Secret:
    """Holds a credential; ``str()`` and ``repr()`` never show it, only :meth:`reveal` does."""

    __slots__ = ("_value",)

    def __init__(self, value: str | Secret) -> None:
        if not isinstance(value, (str, Secret)):
            # never the value itself: it may be a credential of the wrong type
            raise TypeError(f"a Secret holds a str, got a {type(value).__name__}")
        self._value: Final[str] = value.reveal() if isinstance(value, Secret) else value

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


def redact(text: str, secrets: Iterable[Secret] = ()) -> str:
    """Replace every occurrence of the given secrets in ``text`` (e.g. a server's echo), and
    every URL's userinfo and query, where credentials hide (:func:`redact_urls`)."""
    for secret in secrets:
        value = secret.reveal()
        if len(value) >= 4:
            text = text.replace(value, MASK)
    return redact_urls(text)


def redact_urls(text: str) -> str:
    """``text`` with the userinfo and the query of every URL in it masked:
    ``wss://user:pass@host/p?token=x`` becomes ``wss://********@host/p?********``."""
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    return _URL_QUERY.sub(lambda m: f"{m['url']}?{MASK}", text)
