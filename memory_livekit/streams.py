"""Byte and text data streams over the in-memory server.

Writers and readers subclass the real ``rtc`` classes, so handlers typed for them accept these
unchanged; only the transport (the FFI) is replaced.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from livekit import rtc

from ._common import now_ms, split_bytes, split_text
from .server import StreamRecord

if TYPE_CHECKING:
    from .participant import MemoryLocalParticipant
    from .room import MemoryRoom
    from .server import ServerParticipant, ServerRoom

_DISCONNECT_ERROR = "Disconnected while receiving"  # the SDK's message
ChunkT = TypeVar("ChunkT", bytes, str)


@dataclasses.dataclass
class _End:
    error: rtc.StreamError | None = None
    attributes: dict[str, str] = dataclasses.field(default_factory=dict)


class OutgoingStream:
    """An open stream on the server: the sessions its header reached."""

    def __init__(
        self,
        room: ServerRoom,
        record: StreamRecord,
        sender: ServerParticipant,
        targets: list[ServerParticipant],
    ) -> None:
        self._room = room
        self.record = record
        self._sender = sender
        self._targets = targets
        self._ended = False

    @property
    def sender(self) -> str:
        return self.record.sender

    def _send_all(self, make: Callable[[MemoryRoom], Callable[[], None]]) -> None:
        network = self._room.server._network
        for target in self._targets:
            network.send(self._sender, target, make(target.session))

    def send(self, chunk: bytes | str) -> None:
        if self._ended:
            return
        stream_id = self.record.stream_id
        self._send_all(lambda s: functools.partial(s._on_stream_chunk, stream_id, chunk))
        self.record.size += len(chunk.encode()) if isinstance(chunk, str) else len(chunk)
        self.record.chunks += 1

    def close(self, reason: str, attributes: dict[str, str]) -> None:
        if self._end(reason):
            stream_id = self.record.stream_id
            self._send_all(
                lambda s: functools.partial(
                    s._on_stream_trailer, stream_id, reason, dict(attributes)
                )
            )

    def abort(self, message: str) -> None:
        if self._end(message):
            stream_id = self.record.stream_id
            self._send_all(lambda s: functools.partial(s._on_stream_aborted, stream_id, message))

    def _end(self, reason: str) -> bool:
        if self._ended:
            return False
        self._ended = True
        self.record.closed = True
        self.record.reason = reason
        if self._room._open_streams.get(self.record.stream_id) is self:
            del self._room._open_streams[self.record.stream_id]
        return True


def open_stream(
    sender: ServerParticipant,
    info: rtc.ByteStreamInfo | rtc.TextStreamInfo,
    *,
    destination_identities: tuple[str, ...],
    handler_identity: str,
    expected_size: int | None,
    receiver_size: int,
) -> OutgoingStream:
    """Send the header to the destinations, fixing who receives the stream."""
    room = sender.room
    targets: list[ServerParticipant] = []
    delivered: list[str] = []
    if sender.grants.can_publish_data:
        for participant in room.server._targets(sender, destination_identities):
            s = participant.session
            header = dataclasses.replace(
                info, attributes=dict(info.attributes or {}), size=receiver_size
            )
            if isinstance(header, rtc.TextStreamInfo):
                header.attachments = list(header.attachments)
            item = functools.partial(s._on_stream_header, header, handler_identity, expected_size)
            if room.server._network.send(sender, participant, item):
                targets.append(participant)
                delivered.append(participant.identity)
    record = StreamRecord(
        stream_id=info.stream_id,
        kind="text" if isinstance(info, rtc.TextStreamInfo) else "byte",
        sender=sender.identity,
        topic=info.topic,
        name=info.name if isinstance(info, rtc.ByteStreamInfo) else "",
        attributes=dict(info.attributes or {}),
        destination_identities=destination_identities,
        delivered_to=tuple(delivered),
    )
    room.streams.append(record)
    stream = OutgoingStream(room, record, sender, targets)
    room._open_streams[info.stream_id] = stream
    return stream


class _SendingWriter:
    """What the in-memory byte and text writers share: sending chunks over the server's
    outgoing stream, and closing it with a trailer."""

    _closed: bool
    _write_lock: asyncio.Lock
    _outgoing: OutgoingStream | None
    _disposed: bool
    _participant: MemoryLocalParticipant

    async def _send(self, chunks: Iterable[Any]) -> None:
        async with self._write_lock:
            if self._closed:
                raise RuntimeError("Cannot write after stream is closed")
            if self._outgoing is None:
                raise RuntimeError("Stream is not open")
            if self._disposed:
                raise rtc.StreamError("stream writer was dropped: the room disconnected")
            for chunk in chunks:
                self._outgoing.send(chunk)
        await asyncio.sleep(0)

    async def aclose(self, *, reason: str = "", attributes: dict[str, str] | None = None) -> None:
        if self._closed:
            raise RuntimeError("Stream already closed")
        if self._outgoing is None:
            raise RuntimeError("Stream is not open")
        self._closed = True
        self._participant._memory_writers.discard(self)
        if self._disposed:
            raise rtc.StreamError("stream writer was dropped: the room disconnected")
        self._outgoing.close(reason, dict(attributes or {}))
        await asyncio.sleep(0)

    def _dispose(self) -> None:
        self._disposed = True


class MemoryByteStreamWriter(_SendingWriter, rtc.ByteStreamWriter):
    """``rtc.ByteStreamWriter`` over the in-memory server. Writes of up to 15,000 bytes reach
    readers as one chunk each; longer writes are split there, as the SDK does."""

    def __init__(
        self,
        participant: MemoryLocalParticipant,
        *,
        name: str,
        topic: str = "",
        attributes: dict[str, str] | None = None,
        stream_id: str | None = None,
        total_size: int | None = None,
        mime_type: str = "application/octet-stream",
        destination_identities: list[str] | None = None,
    ) -> None:
        super().__init__(
            participant,
            name=name,
            topic=topic,
            attributes=attributes,
            stream_id=stream_id,
            total_size=total_size,
            mime_type=mime_type,
            destination_identities=destination_identities,
        )
        self._participant = participant
        self._destinations = tuple(destination_identities or ())
        self._outgoing: OutgoingStream | None = None
        self._disposed = False

    async def _send_header(self) -> None:
        sender = self._participant._memory_room._live_participant()
        if sender is None:
            raise rtc.StreamError("cannot open a stream: the room is not connected")
        self._info = rtc.ByteStreamInfo(
            stream_id=self._options.id or str(uuid.uuid4()),
            mime_type=self._options.mime_type,
            topic=self._options.topic,
            timestamp=now_ms(),
            size=self._total_size or 0,
            attributes=dict(self._options.attributes),
            name=self._options.name,
        )
        self._outgoing = open_stream(
            sender,
            self._info,
            destination_identities=self._destinations,
            handler_identity=sender.identity,
            expected_size=self._total_size,
            receiver_size=self._total_size or 0,
        )
        self._participant._memory_writers.add(self)
        await asyncio.sleep(0)

    async def write(self, data: bytes) -> None:
        await self._send(split_bytes(bytes(data)))


class MemoryTextStreamWriter(_SendingWriter, rtc.TextStreamWriter):
    """``rtc.TextStreamWriter`` over the in-memory server; text is chunked at 15,000 UTF-8
    bytes on character boundaries, as the SDK does."""

    def __init__(
        self,
        participant: MemoryLocalParticipant,
        *,
        topic: str = "",
        attributes: dict[str, str] | None = None,
        stream_id: str | None = None,
        total_size: int | None = None,
        reply_to_id: str | None = None,
        destination_identities: list[str] | None = None,
        sender_identity: str | None = None,
    ) -> None:
        super().__init__(
            participant,
            topic=topic,
            attributes=attributes,
            stream_id=stream_id,
            total_size=total_size,
            reply_to_id=reply_to_id,
            destination_identities=destination_identities,
            sender_identity=sender_identity,
        )
        self._participant = participant
        self._destinations = tuple(destination_identities or ())
        self._transmit_size = False  # set by send_text(), which knows the whole size
        self._outgoing: OutgoingStream | None = None
        self._disposed = False

    async def _send_header(self) -> None:
        sender = self._participant._memory_room._live_participant()
        if sender is None:
            raise rtc.StreamError("cannot open a stream: the room is not connected")
        self._info = rtc.TextStreamInfo(
            stream_id=self._options.id or str(uuid.uuid4()),
            mime_type="text/plain",
            topic=self._options.topic,
            timestamp=now_ms(),
            size=self._total_size or 0,
            attributes=dict(self._options.attributes),
            attachments=[],
        )
        # stream_text() does not transmit total_size (the SDK keeps it local); send_text() does
        sent_size = self._total_size if self._transmit_size else None
        self._outgoing = open_stream(
            sender,
            self._info,
            destination_identities=self._destinations,
            handler_identity=self._sender_identity,
            expected_size=sent_size,
            receiver_size=sent_size or 0,
        )
        self._participant._memory_writers.add(self)
        await asyncio.sleep(0)

    async def write(self, text: str) -> None:
        await self._send(split_text(text))


class _FedReader(Generic[ChunkT]):
    """What the in-memory byte and text readers share: chunks the server feeds in order,
    ended by the writer's trailer, or by an error (the SDK's) when something went wrong."""

    _info: Any  # the concrete reader's ByteStreamInfo or TextStreamInfo
    _closed: bool

    def _start(self, expected_size: int | None, on_close: Callable[[], None] | None) -> None:
        # instead of the SDK's __init__, which subscribes to the FFI event queue
        self._reader_handle = 0
        self._on_close = on_close
        self._closed = False
        self._error: rtc.StreamError | None = None
        self._chunks: asyncio.Queue[ChunkT | _End] = asyncio.Queue()
        self._expected_size = expected_size
        self._received = 0
        self._ended = False

    def _size(self, chunk: ChunkT) -> int:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError  # the SDK reader's, via the concrete class

    async def _next_chunk(self) -> ChunkT:
        while True:
            if self._closed:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            item = await self._chunks.get()
            if isinstance(item, _End):
                self._info.attributes = self._info.attributes or {}
                self._info.attributes.update(item.attributes)
                if item.error is not None:
                    self._error = item.error
                self._close()
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            if item:
                return item

    def _unsubscribe(self) -> None:
        pass  # nothing to unsubscribe from: no FFI queue

    def _wake_pending_reads(self) -> None:
        self._chunks.put_nowait(_End())

    def _signal_disconnect(self) -> None:
        # like the SDK: chunks already received are still read, then StreamError
        if not self._closed:
            self._finish(rtc.StreamError(_DISCONNECT_ERROR))

    def _feed(self, chunk: ChunkT) -> None:
        if self._ended or self._closed:
            return
        self._received += self._size(chunk)
        if self._expected_size is not None and self._received > self._expected_size:
            self._finish(rtc.StreamError("stream length exceeded"))
            return
        self._chunks.put_nowait(chunk)

    def _trailer(self, reason: str, attributes: dict[str, str]) -> None:
        if self._expected_size is not None and self._received < self._expected_size:
            self._finish(rtc.StreamError("stream incomplete"))
        elif reason:
            self._finish(rtc.StreamError(f"stream ended abnormally: {reason}"))
        else:
            self._finish(None, attributes)

    def _finish(
        self, error: rtc.StreamError | None, attributes: dict[str, str] | None = None
    ) -> None:
        if not self._ended:
            self._ended = True
            self._chunks.put_nowait(_End(error, dict(attributes or {})))


class MemoryByteStreamReader(_FedReader[bytes], rtc.ByteStreamReader):
    """``rtc.ByteStreamReader`` fed by the in-memory server: iterate it for the chunks in
    order; it ends when the writer closes (``rtc.StreamError`` if it ended abnormally)."""

    def __init__(
        self,
        info: rtc.ByteStreamInfo,
        *,
        expected_size: int | None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._info = info
        self._start(expected_size, on_close)

    async def __anext__(self) -> bytes:
        return await self._next_chunk()

    def _size(self, chunk: bytes) -> int:
        return len(chunk)

    def _close(self) -> None:
        rtc.ByteStreamReader._close(self)


class MemoryTextStreamReader(_FedReader[str], rtc.TextStreamReader):
    """``rtc.TextStreamReader`` fed by the in-memory server (see
    :class:`MemoryByteStreamReader`); ``read_all()`` works as in the SDK."""

    def __init__(
        self,
        info: rtc.TextStreamInfo,
        *,
        expected_size: int | None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._info = info
        self._start(expected_size, on_close)

    async def __anext__(self) -> str:
        return await self._next_chunk()

    def _size(self, chunk: str) -> int:
        return len(chunk.encode())

    def _close(self) -> None:
        rtc.TextStreamReader._close(self)
