"""Never let the avatar silence the agent: renewal, loss, failed start, failover, fast start.

Every test here has a listener in the room that records every audio track (the avatars' and
the agent's own) and checks the agent's speech sample by sample: each sample the agent said
was heard exactly once, by an avatar or through the room's audio. And every remote session
created is ended.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import Agent, AgentSession

import avatarkit
from avatarkit import AvatarClosedError, AvatarkitSession
from avatarkit._compat import ParticipantAudioOutput as _ParticipantAudioOutput
from avatarkit._compat import swap_point as _sink_proxy
from avatarkit.events import AvatarkitMetrics, AvatarStateChanged
from avatarkit_doubles.engine import ApiDouble
from avatarkit_providers.bey.double import BEY
from avatarkit_providers.runway.emulator.emulator import RunwayEmulator
from avatarkit_providers.runway.emulator.sessions import SessionStatus
from memory_livekit import MemoryLiveKit, MemoryRoom
from tests.helpers.audio import Ledger, noise, stream
from tests.helpers.avatars import (
    assert_room_audio,
    in_memory,
    local_avatar,
    make_runway_avatar,
    small_video,
    start_agent,
)

Avatar = Callable[..., AvatarkitSession]


@pytest.fixture
async def listener(livekit: MemoryLiveKit, agent_room: MemoryRoom) -> AsyncIterator[Ledger]:
    user = await livekit.join("room-1", "user-1", kind="standard")
    ledger = Ledger(user)
    yield ledger
    await ledger.aclose()
    await user.disconnect()


class Recorder:
    """The states and metrics an avatar emitted, in order."""

    def __init__(self, avatar: AvatarkitSession, session: AgentSession[Any]) -> None:
        self.states: list[AvatarStateChanged] = []
        self.metrics: list[AvatarkitMetrics] = []
        self.on_agent_session: list[Any] = []
        avatar.on("avatar_state_changed", self.states.append)
        avatar.on("metrics_collected", self.metrics.append)
        session.on("metrics_collected", lambda ev: self.on_agent_session.append(ev.metrics))

    @property
    def names(self) -> list[str]:
        return [s.state for s in self.states]

    def metric(self, event: str) -> list[AvatarkitMetrics]:
        return [m for m in self.metrics if m.event == event]


async def joined(avatar: AvatarkitSession, session: AgentSession[Any], room: MemoryRoom) -> None:
    """Start the avatar, then the agent, and wait for the avatar's video."""
    await avatar.start(session, room=room)
    await start_agent(session)
    await avatar.wait_for_join(timeout=5)


async def say(session: AgentSession[Any], ledger: Ledger, seconds: float, seed: int) -> None:
    """The agent says ``seconds`` of unique noise; returns once it played out (bounded)."""
    handle = session.say(
        "x", audio=stream(ledger.say(noise(seconds, seed=seed))), add_to_chat_ctx=False
    )
    await asyncio.wait_for(handle.wait_for_playout(), seconds + 10)


async def heard_exactly_once(ledger: Ledger) -> dict[str, int]:
    await asyncio.sleep(0.4)  # the last audio drains from the tracks' queues
    count, per_track = ledger.counts()
    missing, twice = int((count == 0).sum()), int((count > 1).sum())
    if twice:
        idx = np.flatnonzero(count > 1)
        print("DUP", idx[:3], idx[-3:], per_track, [len(x) for x in ledger.sent])
    assert (missing, twice) == (0, 0), f"{missing} samples never heard, {twice} heard twice"
    return per_track


def by_owner(per_track: dict[str, int]) -> dict[str, int]:
    owners: dict[str, int] = {}
    for key, n in per_track.items():
        owner = key.split("/")[0]
        owners[owner] = owners.get(owner, 0) + n
    return {k: v for k, v in owners.items() if v}


async def all_ended(runway: RunwayEmulator) -> None:
    await asyncio.sleep(0.1)
    assert runway.server.active_sessions() == []


