"""LiveKit settings (arguments, else ``LIVEKIT_*`` variables) and the avatar worker's token."""

from __future__ import annotations

import datetime
import os
import re
from typing import Any
from urllib.parse import urlsplit

import attrs

from .errors import ConfigurationError
from .secret import Secret, redact_urls

_SPACE = re.compile(r"\s")
ATTRIBUTE_PUBLISH_ON_BEHALF = "lk.publish_on_behalf"  # livekit.agents.voice.room_io's name
TOKEN_MARGIN = 300.0
"""Seconds a token outlives its session, so a late reconnect of the avatar still succeeds."""
DEFAULT_TOKEN_TTL = 3600.0
"""Seconds an avatar's token lasts when its provider declares no session lifetime.

Bounded rather than LiveKit's 6 h default, so a leaked token is useless sooner. It need not
cover the session: LiveKit checks the token when the worker joins, and the server refreshes
the tokens of connected participants (reconnects use the fresh one), so it must only
outlive the join, with room for a slow provisioning queue. An hour does that generously."""
_ENV = {"url": "LIVEKIT_URL", "api_key": "LIVEKIT_API_KEY", "api_secret": "LIVEKIT_API_SECRET"}


def check_livekit_url(url: Any, option: str = "livekit_url") -> str:
    """``url`` if it is the URL of a LiveKit server, else a :class:`ConfigurationError`
    naming ``option`` (the URL is shown without its userinfo and query)."""
    if not isinstance(url, str):
        raise ConfigurationError(
            f"{option} must be a string such as 'wss://my-project.livekit.cloud', "
            f"got {type(url).__name__}"
        )
    shown = redact_urls(url).split("?", 1)[0]  # a malformed URL hides its query from the regex
    shown = re.sub(r"://[^/]*@", "://********@", shown) + ("?********" if "?" in url else "")
    if not url.startswith(("wss://", "ws://", "https://", "http://")):
        raise ConfigurationError(
            f"{option} must start with wss:// (or ws://, https://, http://), got {shown!r}; "
            "pass the URL of your LiveKit server or set LIVEKIT_URL"
        )
    try:
        host = urlsplit(url).hostname  # stdlib: listing providers imports this module
    except ValueError:
        host = None
    if not host or _SPACE.search(url):
        raise ConfigurationError(
            f"{option} must be a URL with a host and no spaces, got {shown!r}; "
            "pass the URL of your LiveKit server or set LIVEKIT_URL"
        )
    return url


def check_credential(value: Any, option: str) -> Secret:
    """``value`` as a :class:`Secret` if it has the form of a LiveKit API key or secret (a
    non-empty string without spaces), else a :class:`ConfigurationError` naming ``option``
    and never showing the value."""
    if not isinstance(value, (str, Secret)):
        raise ConfigurationError(
            f"{option} must be a string (your LiveKit API key or secret), "
            f"got {type(value).__name__}"
        )
    text = value.reveal() if isinstance(value, Secret) else value
    # isprintable() is False for every space but the ASCII one, and for control characters
    if not text or not text.isprintable() or " " in text:
        raise ConfigurationError(
            f"{option} must be a non-empty string without spaces or control characters "
            "(check for a stray newline or quote where it is set)"
        )
    return Secret(text)


@attrs.frozen
class LiveKitSettings:
    """Where the avatar worker joins, and the key pair that signs its token."""

    url: str = attrs.field(repr=lambda url: repr(redact_urls(url)))
    api_key: Secret
    api_secret: Secret

    @classmethod
    def resolve(
        cls,
        url: str | None = None,
        api_key: str | Secret | None = None,
        api_secret: str | Secret | None = None,
    ) -> LiveKitSettings:
        """Take each setting from the argument, else its ``LIVEKIT_*`` variable; raise a
        :class:`ConfigurationError` naming a missing or malformed one."""
        given: dict[str, Any] = {"url": url, "api_key": api_key, "api_secret": api_secret}
        values: dict[str, Any] = {}
        where: dict[str, str] = {}
        for k, v in given.items():
            if v is None or (isinstance(v, (str, Secret)) and not v):
                values[k], where[k] = os.environ.get(_ENV[k]), _ENV[k]
            else:
                values[k], where[k] = v, f"livekit_{k}"
        missing = [k for k, v in values.items() if not v]
        if missing:
            raise ConfigurationError(
                "the avatar needs LiveKit settings to join the room; missing "
                + ", ".join(f"livekit_{k} (or {_ENV[k]})" for k in missing)
                + ": pass them to avatarkit.get() or start(), or set the variables"
            )
        return cls(
            url=check_livekit_url(values["url"], where["url"]),
            api_key=check_credential(values["api_key"], where["api_key"]),
            api_secret=check_credential(values["api_secret"], where["api_secret"]),
        )


def mint_avatar_token(
    settings: LiveKitSettings,
    *,
    room_name: str,
    identity: str,
    name: str,
    agent_identity: str,
    lifetime: float | None,
) -> Secret:
    """A token for the avatar worker: kind ``agent``, this room only, publishing on behalf of
    the agent, valid for ``lifetime`` seconds plus :data:`TOKEN_MARGIN`, or for
    :data:`DEFAULT_TOKEN_TTL` when the lifetime is unknown (None)."""
    from livekit import api

    token = (
        api.AccessToken(api_key=settings.api_key.reveal(), api_secret=settings.api_secret.reveal())
        .with_kind("agent")
        .with_identity(identity)
        .with_name(name)
        .with_grants(api.VideoGrants(room_join=True, room=room_name))
        .with_attributes({ATTRIBUTE_PUBLISH_ON_BEHALF: agent_identity})
    )
    ttl = DEFAULT_TOKEN_TTL if lifetime is None else lifetime + TOKEN_MARGIN
    return Secret(token.with_ttl(datetime.timedelta(seconds=ttl)).to_jwt())
