"""The local participant and remote publications of a :class:`~memory_livekit.MemoryRoom`."""

from __future__ import annotations

import asyncio
import functools
import mimetypes
import os
import weakref
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from livekit import api, rtc
from livekit.rtc._proto import participant_pb2 as proto_participant
from livekit.rtc._proto import track_pb2 as proto_track
from livekit.rtc.participant import (
    PublishDataError,
    PublishDataTrackError,
    PublishDTMFError,
    PublishTrackError,
    PublishTranscriptionError,
    UnpublishTrackError,
)

from ._common import caller_rpc_error, logger, no_ffi_handle
from .server import SOURCE_NAMES, RpcRecord, ServerParticipant, ServerTrack
from .streams import MemoryByteStreamWriter, MemoryTextStreamWriter, _SendingWriter

if TYPE_CHECKING:
    from .room import MemoryRoom

_RpcHandlerT = TypeVar(
    "_RpcHandlerT",
    bound=Callable[[rtc.RpcInvocationData], Awaitable[str | None] | str | None],
)


def _may_publish(grants: api.VideoGrants, source: proto_track.TrackSource.ValueType) -> bool:
    # as the server checks it: can_publish, then can_publish_sources when given
    if not grants.can_publish:
        return False
    if grants.can_publish_sources is None:
        return True
    return SOURCE_NAMES.get(source) in grants.can_publish_sources


def _encoded_data_packet_size(
    sender: ServerParticipant,
    payload: bytes,
    reliable: bool,
    destination_identities: tuple[str, ...],
    topic: str,
    sequence: int,
) -> int:
    """The size of the DataPacket the SDK sends for ``publish_data`` (the user packet, with the
    sender's identity and sid, and a sequence number when reliable)."""
    from livekit.protocol import models

    packet = models.DataPacket(
        kind=models.DataPacket.RELIABLE if reliable else models.DataPacket.LOSSY,
        participant_identity=sender.identity,
        participant_sid=sender.sid,
        destination_identities=list(destination_identities),
        user=models.UserPacket(payload=payload, topic=topic),
        sequence=sequence if reliable else 0,
    )
    return packet.ByteSize()


class MemoryRemoteTrackPublication(rtc.RemoteTrackPublication):
    """``rtc.RemoteTrackPublication`` whose subscription goes to the in-memory server."""

    def __init__(
        self, room: MemoryRoom, participant_identity: str, info: proto_track.TrackPublicationInfo
    ) -> None:
        super().__init__(proto_track.OwnedTrackPublication(handle=no_ffi_handle(), info=info))
        self._memory_room = room
        self._participant_identity = participant_identity

    def set_subscribed(self, subscribed: bool) -> None:
        room = self._memory_room
        if subscribed:
            room._post(
                functools.partial(
                    room._on_track_subscribe, self._participant_identity, self.sid, True
                )
            )
        else:
            room._post(
                functools.partial(room._on_track_unsubscribed, self._participant_identity, self.sid)
            )

    def set_video_quality(self, quality: rtc.VideoQuality.ValueType) -> None:
        # same checks as the SDK; there are no simulcast layers to pick from in memory
        if self.kind != rtc.TrackKind.KIND_VIDEO:
            raise ValueError(
                f"set_video_quality is only supported on video publications (sid={self.sid})"
            )
        if not self.simulcasted:
            raise ValueError(
                f"set_video_quality requires a simulcasted publication (sid={self.sid})"
            )

    def __repr__(self) -> str:
        return (
            f"MemoryRemoteTrackPublication(sid={self.sid}, name={self.name}, "
            f"kind={self.kind}, source={self.source})"
        )


