"""Simli on the wire, against livekit-plugins-simli (docs/providers.md lists the differences).

Simli's create is two requests, both compared: the keyed ``POST /compose/token``, then the
unkeyed ``POST /integrations/livekit/agents`` carrying the session token it answered.
"""

from __future__ import annotations

from typing import Any

import pytest
from livekit.plugins import simli

import avatarkit
from avatarkit_providers.simli import SimliConfig
from avatarkit_providers.simli.double import STOCK_FACE, SimliApiDouble
from memory_livekit import MemoryLiveKit
from tests.helpers.avatars import small_video
from tests.providers.parity import assert_parity, compare

INTENDED = {
    "claims.ttl_minutes": "the token lasts the session's lifetime (max_session_length) plus "
    "5 min, not livekit's default of 6 h",
    "audio.wait_remote_track": "avatarkit holds the agent's audio until the avatar publishes "
    "video, as the other plugins do; the Simli plugin alone sends it once the avatar joins, "
    "so the first words can play before its face is seen",
}


@pytest.mark.parametrize(
    "fields",
    [
        {"face_id": STOCK_FACE},
        {"face_id": "tmp9i8bbq7c", "emotion_id": "0d4e5b4a-2f7c-4a8e-9b1d-3c6f8a2e7d10",
         "max_session_length": 1200, "max_idle_time": 5},
    ],
)  # fmt: skip
@pytest.mark.parametrize("ours_class", [SimliConfig, simli.SimliConfig])
async def test_the_wire_matches_the_official_plugin(
    livekit: MemoryLiveKit, fields: dict[str, Any], ours_class: type[Any]
) -> None:
    double = SimliApiDouble(video=small_video)  # typed as itself: it keeps the tokens
    async with double:
        differences = await compare(
            double,
            livekit,
            official=lambda: simli.AvatarSession(
                simli_config=simli.SimliConfig(api_key=double.api_key, **fields),
                api_url=double.url,
            ),
            ours=lambda: avatarkit.get(
                "simli",
                simli_config=ours_class(api_key=double.api_key, **fields),
                api_url=double.url,
            ),
            generated={r"\bst_[0-9a-f]+": "<session token>"},
        )
        assert double.tokens == {}  # each side's session token was used by its agents call
    assert_parity(differences, INTENDED)
