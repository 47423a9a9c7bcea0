"""MyAvatar's options, validated when ``avatarkit.get("myavatar", ...)`` is called."""

from __future__ import annotations

import os
from typing import Any

import attrs

from avatarkit import ConfigurationError, Secret


def _api_key(value: str | Secret | None) -> Secret:
    value = value or os.environ.get("MYAVATAR_API_KEY")
    if not value:
        raise ConfigurationError("myavatar: no API key; pass api_key=... or set MYAVATAR_API_KEY")
    return Secret(value)


def _check_avatar(_: object, __: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(
            f"myavatar: avatar must be the id of one of your MyAvatar avatars, got {value!r}"
        )


@attrs.frozen(kw_only=True)
class MyAvatarOptions:
    """Options of ``avatarkit.get("myavatar", ...)``."""

    avatar: str = attrs.field(validator=_check_avatar)
    """Which of your avatars joins the room."""
    api_key: Secret = attrs.field(default=None, converter=_api_key, repr=False)
    """Your MyAvatar API key, else MYAVATAR_API_KEY."""
    api_url: str = "https://api.myavatar.example"
    """Where MyAvatar's API is (tests point it at a double)."""
