"""Tavus end to end on its double: a real AgentSession, the in-memory room, the engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from livekit import api
from livekit.agents import AgentSession

import avatarkit
from avatarkit_doubles.engine import ApiDouble
from avatarkit_providers.tavus.double import TAVUS
from memory_livekit import MemoryLiveKit, MemoryRoom
from tests.helpers.audio import stream, tone_frames
from tests.helpers.avatars import in_memory, small_video, start_agent


@pytest.fixture
async def tavus() -> AsyncIterator[ApiDouble]:
    async with ApiDouble(TAVUS, video=small_video) as double:
        yield double


def tavus_avatar(tavus: ApiDouble, livekit: MemoryLiveKit, **options: Any) -> Any:
    return avatarkit.get(
        "tavus",
        api_key=tavus.api_key,
        api_url=tavus.url,
        **in_memory(livekit),
        **options,
    )


async def test_the_whole_path(
    tavus: ApiDouble,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    avatar = tavus_avatar(tavus, livekit, face_id="r123")
    await avatar.start(agent_session, room=agent_room)
    await start_agent(agent_session)
    await avatar.wait_for_join(timeout=5)
    (create,) = tavus.requests_for("create")
    assert create.headers["x-api-key"] != tavus.api_key  # masked in the record
    body = create.body
    assert body["pal_id"] == "pb87e71797da" and body["face_id"] == "r123"
    assert body["properties"]["livekit_ws_url"] == livekit.url
    assert body["conversation_name"].startswith("lk_conversation_")
    claims = api.TokenVerifier(livekit.api_key, livekit.api_secret).verify(
        body["properties"]["livekit_room_token"]
    )
    assert claims.kind == "agent" and claims.identity == "tavus-avatar-agent"
    assert claims.attributes == {"lk.publish_on_behalf": "agent-1"}

    handle = agent_session.say("hi", audio=stream(tone_frames(0.5)), add_to_chat_ctx=False)
    await asyncio.wait_for(handle.wait_for_playout(), 10)
    (session,) = tavus.sessions.values()
    assert tavus.workers[session.id].video.stats.audio_samples_in > 0

    await avatar.aclose()
    assert session.end_calls == 1 and session.ended_by == "api"
    assert tavus.active_sessions() == []
