"""Anam on the wire, against livekit-plugins-anam (docs/providers.md lists the differences)."""

from __future__ import annotations

from typing import Any

import pytest
from livekit.plugins import anam

import avatarkit
from avatarkit_doubles.engine import ApiDouble
from avatarkit_providers.anam.double import ANAM
from memory_livekit import MemoryLiveKit
from tests.helpers.avatars import small_video
from tests.providers.parity import assert_parity, compare

AVATAR = "edf6fdcb-acab-44b8-b974-ded72665ee26"
INTENDED = {
    "claims.ttl_minutes": "Anam declares no session lifetime: avatarkit's default of 1 h, not 6 h",
}


def personas() -> list[dict[str, Any]]:
    notes = anam.DirectorNotes(expressivity=0.7, presetStyle="warm")
    return [
        {"persona_config": anam.PersonaConfig(name="Mia", avatarId=AVATAR)},
        {
            "persona_config": anam.PersonaConfig(
                name="Mia", avatarId=AVATAR, avatarModel="cara-4-latest", directorNotes=notes
            ),
            "session_options": anam.SessionOptions(video_width=720, video_height=480),
        },
    ]


@pytest.mark.parametrize("options", personas())
async def test_the_wire_matches_the_official_plugin(
    livekit: MemoryLiveKit, options: dict[str, Any]
) -> None:
    async with ApiDouble(ANAM, video=small_video) as double:
        common = {"api_url": double.url, "api_key": double.api_key, **options}
        differences = await compare(
            double,
            livekit,
            official=lambda: anam.AvatarSession(**common),
            ours=lambda: avatarkit.get("anam", **common),
        )
    assert_parity(differences, INTENDED)
