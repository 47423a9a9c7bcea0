"""LiveKit ``VideoGenerator`` that lip-syncs the CPU-drawn face to the agent's speech.

``AvatarRunner`` pushes the agent's audio in with :meth:`FaceVideoGenerator.push_audio`
and forwards what the generator yields into an ``rtc.AVSynchronizer``: per video frame an
RGBA ``rtc.VideoFrame`` followed by exactly the audio that frame covers, then an
``AudioSegmentEnd`` once a segment's audio is out. Between segments idle frames (blinking,
breathing, mouth closed) keep coming at ``fps`` with no audio.

:class:`FacePipeline` is the single "audio -> frames" implementation, shared by the
real-time iterator and :meth:`FaceVideoGenerator.render_offline`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from livekit import rtc
from livekit.agents.voice.avatar import AudioSegmentEnd, VideoGenerator
from numpy.typing import NDArray

from .label import TextBanner
from .render import (
    FaceAnimator,
    FaceRenderer,
    FaceState,
    FaceStyle,
    PortraitLayout,
    PortraitSource,
    frame_sample_offset,
)

__all__ = ["FacePipeline", "FaceVideoGenerator", "FaceVideoStats"]

logger = logging.getLogger(__name__)

PCM = NDArray[np.int16]
"""Interleaved int16 audio shaped ``(samples, channels)``."""

# Held up for longer than this (e.g. AvatarRunner waiting for its tracks to be subscribed,
# or a blocked event loop), the real-time loop counts a stall and re-anchors its clock
# instead of catching up frame by frame (mirrors AVSynchronizer's 300 ms tolerance).
_MAX_LAG_S = 0.3


@dataclass
class FaceVideoStats:
    """Running counters of a generator or an offline render (mutated in place)."""

    frames_rendered: int = 0
    """Video frames actually drawn."""
    frames_dropped: int = 0
    """Frames not drawn because the loop ran late (by up to 0.3 s): idle slots skipped, or
    a speech frame sent with the previous picture so its audio still went out on time."""
    stalls: int = 0
    """Times the loop was held up longer than 0.3 s and re-anchored its clock (not counted
    in ``frames_dropped``)."""
    speech_frames: int = 0
    """Video frames yielded together with audio."""
    idle_frames: int = 0
    """Video frames yielded without audio."""
    audio_samples_in: int = 0
    """Samples per channel queued, after conversion to the output rate."""
    audio_samples_out: int = 0
    """Samples per channel yielded."""
    audio_samples_cleared: int = 0
    """Samples per channel discarded by ``clear_buffer``."""
    segments: int = 0
    """Segments played to the end."""
    interruptions: int = 0
    """Segments cut short by ``clear_buffer``."""


# --------------------------------------------------------------------------- audio intake


def _as_pcm(samples: NDArray[np.generic], name: str = "pcm") -> PCM:
    """int16 ``(n, channels)`` from int16 or float (-1..1) samples, 1-D or 2-D."""
    if samples.ndim == 1:
        samples = samples[:, None]
    if samples.ndim != 2 or samples.shape[1] < 1:
        raise ValueError(
            f"{name} must be shaped (samples,) or (samples, channels), got {samples.shape}"
        )
    if samples.dtype == np.int16:
        return np.ascontiguousarray(samples, dtype=np.int16)
    if np.issubdtype(samples.dtype, np.floating):
        scaled = np.clip(np.asarray(samples, np.float32) * 32767.0, -32768.0, 32767.0)
        return np.ascontiguousarray(np.round(scaled).astype(np.int16))
    raise ValueError(f"{name} must be int16 or float samples, got dtype {samples.dtype}")


def _remix(pcm: PCM, channels: int) -> PCM:
    if pcm.shape[1] == channels:
        return pcm
    mono = pcm if pcm.shape[1] == 1 else pcm.astype(np.int32).mean(axis=1, keepdims=True)
    return np.ascontiguousarray(np.repeat(mono, channels, axis=1).astype(np.int16))


class _AudioConverter:
    """Brings any incoming audio to the output rate and channel count."""

    def __init__(self, sample_rate: int, channels: int) -> None:
        self._rate = sample_rate
        self._channels = channels
        self._resampler: rtc.AudioResampler | None = None
        self._resampler_rate = 0

    def push(self, pcm: PCM, sample_rate: int) -> list[PCM]:
        pcm = _remix(pcm, self._channels)
        out: list[PCM] = []
        if sample_rate != self._resampler_rate and self._resampler is not None:
            out.extend(self.flush())
        if sample_rate == self._rate:
            if len(pcm):
                out.append(pcm)
            return out
        if self._resampler is None:
            self._resampler = rtc.AudioResampler(
                sample_rate, self._rate, num_channels=self._channels
            )
            self._resampler_rate = sample_rate
        frame = rtc.AudioFrame(pcm.tobytes(), sample_rate, self._channels, len(pcm))
        out.extend(self._from_frames(self._resampler.push(frame)))
        return out

    def flush(self) -> list[PCM]:
        if self._resampler is None:
            return []
        frames = self._resampler.flush()
        self._resampler = None
        self._resampler_rate = 0
        return self._from_frames(frames)

    def reset(self) -> None:
        # dropping the resampler discards whatever it still buffers
        self._resampler = None
        self._resampler_rate = 0

    def _from_frames(self, frames: list[rtc.AudioFrame]) -> list[PCM]:
        return [
            np.frombuffer(f.data, dtype=np.int16).reshape(-1, self._channels).copy()
            for f in frames
            if f.samples_per_channel
        ]


# --------------------------------------------------------------------------- audio -> frames


class FacePipeline:
    """Queued audio in, one face picture and audio chunk per video frame out.

    Synchronous and clock-free: the real-time generator decides *when* to call it, the
    offline path just drains it. Frame ``k`` of a segment carries samples
    ``[frame_sample_offset(k), frame_sample_offset(k + 1))``, so chunks never drift from
    the video clock; the last chunk of a segment may be shorter (no padding, so every
    queued sample comes out exactly once).
    """

    def __init__(
        self,
        renderer: FaceRenderer,
        animator: FaceAnimator,
        *,
        channels: int = 1,
        stats: FaceVideoStats | None = None,
        banner: TextBanner | None = None,
    ) -> None:
        self.renderer = renderer
        self.banner = banner
        """Drawn over every frame, if given."""
        self.animator = animator
        self.channels = channels
        self.sample_rate = animator.sample_rate
        self.stats = stats if stats is not None else FaceVideoStats()
        self._fps = Fraction(animator.fps).limit_denominator(1001)
        # chunks, with None marking the end of a segment
        self._items: deque[PCM | None] = deque()
        self._head = 0  # samples of _items[0] already taken
        self._queued = 0
        self._frame_in_segment = 0
        self._push_open = False  # audio pushed since the last end marker
        self._playing = False  # audio taken since the last end marker
        self.last_state: FaceState | None = None
        """Pose of the most recent frame (drawn or not)."""

    # ------------------------------------------------------------------ input

    def push(self, pcm: PCM) -> None:
        """Queue int16 audio shaped ``(samples, channels)`` at ``sample_rate``."""
        if pcm.ndim != 2 or pcm.shape[1] != self.channels or pcm.dtype != np.int16:
            raise ValueError(
                f"expected int16 audio shaped (n, {self.channels}), got {pcm.dtype} {pcm.shape}"
            )
        self._push_open = True
        if len(pcm):
            self._items.append(pcm)
            self._queued += len(pcm)
            self.stats.audio_samples_in += len(pcm)

    def start_segment(self) -> None:
        """Mark a segment as begun even before any samples arrive (e.g. resampler delay)."""
        self._push_open = True

    def end_segment(self) -> None:
        """Mark the end of the current segment; an end with no audio before it is ignored."""
        if self._push_open:
            self._items.append(None)
            self._push_open = False

    def clear(self) -> bool:
        """Drop all queued audio and close the mouth. True if a segment was cut short."""
        cut = self._push_open or self._playing or bool(self._items)
        self.stats.audio_samples_cleared += self._queued
        self._items.clear()
        self._head = self._queued = self._frame_in_segment = 0
        self._push_open = self._playing = False
        self.animator.interrupt()
        if cut:
            self.stats.interruptions += 1
        return cut

    @property
    def queued_samples(self) -> int:
        """Samples per channel waiting to be turned into frames."""
        return self._queued

    # ------------------------------------------------------------------ output

    def _need(self) -> int:
        k = self._frame_in_segment
        return frame_sample_offset(k + 1, self.sample_rate, self._fps) - frame_sample_offset(
            k, self.sample_rate, self._fps
        )

    def ready(self) -> bool:
        """True if :meth:`next_audio` has a full frame of audio or a segment end to give."""
        need, have = self._need(), -self._head
        for item in self._items:
            if item is None:
                return True
            have += len(item)
            if have >= need:
                return True
        return False

    def next_audio(self) -> PCM | AudioSegmentEnd:
        """Take the next frame's audio, or the segment end. Call only when :meth:`ready`."""
        if not self._items:
            raise RuntimeError("next_audio() called with nothing ready")
        if self._items[0] is None:
            self._items.popleft()
            if self._playing:
                self.stats.segments += 1
            self._playing = False
            self._frame_in_segment = 0
            return AudioSegmentEnd()
        need, got = self._need(), 0
        parts: list[PCM] = []
        while got < need and self._items and (item := self._items[0]) is not None:
            take = min(len(item) - self._head, need - got)
            parts.append(item[self._head : self._head + take])
            self._head += take
            got += take
            if self._head == len(item):
                self._items.popleft()
                self._head = 0
        self._queued -= got
        self._frame_in_segment += 1
        self._playing = True
        self.stats.audio_samples_out += got
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def speech_frame(self, chunk: PCM, *, render: bool = True) -> NDArray[np.uint8] | None:
        """Animate one frame from ``chunk``; the RGBA picture, or None if ``render`` is off."""
        state = self.last_state = self.animator.step(chunk)
        self.stats.speech_frames += 1
        if not render:
            self.stats.frames_dropped += 1
            return None
        self.stats.frames_rendered += 1
        return self._draw(state)

    def idle_frame(self) -> NDArray[np.uint8]:
        """Animate and draw one frame of silence (blinks and sway continue)."""
        state = self.last_state = self.animator.step(None)
        self.stats.idle_frames += 1
        self.stats.frames_rendered += 1
        return self._draw(state)

    def _draw(self, state: FaceState) -> NDArray[np.uint8]:
        rgba = self.renderer.render(state)
        return rgba if self.banner is None else self.banner.draw(rgba)

    def skip_idle(self, frames: int) -> None:
        """Account for idle frames that were never drawn, keeping animation on the clock."""
        self.stats.frames_dropped += frames
        for _ in range(min(frames, int(self.animator.fps * 2))):
            self.animator.step(None)

    def drain(self) -> Iterator[tuple[NDArray[np.uint8], PCM]]:
        """Render every queued speech frame (offline use); stops at a segment end."""
        while self.ready():
            item = self.next_audio()
            if isinstance(item, AudioSegmentEnd):
                return
            frame = self.speech_frame(item)
            assert frame is not None
            yield frame, item