async def test_an_avatar_leaving_mid_utterance_hands_the_rest_to_the_room(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
    listener: Ledger,
) -> None:
    runway.worker_faults.next(leave_after=0.8)
    avatar = runway_avatar(on_loss="audio_only")
    events = Recorder(avatar, agent_session)
    await joined(avatar, agent_session, agent_room)

    await say(agent_session, listener, 2.0, seed=1)  # the avatar leaves 0.8 s in
    owners = by_owner(await heard_exactly_once(listener))
    # some by the avatar, the rest by the agent's own track: none lost, none twice
    assert set(owners) == {"runway-avatar-agent", "agent-1"}
    assert avatar.state == "degraded"
    assert events.names[-2:] == ["joined", "degraded"]
    (lost,) = events.metric("lost")
    assert lost.loss_to_audible is not None and lost.loss_to_audible >= 0
    assert avatar.audio_without_avatar > 0

    await say(agent_session, listener, 0.5, seed=2)  # later speech: the room, at once
    owners = by_owner(await heard_exactly_once(listener))
    assert owners["agent-1"] > 0.5 * 16000
    await avatar.aclose()
    await all_ended(runway)
    assert (
        runway.server.sessions[avatar.remote_avatars[0].session_id].status
        is not SessionStatus.RUNNING
    )


async def test_after_a_loss_the_avatar_is_renewed(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
    listener: Ledger,
) -> None:
    runway.worker_faults.next(leave_after=0.5)
    avatar = runway_avatar()  # on_loss="renew" is the default
    events = Recorder(avatar, agent_session)
    await joined(avatar, agent_session, agent_room)
    await say(agent_session, listener, 1.2, seed=3)
    for _ in range(100):
        if avatar.state == "joined" and len(avatar.remote_avatars) == 2:
            break
        await asyncio.sleep(0.05)
    assert events.names[-3:] == ["degraded", "starting", "joined"], events.names
    first, second = avatar.remote_avatars
    assert avatar.avatar_identity == second.identity != first.identity

    await say(agent_session, listener, 0.6, seed=4)  # the new avatar speaks it
    owners = by_owner(await heard_exactly_once(listener))
    assert owners[second.identity] >= 0.6 * 16000
    await avatar.aclose()
    assert [r.end_outcome for r in avatar.remote_avatars] == ["forced", "graceful"]
    await all_ended(runway)


async def test_renewal_hands_over_at_an_utterance_boundary_before_the_cap(
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
    listener: Ledger,
) -> None:
    async with RunwayEmulator(provisioning_delay=0.05, runtime_cap=2.5, video=small_video) as rw:
        avatar = make_runway_avatar(rw, livekit, renew_after=1.0)
        events = Recorder(avatar, agent_session)
        await joined(avatar, agent_session, agent_room)
        # ~5 s of talk, twice the emulated cap: only renewals keep an avatar speaking
        for i in range(8):
            await say(agent_session, listener, 0.5, seed=10 + i)
            await asyncio.sleep(0.1)
        owners = by_owner(await heard_exactly_once(listener))
        assert "agent-1" not in owners  # never without an avatar
        assert avatar.audio_without_avatar == 0
        assert len(avatar.remote_avatars) >= 3
        assert len(owners) >= 3  # several avatars spoke in turn
        renewed = events.metric("renewed")
        assert len(renewed) >= 2 and all(m.renewal_gap == 0 for m in renewed)
        assert "degraded" not in events.names
        await avatar.aclose()
        # each session was ended by us (END_CALL: completed), none by the emulated cap
        for remote in avatar.remote_avatars:
            assert remote.end_outcome == "graceful"
            session = rw.server.session(remote.session_id or "")
            assert session.status is SessionStatus.COMPLETED
            assert session.history[-1].reason != "runtime_cap"
        assert rw.server.active_sessions() == []


async def test_an_avatar_that_stops_acknowledging_is_treated_as_lost(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
    listener: Ledger,
) -> None:
    runway.worker_faults.next(stall_after=0.3)
    avatar = runway_avatar(on_loss="audio_only", ack_timeout=0.5)
    await joined(avatar, agent_session, agent_room)
    await say(agent_session, listener, 1.0, seed=5)  # does not hang on the frozen avatar
    owners = by_owner(await heard_exactly_once(listener))
    assert owners.get("agent-1", 0) > 0
    assert avatar.state == "degraded"
    await avatar.aclose()
    assert avatar.remote_avatars[0].end_outcome in ("graceful", "forced")
    await all_ended(runway)


async def test_an_avatar_output_that_raises_is_treated_as_lost(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
    listener: Ledger,
) -> None:
    # a long ack_timeout: only noticing the failure itself can rescue the speech in time
    avatar = runway_avatar(on_loss="audio_only", ack_timeout=60.0)
    await joined(avatar, agent_session, agent_room)
    output = avatar.remote_avatars[0].output
    assert output is not None
    capture, taken = output.capture_frame, 0

    async def breaks(frame: Any) -> None:
        nonlocal taken
        taken += 1
        if taken > 30:  # mid-utterance, as a transport whose connection broke
            raise ConnectionResetError("the avatar's transport broke")
        await capture(frame)

    output.capture_frame = breaks  # type: ignore[method-assign]
    await say(agent_session, listener, 1.0, seed=6)  # does not wait forever for an ack
    owners = by_owner(await heard_exactly_once(listener))
    assert owners.get("agent-1", 0) > 0
    assert avatar.state == "degraded"
    assert "audio output failed" in (avatar.remote_avatars[0].lost_reason or "")
    await avatar.aclose()
    await all_ended(runway)


