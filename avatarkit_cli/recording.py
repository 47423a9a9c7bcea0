"""Record what a room sees of an avatar: its audio and video tracks, timed on arrival.

Used by ``avatarkit demo`` (an MP4 a person can play) and ``avatarkit compare``
(first-frame latency, dropped frames, audio/video offset).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fractions
import time
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from livekit import rtc
from numpy.typing import NDArray

AUDIO_RATE = 48000
_MS = fractions.Fraction(1, 1000)


@attrs.define
class Recording:
    """What arrived, timed in seconds from the recorder's start."""

    video_times: list[float] = attrs.field(factory=list)
    blocks: list[NDArray[np.float32]] = attrs.field(factory=list, repr=False)
    """Each video frame's mean brightness on an 8x8 grid: enough to find the part of the
    picture that moves with speech (the mouth) without knowing the face."""
    audio: list[NDArray[np.int16]] = attrs.field(factory=list, repr=False)
    audio_start: float | None = None
    """When the first audio frame arrived (the track carries silence continuously after)."""
    width: int = 0
    height: int = 0

    @property
    def first_video(self) -> float | None:
        return self.video_times[0] if self.video_times else None

    def pcm(self) -> NDArray[np.int16]:
        return np.concatenate(self.audio) if self.audio else np.zeros(0, np.int16)


def _grid_means(rgb: NDArray[np.uint8], n: int = 8) -> NDArray[np.float32]:
    h, w = rgb.shape[0] // n * n, rgb.shape[1] // n * n
    gray = rgb[:h:2, :w:2].mean(axis=2, dtype=np.float32)
    cells: NDArray[np.float32] = gray.reshape(n, gray.shape[0] // n, n, gray.shape[1] // n).mean(
        axis=(1, 3)
    )
    return cells.ravel()


class AvatarRecorder:
    """Subscribes to ``identity``'s tracks in ``room`` and records them (and to ``path``, an
    MP4 with H.264 video and AAC audio, when given)."""

    def __init__(self, room: rtc.Room, identity: str, *, path: Path | None = None) -> None:
        self._room = room
        self._identity = identity
        self._path = path
        self.recording = Recording()
        self._t0 = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []
        self._streams: list[rtc.AudioStream | rtc.VideoStream] = []
        self._seen: set[str] = set()
        # One thread owns the encoder, so encoding never stalls the event loop.
        self._encoder = concurrent.futures.ThreadPoolExecutor(1, "avatarkit-mp4")
        self._container: Any = None
        self._video_stream: Any = None
        self._audio_stream: Any = None
        self._last_pts = -1

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._room.on("track_subscribed", self._on_track)
        participant = self._room.remote_participants.get(self._identity)
        if participant is None:
            return
        for publication in participant.track_publications.values():
            if publication.track is not None:
                self._on_track(publication.track, publication, participant)

    def _on_track(self, track: rtc.Track, publication: Any, participant: rtc.Participant) -> None:
        if participant.identity != self._identity or track.sid in self._seen:
            return
        self._seen.add(track.sid)
        if track.kind == rtc.TrackKind.KIND_VIDEO:
            video = rtc.VideoStream(track, format=rtc.VideoBufferType.RGB24)
            self._streams.append(video)
            self._tasks.append(asyncio.create_task(self._read_video(video)))
        elif track.kind == rtc.TrackKind.KIND_AUDIO:
            audio = rtc.AudioStream(track, sample_rate=AUDIO_RATE, num_channels=1)
            self._streams.append(audio)
            self._tasks.append(asyncio.create_task(self._read_audio(audio)))

    async def _read_video(self, stream: rtc.VideoStream) -> None:
        loop = asyncio.get_running_loop()
        async for event in stream:
            now = time.monotonic() - self._t0
            frame = event.frame
            rgb = np.frombuffer(frame.data, dtype=np.uint8).reshape(frame.height, frame.width, 3)
            rec = self.recording
            rec.blocks.append(_grid_means(rgb))
            rec.video_times.append(now)
            rec.width, rec.height = frame.width, frame.height
            if self._path is not None:
                await loop.run_in_executor(self._encoder, self._encode_video, rgb.copy(), now)

    async def _read_audio(self, stream: rtc.AudioStream) -> None:
        async for event in stream:
            if self.recording.audio_start is None:
                self.recording.audio_start = time.monotonic() - self._t0
            self.recording.audio.append(np.frombuffer(event.frame.data, dtype=np.int16).copy())

    def _encode_video(self, rgb: NDArray[np.uint8], at: float) -> None:
        import av

        if self._container is None:
            assert self._path is not None
            self._container = av.open(str(self._path), "w")
            stream = self._container.add_stream("libx264", rate=30)
            stream.width, stream.height = rgb.shape[1] // 2 * 2, rgb.shape[0] // 2 * 2
            stream.pix_fmt = "yuv420p"
            # Frames are stamped by arrival, in ms: the encoder must count in ms too, or two
            # frames arriving within one 1/30 s tick collide and the muxer refuses them.
            stream.time_base = stream.codec_context.time_base = _MS
            stream.options = {"preset": "veryfast", "crf": "23"}
            self._video_stream = stream
            self._audio_stream = self._container.add_stream("aac", rate=AUDIO_RATE)
            self._audio_stream.layout = "mono"
        stream = self._video_stream
        frame = av.VideoFrame.from_ndarray(rgb[: stream.height, : stream.width], format="rgb24")
        self._last_pts = max(self._last_pts + 1, int(at * 1000))
        frame.pts, frame.time_base = self._last_pts, _MS
        for packet in stream.encode(frame):
            self._container.mux(packet)

    def _finish_file(self) -> None:
        import av

        if self._container is None:
            return
        rec = self.recording
        pcm = rec.pcm()
        if len(pcm):
            frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = AUDIO_RATE
            frame.pts = int((rec.audio_start or 0.0) * AUDIO_RATE)
            frame.time_base = fractions.Fraction(1, AUDIO_RATE)
            for packet in self._audio_stream.encode(frame):
                self._container.mux(packet)
            for packet in self._audio_stream.encode(None):
                self._container.mux(packet)
        for packet in self._video_stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        self._container = None

    async def aclose(self) -> Recording:
        """Stop recording, finish the MP4, and return what was recorded."""
        self._room.off("track_subscribed", self._on_track)
        # VideoStream.aclose() does not wake a pending read: cancel the readers first.
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for stream in self._streams:
            await stream.aclose()
        await asyncio.get_running_loop().run_in_executor(self._encoder, self._finish_file)
        self._encoder.shutdown()
        return self.recording
