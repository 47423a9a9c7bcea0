"""Anam end to end on its double: a real AgentSession, the in-memory room, the engine."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from livekit import api
from livekit.agents import AgentSession

import avatarkit
from avatarkit.http import ProviderAPIError
from avatarkit.tokens import DEFAULT_TOKEN_TTL
from avatarkit_doubles.engine import ApiDouble, token_claims
from avatarkit_providers.anam.double import ANAM, STOCK_AVATAR
from memory_livekit import MemoryLiveKit, MemoryRoom
from tests.helpers.audio import stream, tone_frames
from tests.helpers.avatars import FAST, assert_room_audio, in_memory, small_video, start_agent


@pytest.fixture
async def anam() -> AsyncIterator[ApiDouble]:
    async with ApiDouble(ANAM, video=small_video) as double:
        yield double


def anam_avatar(anam: ApiDouble, livekit: MemoryLiveKit, **options: Any) -> Any:
    options.setdefault("persona_config", {"name": "Mia", "avatarId": STOCK_AVATAR})
    return avatarkit.get(
        "anam",
        api_key=anam.api_key,
        api_url=anam.url,
        **in_memory(livekit),
        **options,
    )


async def test_the_whole_path(
    anam: ApiDouble,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    notes = {"presetStyle": "warm"}
    persona = {
        "name": "Mia",
        "avatarId": STOCK_AVATAR,
        "avatarModel": "cara-3",
        "directorNotes": notes,
    }
    avatar = anam_avatar(
        anam, livekit, persona_config=persona, session_options={"show_ai_avatar_disclosure": True}
    )
    await avatar.start(agent_session, room=agent_room)
    await start_agent(agent_session)
    await avatar.wait_for_join(timeout=5)

    (create,) = anam.requests_for("create")
    assert create.method == "POST" and create.path == "/v1/engine/session"
    assert anam.api_key not in create.headers["Authorization"]  # masked in the record
    body = create.body
    assert body["personaConfig"] == {
        "type": "ephemeral",
        "name": "Mia",
        "avatarId": STOCK_AVATAR,
        "llmId": "CUSTOMER_CLIENT_V1",
        "avatarModel": "cara-3",
        "directorNotes": notes,
    }
    assert body["sessionOptions"] == {"showAIAvatarDisclosure": True}
    assert body["environment"]["livekitUrl"] == livekit.url
    token = body["environment"]["livekitToken"]
    claims = api.TokenVerifier(livekit.api_key, livekit.api_secret).verify(token)
    assert claims.kind == "agent" and claims.identity == "anam-avatar-agent"
    assert claims.video is not None and claims.video.room_join and claims.video.room == "room-1"
    assert claims.attributes == {"lk.publish_on_behalf": "agent-1"}
    # Anam declares no session lifetime (its plans' caps vary): the token gets avatarkit's
    # bounded default, not LiveKit's 6 h
    lifetime = token_claims(token)["exp"] - time.time()
    assert DEFAULT_TOKEN_TTL - 60 < lifetime <= DEFAULT_TOKEN_TTL

    (session,) = anam.sessions.values()
    assert avatar.remote_session is not None and avatar.remote_session.id == session.id

    handle = agent_session.say("hi", audio=stream(tone_frames(0.5)), add_to_chat_ctx=False)
    await asyncio.wait_for(handle.wait_for_playout(), 10)
    assert anam.workers[session.id].video.stats.audio_samples_in > 0

    await avatar.aclose()
    # Anam has no end call: nothing is sent; the core takes its persona out of the room
    assert [r.action for r in anam.requests] == ["create"]
    assert avatar.end_outcome == "removed"
    assert "anam-avatar-agent" not in agent_room.remote_participants
    assert session.end_calls == 0 and session.ended_by == "removed"
    assert anam.active_sessions() == []


async def test_a_failing_create_leaves_the_agent_audible(
    anam: ApiDouble,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    anam.faults.next("create", 400)
    avatar = anam_avatar(anam, livekit)
    with pytest.raises(ProviderAPIError) as err:
        await avatar.start(agent_session, room=agent_room)
    assert err.value.status_code == 400
    assert anam.api_key not in str(err.value)
    assert len(anam.requests_for("create")) == 1  # a 400 is not resent
    assert anam.sessions == {} and anam.active_sessions() == []
    assert_room_audio(agent_session)
    assert avatar.end_outcome == "not_created"
    await avatar.aclose()


async def test_a_wrong_key_is_refused_by_check(anam: ApiDouble, livekit: MemoryLiveKit) -> None:
    good = anam_avatar(anam, livekit)
    assert "accepted" in await good.backend.check()
    (read,) = anam.requests_for("status")
    assert read.method == "GET" and read.path.startswith("/v1/sessions/")
    bad = avatarkit.get(
        "anam",
        api_key="wrong",
        api_url=anam.url,
        persona_config={"name": "Mia", "avatarId": STOCK_AVATAR},
        conn_options=FAST,
    )
    with pytest.raises(ProviderAPIError, match="ANAM_API_KEY"):
        await bad.backend.check()
    assert anam.sessions == {}  # nothing billable was created
    for session in (good, bad):
        await session.backend.http.aclose()