async def test_an_avatar_that_never_joins_leaves_the_agent_audible(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
    listener: Ledger,
) -> None:
    runway.worker_faults.next(never_join=True)
    avatar = runway_avatar(join_timeout=0.5)
    events = Recorder(avatar, agent_session)
    await avatar.start(agent_session, room=agent_room)
    await start_agent(agent_session)
    # the agent speaks while the avatar is still expected: held, then played by the room
    await say(agent_session, listener, 0.6, seed=6)
    owners = by_owner(await heard_exactly_once(listener))
    assert owners == {"agent-1": 0.6 * 16000}
    with pytest.raises(AvatarClosedError, match=r"did not join within 0\.5 s"):
        await avatar.wait_for_join(timeout=1)
    assert events.names == ["starting", "degraded"]
    (remote,) = avatar.remote_avatars
    assert remote.end_outcome == "forced"  # not in the room: ended through the API
    await avatar.aclose()
    assert_room_audio(agent_session)  # and after close, the agent keeps its own track
    assert runway.server.session(remote.session_id or "").status is SessionStatus.CANCELLED


async def test_a_failed_provider_fails_over_to_the_next(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
    listener: Ledger,
) -> None:
    runway.worker_faults.next(never_join=True)
    avatar = runway_avatar(join_timeout=0.5, fallback=local_avatar(livekit))
    events = Recorder(avatar, agent_session)
    await joined(avatar, agent_session, agent_room)
    assert avatar.provider == "local"
    assert events.names == ["starting", "failed_over", "starting", "joined"]
    await say(agent_session, listener, 0.5, seed=7)
    owners = by_owner(await heard_exactly_once(listener))
    assert owners == {avatar.avatar_identity: 0.5 * 16000}
    await avatar.aclose()
    runway_remote, local_remote = avatar.remote_avatars
    assert runway_remote.end_outcome == "forced" and local_remote.end_outcome == "graceful"
    await all_ended(runway)


