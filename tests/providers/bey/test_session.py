"""Bey end to end on its double: a real AgentSession, the in-memory room, the engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from livekit import api
from livekit.agents import AgentSession

import avatarkit
from avatarkit.http import ProviderAPIError
from avatarkit.tokens import DEFAULT_TOKEN_TTL
from avatarkit_doubles.engine import ApiDouble, token_claims
from avatarkit_providers.bey.double import BEY
from avatarkit_providers.bey.options import STOCK_AVATAR_ID
from memory_livekit import MemoryLiveKit, MemoryRoom
from tests.helpers.audio import stream, tone_frames
from tests.helpers.avatars import FAST, assert_room_audio, in_memory, small_video, start_agent


@pytest.fixture
async def bey() -> AsyncIterator[ApiDouble]:
    async with ApiDouble(BEY, video=small_video) as double:
        yield double


def bey_avatar(bey: ApiDouble, livekit: MemoryLiveKit, **options: Any) -> Any:
    return avatarkit.get(
        "bey",
        api_key=bey.api_key,
        api_url=bey.url,
        **in_memory(livekit),
        **options,
    )


async def test_the_whole_path(
    bey: ApiDouble,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    avatar = bey_avatar(bey, livekit)
    await avatar.start(agent_session, room=agent_room)
    await start_agent(agent_session)
    await avatar.wait_for_join(timeout=5)

    (create,) = bey.requests_for("create")
    assert (create.method, create.path, create.status) == ("POST", "/v1/sessions", 201)
    assert create.headers["x-api-key"] != bey.api_key  # sent, and masked in the record
    body = create.body
    assert list(body) == ["transport", "avatar_id", "url", "token"]  # the plugin's body
    assert body["transport"] == "livekit" and body["avatar_id"] == STOCK_AVATAR_ID
    assert body["url"] == livekit.url
    claims = api.TokenVerifier(livekit.api_key, livekit.api_secret).verify(body["token"])
    assert claims.kind == "agent" and claims.identity == "bey-avatar-agent"
    assert claims.name == "bey-avatar-agent"
    assert claims.video is not None and claims.video.room_join and claims.video.room == "room-1"
    assert claims.attributes == {"lk.publish_on_behalf": "agent-1"}
    jwt = token_claims(body["token"])  # Bey declares no lifetime: the core's default bound
    assert 0 < jwt["exp"] - jwt["nbf"] <= DEFAULT_TOKEN_TTL

    (session,) = bey.sessions.values()
    assert avatar.remote_session is not None and avatar.remote_session.id == session.id
    handle = agent_session.say("hi", audio=stream(tone_frames(0.5)), add_to_chat_ctx=False)
    await asyncio.wait_for(handle.wait_for_playout(), 10)
    assert bey.workers[session.id].video.stats.audio_samples_in > 0

    # Bey has no end call: nothing remote is called; the core takes the avatar out of the room
    await avatar.aclose()
    assert [r.action for r in bey.requests] == ["create"]
    assert avatar.end_outcome == "removed"
    assert "bey-avatar-agent" not in agent_room.remote_participants
    assert session.end_calls == 0 and session.ended_by == "removed"
    assert bey.active_sessions() == []


async def test_a_chosen_avatar_is_sent(
    bey: ApiDouble, livekit: MemoryLiveKit, agent_room: MemoryRoom, agent_session: AgentSession[Any]
) -> None:
    avatar = bey_avatar(bey, livekit, avatar_id="b63ba4e6-d346-45d0-ad28-5ddffaac0bd0_v2")
    await avatar.start(agent_session, room=agent_room)
    (create,) = bey.requests_for("create")
    assert create.body["avatar_id"] == "b63ba4e6-d346-45d0-ad28-5ddffaac0bd0_v2"
    await avatar.aclose()


async def test_a_failing_create_leaves_the_agent_audible(
    bey: ApiDouble, livekit: MemoryLiveKit, agent_room: MemoryRoom, agent_session: AgentSession[Any]
) -> None:
    bey.faults.next("create", 400)
    avatar = bey_avatar(bey, livekit)
    with pytest.raises(ProviderAPIError) as err:
        await avatar.start(agent_session, room=agent_room)
    assert err.value.status_code == 400
    assert bey.api_key not in str(err.value)
    assert len(bey.requests_for("create")) == 1  # a 400 is not resent
    assert bey.sessions == {} and bey.active_sessions() == []
    assert_room_audio(agent_session)
    await avatar.aclose()
    assert avatar.end_outcome == "not_created"


@pytest.fixture
async def verify_endpoint() -> AsyncIterator[str]:
    """``GET /v1/auth/verify`` as Bey documents it: 200 for the right key, 401 otherwise."""

    async def verify(request: web.Request) -> web.Response:
        if request.headers.get("x-api-key") != "sk-good":
            return web.json_response({"detail": "Invalid API key"}, status=401)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/v1/auth/verify", verify)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.mark.parametrize("key", ["sk-good", "sk-bad"])
async def test_check_asks_bey_to_verify_the_key(verify_endpoint: str, key: str) -> None:
    avatar = avatarkit.get("bey", api_key=key, api_url=verify_endpoint, conn_options=FAST)
    try:
        if key == "sk-good":
            assert "accepted" in await avatar.backend.check()
        else:
            with pytest.raises(ProviderAPIError, match="BEY_API_KEY") as err:
                await avatar.backend.check()
            assert err.value.status_code == 401 and key not in str(err.value)
    finally:
        await avatar.backend.http.aclose()
