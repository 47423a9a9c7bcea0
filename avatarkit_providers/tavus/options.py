"""Options of ``avatarkit.get("tavus", ...)``: those of ``livekit.plugins.tavus.AvatarSession``,
with its defaults and variables, validated at ``get()``."""

from __future__ import annotations

import attrs

from avatarkit import fields
from avatarkit.secret import Secret

DEFAULT_API_URL = "https://tavusapi.com/v2"
# The official plugin's stock PAL and, with it, its stock face.
DEFAULT_PAL_ID = "pb87e71797da"
DEFAULT_FACE_ID = "r4067604db72"
_ID = r"[A-Za-z0-9_-]{1,64}"


@attrs.frozen(kw_only=True)
class TavusOptions:
    """``face_id`` / ``pal_id`` (``replica_id`` / ``persona_id`` are deprecated aliases);
    with no PAL, Tavus' stock PAL and face."""

    face_id: str | None = fields.text("tavus", pattern=_ID)
    pal_id: str | None = fields.text("tavus", pattern=_ID)
    replica_id: str | None = fields.text("tavus", pattern=_ID)
    persona_id: str | None = fields.text("tavus", pattern=_ID)
    api_url: str = fields.api_url("tavus", env=None, default=DEFAULT_API_URL)
    api_key: Secret = fields.api_key("tavus", env="TAVUS_API_KEY")

    def __attrs_post_init__(self) -> None:
        # the official plugin's order: option, deprecated option, variable, deprecated variable
        old = ("replica_id", "persona_id", "$TAVUS_REPLICA_ID", "$TAVUS_PERSONA_ID")
        fields.first_of("tavus", self, "face_id", "replica_id", "$TAVUS_FACE_ID",
                        "$TAVUS_REPLICA_ID", deprecated=old)  # fmt: skip
        fields.first_of("tavus", self, "pal_id", "persona_id", "$TAVUS_PAL_ID",
                        "$TAVUS_PERSONA_ID", deprecated=old)  # fmt: skip

    def conversation(self) -> dict[str, str]:
        """The PAL and face of the create request, as the official plugin fills them in."""
        if self.pal_id is None:
            return {"pal_id": DEFAULT_PAL_ID, "face_id": self.face_id or DEFAULT_FACE_ID}
        return {"pal_id": self.pal_id, **({"face_id": self.face_id} if self.face_id else {})}
