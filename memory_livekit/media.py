"""Tracks as an SFU forwards them (realistic mode only).

A relay reads the publisher's native track once; audio goes through Opus (see ``opus.py``).
Each subscriber gets its own native track, fed after the media latency plus jitter, in order
(a jitter buffer never reorders), so ``rtc.AudioStream`` / ``rtc.VideoStream`` on a
subscriber's track yield the coded, delayed frames. Nothing flows while the publisher or the
subscriber is frozen or away; in a gap the subscriber gets no frames at all.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from livekit import rtc

from ._common import logger

if TYPE_CHECKING:
    from .network import Network
    from .realism import Realism
    from .server import ServerParticipant, ServerTrack

_SAMPLE_RATE = 48_000
_FRAME_SAMPLES = 480  # 10 ms
_FrameT = rtc.AudioFrame | rtc.VideoFrame


class _Output:
    """One subscriber's copy of the track: its own native track, fed in order on time."""

    def __init__(
        self,
        relay: TrackRelay,
        subscriber: ServerParticipant,
        track_task: Callable[[asyncio.Task[None]], None],
    ) -> None:
        self.subscriber = subscriber
        self._relay = relay
        self._queue: asyncio.Queue[tuple[float, _FrameT]] = asyncio.Queue()
        self._last_due = 0.0
        self.audio_source: rtc.AudioSource | None = None
        self.video_source: rtc.VideoSource | None = None
        self.track: rtc.LocalAudioTrack | rtc.LocalVideoTrack
        name = f"{relay.name} to {subscriber.identity}"
        if relay.kind == rtc.TrackKind.KIND_AUDIO:
            # no queue: frames go out the moment they are captured, on the times set here
            self.audio_source = rtc.AudioSource(_SAMPLE_RATE, 1, queue_size_ms=0)
            self.track = rtc.LocalAudioTrack.create_audio_track(name, self.audio_source)
        else:
            self.video_source = rtc.VideoSource(16, 16)
            self.track = rtc.LocalVideoTrack.create_video_track(name, self.video_source)
        self._task = asyncio.get_running_loop().create_task(self._run(), name=name)
        track_task(self._task)

    def push(self, frame: _FrameT, now: float) -> None:
        due = max(self._last_due, now + self._relay.delay())
        self._last_due = due
        self._queue.put_nowait((due, frame))

    def close(self) -> None:
        self._task.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                due, frame = await self._queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if self.subscriber.net != "up":
                    continue
                if isinstance(frame, rtc.AudioFrame) and self.audio_source is not None:
                    await self.audio_source.capture_frame(frame)
                elif isinstance(frame, rtc.VideoFrame) and self.video_source is not None:
                    self.video_source.capture_frame(frame)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("relay of %s to %s failed", self._relay.name, self.subscriber.identity)
        finally:
            if self.audio_source is not None:
                with contextlib.suppress(Exception):
                    await self.audio_source.aclose()


class TrackRelay:
    """A published track on its way to each subscriber (see the module docstring)."""

    def __init__(
        self,
        server_track: ServerTrack,
        publisher: ServerParticipant,
        network: Network,
        realism: Realism,
        track_task: Callable[[asyncio.Task[None]], None],
    ) -> None:
        self.name = server_track.name
        self.kind = server_track.kind
        self._source_track = server_track.track
        self._publisher = publisher
        self._network = network
        self._realism = realism
        self._track_task = track_task
        encoding = server_track.options.audio_encoding
        self._bitrate = (
            int(encoding.max_bitrate)
            if server_track.options.HasField("audio_encoding") and encoding.max_bitrate
            else realism.opus_bitrate
        )
        self._outputs: dict[str, _Output] = {}
        self._reader: asyncio.Task[None] | None = None
        self._closed = False

    def delay(self) -> float:
        return self._network.jitter(self._realism.media_latency, self._realism.media_jitter)

    def output(self, subscriber: ServerParticipant) -> rtc.LocalAudioTrack | rtc.LocalVideoTrack:
        """The native track ``subscriber``'s remote track reads from."""
        out = self._outputs.get(subscriber.identity)
        if out is None or out.subscriber is not subscriber:
            if out is not None:
                out.close()
            out = self._outputs[subscriber.identity] = _Output(self, subscriber, self._track_task)
        if self._reader is None and not self._closed:
            self._reader = asyncio.get_running_loop().create_task(
                self._read(), name=f"relay of {self.name}"
            )
            self._track_task(self._reader)
        return out.track

    def drop(self, subscriber: str) -> None:
        out = self._outputs.pop(subscriber, None)
        if out is not None:
            out.close()

    def close(self) -> None:
        self._closed = True
        for out in self._outputs.values():
            out.close()
        self._outputs.clear()
        if self._reader is not None:
            self._reader.cancel()

    def _fan_out(self, frame: _FrameT) -> None:
        now = asyncio.get_running_loop().time()
        for out in list(self._outputs.values()):
            out.push(frame, now)

    async def _read(self) -> None:
        try:
            if isinstance(self._source_track, rtc.LocalAudioTrack):
                await self._read_audio(self._source_track)
            else:
                await self._read_video(self._source_track)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("relay of %s failed", self.name)

    async def _read_audio(self, track: rtc.LocalAudioTrack) -> None:
        coder = None
        if self._bitrate is not None:
            from .opus import OpusRoundTrip  # PyAV is loaded only when audio is coded

            coder = OpusRoundTrip(self._bitrate)
        stream = rtc.AudioStream(track, sample_rate=_SAMPLE_RATE, num_channels=1)
        try:
            async for event in stream:
                if self._publisher.net != "up":
                    if coder is not None:
                        coder.reset_input()
                    continue
                if coder is None:
                    self._fan_out(event.frame)
                    continue
                samples = np.frombuffer(event.frame.data, dtype=np.int16)
                for pcm in coder.code(samples):
                    # a native source fed directly takes 10 ms frames
                    for start in range(0, len(pcm), _FRAME_SAMPLES):
                        chunk = pcm[start : start + _FRAME_SAMPLES]
                        self._fan_out(rtc.AudioFrame(chunk.tobytes(), _SAMPLE_RATE, 1, len(chunk)))
        finally:
            await stream.aclose()

    async def _read_video(self, track: rtc.LocalVideoTrack) -> None:
        stream = rtc.VideoStream(track)
        try:
            async for event in stream:
                if self._publisher.net == "up":
                    self._fan_out(event.frame)
        finally:
            await stream.aclose()
