"""LiveKit settings (arguments, else ``LIVEKIT_*`` variables) and the avatar worker's token."""

from __future__ import annotations

import datetime
import os

import attrs

from .errors import ConfigurationError
from .secret import Secret

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


def check_livekit_url(url: str) -> str:
    if not url.startswith(("wss://", "ws://", "https://", "http://")):
        raise ConfigurationError(
            f"livekit_url must start with wss:// (or ws://, https://, http://), got {url!r}; "
            "pass the URL of your LiveKit server or set LIVEKIT_URL"
        )
    return url


@attrs.frozen
class LiveKitSettings:
    """Where the avatar worker joins, and the key pair that signs its token."""

    url: str
    api_key: Secret
    api_secret: Secret

    @classmethod
    def resolve(
        cls,
        url: str | None = None,
        api_key: str | Secret | None = None,
        api_secret: str | Secret | None = None,
    ) -> LiveKitSettings:
        """Take each setting from the argument, else its ``LIVEKIT_*`` variable."""
        given = {"url": url, "api_key": api_key, "api_secret": api_secret}
        values = {k: v if v else os.environ.get(_ENV[k]) for k, v in given.items()}
        missing = [k for k, v in values.items() if not v]
        if missing:
            raise ConfigurationError(
                "the avatar needs LiveKit settings to join the room; missing "
                + ", ".join(f"livekit_{k} (or {_ENV[k]})" for k in missing)
                + ": pass them to avatarkit.get() or start(), or set the variables"
            )
        return cls(
            url=check_livekit_url(str(values["url"])),
            api_key=Secret(values["api_key"]),  # type: ignore[arg-type]
            api_secret=Secret(values["api_secret"]),  # type: ignore[arg-type]
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
