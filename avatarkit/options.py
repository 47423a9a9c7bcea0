"""The options every provider accepts, handled by the core (light: no livekit import)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import attrs

from .errors import ConfigurationError
from .secret import Secret, redact_urls
from .tokens import check_credential, check_livekit_url

if TYPE_CHECKING:
    import aiohttp
    from livekit.agents import APIConnectOptions


MAX_IDENTITY_LENGTH = 128
"""Longest participant identity (and name) avatarkit accepts. LiveKit documents no exact
limit; an identity travels in every token, RPC and packet, and renewals append ``-N``."""


def _to_secret(value: Any) -> Any:
    # the validator says what is wrong with anything else, naming the option
    return Secret(value) if isinstance(value, str) else value


def _check_credential(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        check_credential(value, attribute.name)


def _check_identity(_: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{attribute.name} must be a non-empty string, got {value!r}")
    if value != value.strip() or not value.isprintable():
        raise ConfigurationError(
            f"{attribute.name} must not start or end with spaces nor hold control characters, "
            f"got {value!r}"
        )
    if len(value) > MAX_IDENTITY_LENGTH:
        raise ConfigurationError(
            f"{attribute.name} must be at most {MAX_IDENTITY_LENGTH} characters, got {len(value)}"
        )


def is_number(value: object) -> bool:
    """A finite int or float (not a bool, not NaN nor infinity)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_conn_options(_: object, __: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    from livekit.agents import APIConnectOptions

    if not isinstance(value, APIConnectOptions):
        raise ConfigurationError(
            f"conn_options must be a livekit.agents.APIConnectOptions, got {type(value).__name__}"
        )
    retries = value.max_retry
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigurationError(
            f"conn_options.max_retry must be a whole number >= 0, got {retries!r}"
        )
    if not is_number(value.retry_interval) or value.retry_interval < 0:
        raise ConfigurationError(
            "conn_options.retry_interval must be a finite number of seconds >= 0, "
            f"got {value.retry_interval!r}"
        )
    if not is_number(value.timeout) or value.timeout <= 0:
        raise ConfigurationError(
            "conn_options.timeout must be a finite, positive number of seconds, "
            f"got {value.timeout!r}"
        )


def _check_positive(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and (not is_number(value) or value <= 0):
        raise ConfigurationError(
            f"{attribute.name} must be a finite, positive number of seconds, got {value!r}"
        )


def _check_on_loss(_: object, __: attrs.Attribute[Any], value: str) -> None:
    if value not in ("renew", "audio_only"):
        raise ConfigurationError(f"on_loss must be 'renew' or 'audio_only', got {value!r}")


def _check_early_audio(_: object, __: attrs.Attribute[Any], value: str) -> None:
    if value not in ("hold", "room"):
        raise ConfigurationError(f"early_audio must be 'hold' or 'room', got {value!r}")


def _check_url(_: object, __: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None:
        check_livekit_url(value)


@attrs.frozen(kw_only=True)
class CoreOptions:
    """Options of ``avatarkit.get()`` that every provider accepts."""

    avatar_participant_identity: str | None = attrs.field(default=None, validator=_check_identity)
    """The avatar participant's identity (default: the provider's)."""
    avatar_participant_name: str | None = attrs.field(default=None, validator=_check_identity)
    """The avatar participant's display name (default: its identity)."""
    conn_options: APIConnectOptions | None = attrs.field(
        default=None, validator=_check_conn_options
    )
    """Retries, retry interval and per-request timeout of the provider's API (livekit's)."""
    livekit_url: str | None = attrs.field(
        default=None, validator=_check_url, repr=lambda url: repr(redact_urls(str(url)))
    )
    """Where the avatar joins, else start()'s argument, else LIVEKIT_URL."""
    livekit_api_key: Secret | None = attrs.field(
        default=None, converter=_to_secret, validator=_check_credential
    )
    """Signs the avatar's token, else start()'s argument, else LIVEKIT_API_KEY."""
    livekit_api_secret: Secret | None = attrs.field(
        default=None, converter=_to_secret, validator=_check_credential
    )
    """Signs the avatar's token, else start()'s argument, else LIVEKIT_API_SECRET."""
    http_session: aiohttp.ClientSession | None = attrs.field(default=None, repr=False)
    """An aiohttp session to use (default: the job's, else avatarkit's own)."""
    join_timeout: float = attrs.field(default=20.0, validator=_check_positive)
    """Seconds for the avatar to be created and join with video; then the next provider is
    tried, or the agent speaks without an avatar. The agent's audio waits at most this long."""
    renew_after: float | None = attrs.field(default=None, validator=_check_positive)
    """Seconds after which a remote session is replaced by a fresh one (default: ahead of the
    provider's runtime cap; never if it has none)."""
    on_loss: str = attrs.field(default="renew", validator=_check_on_loss)
    """After an unplanned loss: ``renew`` the avatar, or stay ``audio_only``."""
    early_audio: str = attrs.field(default="hold", validator=_check_early_audio)
    """Before the avatar has joined: ``hold`` the agent's audio for it (up to
    ``join_timeout``), or speak through the ``room`` at once and move to the avatar at the
    first utterance boundary after it joined."""
    rejoin_grace: float = attrs.field(default=5.0, validator=_check_positive)
    """Seconds an avatar that left the room has to come back under its identity (a reconnect)
    before it counts as lost and its session is ended. Its audio moves on at once either way."""
    ack_timeout: float = attrs.field(default=3.0, validator=_check_positive)
    """Seconds past an utterance's end without ``lk.playback_finished`` before the avatar is
    considered lost."""
    fallback: Any = attrs.field(default=None, repr=False)
    """Another ``avatarkit.get(...)`` avatar to fail over to (it may have its own fallback)."""


CORE_OPTIONS = tuple(f.name for f in attrs.fields(CoreOptions))