# --------------------------------------------------------------------------- generator


class FaceVideoGenerator(VideoGenerator):
    """Real-time face video for ``AvatarRunner``, drawn on the CPU from the agent's audio.

    Audio pushed at any rate/channel count is converted to ``sample_rate``/``channels``.
    The iterator paces itself at ``fps``: speech frames run up to ``lookahead`` seconds
    ahead of the clock once audio is flowing (a small jitter buffer for the audio sink),
    idle frames are released on time. See :attr:`stats` for frames rendered and dropped.
    ``label``, if given, is written across the top of every frame (e.g. to say a stand-in
    avatar is emulated).
    """

    def __init__(
        self,
        *,
        width: int = 512,
        height: int = 512,
        fps: float = 30.0,
        sample_rate: int = 16000,
        channels: int = 1,
        style: FaceStyle | None = None,
        portrait: PortraitSource | None = None,
        portrait_layout: PortraitLayout | None = None,
        seed: int = 0,
        lookahead: float = 0.05,
        renderer: FaceRenderer | None = None,
        label: str | None = None,
    ) -> None:
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 1 <= fps <= 60:
            raise ValueError(f"fps must be a number in 1..60, got {fps!r}")
        if isinstance(channels, bool) or channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, got {channels!r}")
        if not isinstance(lookahead, (int, float)) or not 0.0 <= lookahead <= 0.5:
            raise ValueError(f"lookahead must be 0..0.5 seconds, got {lookahead!r}")
        if renderer is None:
            renderer = FaceRenderer(
                width, height, style=style, portrait=portrait, layout=portrait_layout, seed=seed
            )
        elif (renderer.width, renderer.height) != (width, height):
            raise ValueError(
                f"renderer is {renderer.width}x{renderer.height} but width/height say "
                f"{width}x{height}; pass matching sizes"
            )
        self._renderer = renderer
        self._banner = None if label is None else TextBanner(label, width, height)
        self._fps = float(fps)
        self._channels = channels
        self._seed = seed
        self._lookahead = float(lookahead)
        # FaceAnimator validates sample_rate
        animator = FaceAnimator(self._fps, sample_rate, seed=seed)
        self._sample_rate = sample_rate
        self._stats = FaceVideoStats()
        self._pipeline = FacePipeline(
            renderer, animator, channels=channels, stats=self._stats, banner=self._banner
        )
        self._converter = _AudioConverter(sample_rate, channels)
        self._wake = asyncio.Event()
        self._interrupted = False
        self._closed = False

    @property
    def width(self) -> int:
        return self._renderer.width

    @property
    def height(self) -> int:
        return self._renderer.height

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def renderer(self) -> FaceRenderer:
        return self._renderer

    @property
    def label(self) -> str | None:
        """The text written across the top of every frame, if any."""
        return None if self._banner is None else self._banner.text

    @property
    def last_state(self) -> FaceState | None:
        """Pose of the most recent real-time frame, None before the first one."""
        return self._pipeline.last_state

    @property
    def stats(self) -> FaceVideoStats:
        """Live counters (frames rendered/dropped, samples in/out/cleared, segments)."""
        return self._stats

    # ------------------------------------------------------------------ VideoGenerator API

    async def push_audio(self, frame: rtc.AudioFrame | AudioSegmentEnd) -> None:
        """Queue agent audio, or mark the end of the current segment."""
        if self._closed:
            return
        if isinstance(frame, AudioSegmentEnd):
            for pcm in self._converter.flush():
                self._pipeline.push(pcm)
            self._pipeline.end_segment()
        else:
            self._pipeline.start_segment()
            # copied: the frame's buffer belongs to the caller, who may reuse it
            pcm = np.frombuffer(frame.data, dtype=np.int16).reshape(-1, frame.num_channels).copy()
            for out in self._converter.push(pcm, frame.sample_rate):
                self._pipeline.push(out)
        self._wake.set()

    def clear_buffer(self) -> None:
        """Drop queued audio now, close the mouth, and end the current segment."""
        self._converter.reset()
        if self._pipeline.clear():
            self._interrupted = True
        self._wake.set()

    def __aiter__(self) -> AsyncIterator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
        """The real-time frame stream; iterate it from one consumer only."""
        return self._stream()

    async def aclose(self) -> None:
        """Stop the iterator; further pushed audio is ignored."""
        self._closed = True
        self._wake.set()

    # ------------------------------------------------------------------ offline

    def render_offline(
        self,
        pcm: NDArray[np.generic],
        sample_rate: int | None = None,
        *,
        stats: FaceVideoStats | None = None,
    ) -> Iterator[tuple[NDArray[np.uint8], PCM]]:
        """Render a whole utterance as fast as the CPU allows (no pacing).

        ``pcm`` is int16 or float (-1..1), shaped ``(samples,)`` or ``(samples, channels)``,
        at ``sample_rate`` (default: the generator's). Yields ``(rgba, audio_chunk)`` per
        video frame, like the real-time path but from a fresh animator with the same seed,
        so the live generator's state is untouched.
        """
        audio = _as_pcm(pcm)
        rate = self._sample_rate if sample_rate is None else sample_rate
        pipeline = FacePipeline(
            self._renderer,
            FaceAnimator(self._fps, self._sample_rate, seed=self._seed),
            channels=self._channels,
            stats=stats,
            banner=self._banner,
        )
        converter = _AudioConverter(self._sample_rate, self._channels)
        pipeline.start_segment()
        for out in converter.push(audio, rate) + converter.flush():
            pipeline.push(out)
        pipeline.end_segment()
        yield from pipeline.drain()

    # ------------------------------------------------------------------ real-time loop

    def _video_frame(self, rgba: NDArray[np.uint8]) -> rtc.VideoFrame:
        # zero-copy: a fresh array per frame, so the VideoFrame can own it
        return rtc.VideoFrame(
            self.width, self.height, rtc.VideoBufferType.RGBA, rgba.reshape(-1).data
        )

    def _audio_frame(self, pcm: PCM) -> rtc.AudioFrame:
        return rtc.AudioFrame(pcm.tobytes(), self._sample_rate, self._channels, len(pcm))

    async def _stream(
        self,
    ) -> AsyncGenerator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd, None]:
        loop = asyncio.get_running_loop()
        interval = 1.0 / self._fps
        pipe = self._pipeline
        next_t = loop.time()  # when the next frame is due on screen
        # True while the previous frame carried audio: the sink then holds a buffer, so
        # speech may run ahead by `lookahead`. The first speech frame after idle is sent on
        # its slot instead, so its audio starts together with its picture.
        streaming = False
        last_video: rtc.VideoFrame | None = None

        while not self._closed:
            if self._interrupted:
                self._interrupted = False
                streaming = False
                yield AudioSegmentEnd()
                continue

            ready = pipe.ready()
            now = loop.time()
            release = next_t - (self._lookahead if ready and streaming else 0.0)
            if now < release:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), release - now)
                except asyncio.TimeoutError:
                    pass
                continue

            lag = now - next_t
            if lag > _MAX_LAG_S:
                self._stats.stalls += 1
                next_t, lag = now, 0.0

            if ready:
                item = pipe.next_audio()
                if isinstance(item, AudioSegmentEnd):
                    yield item
                    continue
                # more than a frame late: skip drawing (audio must still go out) to catch up
                late = lag > interval and last_video is not None
                rgba = pipe.speech_frame(item, render=not late)
                video = last_video if rgba is None else self._video_frame(rgba)
                assert video is not None
                next_t += interval
                streaming = True
                last_video = video
                yield video
                yield self._audio_frame(item)
            else:
                missed = int(lag / interval)
                if missed > 0:
                    pipe.skip_idle(missed)
                    next_t += missed * interval
                streaming = False
                last_video = self._video_frame(pipe.idle_frame())
                next_t += interval
                yield last_video
