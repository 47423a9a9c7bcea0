"""Many sessions, one after another, in one process, leave nothing behind.

Each session does what an app does: avatar first, then the AgentSession, the avatar joins,
the agent says a little, then the avatar, the AgentSession and the room close. Every other
session's avatar never joins instead: the agent's audio falls back to its own track, which
avatarkit publishes and nobody in the room subscribes to (livekit's publish task waits for a
subscriber forever). After them all, the process has the tasks and timers it had before,
no room or AgentSession keeps a listener of avatarkit's, no room keeps a track of the
agent's, and an idle second costs the CPU it cost before (a leaked publish task, audio source
or audio stream per session kept an idle process busy: 430-560 ms of CPU a second after 200
starts, in the field).

The 20-session run is enough for everything counted; the 200-session run (about 30 s, so
marked slow) is the field's figure, where a leak's idle CPU stands out by far.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from typing import Any

import pytest
from livekit import rtc
from livekit.agents import AgentSession

from avatarkit_providers.runway.emulator.emulator import RunwayEmulator
from memory_livekit import MemoryLiveKit, MemoryRoom
from tests.helpers.audio import frames_of, noise, stream
from tests.helpers.avatars import assert_room_audio, make_runway_avatar, start_agent

IDLE = 1.0  # seconds of idle CPU measured before and after
IDLE_RATIO = 3.0
"""How much more CPU an idle second may cost after the sessions than before. Generous: this
is a leak check, not a speed measurement. One leaked audio stream or source per session
costs far more than this after 200 sessions; a floor of 20 ms a second on the baseline keeps
a near-idle baseline from turning scheduling noise into a failure."""
SETTLE = 10.0  # seconds to wait for what a closed session still finishes (bounded)


def _avatarkit_listeners(emitter: rtc.EventEmitter[Any]) -> list[str]:
    """The handlers of avatarkit's code registered on ``emitter``."""
    found = []
    for event, handlers in emitter._events.items():
        for handler in handlers:
            module = getattr(handler, "__module__", "") or ""
            if module.split(".")[0] in ("avatarkit", "avatarkit_providers"):
                found.append(f"{event}: {getattr(handler, '__qualname__', handler)!r}")
    return found


def _timers(loop: asyncio.AbstractEventLoop) -> list[asyncio.TimerHandle]:
    scheduled: list[asyncio.TimerHandle] = loop._scheduled  # type: ignore[attr-defined]
    return [h for h in scheduled if not h.cancelled()]


async def _until(condition: Callable[[], bool], what: Callable[[], object]) -> None:
    deadline = time.monotonic() + SETTLE
    while not condition():
        assert time.monotonic() < deadline, f"still there after {SETTLE} s: {what()}"
        await asyncio.sleep(0.02)


async def _idle_cpu() -> float:
    """Process CPU seconds spent over :data:`IDLE` seconds of doing nothing.

    Garbage is collected first: in the in-memory server a subscriber's track is the
    publisher's native track, whose source keeps ticking until the last handle to it goes,
    and a room's objects are in reference cycles that only the collector frees. What a
    leak keeps alive (a task that never ends, a listener) survives the collection."""
    gc.collect()
    cpu = time.process_time()
    await asyncio.sleep(IDLE)
    return time.process_time() - cpu


