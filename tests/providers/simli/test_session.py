"""Simli end to end on its double: a real AgentSession, the in-memory room, the engine."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from livekit import api
from livekit.agents import AgentSession

import avatarkit
from avatarkit.tokens import TOKEN_MARGIN
from avatarkit_doubles.engine import token_claims
from avatarkit_providers.simli import SimliConfig
from avatarkit_providers.simli.double import AGENTS_PATH, KEY_HEADER, TOKEN_PATH, SimliApiDouble
from memory_livekit import MemoryLiveKit, MemoryRoom
from tests.helpers.audio import stream, tone_frames
from tests.helpers.avatars import assert_room_audio, in_memory, small_video, start_agent

FACE = "cace3ef7-a4c4-425d-a8cf-a5358eb0c427"


@pytest.fixture
async def simli() -> AsyncIterator[SimliApiDouble]:
    double = SimliApiDouble(video=small_video)
    async with double:
        yield double


def simli_avatar(
    simli: SimliApiDouble, livekit: MemoryLiveKit, *, key: str | None = None, **config: Any
) -> Any:
    return avatarkit.get(
        "simli",
        simli_config=SimliConfig(api_key=key or simli.api_key, face_id=FACE, **config),
        api_url=simli.url,
        **in_memory(livekit),
    )


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_the_whole_path(
    simli: SimliApiDouble,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    avatar = simli_avatar(simli, livekit, max_session_length=120, max_idle_time=20)
    await avatar.start(agent_session, room=agent_room)
    await start_agent(agent_session)
    await avatar.wait_for_join(timeout=5)

    # first the keyed token call, with the official plugin's body
    token_call, create = simli.requests
    assert (token_call.method, token_call.path, token_call.status) == ("POST", TOKEN_PATH, 200)
    assert token_call.headers[KEY_HEADER] not in ("", simli.api_key)  # sent, masked in the record
    assert token_call.body == {
        "faceId": f"{FACE}/92f24a0c-f046-45df-8df0-af7449c04571",
        "handleSilence": True,
        "maxSessionLength": 120,
        "maxIdleTime": 20,
    }
    # then the agents call, with no key: the session token is its credential
    assert (create.method, create.path, create.action) == ("POST", AGENTS_PATH, "create")
    assert KEY_HEADER not in {k.lower() for k in create.headers}
    assert set(create.body) == {"session_token", "livekit_token", "livekit_url"}
    assert create.body["session_token"].startswith("st_") and simli.tokens == {}
    assert create.body["livekit_url"] == livekit.url
    token = create.body["livekit_token"]
    claims = api.TokenVerifier(livekit.api_key, livekit.api_secret).verify(token)
    assert claims.kind == "agent" and claims.identity == "simli-avatar-agent"
    assert claims.video is not None and claims.video.room == "room-1" and claims.video.room_join
    assert claims.attributes == {"lk.publish_on_behalf": "agent-1"}
    raw = token_claims(token)
    assert raw["exp"] - raw["nbf"] <= 120 + TOKEN_MARGIN  # bounded by max_session_length

    (session,) = simli.sessions.values()
    assert avatar.remote_session is not None and avatar.remote_session.id == session.id
    handle = agent_session.say("hi", audio=stream(tone_frames(0.5)), add_to_chat_ctx=False)
    await asyncio.wait_for(handle.wait_for_playout(), 10)
    assert simli.workers[session.id].video.stats.audio_samples_in > 0

    # Simli has no end call: closing sends it nothing, the core takes its avatar out instead
    identity = avatar.avatar_identity
    await avatar.aclose()
    assert len(simli.requests) == 2 and session.end_calls == 0
    assert avatar.end_outcome == "removed"
    await until(lambda: not session.active)
    assert session.ended_by == "removed" and simli.active_sessions() == []
    await until(lambda: identity not in agent_room.remote_participants)


async def test_a_refused_start_leaves_the_agent_audible(
    simli: SimliApiDouble,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    simli.faults.next("create", 400)
    avatar = simli_avatar(simli, livekit)
    with pytest.raises(avatarkit.ProviderAPIError, match="400"):
        await avatar.start(agent_session, room=agent_room)
    await start_agent(agent_session)
    assert_room_audio(agent_session)
    assert [r.status for r in simli.requests] == [200, 400]  # a token, then the refused create
    assert simli.sessions == {} and avatar.remote_session is None
    await avatar.aclose()


async def test_a_refused_key_creates_nothing_and_is_not_shown(
    simli: SimliApiDouble,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    wrong = "wrong_simli_key_0123456789"
    avatar = simli_avatar(simli, livekit, key=wrong)
    with pytest.raises(avatarkit.ProviderAPIError, match="401") as error:
        await avatar.start(agent_session, room=agent_room)
    assert wrong not in str(error.value) and wrong not in repr(error.value.__cause__)
    await start_agent(agent_session)
    assert_room_audio(agent_session)
    assert [(r.path, r.status) for r in simli.requests] == [(TOKEN_PATH, 401)]
    assert simli.sessions == {}
    await avatar.aclose()


async def test_check_counts_sessions_without_creating_one(
    simli: SimliApiDouble, livekit: MemoryLiveKit
) -> None:
    avatar = simli_avatar(simli, livekit)
    assert await avatar.backend.check() == f"API key accepted by {simli.url}"
    wrong = simli_avatar(simli, livekit, key="wrong_simli_key_0123456789")
    with pytest.raises(avatarkit.ProviderAPIError, match="API key was refused"):
        await wrong.backend.check()
    assert simli.sessions == {} and simli.tokens == {}
    await avatar.aclose()
    await wrong.aclose()
