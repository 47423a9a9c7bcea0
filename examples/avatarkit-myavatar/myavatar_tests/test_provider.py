"""The MyAvatar provider as an app uses it: installed, found, configured, started, closed."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import jwt
import pytest
from livekit import api, rtc
from livekit.agents import Agent, AgentSession, APIConnectOptions

import avatarkit
from avatarkit import ConfigurationError
from avatarkit.http import ProviderTimeoutError
from avatarkit.secret import MASK
from avatarkit.testing import MemoryLiveKit, MemoryRoom
from avatarkit.testing.conformance import until
from avatarkit_doubles.engine import ApiDouble

FAST = APIConnectOptions(max_retry=2, retry_interval=0.05, timeout=2.0)


def myavatar_avatar(
    myavatar: ApiDouble, livekit: MemoryLiveKit, **options: Any
) -> avatarkit.AvatarkitSession:
    """``avatarkit.get("myavatar", ...)`` pointed at the API double and the in-memory server."""
    options.setdefault("conn_options", FAST)
    return avatarkit.get(
        "myavatar",
        avatar="anna",
        api_key=myavatar.api_key,
        api_url=myavatar.url,
        livekit_url=livekit.url,
        livekit_api_key=livekit.api_key,
        livekit_api_secret=livekit.api_secret,
        **options,
    )


def test_the_entry_point_is_found_without_importing_the_provider() -> None:
    info = {p.name: p for p in avatarkit.providers()}["myavatar"]
    assert info.distribution == "avatarkit-myavatar"
    assert info.summary == "MyAvatar streaming avatars"
    # Listing providers must stay light: a fresh interpreter shows what it imported.
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, avatarkit; avatarkit.providers(); "
            "print(sorted({'myavatar_avatarkit.provider', 'livekit.agents'} & set(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert imported.stdout.strip() == "[]"


def test_get_refuses_bad_options_saying_what_to_change(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MYAVATAR_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match=r"pass api_key=\.\.\. or set MYAVATAR_API_KEY"):
        avatarkit.get("myavatar", avatar="anna")
    with pytest.raises(ConfigurationError, match="avatar must be the id of one of your"):
        avatarkit.get("myavatar", avatar=" ", api_key="k")
    with pytest.raises(ConfigurationError, match=r"myavatar: .*'avatar'"):
        avatarkit.get("myavatar", api_key="k")  # no avatar at all
    with pytest.raises(ConfigurationError, match="Did you mean 'api_url'"):
        avatarkit.get("myavatar", avatar="anna", api_key="k", api_ulr="http://x")

    monkeypatch.setenv("MYAVATAR_API_KEY", "key-from-the-environment")
    options = avatarkit.get("myavatar", avatar="anna").backend.options
    assert options.api_key.reveal() == "key-from-the-environment"
    assert "key-from-the-environment" not in repr(options)


async def test_create_is_posted_once_and_the_avatar_joins_with_its_token(
    myavatar: ApiDouble,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    avatar = myavatar_avatar(myavatar, livekit)
    await avatar.start(agent_session, room=agent_room)
    await agent_session.start(agent=Agent(instructions="You are a test agent."))
    await avatar.wait_for_join(timeout=10)

    (create,) = myavatar.requests  # the create, and nothing else
    assert (create.method, create.path) == ("POST", "/v1/sessions")
    # the double answers 401 unless the header is exactly "Bearer <its key>" (masked in records)
    assert create.status == 201 and create.headers["Authorization"] == MASK
    assert set(create.body) == {"avatar", "livekit_url", "livekit_token"}
    assert create.body["avatar"] == "anna"
    assert create.body["livekit_url"] == livekit.url
    token = create.body["livekit_token"]
    claims = api.TokenVerifier(livekit.api_key, livekit.api_secret).verify(token)
    assert claims.identity == "myavatar-avatar"
    assert claims.video is not None and claims.video.room == "room-1"
    assert claims.attributes == {"lk.publish_on_behalf": "agent-1"}
    raw = jwt.decode(token, options={"verify_signature": False})
    assert raw["exp"] - raw["nbf"] <= 1800 + 300 + 1  # limits.max_duration bounds the token

    avatar_in_room = agent_room.remote_participants["myavatar-avatar"]
    kinds = {pub.kind for pub in avatar_in_room.track_publications.values()}
    assert rtc.TrackKind.KIND_VIDEO in kinds
    await avatar.aclose()


async def test_a_timed_out_create_is_not_sent_again(
    myavatar: ApiDouble,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    hang = 1.0  # every create the retries allow is answered after the client gave up on it
    myavatar.faults.next("create", 503, delay=hang, times=3)
    hung = APIConnectOptions(max_retry=2, retry_interval=0.05, timeout=0.3)
    avatar = myavatar_avatar(myavatar, livekit, conn_options=hung)
    # start() raises once the create has failed for good, retries included
    with pytest.raises(ProviderTimeoutError, match="not retried") as err:
        await avatar.start(agent_session, room=agent_room)
    # every attempt was sent before start() raised; one resent would start a second session
    assert myavatar.arrivals == ["POST /v1/sessions"]
    assert myavatar.api_key not in str(err.value)
    await avatar.aclose()
    assert myavatar.requests_for("end") == []  # nothing was created that could be ended
    assert myavatar.sessions == {}


async def test_aclose_ends_the_session_through_the_api(
    myavatar: ApiDouble,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    avatar = myavatar_avatar(myavatar, livekit)
    await avatar.start(agent_session, room=agent_room)
    await agent_session.start(agent=Agent(instructions="You are a test agent."))
    await avatar.wait_for_join(timeout=10)
    assert avatar.remote_session is not None
    session_id = avatar.remote_session.id

    await avatar.aclose()
    (end,) = myavatar.requests_for("end")
    assert (end.method, end.path) == ("DELETE", f"/v1/sessions/{session_id}")
    assert end.status == 204 and end.headers["Authorization"] == MASK  # 401 on a wrong key
    assert avatar.end_outcome == "graceful"
    session = myavatar.sessions[session_id]
    assert (session.status, session.ended_by, session.end_calls) == ("ended", "api", 1)
    assert myavatar.active_sessions() == []
    # the double's avatar leaves the room once its session is ended
    await until(lambda: "myavatar-avatar" not in agent_room.remote_participants, "it to leave")
