"""Options of ``avatarkit.get("liveavatar", ...)``: ``livekit.plugins.liveavatar.AvatarSession``'s,
with its defaults and variables, validated at ``get()``."""

from __future__ import annotations

from typing import Any

import attrs

from avatarkit import fields
from avatarkit.errors import ConfigurationError
from avatarkit.secret import Secret

DEFAULT_API_URL = "https://api.liveavatar.com/v1/sessions"
# The plugin's VideoQuality, as LiveAvatar documents it (docs.liveavatar.com/docs/full-mode/
# configuration, "Quality": 1080p to 360p).
VIDEO_QUALITIES = ("very_high", "high", "medium", "low")
# The one avatar of sandbox sessions, "Wayne" (docs.liveavatar.com/docs/sandbox-mode).
SANDBOX_AVATAR_ID = "dd73ea75-1218-4ef3-92ce-606d5f7fbc0a"


def _flag(_: object, a: attrs.Attribute[Any], v: Any) -> None:
    if not isinstance(v, bool):
        raise ConfigurationError(f"liveavatar: {a.name} must be True or False, got {v!r}")


@attrs.frozen(kw_only=True)
class LiveAvatarOptions:
    """``avatar_id`` (or ``LIVEAVATAR_AVATAR_ID``) is required, as the plugin requires it."""

    avatar_id: str = fields.text(
        "liveavatar", env="LIVEAVATAR_AVATAR_ID", pattern=r"\S+", hint=" (an id has no spaces)"
    )
    api_url: str = fields.api_url("liveavatar", env=None, default=DEFAULT_API_URL)
    api_key: Secret = fields.api_key("liveavatar", env="LIVEAVATAR_API_KEY")
    is_sandbox: bool = attrs.field(default=False, validator=_flag)
    video_quality: str | None = fields.text("liveavatar", choices=VIDEO_QUALITIES)

    def __attrs_post_init__(self) -> None:
        if self.avatar_id is None:
            raise ConfigurationError(
                "liveavatar: an avatar is needed: pass avatar_id=... or set LIVEAVATAR_AVATAR_ID"
            )
