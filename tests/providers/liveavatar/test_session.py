"""LiveAvatar end to end on its double: a real AgentSession, the in-memory room, the engine,
and the agent's audio over LiveAvatar's WebSocket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from livekit import api
from livekit.agents import AgentSession

import avatarkit
from avatarkit.secret import MASK
from avatarkit.testing.conformance import until
from avatarkit.tokens import TOKEN_MARGIN
from avatarkit_doubles.engine import token_claims
from avatarkit_providers.liveavatar.double import LiveAvatarApi
from avatarkit_providers.liveavatar.provider import SANDBOX_SECONDS, LiveAvatarProvider
from memory_livekit import MemoryLiveKit, MemoryRoom
from tests.helpers.audio import stream, tone_frames
from tests.helpers.avatars import assert_room_audio, in_memory, small_video, start_agent

AVATAR = "65f9e3c9-d48b-4118-b73a-4ae2e3cbb8f0"


@pytest.fixture
async def liveavatar() -> AsyncIterator[LiveAvatarApi]:
    async with LiveAvatarApi(video=small_video) as double:
        yield double


def liveavatar_avatar(
    double: LiveAvatarApi, livekit: MemoryLiveKit, *, key: str | None = None, **options: Any
) -> Any:
    return avatarkit.get(
        "liveavatar",
        api_key=key or double.api_key,
        api_url=double.url,
        avatar_id=AVATAR,
        **in_memory(livekit),
        **options,
    )


def kinds(double: LiveAvatarApi, session_id: str) -> list[str]:
    return [event["type"] for event in double.sockets[session_id].received]


async def test_the_whole_path(
    liveavatar: LiveAvatarApi,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    avatar = liveavatar_avatar(liveavatar, livekit, video_quality="medium")
    await avatar.start(agent_session, room=agent_room)
    await start_agent(agent_session)
    await avatar.wait_for_join(timeout=5)
    (session,) = liveavatar.sessions.values()

    (create,) = liveavatar.requests_for("create")
    assert create.path == "/v1/sessions/token"
    assert create.headers["X-API-KEY"] == MASK  # sent, and masked in the record
    body = create.body
    assert {k: body[k] for k in ("mode", "avatar_id", "is_sandbox", "video_quality")} == {
        "mode": "LITE", "avatar_id": AVATAR, "is_sandbox": False, "video_quality": "medium",
    }  # fmt: skip
    config = body["livekit_config"]
    assert config["livekit_room"] == "room-1" and config["livekit_url"] == livekit.url
    token = config["livekit_client_token"]
    claims = api.TokenVerifier(livekit.api_key, livekit.api_secret).verify(token)
    assert claims.kind == "agent" and claims.identity == "liveavatar-avatar-agent"
    assert claims.video is not None and claims.video.room == "room-1" and claims.video.room_join
    assert claims.attributes == {"lk.publish_on_behalf": "agent-1"}

    # the start, with the session's own token (masked too)
    (start,) = liveavatar.requests_for("status")
    assert (start.path, start.status, start.body) == (
        "/v1/sessions/start", 201, {"session_id": session.id},
    )  # fmt: skip
    assert start.headers["Authorization"] == MASK

    handle = agent_session.say("hi", audio=stream(tone_frames(0.5)), add_to_chat_ctx=False)
    await handle.wait_for_playout()  # the avatar's agent.speak_ended ended it
    assert liveavatar.workers[session.id].video.stats.audio_samples_in > 0
    sent = kinds(liveavatar, session.id)
    assert "agent.speak" in sent
    assert sent[-2:] == ["agent.speak_end", "agent.start_listening"]

    await avatar.aclose()
    assert session.end_calls == 1 and session.ended_by == "api"
    (stop,) = liveavatar.requests_for("end")
    assert stop.body == {"session_id": session.id, "reason": "USER_DISCONNECTED"}
    assert stop.headers["X-API-KEY"] == MASK
    assert liveavatar.active_sessions() == []
    socket = liveavatar.sockets[session.id].ws
    assert socket is not None
    await until(lambda: socket.closed, "the socket to close")


async def test_an_interruption_clears_what_liveavatar_holds(
    liveavatar: LiveAvatarApi,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    avatar = liveavatar_avatar(liveavatar, livekit)
    await avatar.start(agent_session, room=agent_room)
    await start_agent(agent_session)
    await avatar.wait_for_join(timeout=5)
    (session,) = liveavatar.sessions.values()
    face = liveavatar.workers[session.id].video

    handle = agent_session.say("long", audio=stream(tone_frames(4.0)), add_to_chat_ctx=False)
    await until(lambda: face.stats.audio_samples_out > 0, "the avatar to speak")
    handle.interrupt()
    await handle.wait_for_playout()
    assert handle.interrupted
    await until(lambda: "agent.interrupt" in kinds(liveavatar, session.id), "agent.interrupt")
    await until(lambda: face.stats.interruptions == 1, "the avatar to stop")

    # the next utterance plays to its end, untroubled by the interrupted one's events
    handle = agent_session.say("next", audio=stream(tone_frames(0.3)), add_to_chat_ctx=False)
    await handle.wait_for_playout()
    assert not handle.interrupted
    await avatar.aclose()


async def test_a_closed_socket_loses_the_avatar_not_the_speech(
    liveavatar: LiveAvatarApi,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    avatar = liveavatar_avatar(liveavatar, livekit, ack_timeout=0.5, on_loss="audio_only")
    await avatar.start(agent_session, room=agent_room)
    await start_agent(agent_session)
    await avatar.wait_for_join(timeout=5)
    (session,) = liveavatar.sessions.values()
    socket = liveavatar.socket(session.id)
    await until(lambda: socket.ws is not None, "the agent's socket")
    assert socket.ws is not None
    await socket.ws.close()  # the avatar stays in the room, its socket is gone

    handle = agent_session.say("hi", audio=stream(tone_frames(0.5)), add_to_chat_ctx=False)
    await handle.wait_for_playout()  # unacknowledged, then played by the room
    assert avatar.audio_without_avatar > 0
    assert session.end_calls == 1 and liveavatar.active_sessions() == []
    await avatar.aclose()


async def test_a_sandbox_token_lasts_as_long_as_a_sandbox_session(
    liveavatar: LiveAvatarApi,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    avatar = liveavatar_avatar(liveavatar, livekit, is_sandbox=True)
    await avatar.start(agent_session, room=agent_room)
    (create,) = liveavatar.requests_for("create")
    assert create.body["is_sandbox"] is True
    claims = token_claims(create.body["livekit_config"]["livekit_client_token"])
    assert claims["exp"] - claims["nbf"] <= SANDBOX_SECONDS + TOKEN_MARGIN
    await avatar.aclose()


async def test_a_refused_create_leaves_the_agent_audible(
    liveavatar: LiveAvatarApi,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    liveavatar.faults.next("create", 400)
    avatar = liveavatar_avatar(liveavatar, livekit)
    with pytest.raises(avatarkit.ProviderAPIError, match="400"):
        await avatar.start(agent_session, room=agent_room)
    await start_agent(agent_session)
    assert_room_audio(agent_session)
    assert liveavatar.sessions == {} and avatar.remote_session is None
    await avatar.aclose()


async def test_a_refused_start_stops_the_session_it_followed(
    liveavatar: LiveAvatarApi,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    liveavatar.faults.next("status", 500)  # the engine serves the start as "status"
    avatar = liveavatar_avatar(liveavatar, livekit)
    with pytest.raises(avatarkit.ProviderAPIError, match="500"):
        await avatar.start(agent_session, room=agent_room)
    await start_agent(agent_session)
    assert_room_audio(agent_session)
    (session,) = liveavatar.sessions.values()
    assert session.end_calls == 1 and session.ended_by == "api"
    assert liveavatar.active_sessions() == []
    assert len(liveavatar.requests_for("status")) == 1  # a start is not resent after a 500
    await avatar.aclose()


async def test_check_stops_nothing_and_names_a_refused_key(
    liveavatar: LiveAvatarApi, livekit: MemoryLiveKit
) -> None:
    good = liveavatar_avatar(liveavatar, livekit).backend
    assert isinstance(good, LiveAvatarProvider)
    assert "API key accepted" in await good.check()
    wrong = "wrong_liveavatar_key_0123"
    bad = liveavatar_avatar(liveavatar, livekit, key=wrong).backend
    with pytest.raises(avatarkit.ProviderAPIError, match="LIVEAVATAR_API_KEY") as error:
        await bad.check()
    assert error.value.status_code == 401 and wrong not in str(error.value)
    assert liveavatar.sessions == {}
    assert [r.status for r in liveavatar.requests_for("end")] == [404, 401]
    await good.http.aclose()
    await bad.http.aclose()