class MemoryLocalParticipant(rtc.LocalParticipant):
    """``rtc.LocalParticipant`` of a :class:`MemoryRoom`.

    Everything that went through the FFI goes to the in-memory server instead. RPC reuses the
    SDK's own interceptor chain and handler deadline logic; ``_rpc_handlers`` is the SDK's dict.
    """

    def __init__(self, room: MemoryRoom, info: proto_participant.ParticipantInfo) -> None:
        super().__init__(
            room._room_queue, proto_participant.OwnedParticipant(handle=no_ffi_handle(), info=info)
        )
        self._memory_room = room
        self._memory_writers: weakref.WeakSet[_SendingWriter] = weakref.WeakSet()
        self._data_sequence = 0

    # -- data -----------------------------------------------------------------------------------

    async def publish_data(
        self,
        payload: bytes | str,
        *,
        reliable: bool = True,
        destination_identities: Sequence[str] = (),
        topic: str = "",
    ) -> None:
        data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        sender = self._memory_room._live_participant()
        if sender is None:
            raise PublishDataError("failed to send data, room closed")
        realism = sender.room.server.realism
        limit = realism.data_packet_limit if realism is not None else None
        if limit:  # 0 is no limit, as for the SDK
            self._data_sequence += 1 if reliable else 0
            size = _encoded_data_packet_size(
                sender, data, reliable, tuple(destination_identities), topic, self._data_sequence
            )
            if size > limit:
                await asyncio.sleep(0)
                # the SDK's refusal (livekit/src/rtc_engine/rtc_session.rs, data channel task;
                # the prefixes are RoomError::Engine and EngineError::Internal)
                raise PublishDataError(
                    f"engine: internal error: data packet size ({size} bytes) exceeds the "
                    f"negotiated maximum message size ({limit} bytes)"
                )
        sender.room.server._route_data(
            sender,
            data,
            reliable=reliable,
            destination_identities=tuple(destination_identities),
            topic=topic,
        )
        await asyncio.sleep(0)

    async def publish_dtmf(self, *, code: int, digit: str) -> None:
        raise PublishDTMFError("SIP DTMF is not supported by the in-memory server")

    async def publish_transcription(self, transcription: rtc.Transcription) -> None:
        sender = self._memory_room._live_participant()
        if sender is None:
            raise PublishTranscriptionError("failed to send transcription, room closed")
        network = sender.room.server._network
        for target in sender.room.server._targets(sender, ()):
            s = target.session
            segments = [
                rtc.TranscriptionSegment(
                    id=seg.id,
                    text=seg.text,
                    start_time=seg.start_time,
                    end_time=seg.end_time,
                    language=seg.language,
                    final=seg.final,
                )
                for seg in transcription.segments
            ]
            network.send(
                sender,
                target,
                functools.partial(
                    s._on_transcription,
                    transcription.participant_identity,
                    transcription.track_sid,
                    segments,
                ),
            )
        await asyncio.sleep(0)

    async def publish_data_track(self, *, name: str) -> rtc.LocalDataTrack:
        raise PublishDataTrackError("data tracks are not supported by the in-memory server")

    # -- streams --------------------------------------------------------------------------------

    async def stream_bytes(
        self,
        name: str,
        *,
        total_size: int | None = None,
        mime_type: str = "application/octet-stream",
        attributes: dict[str, str] | None = None,
        stream_id: str | None = None,
        destination_identities: list[str] | None = None,
        topic: str = "",
    ) -> MemoryByteStreamWriter:
        writer = MemoryByteStreamWriter(
            self,
            name=name,
            topic=topic,
            attributes=attributes,
            stream_id=stream_id,
            total_size=total_size,
            mime_type=mime_type,
            destination_identities=destination_identities,
        )
        await writer._send_header()
        return writer

    async def stream_text(
        self,
        *,
        destination_identities: list[str] | None = None,
        topic: str = "",
        attributes: dict[str, str] | None = None,
        stream_id: str | None = None,
        reply_to_id: str | None = None,
        total_size: int | None = None,
        sender_identity: str | None = None,
    ) -> MemoryTextStreamWriter:
        writer = MemoryTextStreamWriter(
            self,
            topic=topic,
            attributes=attributes,
            stream_id=stream_id,
            total_size=total_size,
            reply_to_id=reply_to_id,
            destination_identities=destination_identities,
            sender_identity=sender_identity,
        )
        await writer._send_header()
        return writer

    async def send_text(
        self,
        text: str,
        *,
        destination_identities: list[str] | None = None,
        topic: str = "",
        attributes: dict[str, str] | None = None,
        reply_to_id: str | None = None,
        compress: bool = True,
    ) -> rtc.TextStreamInfo:
        writer = MemoryTextStreamWriter(
            self,
            topic=topic,
            attributes=attributes,
            total_size=len(text.encode()),
            reply_to_id=reply_to_id,
            destination_identities=destination_identities,
        )
        writer._transmit_size = True
        await writer._send_header()
        await writer.write(text)
        await writer.aclose()
        return writer.info

    async def send_bytes(
        self,
        data: bytes,
        *,
        topic: str = "",
        name: str | None = None,
        mime_type: str | None = None,
        destination_identities: list[str] | None = None,
        attributes: dict[str, str] | None = None,
        stream_id: str | None = None,
        compress: bool = True,
    ) -> rtc.ByteStreamInfo:
        writer = await self.stream_bytes(
            name if name is not None else "unknown",
            total_size=len(data),
            mime_type=mime_type if mime_type is not None else "application/octet-stream",
            attributes=attributes,
            stream_id=stream_id,
            destination_identities=destination_identities,
            topic=topic,
        )
        await writer.write(data)
        await writer.aclose()
        return writer.info

    async def send_file(
        self,
        file_path: str,
        *,
        topic: str = "",
        destination_identities: list[str] | None = None,
        attributes: dict[str, str] | None = None,
        stream_id: str | None = None,
        compress: bool = True,
    ) -> rtc.ByteStreamInfo:
        data = await asyncio.to_thread(Path(file_path).read_bytes)
        mime_type, _ = mimetypes.guess_type(file_path)
        return await self.send_bytes(
            data,
            topic=topic,
            name=os.path.basename(file_path),
            mime_type=mime_type or "application/octet-stream",
            destination_identities=destination_identities,
            attributes=attributes,
            stream_id=stream_id,
        )

    def _dispose_open_stream_writers(self) -> None:
        super()._dispose_open_stream_writers()
        for writer in list(self._memory_writers):
            writer._dispose()
        self._memory_writers.clear()

    # -- RPC ------------------------------------------------------------------------------------

    def register_rpc_method(
        self, method_name: str, handler: _RpcHandlerT | None = None
    ) -> _RpcHandlerT | Callable[[_RpcHandlerT], _RpcHandlerT]:
        def register(handler_func: _RpcHandlerT) -> _RpcHandlerT:
            self._rpc_handlers[method_name] = handler_func
            return handler_func

        if handler is not None:
            return register(handler)
        return register

    def unregister_rpc_method(self, method: str) -> None:
        self._rpc_handlers.pop(method, None)

    async def _perform_rpc_ffi(self, call: rtc.RpcCallInfo) -> str:
        # perform_rpc() (the SDK's, with its interceptors) ends here, where the FFI call was
        room = self._memory_room
        sender = room._live_participant()
        if sender is None:
            raise caller_rpc_error(rtc.RpcError.ErrorCode.SEND_FAILED)
        record = RpcRecord(
            caller=sender.identity,
            destination=call.destination_identity,
            method=call.method,
            payload=call.payload,
        )
        sender.room.rpc_calls.append(record)
        try:
            response = await room._call(sender, call)
        except rtc.RpcError as e:
            record.error_code = e.code
            raise
        else:
            record.response = response
            return response
        finally:
            record.done = True

    # -- tracks ---------------------------------------------------------------------------------

    async def publish_track(
        self, track: rtc.LocalTrack, options: rtc.TrackPublishOptions | None = None
    ) -> rtc.LocalTrackPublication:
        if options is None:
            options = rtc.TrackPublishOptions()
        room = self._memory_room
        sender = room._live_participant()
        if sender is None:
            raise PublishTrackError("cannot publish a track: the room is not connected")
        if not isinstance(track, (rtc.LocalAudioTrack, rtc.LocalVideoTrack)):
            raise PublishTrackError("track is not a LocalTrack")
        if any(p.track is track for p in self._track_publications.values()):
            raise PublishTrackError("track already published")
        if not _may_publish(sender.grants, options.source):
            raise PublishTrackError("insufficient permissions: cannot publish this track")
        await asyncio.sleep(0)
        if room._live_participant() is not sender:
            raise PublishTrackError("cannot publish a track: the room is not connected")

        server_track = ServerTrack(sender.identity, track, options)
        publication = rtc.LocalTrackPublication(
            proto_track.OwnedTrackPublication(
                handle=no_ffi_handle(), info=server_track.publication_info(remote=False)
            )
        )
        publication._track = track
        track._info.sid = publication.sid
        self._track_publications[publication.sid] = publication
        # as in the SDK: local_track_published comes after publish_track() returns
        room._post(functools.partial(room._on_local_track_published, publication.sid))
        sender.room.server._publish(sender, server_track)
        return publication

    async def unpublish_track(self, track_sid: str) -> None:
        room = self._memory_room
        publication = self._track_publications.get(track_sid)
        sender = room._live_participant()
        if sender is None:
            raise UnpublishTrackError("cannot unpublish a track: the room is not connected")
        if publication is None:
            raise UnpublishTrackError(f"track {track_sid} is not published")
        sender.room.server._unpublish(sender, track_sid)
        done = asyncio.get_running_loop().create_future()
        if room._post(functools.partial(room._on_local_track_unpublished, track_sid, done)):
            # as in the SDK: local_track_unpublished is emitted before this returns
            await done
        self._track_publications.pop(track_sid, None)
        if publication._track is not None:
            publication._track._set_room(None)
        publication._track = None

    def set_track_subscription_permissions(
        self,
        *,
        allow_all_participants: bool,
        participant_permissions: list[rtc.ParticipantTrackPermission] | None = None,
    ) -> None:
        pass  # every subscriber may subscribe in memory

    # -- participant info -----------------------------------------------------------------------

    async def set_attributes(self, attributes: dict[str, str]) -> None:
        await self._update(attributes=dict(attributes))

    async def set_metadata(self, metadata: str) -> None:
        await self._update(metadata=metadata)

    async def set_name(self, name: str) -> None:
        await self._update(name=name)

    async def _update(
        self,
        *,
        attributes: dict[str, str] | None = None,
        metadata: str | None = None,
        name: str | None = None,
    ) -> None:
        room = self._memory_room
        sender = room._live_participant()
        if sender is None:
            return  # the SDK does not report this either
        if not sender.grants.can_update_own_metadata:
            # the server refuses, and the SDK does not raise
            logger.warning(
                "%s may not update its own metadata/attributes (no can_update_own_metadata grant)",
                sender.identity,
            )
            return
        sender.room.server._update_participant(
            sender, attributes=attributes, metadata=metadata, name=name
        )
        # return once our own view has the update, so reading it right after works
        marker = asyncio.get_running_loop().create_future()
        if room._post_marker(marker):
            await marker

    def __repr__(self) -> str:
        return f"MemoryLocalParticipant(sid={self.sid}, identity={self.identity}, name={self.name})"
