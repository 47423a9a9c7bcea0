"""LiveKit Inference end to end on its gateway double: a real AgentSession, the in-memory room,
the engine. The double holds the in-memory server's key pair, as the gateway holds the
project's: it verifies the agent's JWT and mints the avatar's token with it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from livekit import api
from livekit.agents import AgentSession

import avatarkit
from avatarkit import ConfigurationError
from avatarkit.http import ProviderAPIError
from avatarkit.secret import MASK
from avatarkit.tokens import DEFAULT_TOKEN_TTL
from avatarkit_providers.inference.double import GatewayDouble, InferenceDouble
from avatarkit_providers.inference.provider import InferenceProvider
from memory_livekit import MemoryLiveKit, MemoryRoom
from tests.helpers.audio import stream, tone_frames
from tests.helpers.avatars import FAST, assert_room_audio, in_memory, small_video, start_agent

IDENTITY = "lemonslice-inference-avatar"


@pytest.fixture
async def gateway(livekit: MemoryLiveKit) -> AsyncIterator[GatewayDouble]:
    async with GatewayDouble(
        api_key=livekit.api_key, api_secret=livekit.api_secret, video=small_video
    ) as double:
        yield double


def inference_avatar(gateway: GatewayDouble, livekit: MemoryLiveKit, **options: Any) -> Any:
    options.setdefault("api_key", livekit.api_key)
    options.setdefault("api_secret", livekit.api_secret)
    return avatarkit.get(
        "inference",
        base_url=gateway.url,
        **in_memory(livekit),
        **options,
    )


async def test_the_whole_path(
    gateway: GatewayDouble,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    gateway.sample_rate = 16000  # not the capture rate: the output must take the gateway's
    extra = {"prompt": "smile", "idle_timeout": 30, "voice": "calm"}
    avatar = inference_avatar(gateway, livekit, model="lemonslice/agent_abc", extra_kwargs=extra)
    await avatar.start(agent_session, room=agent_room)
    await start_agent(agent_session)
    await avatar.wait_for_join(timeout=5)

    (create,) = gateway.requests_for("create")
    assert create.path == "/v1/avatar/sessions" and create.status == 200
    assert create.headers["Authorization"] == MASK  # present, and masked in the record
    assert create.headers["X-LiveKit-Inference-Provider"] == "lemonslice"
    assert create.headers["User-Agent"].startswith("LiveKit Agents/")
    assert len(create.headers["Idempotency-Key"]) == 32
    assert create.body == {
        "provider": "lemonslice",
        "livekit_url": livekit.url,
        "room_name": "room-1",
        "room_sid": await agent_room.sid,
        "avatar_identity": IDENTITY,
        "avatar_name": IDENTITY,
        "agent_identity": "agent-1",
        "avatar_id": "agent_abc",
        "prompt": "smile",
        "idle_timeout_s": 30,
        "extra_kwargs": {"voice": "calm"},
    }
    # the gateway JWT: signed with the project's pair, as livekit-agents signs it
    (auth,) = gateway.gateway_claims
    assert auth.identity == "agent" and auth.inference is not None and auth.inference.perform
    # the avatar's token, minted by the gateway from the room fields
    (minted,) = gateway.minted
    claims = api.TokenVerifier(livekit.api_key, livekit.api_secret).verify(minted)
    assert claims.kind == "agent" and claims.identity == IDENTITY
    assert claims.video is not None and claims.video.room == "room-1" and claims.video.room_join
    assert claims.attributes is not None
    assert claims.attributes["lk.publish_on_behalf"] == "agent-1"
    assert _exp(minted) - time.time() <= DEFAULT_TOKEN_TTL + 5  # the double's TTL (see report)

    (session,) = gateway.sessions.values()
    remote = avatar.remote_session
    assert remote is not None and remote.id == session.id
    assert remote.details["session_id"] == f"avs_{session.id}"
    output = avatar.remote_avatars[-1].output
    assert output is not None and output.sample_rate == 16000

    handle = agent_session.say("hi", audio=stream(tone_frames(0.5)), add_to_chat_ctx=False)
    await asyncio.wait_for(handle.wait_for_playout(), 10)
    assert gateway.workers[session.id].video.stats.audio_samples_in > 0

    await avatar.aclose()
    assert session.end_calls == 1 and session.ended_by == "api"
    (end,) = gateway.requests_for("end")
    assert end.path == "/v1/avatar/sessions/terminate" and end.status == 200
    assert end.body == {
        "provider": "lemonslice",
        "provider_session_id": session.id,
        "terminate_token": gateway.terminate_token(session.id),
    }
    assert "Idempotency-Key" not in end.headers
    assert gateway.active_sessions() == []


def _exp(token: str) -> float:
    from avatarkit_doubles.engine import token_claims

    return float(token_claims(token)["exp"])


async def test_a_failing_create_leaves_the_agent_audible(
    gateway: GatewayDouble,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    gateway.faults.next("create", 400)
    avatar = inference_avatar(gateway, livekit, model="lemonslice/agent_abc")
    with pytest.raises(ProviderAPIError) as err:
        await avatar.start(agent_session, room=agent_room)
    assert err.value.status_code == 400
    assert len(gateway.requests_for("create")) == 1  # a 400 is not resent
    assert_room_audio(agent_session)
    assert gateway.active_sessions() == [] and gateway.requests_for("end") == []
    await avatar.aclose()


async def test_another_projects_key_pair_is_refused(
    gateway: GatewayDouble,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    avatar = inference_avatar(
        gateway, livekit, model="lemonslice", api_secret="not_the_secret_of_this_project_0123"
    )
    with pytest.raises(ProviderAPIError) as err:
        await avatar.start(agent_session, room=agent_room)
    assert err.value.status_code == 401 and "not_the_secret_of_this_project_0123" not in str(
        err.value
    )
    assert gateway.sessions == {}
    assert_room_audio(agent_session)
    await avatar.aclose()


async def test_an_end_after_the_avatar_left_is_still_one_quiet_call(
    gateway: GatewayDouble,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    avatar = inference_avatar(gateway, livekit, model="lemonslice/agent_abc")
    await avatar.start(agent_session, room=agent_room)
    await avatar.wait_for_join(timeout=5)
    (session,) = gateway.sessions.values()
    gateway.end(session, "agent_left")  # over on the gateway's side: terminate answers 404
    await avatar.aclose()
    assert session.end_calls == 1
    assert avatar.end_outcome in ("graceful", "forced")  # a 404 is "already over": not failed


async def test_check_signs_a_terminate_that_bills_nothing(
    gateway: GatewayDouble, livekit: MemoryLiveKit
) -> None:
    good = inference_avatar(gateway, livekit, model="lemonslice").backend
    assert isinstance(good, InferenceProvider)
    assert "accepted" in await good.check()
    bad = inference_avatar(gateway, livekit, model="lemonslice", api_key="APIother").backend
    assert isinstance(bad, InferenceProvider)
    with pytest.raises(ProviderAPIError, match="refused the LiveKit key pair"):
        await bad.check()
    assert gateway.sessions == {}
    for provider in (good, bad):
        await provider.http.aclose()


async def test_a_resent_create_keeps_its_idempotency_key(
    gateway: GatewayDouble,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    gateway.faults.next("create", 429)  # refused before any work: resent, with the same key
    avatar = inference_avatar(gateway, livekit, model="lemonslice/agent_abc")
    await avatar.start(agent_session, room=agent_room)
    first, second = gateway.requests_for("create")
    assert (first.status, second.status) == (429, 200)
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert len(gateway.sessions) == 1
    await avatar.aclose()


async def test_the_double_runs_for_the_livekit_project_of_the_environment(
    monkeypatch: pytest.MonkeyPatch,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    double = InferenceDouble()
    for name in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError, match="set LIVEKIT_URL, LIVEKIT_API_KEY"):
        async with double.offline({}, size=64):
            pass
    monkeypatch.setenv("LIVEKIT_URL", livekit.url)
    monkeypatch.setenv("LIVEKIT_API_KEY", livekit.api_key)
    monkeypatch.setenv("LIVEKIT_API_SECRET", livekit.api_secret)
    async with double.serve(port=0, runtime_cap=5.0) as served:
        assert served.env == {"LIVEKIT_INFERENCE_URL": served.url}
        assert livekit.api_secret not in str(served)
    async with double.offline({}, size=64) as run:
        assert run.label == "inference (emulated)" and run.options["model"] == "lemonslice"
        avatar = avatarkit.get("inference", conn_options=FAST, **run.options)
        await avatar.start(agent_session, room=agent_room)
        await avatar.wait_for_join(timeout=5)
        await avatar.aclose()
        assert isinstance(run.double, GatewayDouble) and run.double.active_sessions() == []
