"""Many avatar sessions in one process: concurrent ones do not cross, sequential ones leak
nothing (handlers, tasks)."""

from __future__ import annotations

import asyncio
from typing import Any

from livekit.agents import AgentSession
from livekit.agents.voice.avatar import DataStreamAudioOutput, DataStreamAudioReceiver

from avatarkit import streaming
from avatarkit_providers.local.provider import LocalProvider
from memory_livekit import MemoryLiveKit
from tests.helpers.audio import stream, tone_frames
from tests.helpers.avatars import local_avatar, start_agent


async def one_session(livekit: MemoryLiveKit, room_name: str, seconds: float) -> int:
    """An agent in its own room with the default avatar identity says ``seconds`` of audio;
    returns the samples its own avatar received."""
    room = await livekit.join(room_name, "agent", kind="agent")  # same identities everywhere
    session: AgentSession[Any] = AgentSession()
    avatar = local_avatar(livekit)
    try:
        await avatar.start(session, room=room)
        await start_agent(session)
        await avatar.wait_for_join(timeout=5)
        backend = avatar.backend
        assert isinstance(backend, LocalProvider)
        (worker,) = backend.workers.values()
        handle = session.say("hi", audio=stream(tone_frames(seconds)), add_to_chat_ctx=False)
        await asyncio.wait_for(handle.wait_for_playout(), 10)
        return worker.video.stats.audio_samples_in
    finally:
        await session.aclose()
        await avatar.aclose()
        # the agent's room no longer routes any avatar RPC to this session
        assert not streaming._routes.get(room.local_participant)
        await room.disconnect()


async def test_concurrent_sessions_with_the_same_identities_do_not_cross(
    livekit: MemoryLiveKit,
) -> None:
    lengths = [0.3, 0.5, 0.7, 0.9]
    received = await asyncio.gather(
        *(one_session(livekit, f"room-{i}", s) for i, s in enumerate(lengths))
    )
    # every agent's playout finished (no playback_finished went to another session) and
    # every avatar heard exactly its own agent
    assert received == [int(s * 16000) for s in lengths]


async def test_sequential_sessions_leak_no_handlers_or_tasks(livekit: MemoryLiveKit) -> None:
    await one_session(livekit, "warm-up", 0.1)
    await livekit.settle()
    tasks_before = len(asyncio.all_tasks())
    for i in range(20):
        await one_session(livekit, f"seq-{i}", 0.1)
    await livekit.settle()
    await asyncio.sleep(0.2)
    assert DataStreamAudioOutput._playback_finished_handlers == {}  # avatarkit routes per room
    assert DataStreamAudioReceiver._clear_buffer_handlers == {}
    assert len(asyncio.all_tasks()) <= tasks_before
