"""Options of ``avatarkit.get("bey", ...)``: those of ``livekit.plugins.bey.AvatarSession``,
with its defaults and variables, validated at ``get()``."""

from __future__ import annotations

import attrs

from avatarkit import fields
from avatarkit.secret import Secret

DEFAULT_API_URL = "https://api.bey.dev"
# The official plugin's stock avatar ("Ege"), used when no avatar_id is given.
STOCK_AVATAR_ID = "b9be11b8-89fb-4227-8f86-4a881393cbdb"


@attrs.frozen(kw_only=True)
class BeyOptions:
    """``avatar_id`` (None: Bey's stock avatar), ``api_url`` / ``BEY_API_URL``,
    ``api_key`` / ``BEY_API_KEY``."""

    # Bey's API types avatar_id as a plain string (docs.bey.dev, "Create Speech-to-Video
    # Session"); ids are UUIDs, some with a suffix ("..._v2"), so only spaces are refused.
    avatar_id: str | None = fields.text(
        "bey", pattern=r"\S+", hint=" (an avatar id from your Bey dashboard, no spaces)"
    )
    api_url: str = fields.api_url("bey", env="BEY_API_URL", default=DEFAULT_API_URL)
    api_key: Secret = fields.api_key("bey", env="BEY_API_KEY")

    @property
    def avatar(self) -> str:
        """The avatar of the create request, as the official plugin fills it in."""
        return self.avatar_id or STOCK_AVATAR_ID
