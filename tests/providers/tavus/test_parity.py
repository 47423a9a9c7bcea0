"""Tavus on the wire, against livekit-plugins-tavus (docs/providers.md lists the differences)."""

from __future__ import annotations

import pytest
from livekit.plugins import tavus

import avatarkit
from avatarkit_doubles.engine import ApiDouble
from avatarkit_providers.tavus.double import TAVUS
from memory_livekit import MemoryLiveKit
from tests.helpers.avatars import small_video
from tests.providers.parity import assert_parity, compare

INTENDED = {
    "claims.ttl_minutes": "the token lasts the session's lifetime (Tavus: 1 h) plus 5 min, "
    "not livekit's default of 6 h",
    "ending": "avatarkit ends the conversation (POST .../end); the plugin leaves it billing",
}


@pytest.mark.parametrize("options", [{"face_id": "r1a2b3"}, {"pal_id": "p9", "face_id": "r1"}, {}])
async def test_the_wire_matches_the_official_plugin(
    livekit: MemoryLiveKit, options: dict[str, str]
) -> None:
    async with ApiDouble(TAVUS, video=small_video) as double:
        common = {"api_url": double.url, "api_key": double.api_key, **options}
        differences = await compare(
            double,
            livekit,
            official=lambda: tavus.AvatarSession(**common),
            ours=lambda: avatarkit.get("tavus", **common),
            generated={r"lk_conversation_[0-9A-Za-z]+": "<generated name>"},
        )
    assert_parity(differences, INTENDED)
