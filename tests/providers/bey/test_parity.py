"""Bey on the wire, against livekit-plugins-bey (docs/providers.md lists the differences)."""

from __future__ import annotations

import pytest
from livekit.plugins import bey

import avatarkit
from avatarkit_doubles.engine import ApiDouble
from avatarkit_providers.bey.double import BEY
from memory_livekit import MemoryLiveKit
from tests.helpers.avatars import small_video
from tests.providers.parity import assert_parity, compare

INTENDED = {
    "claims.ttl_minutes": "Bey declares no session lifetime: avatarkit's default of 1 h, not 6 h",
}


@pytest.mark.parametrize("options", [{}, {"avatar_id": "b9be11b8-0000-4000-8000-000000000001"}])
async def test_the_wire_matches_the_official_plugin(
    livekit: MemoryLiveKit, options: dict[str, str]
) -> None:
    async with ApiDouble(BEY, video=small_video) as double:
        common = {"api_url": double.url, "api_key": double.api_key, **options}
        differences = await compare(
            double,
            livekit,
            official=lambda: bey.AvatarSession(**common),
            ours=lambda: avatarkit.get("bey", **common),
        )
    assert_parity(differences, INTENDED)
