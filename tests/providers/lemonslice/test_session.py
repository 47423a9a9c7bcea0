"""LemonSlice end to end on its double: a real AgentSession, the in-memory room, the engine;
and its wire against livekit-plugins-lemonslice's."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from livekit import api
from livekit.agents import AgentSession
from PIL import Image

import avatarkit
from avatarkit.secret import MASK
from avatarkit.tokens import TOKEN_MARGIN
from avatarkit_doubles.engine import ApiDouble, token_claims
from avatarkit_providers.lemonslice.double import LEMONSLICE
from avatarkit_providers.lemonslice.provider import SESSION_CAP
from memory_livekit import MemoryLiveKit, MemoryRoom
from tests.helpers.audio import stream, tone_frames
from tests.helpers.avatars import assert_room_audio, in_memory, small_video, start_agent
from tests.providers.parity import assert_parity, compare

IMAGE_URL = "https://cdn.example.com/agents/face.png"


@pytest.fixture
async def lemonslice() -> AsyncIterator[ApiDouble]:
    async with ApiDouble(LEMONSLICE, video=small_video) as double:
        yield double


def lemonslice_avatar(double: ApiDouble, livekit: MemoryLiveKit, **options: Any) -> Any:
    options = {"api_key": double.api_key, **options}
    return avatarkit.get(
        "lemonslice",
        api_url=double.url,
        **in_memory(livekit),
        **options,
    )


async def test_the_whole_path(
    lemonslice: ApiDouble,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    avatar = lemonslice_avatar(lemonslice, livekit, agent_image_url=IMAGE_URL,
                               agent_prompt="calm", idle_timeout=-1, model="pro")  # fmt: skip
    await avatar.start(agent_session, room=agent_room)
    await start_agent(agent_session)
    await avatar.wait_for_join(timeout=5)

    (create,) = lemonslice.requests_for("create")
    assert (create.method, create.path) == ("POST", "/api/liveai/sessions")
    assert create.headers["X-API-Key"] == MASK  # sent, and masked in the record
    body = create.body
    token = body["properties"].pop("livekit_token")
    assert body == {
        "transport_type": "livekit",
        "properties": {"livekit_url": livekit.url, "livekit_session_id": await agent_room.sid},
        "agent_image_url": IMAGE_URL,
        "agent_prompt": "calm",
        "idle_timeout": -1,
        "audio_sample_rate": 24000,
        "model": "pro",
    }
    claims = api.TokenVerifier(livekit.api_key, livekit.api_secret).verify(token)
    assert claims.kind == "agent" and claims.identity == "lemonslice-avatar-agent"
    assert claims.video is not None and claims.video.room == "room-1" and claims.video.room_join
    assert claims.attributes == {"lk.publish_on_behalf": "agent-1"}
    assert token_claims(token)["exp"] - time.time() <= SESSION_CAP + TOKEN_MARGIN + 5

    handle = agent_session.say("hi", audio=stream(tone_frames(0.5)), add_to_chat_ctx=False)
    await asyncio.wait_for(handle.wait_for_playout(), 10)
    (session,) = lemonslice.sessions.values()
    assert lemonslice.workers[session.id].video.stats.audio_samples_in > 0
    remote = avatar.remote_session
    assert remote is not None and remote.id == session.id
    status = await avatar.backend.status(remote)
    assert (status.status, status.active) == ("ACTIVE", True)

    await avatar.aclose()
    assert session.end_calls == 1 and session.ended_by == "api"
    status = await avatar.backend.status(remote)
    assert (status.status, status.active) == ("COMPLETED", False)
    (end,) = lemonslice.requests_for("end")
    assert end.path == f"/api/liveai/sessions/{session.id}/control"
    assert end.body == {"event": "terminate"}
    assert lemonslice.active_sessions() == []


async def test_the_audio_goes_at_the_chosen_rate(
    lemonslice: ApiDouble,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    avatar = lemonslice_avatar(lemonslice, livekit, agent_id="agent_1", audio_sample_rate=16000)
    await avatar.start(agent_session, room=agent_room)
    await start_agent(agent_session)
    await avatar.wait_for_join(timeout=5)
    (create,) = lemonslice.requests_for("create")
    assert create.body["agent_id"] == "agent_1" and create.body["audio_sample_rate"] == 16000
    streams: list[dict[str, str]] = []
    lemonslice_worker = next(iter(lemonslice.workers.values()))
    original = agent_room.local_participant.stream_bytes

    async def spy(*args: Any, **kwargs: Any) -> Any:
        streams.append(dict(kwargs.get("attributes") or {}))
        return await original(*args, **kwargs)

    agent_room.local_participant.stream_bytes = spy  # type: ignore[method-assign]
    handle = agent_session.say("hi", audio=stream(tone_frames(0.3)), add_to_chat_ctx=False)
    await asyncio.wait_for(handle.wait_for_playout(), 10)
    assert streams and streams[0]["sample_rate"] == "16000"
    assert lemonslice_worker.video.stats.audio_samples_in > 0
    await avatar.aclose()


async def test_a_failed_create_leaves_the_agent_audible(
    lemonslice: ApiDouble,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    lemonslice.faults.next("create", 400)
    avatar = lemonslice_avatar(lemonslice, livekit, agent_id="agent_1")
    with pytest.raises(avatarkit.ProviderAPIError, match="400"):
        await avatar.start(agent_session, room=agent_room)
    await start_agent(agent_session)
    assert_room_audio(agent_session)
    assert len(lemonslice.requests_for("create")) == 1  # a refused create is not resent
    assert lemonslice.sessions == {} and lemonslice.active_sessions() == []
    await avatar.aclose()


async def test_check_bills_nothing_and_names_a_refused_key(
    lemonslice: ApiDouble, livekit: MemoryLiveKit
) -> None:
    good = lemonslice_avatar(lemonslice, livekit, agent_id="agent_1").backend
    assert await good.check() == f"API key accepted by {lemonslice.url}"
    bad = lemonslice_avatar(lemonslice, livekit, agent_id="a", api_key="ls-wrong-key").backend
    with pytest.raises(avatarkit.ProviderAPIError, match=r"refused.*LEMONSLICE_API_KEY") as error:
        await bad.check()
    assert "ls-wrong-key" not in str(error.value)
    assert lemonslice.sessions == {} and not lemonslice.requests_for("create")


async def test_an_image_is_uploaded_as_the_plugin_uploads_it(
    livekit: MemoryLiveKit, agent_room: MemoryRoom, agent_session: AgentSession[Any]
) -> None:
    # The engine speaks JSON only: a bare server takes the multipart create and the end call.
    received: list[tuple[str, dict[str, Any]]] = []

    async def create(request: web.Request) -> web.Response:
        form = await request.post()
        image = form["image"]
        assert isinstance(image, web.FileField) and image.content_type == "image/png"
        with Image.open(image.file) as png:
            size = png.size
        raw = form["payload"]  # a JSON part: aiohttp hands it over as bytes
        payload = json.loads(raw if isinstance(raw, (str, bytes, bytearray)) else raw.file.read())
        received.append((request.headers["X-API-Key"], {**payload, "image_size": size}))
        return web.json_response({"session_id": "livekit-upload-1"})

    async def control(request: web.Request) -> web.Response:
        received.append((request.match_info["id"], await request.json()))
        return web.json_response({"success": True})

    app = web.Application()
    app.router.add_post("/api/liveai/sessions", create)
    app.router.add_post("/api/liveai/sessions/{id}/control", control)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/liveai/sessions"
    try:
        image = Image.new("RGB", (36, 56), "orange")
        avatar = avatarkit.get(
            "lemonslice",
            api_key="ls-upload-key",
            api_url=url,
            agent_image=image,
            **in_memory(livekit),
        )
        await avatar.start(agent_session, room=agent_room)
        assert avatar.remote_session is not None
        assert avatar.remote_session.id == "livekit-upload-1"
        await avatar.aclose()
    finally:
        await runner.cleanup()
    (key, payload), (ended, terminate) = received
    assert key == "ls-upload-key" and payload["image_size"] == (36, 56)
    assert payload["transport_type"] == "livekit" and payload["audio_sample_rate"] == 24000
    assert set(payload["properties"]) == {"livekit_url", "livekit_token", "livekit_session_id"}
    assert "agent_image" not in payload and "agent_id" not in payload
    assert (ended, terminate) == ("livekit-upload-1", {"event": "terminate"})


INTENDED = {
    "claims.ttl_minutes": "the token lasts the session cap (30 min) plus 5 min, not livekit's "
    "default of 6 h",
    "ending": "avatarkit terminates the session (POST .../control); the plugin leaves it "
    "running until LemonSlice's idle timeout",
}


@pytest.mark.parametrize(
    "options",
    [
        {"agent_id": "agent_abc123"},
        {"agent_image_url": IMAGE_URL, "agent_prompt": "calm", "agent_idle_prompt": "still",
         "idle_timeout": 30, "audio_sample_rate": 16000, "model": "pro"},
    ],
)  # fmt: skip
async def test_the_wire_matches_the_official_plugin(
    livekit: MemoryLiveKit, options: dict[str, Any]
) -> None:
    from livekit.plugins import lemonslice

    async with ApiDouble(LEMONSLICE, video=small_video) as double:
        common = {"api_url": double.url, "api_key": double.api_key, **options}
        differences = await compare(
            double,
            livekit,
            official=lambda: lemonslice.AvatarSession(**common),
            ours=lambda: avatarkit.get("lemonslice", **common),
            generated={r"RM_[0-9A-Za-z]+": "<room sid>", r"livekit-\d+": "<session id>"},
        )
    assert_parity(differences, INTENDED)
