"""The in-memory LiveKit room (memory_livekit) against the real rtc API and its consumers."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from livekit import api, rtc

from memory_livekit import MemoryLiveKit, MemoryRoom

from .helpers import Recorder, bounded, within


def uid(prefix: str) -> str:
    # DataStreamAudioOutput/Receiver keep class-level handler dicts keyed by identity
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


ALL_EVENTS = (
    "participant_connected",
    "participant_active",
    "participant_disconnected",
    "participant_attributes_changed",
    "track_published",
    "track_subscribed",
    "track_unsubscribed",
    "track_unpublished",
    "local_track_published",
    "local_track_unpublished",
    "local_track_subscribed",
    "connection_state_changed",
    "connected",
    "disconnected",
    "data_received",
)


@pytest.fixture
async def server() -> AsyncIterator[MemoryLiveKit]:
    server = MemoryLiveKit()
    yield server
    await within(server.aclose())
    assert server.pending_tasks == ()


def audio_track(sample_rate: int = 16000) -> tuple[rtc.AudioSource, rtc.LocalAudioTrack]:
    source = rtc.AudioSource(sample_rate, 1)
    return source, rtc.LocalAudioTrack.create_audio_track("mic", source)


def video_track() -> tuple[rtc.VideoSource, rtc.LocalVideoTrack]:
    source = rtc.VideoSource(32, 32)
    return source, rtc.LocalVideoTrack.create_video_track("cam", source)


MIC = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
CAMERA = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA)


# -- tokens -------------------------------------------------------------------------------------


@bounded
async def test_token_claims_become_the_participant(server: MemoryLiveKit) -> None:
    token = server.create_token(
        "room",
        "avatar",
        kind="agent",
        name="Avatar",
        metadata='{"m": 1}',
        attributes={"lk.publish_on_behalf": "agent"},
    )
    room = MemoryRoom(server)
    await room.connect(server.url, token)

    me = room.local_participant
    assert isinstance(room, rtc.Room) and isinstance(me, rtc.LocalParticipant)
    assert room.isconnected() and room.connection_state == rtc.ConnectionState.CONN_CONNECTED
    assert room.name == "room" and (await room.sid).startswith("RM_")
    assert me.identity == "avatar" and me.name == "Avatar" and me.metadata == '{"m": 1}'
    assert me.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
    assert me.attributes == {"lk.publish_on_behalf": "agent"}
    assert me.sid.startswith("PA_")
    assert list(server.rooms["room"].participants) == ["avatar"]
    assert server.rooms["room"].participants["avatar"].session is room


@pytest.mark.parametrize(
    "case",
    ["bad signature", "wrong key", "expired", "no room_join", "no such room", "wrong url"],
)
@bounded
async def test_token_refused(case: str) -> None:
    server = MemoryLiveKit(auto_create_rooms=False)
    server.create_room("room")
    url = server.url
    grants = api.VideoGrants(room_join=True, room="room")
    if case == "bad signature":
        forged = api.AccessToken(server.api_key, "not-the-secret-" + "x" * 32)
        token = forged.with_identity("x").with_grants(grants).to_jwt()
    elif case == "wrong key":
        foreign = api.AccessToken("other-key", server.api_secret)
        token = foreign.with_identity("x").with_grants(grants).to_jwt()
    elif case == "expired":
        token = server.create_token("room", "x", ttl=datetime.timedelta(minutes=-5))
    elif case == "no room_join":
        token = server.create_token("room", "x", grants=api.VideoGrants(room="room"))
    elif case == "no such room":
        token = server.create_token("other-room", "x")
    else:
        token = server.create_token("room", "x")
        url = "wss://elsewhere.invalid"

    room = MemoryRoom(server)
    with pytest.raises(rtc.ConnectError):
        await room.connect(url, token)
    assert not room.isconnected()
    assert server.rooms["room"].participants == {}
    assert "other-room" not in server.rooms
    await server.aclose()


@bounded
async def test_a_token_joins_only_its_own_room(server: MemoryLiveKit) -> None:
    agent = await server.join("room-a", "agent")
    seen = Recorder(agent, "participant_connected")
    other = await server.connect(server.create_token("room-b", "avatar"))
    await server.settle()
    assert other.name == "room-b"
    assert seen.names == [] and agent.remote_participants == {}
    assert list(server.rooms["room-a"].participants) == ["agent"]


@bounded
async def test_secret_stays_out_of_reprs(server: MemoryLiveKit) -> None:
    room = await server.join("room", "agent")
    texts = [repr(server), repr(server.rooms["room"]), repr(room), repr(room.local_participant)]
    texts.append(repr(server.rooms["room"].participants["agent"]))
    assert all(server.api_secret not in text for text in texts)


# -- join and leave -----------------------------------------------------------------------------


@bounded
async def test_join_publish_leave_order_as_seen_by_another(server: MemoryLiveKit) -> None:
    agent = await server.join("room", "agent", kind="agent")
    seen = Recorder(agent, *ALL_EVENTS)
    states: list[int] = []
    agent.on("participant_active", lambda p: states.append(p.state))

    avatar = await server.join("room", "avatar", kind="agent")
    _, mic = audio_track()
    _, cam = video_track()
    await avatar.local_participant.publish_track(mic, MIC)
    await avatar.local_participant.publish_track(cam, CAMERA)
    await server.settle()
    assert seen.names == [
        "connection_state_changed",  # agent's own connection, after connect() returned
        "participant_connected",
        "participant_active",
        "track_published",
        "track_published",
        "track_subscribed",
        "track_subscribed",
    ]
    assert states == [rtc.ParticipantState.PARTICIPANT_STATE_ACTIVE]
    (joined,) = seen.args("participant_connected")
    assert isinstance(joined[0], rtc.RemoteParticipant) and joined[0].identity == "avatar"
    track, publication, participant = seen.args("track_subscribed")[0]
    assert isinstance(track, rtc.RemoteAudioTrack)
    assert isinstance(publication, rtc.RemoteTrackPublication) and publication.subscribed
    assert participant is joined[0] and publication.track is track

    seen.events.clear()
    await avatar.disconnect()
    await server.settle()
    assert seen.names == [
        "track_unsubscribed",
        "track_unpublished",
        "track_unsubscribed",
        "track_unpublished",
        "participant_disconnected",
    ]
    (left,) = seen.args("participant_disconnected")
    assert left[0].disconnect_reason == rtc.DisconnectReason.CLIENT_INITIATED
    assert agent.remote_participants == {}
    assert list(server.rooms["room"].participants) == ["agent"]


@bounded
async def test_own_connect_and_disconnect_events(server: MemoryLiveKit) -> None:
    room = MemoryRoom(server)
    seen = Recorder(room, *ALL_EVENTS)
    await room.connect(server.url, server.create_token("room", "avatar"))
    assert room.isconnected()
    _, cam = video_track()
    publication = await room.local_participant.publish_track(cam, CAMERA)
    assert publication.sid.startswith("TR_") and publication.track is cam
    assert publication.kind == rtc.TrackKind.KIND_VIDEO and publication.name == "cam"
    assert publication.source == rtc.TrackSource.SOURCE_CAMERA and cam.sid == publication.sid
    await server.settle()
    assert seen.names == ["connection_state_changed", "local_track_published"]
    assert seen.args("connection_state_changed")[0] == (rtc.ConnectionState.CONN_CONNECTED,)
    assert seen.args("local_track_published")[0] == (publication, cam)

    seen.events.clear()
    await room.disconnect()
    assert seen.names == ["local_track_unpublished", "connection_state_changed", "disconnected"]
    assert seen.args("disconnected")[0] == (rtc.DisconnectReason.CLIENT_INITIATED,)
    assert not room.isconnected()
    assert room.local_participant.track_publications == {}
    await room.disconnect()  # a second call is a no-op
    assert seen.names.count("disconnected") == 1


@bounded
async def test_participants_already_there_arrive_silently_and_get_subscribed(
    server: MemoryLiveKit,
) -> None:
    avatar = await server.join("room", "avatar")
    _, cam = video_track()
    publication = await avatar.local_participant.publish_track(cam, CAMERA)
    subscribed = Recorder(avatar, "local_track_subscribed")

    agent = MemoryRoom(server)
    seen = Recorder(agent, *ALL_EVENTS)
    await agent.connect(server.url, server.create_token("room", "agent"))
    existing = agent.remote_participants["avatar"]
    assert existing.state == rtc.ParticipantState.PARTICIPANT_STATE_ACTIVE
    assert list(existing.track_publications) == [publication.sid]
    await within(publication.wait_for_subscription())
    await server.settle()
    assert seen.names == ["connection_state_changed", "track_subscribed"]
    assert subscribed.args("local_track_subscribed") == [(cam,)]
    assert server.rooms["room"].participants["avatar"].tracks[publication.sid].subscribers == {
        "agent"
    }


@bounded
async def test_attributes_from_the_token_and_set_attributes(server: MemoryLiveKit) -> None:
    agent = await server.join("room", "agent", kind="agent")
    avatar = await server.join(
        "room", "avatar", kind="agent", attributes={"lk.publish_on_behalf": "agent"}
    )
    await server.settle()
    remote = agent.remote_participants["avatar"]
    assert remote.attributes == {"lk.publish_on_behalf": "agent"}
    assert remote.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT

    at_agent = Recorder(agent, "participant_attributes_changed")
    at_avatar = Recorder(avatar, "participant_attributes_changed")
    await avatar.local_participant.set_attributes({"state": "speaking"})
    # the caller's own view is updated when set_attributes returns
    assert avatar.local_participant.attributes["state"] == "speaking"
    assert at_avatar.args("participant_attributes_changed") == [
        ({"state": "speaking"}, avatar.local_participant)
    ]
    await at_agent.wait_for("participant_attributes_changed")
    assert at_agent.args("participant_attributes_changed") == [({"state": "speaking"}, remote)]
    assert remote.attributes == {"lk.publish_on_behalf": "agent", "state": "speaking"}

    # unchanged values are not an update; an empty value deletes the key
    await avatar.local_participant.set_attributes({"state": "speaking", "lk.publish_on_behalf": ""})
    await server.settle()
    assert at_agent.args("participant_attributes_changed")[-1] == (
        {"lk.publish_on_behalf": ""},
        remote,
    )
    assert remote.attributes == {"state": "speaking"}


@bounded
async def test_set_attributes_needs_the_grant(server: MemoryLiveKit) -> None:
    agent = await server.join("room", "agent")
    token = server.create_token(
        "room", "avatar", grants=api.VideoGrants(room_join=True, room="room")
    )
    avatar = await server.connect(token)
    seen = Recorder(agent, "participant_attributes_changed")
    await avatar.local_participant.set_attributes({"a": "b"})  # refused quietly, like the SDK
    await server.settle()
    assert seen.names == [] and avatar.local_participant.attributes == {}


@bounded
async def test_duplicate_identity_replaces_the_old_session(server: MemoryLiveKit) -> None:
    agent = await server.join("room", "agent")
    first = await server.join("room", "avatar")
    await server.settle()
    first_events = Recorder(first, "disconnected")
    seen = Recorder(agent, "participant_connected", "participant_disconnected")
    second = await server.join("room", "avatar")
    await server.settle()
    assert first_events.args("disconnected") == [(rtc.DisconnectReason.DUPLICATE_IDENTITY,)]
    assert not first.isconnected() and second.isconnected()
    assert seen.names == ["participant_disconnected", "participant_connected"]
    assert server.rooms["room"].participants["avatar"].session is second


# -- data ---------------------------------------------------------------------------------------


@bounded
async def test_data_reaches_only_its_destinations_never_the_sender(server: MemoryLiveKit) -> None:
    rooms = {name: await server.join("room", name) for name in ("a", "b", "c")}
    seen = {name: Recorder(room, "data_received") for name, room in rooms.items()}
    await server.settle()

    await rooms["a"].local_participant.publish_data(
        b"to-b", destination_identities=["b"], topic="t1"
    )
    await rooms["a"].local_participant.publish_data("to-all", reliable=False)
    await server.settle()

    assert seen["a"].names == []
    (to_b, to_all_b) = [args[0] for args in seen["b"].args("data_received")]
    assert isinstance(to_b, rtc.DataPacket)
    assert to_b.data == b"to-b" and to_b.topic == "t1"
    assert to_b.kind == rtc.DataPacketKind.KIND_RELIABLE
    assert to_b.participant is rooms["b"].remote_participants["a"]
    assert to_all_b.data == b"to-all" and to_all_b.kind == rtc.DataPacketKind.KIND_LOSSY
    assert [args[0].data for args in seen["c"].args("data_received")] == [b"to-all"]

    log = server.rooms["room"].data_packets
    assert [(p.sender, p.payload, p.delivered_to) for p in log] == [
        ("a", b"to-b", ("b",)),
        ("a", b"to-all", ("b", "c")),
    ]


@bounded
async def test_delivery_is_asynchronous_and_ordered_per_sender(server: MemoryLiveKit) -> None:
    a = await server.join("room", "a")
    b = await server.join("room", "b")
    await server.settle()
    received: list[bytes] = []
    delivering_tasks: set[asyncio.Task[Any] | None] = set()

    def on_data(packet: rtc.DataPacket) -> None:
        received.append(packet.data)
        delivering_tasks.add(asyncio.current_task())

    b.on("data_received", on_data)
    for i in range(200):
        await a.local_participant.publish_data(str(i).encode())
    await server.settle()
    assert received == [str(i).encode() for i in range(200)]
    assert asyncio.current_task() not in delivering_tasks  # never inside the sender's call


# -- streams ------------------------------------------------------------------------------------


@bounded
async def test_byte_stream_end_to_end(server: MemoryLiveKit) -> None:
    agent = await server.join("room", "agent")
    avatar = await server.join("room", "avatar")
    bystander = await server.join("room", "bystander")
    got: list[tuple[rtc.ByteStreamReader, str]] = []
    chunks: list[bytes] = []
    done = asyncio.Event()

    async def read(reader: rtc.ByteStreamReader) -> None:
        async for chunk in reader:
            chunks.append(chunk)
        done.set()

    tasks: set[asyncio.Task[None]] = set()

    def on_stream(reader: rtc.ByteStreamReader, identity: str) -> None:
        got.append((reader, identity))
        tasks.add(asyncio.create_task(read(reader)))

    avatar.register_byte_stream_handler("lk.audio_stream", on_stream)
    bystander_got: list[str] = []
    bystander.register_byte_stream_handler("lk.audio_stream", lambda r, i: bystander_got.append(i))
    with pytest.raises(ValueError):
        avatar.register_byte_stream_handler("lk.audio_stream", on_stream)

    writer = await agent.local_participant.stream_bytes(
        "seg-1",
        topic="lk.audio_stream",
        destination_identities=["avatar"],
        attributes={"sample_rate": "16000"},
        mime_type="audio/pcm",
    )
    assert isinstance(writer, rtc.ByteStreamWriter)
    writes = [b"\x01" * 10, b"\x02" * 3, b"\x03" * 40_000]
    for data in writes:
        await writer.write(data)
    await writer.aclose(attributes={"final": "yes"})
    await within(done.wait())

    ((reader, identity),) = got
    assert identity == "agent" and isinstance(reader, rtc.ByteStreamReader)
    info = reader.info
    assert info.stream_id == writer.info.stream_id and info.topic == "lk.audio_stream"
    assert info.name == "seg-1" and info.mime_type == "audio/pcm"
    assert info.attributes == {"sample_rate": "16000", "final": "yes"}  # trailer merged
    # chunk boundaries kept; a write over 15,000 bytes is split like the SDK does
    assert [len(c) for c in chunks] == [10, 3, 15_000, 15_000, 10_000]
    assert b"".join(chunks) == b"".join(writes)
    assert bystander_got == []
    (record,) = server.rooms["room"].streams
    assert record.delivered_to == ("avatar",) and record.closed and record.size == 40_013
    with pytest.raises(RuntimeError):
        await writer.write(b"late")


@bounded
async def test_stream_without_handler_is_dropped(server: MemoryLiveKit) -> None:
    agent = await server.join("room", "agent")
    avatar = await server.join("room", "avatar")
    await server.settle()
    writer = await agent.local_participant.stream_bytes("x", topic="nobody-listens")
    await writer.write(b"data")
    await writer.aclose()
    await server.settle()
    # registering afterwards does not resurrect the stream
    late: list[str] = []
    avatar.register_byte_stream_handler("nobody-listens", lambda r, i: late.append(i))
    await server.settle()
    assert late == [] and avatar.open_incoming_streams == 0


@bounded
async def test_text_stream_and_send_text(server: MemoryLiveKit) -> None:
    agent = await server.join("room", "agent")
    avatar = await server.join("room", "avatar")
    texts: list[tuple[str, str, dict[str, str] | None]] = []
    done = asyncio.Event()
    tasks: set[asyncio.Task[None]] = set()

    async def read(reader: rtc.TextStreamReader, identity: str) -> None:
        texts.append((identity, await reader.read_all(), reader.info.attributes))
        done.set()

    avatar.register_text_stream_handler(
        "lk.chat", lambda r, i: tasks.add(asyncio.create_task(read(r, i)))
    )
    long_text = "é" * 10_000  # 20,000 UTF-8 bytes: chunked on a character boundary
    info = await agent.local_participant.send_text(
        long_text, topic="lk.chat", attributes={"k": "v"}
    )
    await within(done.wait())
    assert texts == [("agent", long_text, {"k": "v"})]
    assert info.topic == "lk.chat"


@bounded
async def test_reader_ends_when_its_room_or_the_sender_leaves(server: MemoryLiveKit) -> None:
    agent = await server.join("room", "agent")
    avatar = await server.join("room", "avatar")
    readers: list[rtc.ByteStreamReader] = []
    avatar.register_byte_stream_handler("t", lambda r, i: readers.append(r))

    async def drain(reader: rtc.ByteStreamReader) -> list[bytes]:
        return [chunk async for chunk in reader]

    # the receiving room leaves: chunks already there are read, then StreamError
    writer = await agent.local_participant.stream_bytes("a", topic="t")
    await writer.write(b"first")
    await server.settle()
    await avatar.disconnect()
    received: list[bytes] = []
    with pytest.raises(rtc.StreamError):
        async for chunk in readers[0]:
            received.append(chunk)
    assert received == [b"first"]
    assert avatar.byte_stream_topics == ()  # cleared on disconnect

    # the sender leaves mid-stream
    avatar = await server.join("room", "avatar")
    avatar.register_byte_stream_handler("t", lambda r, i: readers.append(r))
    writer = await agent.local_participant.stream_bytes("b", topic="t")
    await writer.write(b"x")
    await server.settle()
    await agent.disconnect()
    with pytest.raises(rtc.StreamError):
        await within(drain(readers[1]))
    with pytest.raises(rtc.StreamError):
        await writer.write(b"after leaving")


# -- RPC ----------------------------------------------------------------------------------------


@bounded
async def test_rpc_round_trip(server: MemoryLiveKit) -> None:
    agent = await server.join("room", "agent")
    avatar = await server.join("room", "avatar")
    calls: list[rtc.RpcInvocationData] = []

    @avatar.local_participant.register_rpc_method("echo")  # type: ignore[arg-type]  # SDK's typing
    async def echo(data: rtc.RpcInvocationData) -> str:
        calls.append(data)
        await asyncio.sleep(0.01)
        return data.payload.upper()

    avatar.local_participant.register_rpc_method("sync", lambda data: "sync:" + data.payload)
    assert server.rooms["room"].participants["avatar"].rpc_methods == ("echo", "sync")
    assert avatar.local_participant._rpc_handlers["echo"] is echo

    seen_by_interceptors: list[str] = []

    class Spy(rtc.RpcInterceptor):
        async def intercept_outgoing(self, call: rtc.RpcCallInfo, next: Any) -> str:
            seen_by_interceptors.append("out:" + call.method)
            result: str = await next(call)
            return result

        async def intercept_incoming(self, invocation: rtc.RpcInvocationData, next: Any) -> Any:
            seen_by_interceptors.append("in:" + invocation.method)
            return await next(invocation)

    agent.local_participant.add_rpc_interceptor(Spy())
    avatar.local_participant.add_rpc_interceptor(Spy())

    lp = agent.local_participant
    assert await lp.perform_rpc(destination_identity="avatar", method="echo", payload="hi") == "HI"
    assert seen_by_interceptors == ["out:echo", "in:echo"]  # the SDK's own interceptor chain
    assert (
        await lp.perform_rpc(destination_identity="avatar", method="sync", payload="x") == "sync:x"
    )
    (data,) = calls
    assert isinstance(data, rtc.RpcInvocationData)
    assert data.caller_identity == "agent" and data.method == "echo" and data.payload == "hi"
    assert data.response_timeout == 8.0  # 15 s default minus the 7 s round trip allowance
    records = server.rooms["room"].rpc_calls
    assert [(r.method, r.response, r.done) for r in records] == [
        ("echo", "HI", True),
        ("sync", "sync:x", True),
    ]

    avatar.local_participant.unregister_rpc_method("sync")
    assert avatar.rpc_methods == ("echo",)


@bounded
async def test_rpc_errors(server: MemoryLiveKit) -> None:
    agent = await server.join("room", "agent")
    avatar = await server.join("room", "avatar")
    codes = rtc.RpcError.ErrorCode
    started = asyncio.Event()

    def broken(data: rtc.RpcInvocationData) -> str:
        raise ValueError("boom")

    def refuses(data: rtc.RpcInvocationData) -> str:
        raise rtc.RpcError(4001, "nope", "details")

    async def slow(data: rtc.RpcInvocationData) -> str:
        started.set()
        await asyncio.sleep(30)
        return "late"

    for name, handler in (("broken", broken), ("refuses", refuses), ("slow", slow)):
        avatar.local_participant.register_rpc_method(name, handler)

    async def call(method: str, destination: str = "avatar", **kwargs: Any) -> rtc.RpcError:
        with pytest.raises(rtc.RpcError) as info:
            await agent.local_participant.perform_rpc(
                destination_identity=destination, method=method, payload="", **kwargs
            )
        return info.value

    assert (await call("missing")).code == codes.UNSUPPORTED_METHOD
    assert (await call("echo", destination="nobody")).code == codes.RECIPIENT_NOT_FOUND
    assert (await call("broken")).code == codes.APPLICATION_ERROR
    custom = await call("refuses")
    assert (custom.code, custom.message, custom.data) == (4001, "nope", "details")
    timeout = await call("slow", response_timeout=0.2)
    assert timeout.code == codes.RESPONSE_TIMEOUT
    assert timeout.message == rtc.RpcError.ErrorMessage[codes.RESPONSE_TIMEOUT]

    started.clear()
    pending = asyncio.create_task(call("slow"))
    await within(started.wait())
    await avatar.disconnect()
    assert (await within(pending)).code == codes.RECIPIENT_DISCONNECTED
    assert avatar.rpc_methods == ()
    assert len(server.pending_tasks) == 1  # only the agent's own event task is left


# -- tracks -------------------------------------------------------------------------------------


@bounded
async def test_audio_frames_reach_the_subscriber(server: MemoryLiveKit) -> None:
    agent = await server.join("room", "agent")
    avatar = await server.join("room", "avatar")
    seen = Recorder(agent, "track_subscribed")
    source, mic = audio_track()
    publication = await avatar.local_participant.publish_track(mic, MIC)
    await within(publication.wait_for_subscription())
    await seen.wait_for("track_subscribed")
    track, remote_publication, _ = seen.args("track_subscribed")[0]
    assert remote_publication.sid == publication.sid
    assert remote_publication.source == rtc.TrackSource.SOURCE_MICROPHONE

    stream = rtc.AudioStream(track, sample_rate=16000, num_channels=1)
    voiced = 0
    target = 50 * 160

    async def count() -> None:
        nonlocal voiced
        async for event in stream:
            voiced += int(np.count_nonzero(np.frombuffer(event.frame.data, dtype=np.int16)))
            if voiced >= target:
                return

    counting = asyncio.create_task(count())
    for _ in range(50):
        frame = rtc.AudioFrame.create(16000, 1, 160)
        np.frombuffer(frame.data, dtype=np.int16)[:] = 1000
        await source.capture_frame(frame)
    await within(counting)
    await stream.aclose()
    assert voiced == target


@bounded
async def test_video_frames_reach_the_subscriber(server: MemoryLiveKit) -> None:
    agent = await server.join("room", "agent")
    avatar = await server.join("room", "avatar")
    seen = Recorder(agent, "track_subscribed")
    source, cam = video_track()
    await avatar.local_participant.publish_track(cam, CAMERA)
    await seen.wait_for("track_subscribed")
    track = seen.args("track_subscribed")[0][0]
    assert isinstance(track, rtc.RemoteVideoTrack)

    stream = rtc.VideoStream(track)
    frames = 0

    async def count() -> None:
        nonlocal frames
        async for _ in stream:
            frames += 1
            if frames == 10:
                return

    counting = asyncio.create_task(count())
    await asyncio.sleep(0.05)
    for _ in range(10):
        source.capture_frame(rtc.VideoFrame(32, 32, rtc.VideoBufferType.RGBA, bytes(32 * 32 * 4)))
        await asyncio.sleep(0.01)
    await within(counting)
    await stream.aclose()
    assert frames == 10


@bounded
async def test_unpublish_and_manual_subscription(server: MemoryLiveKit) -> None:
    avatar = await server.join("room", "avatar")
    agent = await server.join("room", "agent", options=rtc.RoomOptions(auto_subscribe=False))
    seen = Recorder(agent, *ALL_EVENTS)
    local = Recorder(avatar, "local_track_unpublished")
    _, cam = video_track()
    publication = await avatar.local_participant.publish_track(cam, CAMERA)
    await server.settle()
    assert seen.names == ["connection_state_changed", "track_published"]
    remote = seen.args("track_published")[0][0]
    assert not remote.subscribed and remote.track is None

    remote.set_subscribed(True)
    await seen.wait_for("track_subscribed")
    assert remote.subscribed and remote.track is not None

    await avatar.local_participant.unpublish_track(publication.sid)
    assert local.args("local_track_unpublished") == [(publication,)]
    assert publication.track is None and avatar.local_participant.track_publications == {}
    await server.settle()
    assert seen.names[-2:] == ["track_unsubscribed", "track_unpublished"]
    assert agent.remote_participants["avatar"].track_publications == {}


@bounded
async def test_publish_needs_the_grant(server: MemoryLiveKit) -> None:
    grants = api.VideoGrants(room_join=True, room="room", can_publish=False)
    viewer = await server.connect(server.create_token("room", "viewer", grants=grants))
    _, cam = video_track()
    with pytest.raises(Exception, match="permission"):
        await viewer.local_participant.publish_track(cam, CAMERA)


# -- faults -------------------------------------------------------------------------------------


@bounded
async def test_remove_participant(server: MemoryLiveKit) -> None:
    agent = await server.join("room", "agent")
    avatar = await server.join("room", "avatar")
    _, cam = video_track()
    await avatar.local_participant.publish_track(cam, CAMERA)
    await server.settle()
    at_agent = Recorder(agent, *ALL_EVENTS)
    at_avatar = Recorder(avatar, *ALL_EVENTS)

    await server.remove_participant("room", "avatar")
    assert at_avatar.names == [
        "connection_state_changed",
        "disconnected",
        "local_track_unpublished",
    ]
    assert at_avatar.args("disconnected") == [(rtc.DisconnectReason.PARTICIPANT_REMOVED,)]
    assert not avatar.isconnected()
    assert list(server.rooms["room"].participants) == ["agent"]
    await server.settle()
    assert at_agent.names == ["track_unsubscribed", "track_unpublished", "participant_disconnected"]
    left = at_agent.args("participant_disconnected")[0][0]
    assert left.disconnect_reason == rtc.DisconnectReason.PARTICIPANT_REMOVED

    await avatar.disconnect()  # nothing left to do, as in the SDK
    assert at_avatar.names.count("disconnected") == 1
    with pytest.raises(api.TwirpError):
        await server.remove_participant("room", "avatar")


@bounded
async def test_delete_room(server: MemoryLiveKit) -> None:
    rooms = [await server.join("room", name) for name in ("a", "b", "c")]
    seen = [Recorder(room, "disconnected", "participant_disconnected") for room in rooms]
    await server.delete_room("room")
    for recorder in seen:
        assert recorder.events == [("disconnected", (rtc.DisconnectReason.ROOM_DELETED,))]
    assert all(not room.isconnected() for room in rooms)
    assert "room" not in server.rooms
    assert server.pending_tasks == ()


@bounded
async def test_no_leaks_after_many_sessions(server: MemoryLiveKit) -> None:
    agent = await server.join("room", "agent")
    for i in range(100):
        avatar = await server.join("room", f"avatar-{i}")
        avatar.register_byte_stream_handler("t", lambda r, i: None)
        avatar.local_participant.register_rpc_method("m", lambda d: "")
        await agent.local_participant.perform_rpc(
            destination_identity=f"avatar-{i}", method="m", payload=""
        )
        assert server.rooms["room"].participants[f"avatar-{i}"].rpc_methods == ("m",)
        await avatar.disconnect()
        assert avatar.byte_stream_topics == () and avatar.rpc_methods == ()
    await server.settle()
    assert list(server.rooms["room"].participants) == ["agent"]
    assert agent.remote_participants == {}
    assert agent.rpc_methods == () and agent.byte_stream_topics == ()
    assert len(server.rooms["room"].rpc_calls) == 100
    await agent.disconnect()
    assert server.pending_tasks == ()


# -- livekit-agents helpers and the avatar data-stream path -------------------------------------


@bounded
async def test_livekit_agents_participant_helpers(server: MemoryLiveKit) -> None:
    from livekit.agents import utils
    from livekit.agents.utils.participant import wait_for_participant_attribute

    agent = await server.join("room", "agent", kind="agent")
    waiting = asyncio.gather(
        utils.wait_for_participant(agent, identity="avatar"),
        utils.wait_for_track_publication(agent, identity="avatar", kind=rtc.TrackKind.KIND_VIDEO),
    )
    user = await server.join("room", "user")
    avatar = await server.join("room", "avatar", kind="agent")
    _, cam = video_track()
    await avatar.local_participant.publish_track(cam, CAMERA)
    participant, publication = await within(waiting)
    assert participant.identity == "avatar" and publication.kind == rtc.TrackKind.KIND_VIDEO

    found = await within(utils.wait_for_agent(user))
    assert found.identity in ("agent", "avatar")
    await server.settle()
    attribute = asyncio.create_task(
        wait_for_participant_attribute(agent, identity="user", attribute="ready", value="yes")
    )
    await asyncio.sleep(0)
    await user.local_participant.set_attributes({"ready": "yes"})
    await within(attribute)


@bounded
async def test_datastream_audio_output_to_receiver(server: MemoryLiveKit) -> None:
    from livekit.agents.voice.avatar import (
        AudioSegmentEnd,
        DataStreamAudioOutput,
        DataStreamAudioReceiver,
    )

    agent_id, avatar_id = uid("agent"), uid("avatar")
    agent = await server.join("room", agent_id, kind="agent")
    avatar = await server.join(
        "room", avatar_id, kind="agent", attributes={"lk.publish_on_behalf": agent_id}
    )
    output = DataStreamAudioOutput(
        agent,
        destination_identity=avatar_id,
        sample_rate=16000,
        wait_remote_track=rtc.TrackKind.KIND_VIDEO,
    )
    receiver = DataStreamAudioReceiver(avatar, sender_identity=agent_id)
    await within(receiver.start())
    cleared = asyncio.Event()
    receiver.on("clear_buffer", cleared.set)
    participants = server.rooms["room"].participants
    assert participants[avatar_id].byte_stream_topics == ("lk.audio_stream",)
    assert participants[avatar_id].rpc_methods == ("lk.clear_buffer",)

    def frame(value: int) -> rtc.AudioFrame:
        f = rtc.AudioFrame.create(16000, 1, 160)
        np.frombuffer(f.data, dtype=np.int16)[:] = value
        return f

    async def speak(frames: int) -> None:
        for i in range(frames):
            await output.capture_frame(frame(i + 1))

    # one second of audio; the output holds it until the avatar publishes video
    first = asyncio.create_task(speak(100))
    await asyncio.sleep(0.1)
    assert not first.done()
    assert participants[agent_id].rpc_methods == ("lk.playback_finished",)
    _, cam = video_track()
    await avatar.local_participant.publish_track(cam, CAMERA)
    await within(first)
    output.flush()

    samples: list[np.ndarray[Any, Any]] = []
    async for item in receiver:
        if isinstance(item, AudioSegmentEnd):
            break
        assert isinstance(item, rtc.AudioFrame) and item.sample_rate == 16000
        samples.append(np.frombuffer(item.data, dtype=np.int16).copy())
    audio = np.concatenate(samples)
    assert len(audio) == 16000
    assert (audio == np.repeat(np.arange(1, 101), 160)).all()  # order kept end to end

    # lk.playback_finished: avatar -> agent
    receiver.notify_playback_finished(playback_position=1.0, interrupted=False)
    finished = await within(output.wait_for_playout())
    assert finished.playback_position == 1.0 and not finished.interrupted

    # lk.clear_buffer: agent -> avatar
    await speak(10)
    output.clear_buffer()
    await within(cleared.wait())
    receiver.notify_playback_finished(playback_position=0.1, interrupted=True)
    interrupted = await within(output.wait_for_playout())
    assert interrupted.interrupted

    methods = [call.method for call in server.rooms["room"].rpc_calls]
    assert methods == ["lk.playback_finished", "lk.clear_buffer", "lk.playback_finished"]
    await receiver.aclose()
    await within(asyncio.gather(*output._tasks, return_exceptions=True))


@bounded
async def test_avatar_runner_publishes_real_tracks_the_agent_can_count(
    server: MemoryLiveKit,
) -> None:
    from livekit.agents.voice.avatar import (
        AudioSegmentEnd,
        AvatarOptions,
        AvatarRunner,
        DataStreamAudioOutput,
        DataStreamAudioReceiver,
        VideoGenerator,
    )

    class EchoGenerator(VideoGenerator):
        """One black video frame per audio frame, then the audio itself."""

        def __init__(self) -> None:
            self.queue: asyncio.Queue[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd] = (
                asyncio.Queue()
            )
            self.video_frames = 0

        async def push_audio(self, frame: rtc.AudioFrame | AudioSegmentEnd) -> None:
            if isinstance(frame, rtc.AudioFrame):
                self.video_frames += 1
                await self.queue.put(
                    rtc.VideoFrame(32, 32, rtc.VideoBufferType.RGBA, bytes(32 * 32 * 4))
                )
            await self.queue.put(frame)

        def clear_buffer(self) -> None:
            while not self.queue.empty():
                self.queue.get_nowait()

        def __aiter__(self) -> AsyncIterator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
            return self._frames()

        async def _frames(
            self,
        ) -> AsyncIterator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
            while True:
                yield await self.queue.get()

    agent_id, avatar_id = uid("agent"), uid("avatar")
    agent = await server.join("room", agent_id, kind="agent")
    avatar = await server.join("room", avatar_id, kind="agent")
    voiced = frames = 0
    counters: list[asyncio.Task[None]] = []
    streams: list[rtc.AudioStream | rtc.VideoStream] = []

    async def count_audio(stream: rtc.AudioStream) -> None:
        nonlocal voiced
        async for event in stream:
            voiced += int(np.count_nonzero(np.frombuffer(event.frame.data, dtype=np.int16)))

    async def count_video(stream: rtc.VideoStream) -> None:
        nonlocal frames
        async for _ in stream:
            frames += 1

    def on_track(track: rtc.Track, *_: Any) -> None:
        # attached from the event itself, before the runner pushes anything into the track
        if isinstance(track, rtc.RemoteAudioTrack):
            audio = rtc.AudioStream(track, sample_rate=16000, num_channels=1)
            streams.append(audio)
            counters.append(asyncio.create_task(count_audio(audio)))
        else:
            video = rtc.VideoStream(track)
            streams.append(video)
            counters.append(asyncio.create_task(count_video(video)))

    agent.on("track_subscribed", on_track)
    generator = EchoGenerator()
    runner = AvatarRunner(
        avatar,
        audio_recv=DataStreamAudioReceiver(avatar, sender_identity=agent_id),
        video_gen=generator,
        options=AvatarOptions(
            video_width=32, video_height=32, video_fps=10, audio_sample_rate=16000, audio_channels=1
        ),
    )
    await within(runner.start())
    output = DataStreamAudioOutput(agent, destination_identity=avatar_id, sample_rate=16000)

    for _ in range(50):  # 0.5 s
        f = rtc.AudioFrame.create(16000, 1, 160)
        np.frombuffer(f.data, dtype=np.int16)[:] = 500
        await output.capture_frame(f)
    output.flush()

    # lk.playback_finished comes from the runner once the segment has played out
    finished = await within(output.wait_for_playout())
    assert not finished.interrupted and finished.playback_position == pytest.approx(0.5)
    # the runner published lazily, audio first, video once the agent subscribed to the audio
    assert len(counters) == 2
    await asyncio.sleep(0.3)
    assert voiced == 8000
    assert generator.video_frames == 5  # one per 100 ms frame of the receiver
    # the first frame is captured right after publish_track() returns, before the agent's
    # subscription is set up, so (as with a real server) the agent may not see it
    assert frames in (4, 5)

    await runner.aclose()
    for task in counters:  # a read parked in rtc.VideoStream is not woken by aclose()
        task.cancel()
    await asyncio.gather(*counters, return_exceptions=True)
    for stream in streams:
        await stream.aclose()
