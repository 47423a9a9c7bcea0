"""``MemoryRoom``: an ``rtc.Room`` whose server is a :class:`~memory_livekit.MemoryLiveKit`.

The classes here subclass the real ``rtc`` ones and replace only what goes through the FFI, so
code written against ``rtc.Room`` (livekit-agents included) runs on them unchanged, and
``isinstance(p, rtc.RemoteParticipant)`` holds. Events reach each room through one queue
processed by one task, as the SDK's room task does, so they are emitted asynchronously, never
inside the sender's call, and in order per sender.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, cast

from livekit import rtc
from livekit.rtc._proto import participant_pb2 as proto_participant
from livekit.rtc._proto import room_pb2 as proto_room
from livekit.rtc._proto import track_pb2 as proto_track

from . import rpc
from ._common import (
    RPC_DEFAULT_MAX_ROUND_TRIP_LATENCY,
    RPC_DEFAULT_RESPONSE_TIMEOUT,
    builtin_rpc_error,
    caller_rpc_error,
    logger,
    no_ffi_handle,
    wire_rpc_error,
)
from .participant import MemoryLocalParticipant, MemoryRemoteTrackPublication
from .realism import RPC_MIN_EFFECTIVE_TIMEOUT
from .server import ServerParticipant, ServerRoom, ServerTrack
from .streams import MemoryByteStreamReader, MemoryTextStreamReader

if TYPE_CHECKING:
    from .server import MemoryLiveKit

_Item = Callable[[], None]
_ErrorTuple = tuple[int, str, "str | None"]

_CONNECTED = rtc.ConnectionState.CONN_CONNECTED
_ACTIVE = rtc.ParticipantState.PARTICIPANT_STATE_ACTIVE
_DISCONNECTED = rtc.ConnectionState.CONN_DISCONNECTED
_CLIENT_INITIATED = rtc.DisconnectReason.CLIENT_INITIATED


def _remote_participant(info: proto_participant.ParticipantInfo) -> rtc.RemoteParticipant:
    return rtc.RemoteParticipant(
        proto_participant.OwnedParticipant(handle=no_ffi_handle(), info=info)
    )


def _remote_track(
    server_track: ServerTrack, relayed: rtc.LocalAudioTrack | rtc.LocalVideoTrack | None
) -> rtc.RemoteAudioTrack | rtc.RemoteVideoTrack:
    owned = proto_track.OwnedTrack(
        handle=no_ffi_handle(),
        info=proto_track.TrackInfo(
            sid=server_track.sid,
            name=server_track.name,
            kind=server_track.kind,
            stream_state=rtc.StreamState.STATE_ACTIVE,
            muted=server_track.track.muted,
            remote=True,
        ),
    )
    track: rtc.RemoteAudioTrack | rtc.RemoteVideoTrack
    if server_track.kind == rtc.TrackKind.KIND_VIDEO:
        track = rtc.RemoteVideoTrack(owned)
    else:
        track = rtc.RemoteAudioTrack(owned)
    # Share the publisher's native track (the same FfiHandle object, so it is released once):
    # rtc.AudioStream / rtc.VideoStream on it yield the frames captured into its source. In
    # realistic mode, the native track of this subscriber's relay instead.
    track._ffi_handle = (relayed if relayed is not None else server_track.track)._ffi_handle
    return track


def _resolve(marker: asyncio.Future[None]) -> None:
    if not marker.done():
        marker.set_result(None)


class MemoryRoom(rtc.Room):
    """An ``rtc.Room`` connected to a :class:`~memory_livekit.MemoryLiveKit`.

    Use it where an ``rtc.Room`` is expected::

        room = MemoryRoom(server)
        await room.connect(server.url, token)

    Differences from a real room are listed in ``docs/memory-livekit.md``.
    """

    def __init__(
        self, server: MemoryLiveKit, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        super().__init__(loop)
        self._server = server
        self._server_room: ServerRoom | None = None
        self._server_participant: ServerParticipant | None = None
        self._auto_subscribe = True
        self._inbox: asyncio.Queue[_Item | None] = asyncio.Queue()
        self._accepting = False
        self._leaving = False
        self._dispatch_task: asyncio.Task[None] | None = None
        self._stream_readers: dict[str, MemoryByteStreamReader | MemoryTextStreamReader] = {}
        self._pending_calls: dict[str, asyncio.Future[str]] = {}
        self._pending_acks: dict[str, asyncio.Future[None]] = {}
        self._unanswered_calls: dict[str, MemoryRoom] = {}
        self._call_versions: dict[str, tuple[str, bool]] = {}  # realistic: (caller, v1)
        self._client_protocol: int | None = None  # set by MemoryLiveKit.connect()

    @property
    def server(self) -> MemoryLiveKit:
        """The in-memory server this room connects to."""
        return self._server

    @property
    def local_participant(self) -> MemoryLocalParticipant:
        return cast(MemoryLocalParticipant, super().local_participant)

    @property
    def remote_participants(self) -> Mapping[str, rtc.RemoteParticipant]:
        return self._remote_participants

    @property
    def rpc_methods(self) -> tuple[str, ...]:
        """RPC methods registered on the local participant right now (sorted)."""
        local = self._local_participant
        return tuple(sorted(local._rpc_handlers)) if local is not None else ()

    @property
    def byte_stream_topics(self) -> tuple[str, ...]:
        """Topics with a byte stream handler right now (sorted)."""
        return tuple(sorted(self._byte_stream_handlers))

    @property
    def text_stream_topics(self) -> tuple[str, ...]:
        """Topics with a text stream handler right now (sorted)."""
        return tuple(sorted(self._text_stream_handlers))

    @property
    def open_incoming_streams(self) -> int:
        """Incoming streams handed to a handler and not finished yet."""
        return len(self._stream_readers)

    def isconnected(self) -> bool:
        return self._server_participant is not None and self._connection_state != _DISCONNECTED

    async def connect(self, url: str, token: str, options: rtc.RoomOptions | None = None) -> None:
        """Join the room named in ``token`` on the in-memory server at ``url``; raises
        ``rtc.ConnectError`` where the server would refuse."""
        if self._accepting or self.isconnected():
            raise rtc.ConnectError("this room is already connected")
        self._server_url = url
        self._token = token
        await asyncio.sleep(0)
        self._server._admit(self, url, token, options if options is not None else rtc.RoomOptions())

    async def disconnect(
        self, *, reason: proto_participant.DisconnectReason.ValueType = _CLIENT_INITIATED
    ) -> None:
        """Leave the room: others see this participant's tracks go, then it; pending RPC
        handlers are cancelled, readers end, handlers are cleared and every task finishes."""
        if not self.isconnected() or self._leaving:
            await self._wait_stopped()
            return
        self._leaving = True
        await self._drain_rpc_invocation_tasks()
        self._error_stream_readers()
        self._dispose_open_stream_writers()
        if self._server_participant is not None:
            self._server._depart(self._server_participant, reason, client_initiated=True)
        self._stop()
        await self._wait_stopped()
        # as the SDK does, from disconnect() itself once the room's events are all processed
        if self._connection_state != _DISCONNECTED:
            self.local_participant._info.disconnect_reason = reason
            self._connection_state = _DISCONNECTED
            self.emit("connection_state_changed", self._connection_state)
            self.emit("disconnected", reason)

    async def get_rtc_stats(self) -> rtc.RtcStats:
        if not self.isconnected():
            raise RuntimeError("the room isn't connected")
        return rtc.RtcStats(publisher_stats=[], subscriber_stats=[])

    async def simulate_scenario(self, scenario: proto_room.SimulateScenarioKind.ValueType) -> None:
        raise NotImplementedError("use MemoryLiveKit's fault switches instead")

    def __repr__(self) -> str:
        state = rtc.ConnectionState.Name(self._connection_state)
        identity = self._server_participant.identity if self._server_participant else None
        return f"MemoryRoom(name={self.name!r}, identity={identity!r}, connection_state={state})"

    # -- session lifecycle (driven by the server) -----------------------------------------------

    def _attach(
        self,
        room: ServerRoom,
        participant: ServerParticipant,
        others: list[ServerParticipant],
        options: rtc.RoomOptions,
    ) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._server_room = room
        self._server_participant = participant
        self._auto_subscribe = options.auto_subscribe
        self._leaving = False
        self._inbox = asyncio.Queue()
        self._stream_readers.clear()
        self._info = proto_room.RoomInfo(
            sid=room.sid,
            name=room.name,
            creation_time=int(room.creation_time * 1000),
            empty_timeout=300,
            departure_timeout=20,
            num_participants=len(others) + 1,
        )
        self._resolve_first_sid(room.sid)
        self._local_participant = MemoryLocalParticipant(
            self, participant.info(rtc.ParticipantState.PARTICIPANT_STATE_ACTIVE)
        )
        # participants already there arrive silently with their publications, as in the SDK
        self._remote_participants.clear()
        for other in others:
            rp = _remote_participant(other.info(rtc.ParticipantState.PARTICIPANT_STATE_ACTIVE))
            for track in other._tracks.values():
                pub = MemoryRemoteTrackPublication(
                    self, other.identity, track.publication_info(remote=True)
                )
                rp._track_publications[pub.sid] = pub
            self._remote_participants[other.identity] = rp
        self._connection_state = _CONNECTED
        self._accepting = True
        self._dispatch_task = loop.create_task(self._dispatch(), name=f"MemoryRoom {room.name}")
        self._server._track_task(self._dispatch_task)

        self._post(functools.partial(self._on_connection_state, _CONNECTED))
        if self._may_auto_subscribe():
            for other in others:
                for sid in other._tracks:
                    self._post(functools.partial(self._on_track_subscribe, other.identity, sid))

    def _live_participant(self) -> ServerParticipant | None:
        """Our participant on the server, while we may still send."""
        if self._accepting and not self._leaving:
            return self._server_participant
        return None

    def _may_auto_subscribe(self) -> bool:
        participant = self._server_participant
        return self._auto_subscribe and participant is not None and participant.grants.can_subscribe

    def _post(self, item: _Item) -> bool:
        if not self._accepting:
            return False
        self._inbox.put_nowait(item)
        self._server._count_post()
        return True

    def _post_marker(self, marker: asyncio.Future[None]) -> bool:
        if not self._accepting:
            return False
        self._inbox.put_nowait(functools.partial(_resolve, marker))
        return True

    def _stop(self) -> None:
        if self._accepting:
            self._accepting = False
            self._inbox.put_nowait(None)

    async def _wait_stopped(self) -> None:
        task = self._dispatch_task
        if task is not None and not task.done() and task is not asyncio.current_task():
            await asyncio.shield(task)

    async def _dispatch(self) -> None:
        while True:
            item = await self._inbox.get()
            if item is None:
                break
            try:
                item()
            except Exception:
                logger.exception("error while delivering an event to %r", self)
            # one event per loop iteration, as events come from the FFI thread in the SDK:
            # tasks a handler starts get to run before the next event
            await asyncio.sleep(0)
        try:
            await self._teardown()
        except Exception:
            logger.exception("error while closing %r", self)

    async def _teardown(self) -> None:
        await self._drain_rpc_invocation_tasks()
        for request_id in list(self._unanswered_calls):
            self._answer_rpc(
                request_id, None, builtin_rpc_error(rtc.RpcError.ErrorCode.RECIPIENT_DISCONNECTED)
            )
        for fut in self._pending_calls.values():
            if not fut.done():
                fut.set_exception(caller_rpc_error(rtc.RpcError.ErrorCode.RECIPIENT_DISCONNECTED))
        self._pending_calls.clear()
        for ack in self._pending_acks.values():
            if not ack.done():
                ack.set_exception(caller_rpc_error(rtc.RpcError.ErrorCode.RECIPIENT_DISCONNECTED))
        self._pending_acks.clear()
        self._error_stream_readers()
        self._dispose_open_stream_writers()
        self._byte_stream_handlers.clear()
        self._text_stream_handlers.clear()
        if self._local_participant is not None:
            self._local_participant._rpc_handlers.clear()

    def _error_stream_readers(self) -> None:
        for reader in list(self._stream_readers.values()):
            reader._signal_disconnect()
        self._stream_readers.clear()

    # -- events, applied by the dispatch task ---------------------------------------------------

    def _participant(self, identity: str) -> rtc.Participant | None:
        local = self._local_participant
        if local is not None and identity == local.identity:
            return local
        return self._remote_participants.get(identity)

    def _session_of(self, identity: str) -> MemoryRoom | None:
        room = self._server_room
        participant = room._participants.get(identity) if room is not None else None
        return participant.session if participant is not None else None

    def _server_track(self, identity: str, sid: str) -> ServerTrack | None:
        room = self._server_room
        publisher = room._participants.get(identity) if room is not None else None
        return publisher._tracks.get(sid) if publisher is not None else None

    def _on_connection_state(self, state: proto_room.ConnectionState.ValueType) -> None:
        self._connection_state = state
        self.emit("connection_state_changed", state)

    def _on_disconnected(self, reason: proto_participant.DisconnectReason.ValueType) -> None:
        self.local_participant._info.disconnect_reason = reason
        self.emit("disconnected", reason)

    def _on_participant_connected(self, info: proto_participant.ParticipantInfo) -> None:
        if info.identity in self._remote_participants:
            logger.error("participant %s already exists in %r", info.identity, self)
            return
        participant = _remote_participant(info)
        self._remote_participants[info.identity] = participant
        self.emit("participant_connected", participant)

    def _on_participant_active(self, identity: str) -> None:
        participant = self._remote_participants.get(identity)
        if participant is not None:
            participant._info.state = rtc.ParticipantState.PARTICIPANT_STATE_ACTIVE
            self.emit("participant_active", participant)

    def _on_participant_disconnected(
        self, identity: str, reason: proto_participant.DisconnectReason.ValueType
    ) -> None:
        participant = self._remote_participants.pop(identity, None)
        if participant is not None:
            participant._info.disconnect_reason = reason
            self.emit("participant_disconnected", participant)

    # -- realistic mode: participant updates, reconnection --------------------------------------

    def _on_participant_update(self, info: proto_participant.ParticipantInfo) -> None:
        """Apply an update about another participant as the SDK does
        (livekit/rust-sdks, livekit/src/room/mod.rs ``handle_participant_update``)."""
        local = self._local_participant
        if local is not None and info.identity == local.identity:
            return
        existing = self._remote_participants.get(info.identity)
        if existing is not None and existing.sid != info.sid:
            # the same identity in a new session: the SDK drops the old participant itself
            self._drop_remote(existing)
            existing = None
        if info.state == rtc.ParticipantState.PARTICIPANT_STATE_DISCONNECTED:
            if existing is not None:
                existing._info.disconnect_reason = info.disconnect_reason
                self._drop_remote(existing)
            return
        if existing is None:
            participant = _remote_participant(info)
            self._remote_participants[info.identity] = participant
            self.emit("participant_connected", participant)
            if info.state == _ACTIVE:
                self.emit("participant_active", participant)
            return
        was_active = existing._info.state == _ACTIVE
        self._apply_info(existing, info)
        if not was_active and info.state == _ACTIVE:
            self.emit("participant_active", existing)

    def _apply_info(
        self, participant: rtc.RemoteParticipant, info: proto_participant.ParticipantInfo
    ) -> None:
        # as the SDK's update_info (livekit/src/room/participant/mod.rs): name, metadata, then
        # attributes, each reported when it changed
        mine = participant._info
        mine.state = info.state
        mine.client_protocol = info.client_protocol
        if info.name != mine.name:
            old = mine.name
            mine.name = info.name
            self.emit("participant_name_changed", participant, old, info.name)
        if info.metadata != mine.metadata:
            old = mine.metadata
            mine.metadata = info.metadata
            self.emit("participant_metadata_changed", participant, old, info.metadata)
        before, after = dict(mine.attributes), dict(info.attributes)
        changed = {k: v for k, v in after.items() if before.get(k) != v}
        changed.update({k: "" for k in before if k not in after})
        if changed:
            mine.attributes.clear()
            mine.attributes.update(after)
            self.emit("participant_attributes_changed", changed, participant)

    def _drop_remote(self, participant: rtc.RemoteParticipant) -> None:
        """The SDK's handle_participant_disconnect: its tracks go, then it."""
        identity = participant.identity
        for sid, publication in list(participant._track_publications.items()):
            if publication.subscribed:
                self._on_track_unsubscribed(identity, sid)
            participant._track_publications.pop(sid, None)
            self.emit("track_unpublished", publication, participant)
        if self._remote_participants.get(identity) is participant:
            del self._remote_participants[identity]
        self.emit("participant_disconnected", participant)

    def _on_remotes_lost(self) -> None:
        # a full reconnect starts by dropping every remote participant (room/mod.rs,
        # handle_restarting)
        for participant in list(self._remote_participants.values()):
            self._drop_remote(participant)

    def _on_remotes_back(
        self,
        infos: list[
            tuple[proto_participant.ParticipantInfo, list[proto_track.TrackPublicationInfo]]
        ],
    ) -> None:
        # the join response of a full reconnect: the others arrive again, with their tracks
        # (room/mod.rs, handle_signal_restarted)
        for info, tracks in infos:
            self._on_participant_update(info)
            for track in tracks:
                self._on_track_published(info.identity, track)

    def _on_reconnecting(self) -> None:
        self.emit("reconnecting")

    def _on_reconnected(self) -> None:
        self.emit("reconnected")

    def _on_local_track_republished(
        self, previous_sid: str, info: proto_track.TrackPublicationInfo
    ) -> None:
        # as the SDK: the publication object is kept, under the new sid (rtc/room.py)
        local = self.local_participant
        publication = local._track_publications.pop(previous_sid, None)
        if publication is None:
            return
        publication._info = info
        local._track_publications[publication.sid] = publication
        if publication.track is not None:
            publication.track._info.sid = publication.sid
            publication.track._set_room(self)
        self.emit("local_track_republished", publication, previous_sid)

    def _on_attributes_changed(
        self, identity: str, attributes: dict[str, str], changed: dict[str, str]
    ) -> None:
        participant = self._participant(identity)
        if participant is not None:
            participant._info.attributes.clear()
            participant._info.attributes.update(attributes)
            self.emit("participant_attributes_changed", changed, participant)

    def _on_metadata_changed(self, identity: str, metadata: str) -> None:
        participant = self._participant(identity)
        if participant is not None:
            old = participant.metadata
            participant._info.metadata = metadata
            self.emit("participant_metadata_changed", participant, old, metadata)

    def _on_name_changed(self, identity: str, name: str) -> None:
        participant = self._participant(identity)
        if participant is not None:
            old = participant.name
            participant._info.name = name
            self.emit("participant_name_changed", participant, old, name)

    def _on_track_published(self, identity: str, info: proto_track.TrackPublicationInfo) -> None:
        participant = self._remote_participants.get(identity)
        if participant is None or info.sid in participant._track_publications:
            return
        publication = MemoryRemoteTrackPublication(self, identity, info)
        participant._track_publications[publication.sid] = publication
        self.emit("track_published", publication, participant)
        if self._may_auto_subscribe():
            self._post(functools.partial(self._on_track_subscribe, identity, publication.sid))

    def _on_track_subscribe(self, identity: str, sid: str, requested: bool = False) -> None:
        participant = self._remote_participants.get(identity)
        publication = participant._track_publications.get(sid) if participant else None
        server_track = self._server_track(identity, sid)
        me = self._server_participant
        if participant is None or publication is None or server_track is None or me is None:
            return
        if publication.subscribed:
            return
        if not me.grants.can_subscribe:
            if requested:
                self.emit("track_subscription_failed", participant, sid, "insufficient permissions")
            return
        track = _remote_track(server_track, self._server._relay_output(server_track, me))
        track._set_room(self)
        publication._subscribed = True
        publication._track = track
        server_track._subscribers.add(me.identity)
        self.emit("track_subscribed", track, publication, participant)
        if not server_track._announced:
            server_track._announced = True
            publisher = self._session_of(identity)
            if publisher is not None:
                publisher._post(functools.partial(publisher._on_local_track_subscribed, sid))

    def _on_track_unsubscribed(self, identity: str, sid: str) -> None:
        participant = self._remote_participants.get(identity)
        publication = participant._track_publications.get(sid) if participant else None
        if participant is None or publication is None or not publication.subscribed:
            return
        track = publication.track
        if track is not None:
            track._set_room(None)
        publication._track = None
        publication._subscribed = False
        server_track = self._server_track(identity, sid)
        if server_track is not None and self._server_participant is not None:
            server_track._subscribers.discard(self._server_participant.identity)
            if server_track.relay is not None:
                server_track.relay.drop(self._server_participant.identity)
        self.emit("track_unsubscribed", track, publication, participant)

    def _on_track_unpublished(self, identity: str, sid: str) -> None:
        participant = self._remote_participants.get(identity)
        publication = participant._track_publications.pop(sid, None) if participant else None
        if participant is not None and publication is not None:
            self.emit("track_unpublished", publication, participant)

    def _on_local_track_published(self, sid: str) -> None:
        publication = self.local_participant._track_publications.get(sid)
        if publication is None:
            return
        track = publication.track
        if track is not None:
            track._set_room(self)
        self.emit("local_track_published", publication, track)

    def _on_local_track_unpublished(self, sid: str, done: asyncio.Future[None] | None) -> None:
        try:
            publication = self.local_participant._track_publications.pop(sid, None)
            if publication is not None:
                track = publication.track
                if track is not None:
                    track._set_room(None)
                # emitted with publication.track still set, then cleared, as the SDK does
                self.emit("local_track_unpublished", publication)
                publication._track = None
        finally:
            if done is not None and not done.done():
                done.set_result(None)

    def _on_local_track_subscribed(self, sid: str) -> None:
        publication = self.local_participant._track_publications.get(sid)
        if publication is None:
            return
        if not publication._first_subscription.done():
            publication._first_subscription.set_result(None)
        self.emit("local_track_subscribed", publication.track)

    def _on_data(
        self, sender: str, payload: bytes, kind: proto_room.DataPacketKind.ValueType, topic: str
    ) -> None:
        packet = rtc.DataPacket(
            data=payload, kind=kind, participant=self._remote_participants.get(sender), topic=topic
        )
        self.emit("data_received", packet)

    def _on_transcription(
        self, identity: str, track_sid: str, segments: list[rtc.TranscriptionSegment]
    ) -> None:
        participant = self._participant(identity)
        publication = participant.track_publications.get(track_sid) if participant else None
        self.emit("transcription_received", segments, participant, publication)

    def _on_stream_header(
        self,
        info: rtc.ByteStreamInfo | rtc.TextStreamInfo,
        sender: str,
        expected_size: int | None,
    ) -> None:
        stream_id = info.stream_id
        if stream_id in self._stream_readers:
            logger.error("stream %r already open", stream_id)
            return

        def on_close() -> None:
            if self._stream_readers.get(stream_id) is reader:
                del self._stream_readers[stream_id]

        reader: MemoryByteStreamReader | MemoryTextStreamReader
        if isinstance(info, rtc.TextStreamInfo):
            text_handler = self._text_stream_handlers.get(info.topic)
            if text_handler is None:
                logger.info(
                    "ignoring text stream with topic '%s', no callback attached", info.topic
                )
                return
            reader = text_reader = MemoryTextStreamReader(
                info, expected_size=expected_size, on_close=on_close
            )
            self._stream_readers[stream_id] = reader
            text_handler(text_reader, sender)
        else:
            byte_handler = self._byte_stream_handlers.get(info.topic)
            if byte_handler is None:
                logger.info(
                    "ignoring byte stream with topic '%s', no callback attached", info.topic
                )
                return
            reader = byte_reader = MemoryByteStreamReader(
                info, expected_size=expected_size, on_close=on_close
            )
            self._stream_readers[stream_id] = reader
            byte_handler(byte_reader, sender)

    def _on_stream_chunk(self, stream_id: str, chunk: bytes | str) -> None:
        reader = self._stream_readers.get(stream_id)
        if isinstance(reader, MemoryByteStreamReader) and isinstance(chunk, bytes):
            reader._feed(chunk)
        elif isinstance(reader, MemoryTextStreamReader) and isinstance(chunk, str):
            reader._feed(chunk)

    def _on_stream_trailer(self, stream_id: str, reason: str, attributes: dict[str, str]) -> None:
        reader = self._stream_readers.pop(stream_id, None)
        if reader is not None:
            reader._trailer(reason, attributes)

    def _on_stream_aborted(self, stream_id: str, message: str) -> None:
        reader = self._stream_readers.pop(stream_id, None)
        if reader is not None:
            reader._finish(rtc.StreamError(message))

    # -- RPC ------------------------------------------------------------------------------------

    async def _call(self, sender: ServerParticipant, call: rtc.RpcCallInfo) -> str:
        realism = self._server.realism
        if realism is not None:
            return await rpc.call(self, sender, call, realism)
        response_timeout = (
            call.response_timeout
            if call.response_timeout is not None
            else RPC_DEFAULT_RESPONSE_TIMEOUT
        )
        latency = (
            call.max_round_trip_latency
            if call.max_round_trip_latency is not None
            else RPC_DEFAULT_MAX_ROUND_TRIP_LATENCY
        )
        target = sender.room._participants.get(call.destination_identity)
        if target is None or target is sender:
            raise caller_rpc_error(rtc.RpcError.ErrorCode.RECIPIENT_NOT_FOUND)
        request_id = str(uuid.uuid4())
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending_calls[request_id] = fut
        # what the handler is told, as the Rust SDK computes it
        handler_timeout = max(response_timeout - latency, RPC_MIN_EFFECTIVE_TIMEOUT)
        s = target.session
        try:
            request = functools.partial(
                s._on_rpc_request,
                request_id,
                self,
                sender.identity,
                call.method,
                call.payload,
                handler_timeout,
            )
            if not s._post(request):
                raise caller_rpc_error(rtc.RpcError.ErrorCode.RECIPIENT_DISCONNECTED)
            try:
                return await asyncio.wait_for(fut, response_timeout)
            except asyncio.TimeoutError:
                raise caller_rpc_error(rtc.RpcError.ErrorCode.RESPONSE_TIMEOUT) from None
        finally:
            self._pending_calls.pop(request_id, None)

    def _on_rpc_request(
        self,
        request_id: str,
        caller: MemoryRoom,
        caller_identity: str,
        method: str,
        payload: str,
        response_timeout: float,
        v1: bool = True,
    ) -> None:
        self._unanswered_calls[request_id] = caller
        if self._server.realism is not None:
            self._call_versions[request_id] = (caller_identity, v1)
            rpc.acknowledge(self, request_id, caller_identity)
        task = asyncio.get_running_loop().create_task(
            self._invoke_rpc(request_id, caller_identity, method, payload, response_timeout)
        )
        self._rpc_invocation_tasks.add(task)
        task.add_done_callback(self._rpc_invocation_tasks.discard)
        self._server._track_task(task)

    async def _invoke_rpc(
        self,
        request_id: str,
        caller_identity: str,
        method: str,
        payload: str,
        response_timeout: float,
    ) -> None:
        # the SDK's _handle_rpc_method_invocation, answering through the server
        invocation = rtc.RpcInvocationData(
            request_id, caller_identity, payload, response_timeout, method=method
        )
        response: str | None = None
        error: rtc.RpcError | None = None
        try:
            result = await self.local_participant._run_incoming_chain(invocation)
            if result is not None and not isinstance(result, str):
                raise TypeError(f"RPC handler for {method} returned {type(result).__name__}")
            response = result
        except rtc.RpcError as e:
            error = e
        except Exception:
            logger.exception(
                "Uncaught error returned by RPC handler for %s. "
                "Returning APPLICATION_ERROR instead.",
                method,
            )
            error = builtin_rpc_error(rtc.RpcError.ErrorCode.APPLICATION_ERROR)
        self._answer_rpc(request_id, response, error)

    def _answer_rpc(
        self, request_id: str, response: str | None, error: rtc.RpcError | None
    ) -> None:
        caller = self._unanswered_calls.pop(request_id, None)
        if caller is None:
            return
        version = self._call_versions.pop(request_id, None)
        if version is not None:
            rpc.answer(self, request_id, version[0], version[1], response, error)
            return
        wire: _ErrorTuple | None = (
            None if error is None else (error.code, error.message, error.data)
        )
        caller._post(functools.partial(caller._on_rpc_response, request_id, response or "", wire))

    def _on_rpc_ack(self, request_id: str) -> None:
        ack = self._pending_acks.get(request_id)
        if ack is not None and not ack.done():
            ack.set_result(None)

    def _on_rpc_response(self, request_id: str, payload: str, error: _ErrorTuple | None) -> None:
        fut = self._pending_calls.pop(request_id, None)
        if fut is None or fut.done():
            return
        if error is None:
            fut.set_result(payload)
        else:
            fut.set_exception(wire_rpc_error(*error))
