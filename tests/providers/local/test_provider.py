"""The local provider through the same create / stream / end hooks as Runway."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import AgentSession

from avatarkit_providers.local.provider import LocalProvider
from memory_livekit import MemoryLiveKit, MemoryRoom
from tests.helpers.audio import stream, tone_frames
from tests.helpers.avatars import local_avatar, start_agent


async def test_the_local_avatar_speaks_the_agents_audio_with_video(
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    avatar = local_avatar(livekit)
    await avatar.start(agent_session, room=agent_room)
    await start_agent(agent_session)
    await avatar.wait_for_join(timeout=5)

    participant = agent_room.remote_participants["local-avatar"]
    assert participant.attributes["lk.publish_on_behalf"] == "agent-1"
    kinds = {pub.kind for pub in participant.track_publications.values()}
    assert kinds == {rtc.TrackKind.KIND_AUDIO, rtc.TrackKind.KIND_VIDEO}

    audio_pub = next(
        p for p in participant.track_publications.values() if p.kind == rtc.TrackKind.KIND_AUDIO
    )
    assert audio_pub.track is not None
    heard = rtc.AudioStream(audio_pub.track, sample_rate=16000, num_channels=1)
    loud = 0

    async def listen() -> None:
        nonlocal loud
        async for event in heard:
            loud += int(np.count_nonzero(np.frombuffer(event.frame.data, dtype=np.int16)))

    listener = asyncio.create_task(listen())
    handle = agent_session.say("hi", audio=stream(tone_frames(0.5)), add_to_chat_ctx=False)
    await asyncio.wait_for(handle.wait_for_playout(), 10)
    backend = avatar.backend
    assert isinstance(backend, LocalProvider)
    (worker,) = backend.workers.values()
    assert worker.video.stats.audio_samples_in == 8000
    assert worker.video.stats.speech_frames >= 9  # 0.5 s at 20 fps, lip-synced
    await asyncio.sleep(0.2)
    listener.cancel()
    await heard.aclose()
    assert loud > 4000  # the agent's speech reached the room through the avatar

    await avatar.aclose()
    assert avatar.end_outcome == "graceful"
    await livekit.settle()
    assert "local-avatar" not in agent_room.remote_participants
    assert backend.workers == {}
    # the avatar's lk.playback_started reached an agent listening for it (no RPC errors)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_an_interruption_reaches_the_avatar_and_playback_reports_it(
    livekit: MemoryLiveKit, agent_room: MemoryRoom, agent_session: AgentSession[Any]
) -> None:
    avatar = local_avatar(livekit)
    await avatar.start(agent_session, room=agent_room)
    await start_agent(agent_session)
    await avatar.wait_for_join(timeout=5)
    backend = avatar.backend
    assert isinstance(backend, LocalProvider)
    (worker,) = backend.workers.values()

    handle = agent_session.say("long", audio=stream(tone_frames(4.0)), add_to_chat_ctx=False)
    await asyncio.sleep(0.6)  # mid-utterance
    handle.interrupt()
    await asyncio.wait_for(handle.wait_for_playout(), 3)  # lk.playback_finished came back
    assert handle.interrupted
    stats = worker.video.stats
    assert stats.interruptions == 1  # lk.clear_buffer reached the avatar
    assert stats.audio_samples_out < 4.0 * 16000 / 2  # it stopped speaking, did not finish
    await avatar.aclose()
