"""The realistic mode's tracks: Opus-coded, delayed and jittered audio that is never reordered,
delayed video, and no media from a frozen participant. Each test says what the default
stand-in does instead."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from livekit import rtc

from memory_livekit import MemoryLiveKit, MemoryRoom, Realism

from .helpers import Recorder, bounded, within

RATE = 48_000
MIC = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
CAMERA = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA)


@pytest.fixture
async def realistic() -> AsyncIterator[Callable[..., MemoryLiveKit]]:
    servers: list[MemoryLiveKit] = []

    def make(**knobs: Any) -> MemoryLiveKit:
        server = MemoryLiveKit(realism=Realism(seed=5, **knobs))
        servers.append(server)
        return server

    yield make
    for server in servers:
        await within(server.aclose())
        assert server.pending_tasks == ()


class Listener:
    """Reads a subscribed audio track, keeping every sample and when the first loud one came."""

    def __init__(self, track: rtc.Track) -> None:
        self.samples: list[npt.NDArray[np.int16]] = []
        self.count = 0
        self.first_loud: float | None = None
        self.first_loud_at = 0  # its index among the samples heard
        self._changed = asyncio.Event()
        self._stream = rtc.AudioStream(track, sample_rate=RATE, num_channels=1)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for event in self._stream:
            chunk = np.frombuffer(event.frame.data, dtype=np.int16).copy()
            loud = np.flatnonzero(np.abs(chunk) > 500)
            if self.first_loud is None and len(loud):
                self.first_loud = asyncio.get_running_loop().time()
                self.first_loud_at = self.count + int(loud[0])
            self.samples.append(chunk)
            self.count += len(chunk)
            self._changed.set()

    @property
    def heard(self) -> npt.NDArray[np.int16]:
        return np.concatenate(self.samples) if self.samples else np.zeros(0, np.int16)

    async def until(self, condition: Callable[[], bool]) -> None:
        async def wait() -> None:
            while not condition():
                self._changed.clear()
                await self._changed.wait()

        await within(wait(), 10.0)

    def heard_any(self, value: int) -> bool:
        return any(bool(np.any(chunk == value)) for chunk in self.samples)

    async def aclose(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._stream.aclose()


async def subscribed(room: MemoryRoom, publisher: MemoryRoom, source: Any, name: str) -> rtc.Track:
    seen = Recorder(room, "track_subscribed")
    if isinstance(source, rtc.AudioSource):
        track: rtc.LocalTrack = rtc.LocalAudioTrack.create_audio_track(name, source)
        await publisher.local_participant.publish_track(track, MIC)
    else:
        track = rtc.LocalVideoTrack.create_video_track(name, source)
        await publisher.local_participant.publish_track(track, CAMERA)
    await seen.wait_for("track_subscribed")
    remote: rtc.Track = seen.args("track_subscribed")[0][0]
    return remote


async def play(source: rtc.AudioSource, samples: npt.NDArray[np.int16]) -> None:
    for start in range(0, len(samples), 480):
        chunk = samples[start : start + 480]
        await source.capture_frame(rtc.AudioFrame(chunk.tobytes(), RATE, 1, len(chunk)))


def chirp(seconds: float) -> npt.NDArray[np.int16]:
    t = np.arange(int(RATE * seconds)) / RATE
    return (np.sin(2 * np.pi * (200 + 600 * t) * t) * 8000).astype(np.int16)


def lag(heard: npt.NDArray[np.int16], original: npt.NDArray[np.int16], at: int) -> int:
    """Where ``original[at : at + 20 ms]`` sits in ``heard``, relative to ``at``."""
    piece = original[at : at + 960].astype(np.float64)
    scores = np.correlate(heard.astype(np.float64), piece, mode="valid")
    return int(np.argmax(scores)) - at


@bounded
async def test_audio_is_opus_coded_delayed_and_never_reordered(
    realistic: Callable[..., MemoryLiveKit],
) -> None:
    """A subscriber hears the publisher's audio after Opus (24 kbps here): close but not
    bit-exact, first heard after the media latency, and with one lag throughout although every
    frame is jittered: a jitter buffer never reorders. The default stand-in delivers the
    publisher's samples bit-exact and at once."""
    server = realistic(media_latency=0.08, media_jitter=0.04, opus_bitrate=24_000)
    agent = await server.join("room", "agent", kind="agent")
    avatar = await server.join("room", "avatar", kind="agent")
    source = rtc.AudioSource(RATE, 1)
    listener = Listener(await subscribed(agent, avatar, source, "voice"))
    original = chirp(0.6)
    started = asyncio.get_running_loop().time()
    await play(source, original)
    await listener.until(lambda: listener.first_loud is not None)
    first_loud = listener.first_loud
    assert first_loud is not None and first_loud - started >= 0.08 - 0.02

    # (the first 100 ms are left out: at the chirp's low start, one period looks like another)
    middle = len(original) // 2
    await listener.until(lambda: listener.count > listener.first_loud_at + len(original) + 4800)
    heard = listener.heard
    offset = lag(heard, original, middle)
    lags = [lag(heard, original, at) for at in range(4800, len(original) - 960, 4800)]
    # in order, no sample lost or repeated (Opus itself moves the peak by a few samples)
    assert max(lags) - min(lags) <= 8, lags
    decoded = heard[offset : offset + len(original)].astype(np.float64)
    reference = original.astype(np.float64)
    assert not np.array_equal(decoded, reference)
    snr = 10 * np.log10(np.sum(reference**2) / np.sum((decoded - reference) ** 2))
    assert snr > 10, snr
    await listener.aclose()


@bounded
async def test_video_is_delayed_and_a_frozen_participant_sends_no_media(
    realistic: Callable[..., MemoryLiveKit],
) -> None:
    """Video frames reach subscribers after the media latency; while a participant is frozen
    none of its audio reaches anyone, and it flows again once thawed. The default stand-in
    shares the publisher's native track: frames arrive at once, and nothing can be frozen."""
    server = realistic(media_latency=0.05, media_jitter=0.0, opus_bitrate=None)
    agent = await server.join("room", "agent", kind="agent")
    avatar = await server.join("room", "avatar", kind="agent")

    camera = rtc.VideoSource(32, 32)
    video = rtc.VideoStream(await subscribed(agent, avatar, camera, "face"))
    frames: list[float] = []

    async def watch() -> None:
        async for _ in video:
            frames.append(asyncio.get_running_loop().time())
            if len(frames) == 3:
                return

    watching = asyncio.create_task(watch())
    first_sent: float | None = None
    while not watching.done():
        camera.capture_frame(rtc.VideoFrame(32, 32, rtc.VideoBufferType.RGBA, bytes(32 * 32 * 4)))
        first_sent = first_sent or asyncio.get_running_loop().time()
        await asyncio.wait([watching], timeout=0.02)
    await video.aclose()
    assert first_sent is not None and frames[0] - first_sent >= 0.05 - 0.02

    microphone = rtc.AudioSource(RATE, 1)
    listener = Listener(await subscribed(agent, avatar, microphone, "voice"))

    def level(value: int) -> npt.NDArray[np.int16]:
        return np.full(RATE // 10, value, dtype=np.int16)

    await play(microphone, level(500))
    await listener.until(lambda: listener.heard_any(500))
    server.freeze("room", "avatar")
    await play(microphone, level(1000))  # spoken while frozen: nobody hears it
    await play(microphone, level(0))
    await microphone.wait_for_playout()
    server.thaw("room", "avatar")
    await play(microphone, level(2000))
    await listener.until(lambda: listener.heard_any(2000))
    assert not listener.heard_any(1000)
    await listener.aclose()
