"""Option fields that providers share, so a provider's options class is a list of declarations.

Each builder returns an ``attrs.field`` whose validator raises
:class:`~avatarkit.ConfigurationError` at ``avatarkit.get()``, naming the provider, the option,
what was given and what is accepted. Light on purpose (attrs only, no livekit).

.. code-block:: python

    @attrs.frozen(kw_only=True)
    class MyOptions:
        avatar_id: str = fields.text("myavatar", default="stock", pattern=r"[a-z0-9-]+")
        api_url: str = fields.api_url("myavatar", env="MYAVATAR_API_URL",
                                      default="https://api.myavatar.example")
        api_key: Secret = fields.api_key("myavatar", env="MYAVATAR_API_KEY")
"""

from __future__ import annotations

import difflib
import logging
import math
import os
import re
import warnings
from collections.abc import Sequence
from typing import Any

import attrs

from .errors import ConfigurationError
from .secret import Secret, redact_urls

__all__ = ["api_key", "api_url", "first_of", "number", "text"]

logger = logging.getLogger("avatarkit")


def _fail(provider: str, message: str) -> ConfigurationError:
    return ConfigurationError(f"{provider}: {message}")


def _env(name: str | None) -> str | None:
    return (os.environ.get(name) or None) if name else None


def api_key(provider: str, *, env: str, required: bool = True) -> Any:
    """A credential: the option, else the ``env`` variable; kept in a :class:`Secret`."""

    def convert(value: Any) -> Any:
        return Secret(value) if isinstance(value, str) and value else (value or None)

    def check(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            if required:
                raise _fail(
                    provider, f"an API key is needed: pass {attribute.name}=... or set {env}"
                )
            return
        if not isinstance(value, Secret):
            raise _fail(provider, f"{attribute.name} must be a string, got {type(value).__name__}")
        if value.reveal() != value.reveal().strip() or not value.reveal().isprintable():
            raise _fail(provider, f"{attribute.name} has spaces or control characters around it")

    return attrs.field(
        factory=lambda: convert(_env(env)),
        converter=convert,
        validator=check,
        repr=False,
        metadata={"env": env},  # what `avatarkit providers` and `doctor` show
    )


def api_url(provider: str, *, env: str | None, default: str) -> Any:
    """The service's base URL: the option, else ``env``, else ``default`` (no trailing /)."""

    def check(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, str) or not re.match(r"^https?://[^/\s]+", value):
            shown = repr(redact_urls(value)) if isinstance(value, str) else type(value).__name__
            where = f" (or set {env})" if env else ""
            raise _fail(provider, f"{attribute.name} must be an http(s) URL, got {shown}{where}")

    return attrs.field(
        metadata={"env": env} if env else {},
        factory=lambda: (_env(env) or default).rstrip("/"),
        converter=lambda v: v.rstrip("/") if isinstance(v, str) else v,
        validator=check,
        repr=lambda url: repr(redact_urls(str(url))),
    )


def text(
    provider: str,
    *,
    default: str | None = None,
    env: str | None = None,
    pattern: str | None = None,
    max_length: int | None = None,
    choices: Sequence[str] | None = None,
    hint: str = "",
) -> Any:
    """A string option (None allowed when that is its default), matched against ``pattern``
    or ``choices`` (a close match is suggested). ``env`` is read when it is not given."""
    regex = re.compile(pattern) if pattern else None

    def check(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None and default is None:
            return
        name = attribute.alias or attribute.name
        if not isinstance(value, str) or not value.strip():
            raise _fail(provider, f"{name} must be a non-empty string, got {value!r}{hint}")
        if max_length is not None and len(value) > max_length:
            raise _fail(
                provider, f"{name} must be at most {max_length} characters, got {len(value)}"
            )
        if choices is not None and value not in choices:
            close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
            guess = f"did you mean {close[0]!r}? " if close else ""
            raise _fail(
                provider, f"{name}={value!r} is unknown: {guess}use one of {', '.join(choices)}"
            )
        if regex is not None and not regex.fullmatch(value):
            raise _fail(provider, f"{name}={value!r} is not in the form the API accepts{hint}")

    if env is not None:
        return attrs.field(
            factory=lambda: _env(env) or default, validator=check, metadata={"env": env}
        )
    return attrs.field(default=default, validator=check)


def number(
    provider: str,
    *,
    default: float | None,
    minimum: float,
    maximum: float,
    integer: bool = False,
    unit: str = "",
) -> Any:
    """A finite number from ``minimum`` to ``maximum`` (None allowed when that is its default)."""

    def check(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None and default is None:
            return
        kinds: tuple[type, ...] = (int,) if integer else (int, float)
        ok = isinstance(value, kinds) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or not minimum <= value <= maximum:
            what = "a whole number" if integer else "a finite number"
            raise _fail(
                provider,
                f"{attribute.name} must be {what} from {minimum:g} to {maximum:g}{unit}, "
                f"got {value!r}",
            )

    return attrs.field(default=default, validator=check)


def first_of(
    provider: str, options: Any, new: str, *sources: str, deprecated: Sequence[str] = ()
) -> None:
    """Call in ``__attrs_post_init__``: when option ``new`` was not given, fill it from the
    first of ``sources`` that is set (option names, or ``$VARIABLE``), in the order the
    official plugin reads them; a source in ``deprecated`` warns. Validates again after."""
    if getattr(options, new) is not None:
        return
    for source in sources:
        value = _env(source[1:]) if source.startswith("$") else getattr(options, source)
        if value is None:
            continue
        if source in deprecated:
            _deprecated(provider, source, new)
        object.__setattr__(options, new, value)
        attrs.validate(options)
        return


def _deprecated(provider: str, old: str, new: str) -> None:
    message = f"{provider}: {old!r} is deprecated, use {new!r} instead"
    warnings.warn(message, DeprecationWarning, stacklevel=5)
    logger.warning(message)