async def test_a_provider_whose_api_fails_fails_over_before_start_returns(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    runway.faults.next(route="create", status=500, times=None)
    avatar = runway_avatar(fallback=local_avatar(livekit))
    await avatar.start(agent_session, room=agent_room)  # does not raise: local took over
    await avatar.wait_for_join(timeout=5)
    assert [r.name for r in avatar.remote_avatars] == ["runway", "local"]
    assert avatar.remote_avatars[0].end_outcome == "not_created"
    await avatar.aclose()


async def test_start_can_return_at_once_and_provision_in_the_background(
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
    listener: Ledger,
) -> None:
    async with RunwayEmulator(provisioning_delay=0.5, video=small_video) as rw:
        avatar = make_runway_avatar(rw, livekit)
        await avatar.start(agent_session, room=agent_room, wait=0)
        assert avatar.remote_session is None  # start() did not wait for the create call
        await start_agent(agent_session)
        # speech during provisioning waits for the avatar (within join_timeout), then plays
        await say(agent_session, listener, 0.5, seed=8)
        owners = by_owner(await heard_exactly_once(listener))
        assert owners == {"runway-avatar-agent": 0.5 * 16000}
        await avatar.aclose()
        assert rw.server.active_sessions() == []


async def test_early_audio_speaks_through_the_room_then_moves_to_the_avatar_at_a_boundary(
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
    listener: Ledger,
) -> None:
    async with RunwayEmulator(provisioning_delay=0.5, video=small_video) as rw:
        avatar = make_runway_avatar(rw, livekit, early_audio="room")
        await avatar.start(agent_session, room=agent_room, wait=0)
        await start_agent(agent_session)
        # the greeting is heard at once, through the room; the avatar joins during it
        greeting = agent_session.say(
            "x", audio=stream(listener.say(noise(1.5, seed=31))), add_to_chat_ctx=False
        )
        await avatar.wait_for_join(timeout=5)
        assert not greeting.done()  # it joined mid-utterance: the move waits for the boundary
        await asyncio.wait_for(greeting.wait_for_playout(), 10)
        await say(agent_session, listener, 0.5, seed=32)  # the next utterance: the avatar
        owners = by_owner(await heard_exactly_once(listener))
        assert owners == {"agent-1": 1.5 * 16000, "runway-avatar-agent": 0.5 * 16000}
        await avatar.aclose()
        assert rw.server.active_sessions() == []


async def test_a_background_start_that_fails_reaches_the_app(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
    listener: Ledger,
) -> None:
    runway.faults.next(route="create", status=401, times=None)
    avatar = runway_avatar()
    events = Recorder(avatar, agent_session)
    await avatar.start(agent_session, room=agent_room, wait=0)  # returns before the failure
    await start_agent(agent_session)
    with pytest.raises(AvatarClosedError, match="401"):
        await avatar.wait_for_join(timeout=5)
    assert events.names == ["starting", "degraded"]
    await say(agent_session, listener, 0.4, seed=9)
    assert by_owner(await heard_exactly_once(listener)) == {"agent-1": 0.4 * 16000}
    await avatar.aclose()


async def test_metrics_reach_the_agent_session(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
) -> None:
    avatar = runway_avatar()
    events = Recorder(avatar, agent_session)
    await joined(avatar, agent_session, agent_room)
    (metric,) = events.metric("joined")
    assert metric in events.on_agent_session  # livekit's metrics_collected, as plugins do
    assert metric.provider == "runway" and metric.session_id == avatar.remote_session.id  # type: ignore[union-attr]
    assert metric.join_latency is not None and metric.join_latency > 0
    assert metric.avatar_joined_time is not None
    await avatar.aclose()
    assert events.names[-1] == "ended"
    assert np.isfinite(metric.join_latency)


async def test_with_roomio_the_rescue_uses_its_track_at_its_own_rate(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
    listener: Ledger,
) -> None:
    # The AgentSession starts first with RoomIO (24 kHz output); the avatar takes over its
    # tail at 16 kHz. A loss hands the rest to RoomIO's own output, resampled.
    await agent_session.start(agent=Agent(instructions="test"), room=agent_room)
    runway.worker_faults.next(leave_after=0.5)
    avatar = runway_avatar(on_loss="audio_only")
    await avatar.start(agent_session, room=agent_room)
    await avatar.wait_for_join(timeout=5)
    await say(agent_session, listener, 1.5, seed=11)
    assert avatar.state == "degraded"
    await asyncio.sleep(0.4)
    loud = {
        key.split("/")[0]: sum(int((np.abs(c.astype(np.int32)) > 64).sum()) for c in chunks)
        for key, chunks in listener.received.items()
    }
    # the avatar played the start, the room (resampled, so counted by loudness) the rest
    assert loud["runway-avatar-agent"] > 0 and loud["agent-1"] > 0
    assert loud["runway-avatar-agent"] + loud["agent-1"] >= 0.95 * 1.5 * 16000
    await avatar.aclose()
    # RoomIO's output is back where it was, below livekit's swap point
    proxy = _sink_proxy(agent_session.output.audio)
    assert isinstance(proxy.next_in_chain, _ParticipantAudioOutput)


@pytest.fixture(params=["runway", "local", "bey"])
async def any_avatar(
    request: pytest.FixtureRequest, runway: RunwayEmulator, livekit: MemoryLiveKit
) -> AsyncIterator[AvatarkitSession]:
    """A Runway avatar on its emulator, the local one, and Bey's on its double (a data-stream
    provider at 16 kHz, like the listener: its samples can be matched exactly)."""
    if request.param == "runway":
        yield make_runway_avatar(runway, livekit)
    elif request.param == "local":
        yield local_avatar(livekit)
    else:
        async with ApiDouble(BEY, video=small_video) as double:
            yield avatarkit.get(
                "bey",
                api_key=double.api_key,
                api_url=double.url,
                **in_memory(livekit),
            )


async def test_a_pause_mid_word_then_resume_plays_every_sample_exactly_once(
    any_avatar: AvatarkitSession,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
    listener: Ledger,
) -> None:
    # livekit-agents pauses the audio output on a possible false interruption (a cough) and
    # resumes it when the user said nothing after all; without pause, the avatar stopped.
    avatar = any_avatar
    await joined(avatar, agent_session, agent_room)
    output = agent_session.output.audio
    assert output is not None and output.can_pause
    identity = avatar.avatar_identity
    handle = agent_session.say(
        "x", audio=stream(listener.say(noise(2.0, seed=21))), add_to_chat_ctx=False
    )
    await until(lambda: listener.counts()[1].get(_track_of(listener, identity), 0) > 8000)
    output.pause()  # mid-word
    heard = listener.counts()[1]
    await until(lambda: avatar.remote_avatars[0].output is not None and _relay(avatar).sink is None)
    output.resume()
    await asyncio.wait_for(handle.wait_for_playout(), 15)
    assert not handle.interrupted
    owners = by_owner(await heard_exactly_once(listener))
    assert owners == {identity: 32000}, (owners, heard)  # all of it by the avatar, once
    assert len(avatar.remote_avatars) == 1 and avatar.remote_avatars[0].lost_reason is None
    await avatar.aclose()


def _relay(avatar: AvatarkitSession) -> Any:
    return avatar._relay  # the relay the AgentSession speaks into


def _track_of(ledger: Ledger, identity: str) -> str:
    return next((k for k in ledger.received if k.startswith(f"{identity}/")), "")


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


class VideoWatch:
    """When the listener saw each avatar's video frames: the longest stretch without any."""

    def __init__(self, room: Any) -> None:
        self.frames: list[float] = []
        self._tasks: list[asyncio.Task[None]] = []
        room.on("track_subscribed", self._on_track)
        for participant in room.remote_participants.values():
            for publication in participant.track_publications.values():
                if publication.track is not None:
                    self._on_track(publication.track, publication, participant)

    def _on_track(self, track: rtc.Track, _: Any, participant: Any) -> None:
        if track.kind == rtc.TrackKind.KIND_VIDEO:
            self._tasks.append(asyncio.create_task(self._read(track)))

    async def _read(self, track: rtc.Track) -> None:
        stream = rtc.VideoStream(track)
        try:
            async for _ in stream:
                self.frames.append(time.monotonic())
        finally:
            await stream.aclose()

    def longest_gap(self, since: float, until: float) -> float:
        times = sorted(t for t in self.frames if since <= t <= until)
        edges = [since, *times, until]
        return max(b - a for a, b in itertools.pairwise(edges))

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def test_switching_runway_local_runway_while_the_agent_talks(
    runway: RunwayEmulator,
    livekit: MemoryLiveKit,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
    listener: Ledger,
) -> None:
    video = VideoWatch(listener.room)
    avatar = make_runway_avatar(runway, livekit)
    await joined(avatar, agent_session, agent_room)
    began = time.monotonic()
    for seed, target in enumerate(
        [local_avatar(livekit), make_runway_avatar(runway, livekit)], start=41
    ):
        talking = agent_session.say(
            "x", audio=stream(listener.say(noise(1.5, seed=seed))), add_to_chat_ctx=False
        )
        await avatar.switch(target)  # the new one joins while the old one talks
        await asyncio.wait_for(talking.wait_for_playout(), 10)
        assert not talking.interrupted
    await say(agent_session, listener, 0.5, seed=49)
    ended = time.monotonic()
    owners = by_owner(await heard_exactly_once(listener))
    first, local, last = avatar.remote_avatars
    assert (first.name, local.name, last.name) == ("runway", "local", "runway")
    # each utterance stayed with the avatar it began on; the last one went to the last avatar
    assert owners == {
        first.identity: 1.5 * 16000,
        local.identity: 1.5 * 16000,
        last.identity: 0.5 * 16000,
    }
    assert first.end_outcome is not None and local.end_outcome is not None
    assert last.end_outcome is None and avatar.state == "joined"
    gap = video.longest_gap(began, ended)
    print(f"longest stretch with no avatar video across the switches: {gap * 1000:.0f} ms")
    assert gap < 0.5  # both videos are on for a moment at each switch
    await video.aclose()
    await avatar.aclose()
    await all_ended(runway)


async def test_a_switch_to_an_avatar_that_fails_keeps_the_current_one(
    runway_avatar: Avatar,
    runway: RunwayEmulator,
    agent_room: MemoryRoom,
    agent_session: AgentSession[Any],
    listener: Ledger,
) -> None:
    avatar = runway_avatar()
    recorder = Recorder(avatar, agent_session)
    await joined(avatar, agent_session, agent_room)
    runway.faults.next(route="create", status=400)
    with pytest.raises(Exception, match="400"):
        await avatar.switch(runway_avatar())
    assert recorder.states[-1].state == "joined"
    assert "the switch failed, kept runway" in recorder.states[-1].reason
    await say(agent_session, listener, 0.5, seed=50)
    owners = by_owner(await heard_exactly_once(listener))
    assert owners == {avatar.remote_avatars[0].identity: 0.5 * 16000}
    await avatar.aclose()
    await all_ended(runway)
