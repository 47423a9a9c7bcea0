"""The realistic mode's participants and rooms: join batching, duplicate identities, full
reconnect and resume, room auto-close. Each test says what the default stand-in does
instead."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from livekit import rtc

from memory_livekit import MemoryLiveKit, MemoryRoom, Realism

from .helpers import Recorder, bounded, within

MIC = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
STATE = rtc.ConnectionState
REASON = rtc.DisconnectReason
EPSILON = 0.02


@pytest.fixture
async def realistic() -> AsyncIterator[Callable[..., MemoryLiveKit]]:
    servers: list[MemoryLiveKit] = []

    def make(**knobs: Any) -> MemoryLiveKit:
        knobs.setdefault("opus_bitrate", None)
        server = MemoryLiveKit(realism=Realism(seed=11, **knobs))
        servers.append(server)
        return server

    yield make
    for server in servers:
        await within(server.aclose())
        assert server.pending_tasks == ()


async def publish_mic(room: MemoryRoom) -> rtc.LocalTrackPublication:
    source = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("mic", source)
    return await room.local_participant.publish_track(track, MIC)


def described(recorder: Recorder) -> list[tuple[str, Any]]:
    """Events with what they are about: an identity, a sid or a state."""
    out: list[tuple[str, Any]] = []
    for name, args in recorder.events:
        subject: Any = None
        for arg in args:
            if isinstance(arg, rtc.RemoteParticipant):
                subject = arg.identity
            elif name == "connection_state_changed":
                subject = arg
        out.append((name, subject))
    return out


@bounded
async def test_updates_about_participants_that_publish_nothing_come_in_batches(
    realistic: Callable[..., MemoryLiveKit],
) -> None:
    """The server sends updates about participants that publish nothing every 3 s (scaled),
    so data from a newcomer can arrive before the newcomer is known; a publisher is announced
    at once. The default stand-in announces every newcomer at once."""
    server = realistic(time_scale=0.1, data_latency=0.0, data_jitter=0.0)  # batches: 0.3 s
    agent = await server.join("room", "agent", kind="agent")
    seen = Recorder(agent, "participant_connected", "data_received")
    listener = await server.join("room", "listener")
    await listener.local_participant.publish_data(b"hello", destination_identities=["agent"])
    await seen.wait_for("data_received")
    assert seen.names == ["data_received"]
    (packet,) = seen.args("data_received")[0]
    assert packet.participant is None  # from someone the agent does not know yet
    await seen.wait_for("participant_connected", timeout=1.0)
    assert agent.remote_participants["listener"].sid == listener.local_participant.sid
    # changes go at once, and the agent's SDK reports what changed
    changes = Recorder(agent, "participant_attributes_changed", "participant_name_changed")
    await listener.local_participant.set_attributes({"mood": "curious"})
    await listener.local_participant.set_name("Lis")
    await changes.wait_for("participant_name_changed", timeout=0.25)
    ((changed, who),) = changes.args("participant_attributes_changed")
    assert (changed, who.identity, who.name) == ({"mood": "curious"}, "listener", "Lis")

    slow = realistic(time_scale=1.0)  # batches every 3 s: a publisher must not wait for one
    agent = await slow.join("room", "agent", kind="agent")
    seen = Recorder(agent, "participant_connected", "track_published")
    speaker = await slow.join("room", "speaker")
    await publish_mic(speaker)
    await seen.wait_for("track_published", timeout=1.5)
    assert seen.names == ["participant_connected", "track_published"]


@bounded
async def test_a_duplicate_identity_replaces_the_old_session_without_telling_the_others(
    realistic: Callable[..., MemoryLiveKit],
) -> None:
    """A second connection under an identity replaces the first, and the server sends the
    others no disconnection for it: they keep the old participant until the new session is
    announced, when their own SDK swaps them (participant_disconnected with UNKNOWN_REASON,
    then participant_connected under the new sid). The default stand-in has the others see
    the old one leave at once with DUPLICATE_IDENTITY."""
    server = realistic(time_scale=1.0)  # batches every 3 s
    agent = await server.join("room", "agent", kind="agent")
    first = await server.join("room", "avatar", kind="agent")
    announced = Recorder(agent, "track_published")
    await publish_mic(first)  # a publisher: its own updates go at once
    await announced.wait_for("track_published")
    old_sid = agent.remote_participants["avatar"].sid
    replaced = Recorder(first, "disconnected")
    seen = Recorder(agent, "track_unpublished", "participant_disconnected", "participant_connected")

    second = await server.join("room", "avatar", kind="agent")
    await replaced.wait_for("disconnected")
    assert replaced.args("disconnected") == [(REASON.DUPLICATE_IDENTITY,)]
    assert server.rooms["room"].participants["avatar"].session is second
    assert seen.names == []  # nothing was sent about the old session
    assert agent.remote_participants["avatar"].sid == old_sid

    # the new session is announced (an attribute change goes out at once)
    await second.local_participant.set_attributes({"state": "ready"})
    await seen.wait_for("participant_connected")
    assert seen.names == ["track_unpublished", "participant_disconnected", "participant_connected"]
    (gone,) = seen.args("participant_disconnected")[0]
    assert gone.sid == old_sid
    assert gone._info.disconnect_reason == REASON.UNKNOWN_REASON
    assert gone.disconnect_reason is None  # how the SDK reports UNKNOWN_REASON
    (back,) = seen.args("participant_connected")[0]
    assert back.sid == second.local_participant.sid
    assert back.attributes == {"state": "ready"}


@pytest.mark.parametrize("resume_first", [True, False])
@bounded
async def test_a_full_reconnect_as_the_sdk_reports_it(
    realistic: Callable[..., MemoryLiveKit], resume_first: bool
) -> None:
    """A full reconnect is a new session under the same identity. Its own room drops every
    remote participant, emits reconnecting (before the drop when a resume was tried first,
    after it when the server asked for a full reconnect), gets the others back, publishes its
    tracks again under new sids and emits reconnected. The others see it leave and come back
    with its tracks. The default stand-in cannot reconnect anyone."""
    server = realistic(time_scale=0.05)
    agent = await server.join("room", "agent", kind="agent")
    avatar = await server.join("room", "avatar", kind="agent")
    await publish_mic(agent)
    publication = await publish_mic(avatar)
    await server.settle()
    old_sid, old_track_sid = avatar.local_participant.sid, publication.sid
    own = Recorder(
        avatar,
        "connection_state_changed",
        "reconnecting",
        "reconnected",
        "participant_disconnected",
        "participant_connected",
        "local_track_republished",
        "disconnected",
    )
    others = Recorder(
        agent, "participant_disconnected", "participant_connected", "track_subscribed"
    )

    await server.reconnect("room", "avatar", full=True, downtime=0.1, resume_first=resume_first)
    await server.settle()

    dropped = [("participant_disconnected", "agent")]
    reconnecting = [("connection_state_changed", STATE.CONN_RECONNECTING), ("reconnecting", None)]
    assert described(own) == [
        *(reconnecting + dropped if resume_first else dropped + reconnecting),
        ("participant_connected", "agent"),
        ("local_track_republished", None),
        ("connection_state_changed", STATE.CONN_CONNECTED),
        ("reconnected", None),
    ]
    assert avatar.local_participant.sid != old_sid
    assert avatar.local_participant.sid == server.rooms["room"].participants["avatar"].sid
    (republished, previous) = own.args("local_track_republished")[0]
    assert republished is publication and previous == old_track_sid  # kept, under a new sid
    assert list(avatar.local_participant.track_publications) == [publication.sid] != [previous]

    await others.wait_for("track_subscribed")
    assert described(others) == [
        ("participant_disconnected", "avatar"),
        ("participant_connected", "avatar"),
        ("track_subscribed", "avatar"),
    ]
    assert agent.remote_participants["avatar"].sid == avatar.local_participant.sid
    assert list(agent.remote_participants["avatar"].track_publications) == [publication.sid]
    assert avatar.isconnected()

    with pytest.raises(RuntimeError, match="realism"):
        await MemoryLiveKit().reconnect("room", "avatar")


@bounded
async def test_a_resume_is_invisible_to_the_others(
    realistic: Callable[..., MemoryLiveKit],
) -> None:
    """A resume keeps the session: the others see nothing; its own room emits reconnecting
    then reconnected, and a message sent to it meanwhile arrives once it is back. The default
    stand-in cannot reconnect anyone."""
    server = realistic(time_scale=0.05, data_latency=0.0, data_jitter=0.0)
    agent = await server.join("room", "agent", kind="agent")
    avatar = await server.join("room", "avatar", kind="agent")
    await server.settle()
    sid = avatar.local_participant.sid
    own = Recorder(
        avatar, "connection_state_changed", "reconnecting", "reconnected", "data_received"
    )
    others = Recorder(agent, "participant_disconnected", "participant_connected")

    resuming = asyncio.create_task(server.reconnect("room", "avatar", full=False, downtime=0.2))
    await own.wait_for("reconnecting")
    await agent.local_participant.publish_data(b"while away", destination_identities=["avatar"])
    await within(resuming)
    await own.wait_for("data_received")
    assert described(own) == [
        ("connection_state_changed", STATE.CONN_RECONNECTING),
        ("reconnecting", None),
        ("connection_state_changed", STATE.CONN_CONNECTED),
        ("reconnected", None),
        ("data_received", None),
    ]
    await server.settle()
    assert others.names == []
    assert avatar.local_participant.sid == sid


@bounded
async def test_a_room_with_only_agents_closes_after_the_empty_timeout(
    realistic: Callable[..., MemoryLiveKit],
) -> None:
    """A room where nobody but agents ever joined closes 300 s (scaled) after its creation:
    everyone in it is disconnected with ROOM_CLOSED. The default stand-in keeps it until it
    is deleted."""
    server = realistic(time_scale=0.005)  # 300 s -> 1.5 s
    created = time.monotonic()
    agent = await server.join("room", "agent", kind="agent")
    avatar = await server.join("room", "avatar", kind="agent")
    room = server.rooms["room"]
    assert room.closes_at == pytest.approx(room.created + 1.5)
    ends = [Recorder(r, "disconnected") for r in (agent, avatar)]
    for recorder in ends:
        await recorder.wait_for("disconnected", timeout=5.0)
    assert time.monotonic() - created >= 1.5 - EPSILON
    assert [r.args("disconnected") for r in ends] == [[(REASON.ROOM_CLOSED,)]] * 2
    assert "room" not in server.rooms and room.close_reason == REASON.ROOM_CLOSED
    assert not agent.isconnected()


@bounded
async def test_a_room_closes_after_its_last_participant_other_than_agents_leaves(
    realistic: Callable[..., MemoryLiveKit],
) -> None:
    """Once a participant other than an agent has joined, the room stays open while one is
    in it and closes 20 s (scaled) after the last departure. The default stand-in keeps it
    until it is deleted."""
    server = realistic(time_scale=0.01)  # 20 s -> 0.2 s, 300 s -> 3 s
    agent = await server.join("room", "agent", kind="agent")
    user = await server.join("room", "user")
    room = server.rooms["room"]
    assert room.closes_at is None  # a user is in it
    end = Recorder(agent, "disconnected")
    leaving = time.monotonic()
    await user.disconnect()
    closes_at = room.closes_at
    assert closes_at is not None and leaving + 0.2 <= closes_at <= time.monotonic() + 0.2
    await end.wait_for("disconnected", timeout=2.0)
    assert time.monotonic() - leaving >= 0.2 - EPSILON
    assert end.args("disconnected") == [(REASON.ROOM_CLOSED,)]
    assert "room" not in server.rooms