async def _one_session(livekit: MemoryLiveKit, runway: RunwayEmulator, i: int) -> None:
    room = await livekit.join(f"leak-{i}", "agent-1", kind="agent")
    session: AgentSession[Any] = AgentSession()
    joins = i % 2 == 0
    if not joins:
        runway.worker_faults.next(never_join=True)
    avatar = make_runway_avatar(runway, livekit, join_timeout=10 if joins else 0.05)
    await avatar.start(session, room=room)
    await start_agent(session)
    audio = stream(frames_of(noise(0.05, seed=i)))
    if joins:
        await avatar.wait_for_join(timeout=10)
        handle = session.say("x", audio=audio, add_to_chat_ctx=False)
        await asyncio.wait_for(handle.wait_for_playout(), 10)
    else:
        # the room speaks for the agent, on a track nobody subscribes to: held, not played
        with pytest.raises(Exception, match="did not join"):
            await avatar.wait_for_join(timeout=10)
        session.say("x", audio=audio, add_to_chat_ctx=False)
        await _until(
            lambda: bool(room.local_participant.track_publications),
            lambda: "the agent's track was never published",
        )
    await avatar.aclose()
    await session.aclose()
    # the agent's own track (avatarkit's) goes with the AgentSession
    await _until(
        lambda: not room.local_participant.track_publications,
        lambda: list(room.local_participant.track_publications.values()),
    )
    assert _avatarkit_listeners(session) == []
    await room.disconnect()
    await livekit.delete_room(room.name)
    assert _avatarkit_listeners(room) == []


@pytest.mark.parametrize("sessions", [20, pytest.param(200, marks=pytest.mark.slow)])
async def test_sequential_sessions_leave_no_task_timer_listener_track_or_cpu(
    livekit: MemoryLiveKit, runway: RunwayEmulator, sessions: int
) -> None:
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    await _one_session(livekit, runway, 0)  # warm-up: first-use caches, keep-alive connections

    def tasks() -> set[asyncio.Task[Any]]:
        return {t for t in asyncio.all_tasks() if t is not me and not t.done()}

    await _until(lambda: not runway.server.active_sessions(), runway.server.active_sessions)
    tasks_before = tasks()
    timers_before = len(_timers(loop))
    cpu_before = await _idle_cpu()

    for i in range(1, sessions + 1):
        await _one_session(livekit, runway, i)

    def names(ts: set[asyncio.Task[Any]]) -> list[str]:
        return sorted(f"{t.get_name()}: {t.get_coro()!r}" for t in ts)

    await _until(lambda: tasks() <= tasks_before, lambda: names(tasks() - tasks_before))
    await _until(
        lambda: len(_timers(loop)) <= timers_before,
        lambda: [repr(h) for h in _timers(loop)],
    )
    assert not runway.server.active_sessions()
    cpu_after = await _idle_cpu()
    assert cpu_after <= IDLE_RATIO * max(cpu_before, 0.02 * IDLE), (
        f"an idle second cost {cpu_after * 1000:.0f} ms of CPU after {sessions} sessions, "
        f"{cpu_before * 1000:.0f} ms before"
    )


async def test_the_agents_own_track_is_published_once_needed_and_goes_with_the_room(
    livekit: MemoryLiveKit,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    def published() -> list[str]:
        return [p.name for p in agent_room.local_participant.track_publications.values()]

    def room_audio_tasks() -> list[asyncio.Task[Any]]:
        return [t for t in asyncio.all_tasks() if t.get_name().startswith("avatarkit.room_audio")]

    avatar = make_runway_avatar(runway, livekit)
    await avatar.start(agent_session, room=agent_room)  # avatar first: RoomIO publishes none
    await start_agent(agent_session)
    await avatar.wait_for_join(timeout=10)
    # joined and silent: start() built and published nothing of the agent's
    assert published() == [] and room_audio_tasks() == []

    # the first utterance to the avatar publishes the fallback while it plays
    handle = agent_session.say("x", audio=stream(frames_of(noise(0.1, seed=1))))
    await asyncio.wait_for(handle.wait_for_playout(), 10)
    await _until(lambda: published() == ["roomio_audio"], published)

    await avatar.aclose()
    assert_room_audio(agent_session)  # the agent keeps its own track
    await agent_room.disconnect()  # and it goes with the room, publish task and all
    await _until(lambda: not room_audio_tasks(), room_audio_tasks)
    assert _avatarkit_listeners(agent_room) == [] and _avatarkit_listeners(agent_session) == []
