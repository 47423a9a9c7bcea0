"""Tests for the real-time face VideoGenerator (avatarkit_providers.local.video)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest
from livekit import rtc
from livekit.agents.voice.avatar import AudioSegmentEnd
from numpy.typing import NDArray

from avatarkit_providers.local.render import FaceRenderer
from avatarkit_providers.local.video import FaceVideoGenerator

SR = 16000
FPS = 30.0
SIZE = 128

Item = rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd


def _tone(seconds: float, rate: int = SR, channels: int = 1) -> NDArray[np.int16]:
    t = np.arange(int(rate * seconds)) / rate
    x = (0.3 * np.sin(2 * np.pi * 200 * t) * 32767).astype(np.int16)
    return np.repeat(x[:, None], channels, axis=1)


async def _push(
    gen: FaceVideoGenerator, pcm: NDArray[np.int16], rate: int = SR, *, end: bool = True
) -> None:
    """Push like AvatarRunner does: 20 ms frames, then the segment end."""
    step = rate // 50
    for i in range(0, len(pcm), step):
        chunk = np.ascontiguousarray(pcm[i : i + step])
        await gen.push_audio(rtc.AudioFrame(chunk.tobytes(), rate, chunk.shape[1], len(chunk)))
    if end:
        await gen.push_audio(AudioSegmentEnd())


async def _collect(
    it: AsyncIterator[Item], *, until_end: bool = True, seconds: float = 5.0
) -> list[Item]:
    """Items until the first AudioSegmentEnd (included), or for ``seconds``."""
    items: list[Item] = []
    deadline = time.monotonic() + seconds

    async def run() -> None:
        async for item in it:
            items.append(item)
            if until_end and isinstance(item, AudioSegmentEnd):
                return
            if time.monotonic() >= deadline:
                return

    await asyncio.wait_for(run(), timeout=seconds + 5.0)
    return items


@pytest.fixture
def gen() -> FaceVideoGenerator:
    return FaceVideoGenerator(width=SIZE, height=SIZE, fps=FPS, sample_rate=SR)


async def test_segment_audio_comes_out_whole_in_frame_sized_chunks(gen: FaceVideoGenerator) -> None:
    pcm = _tone(1.0)
    await _push(gen, pcm)
    t0 = time.monotonic()
    items = await _collect(aiter(gen))
    elapsed = time.monotonic() - t0

    assert isinstance(items[-1], AudioSegmentEnd)
    audio = [i for i in items if isinstance(i, rtc.AudioFrame)]
    video = [i for i in items if isinstance(i, rtc.VideoFrame)]
    # every pushed sample, once, in order
    out = np.concatenate([np.frombuffer(a.data, np.int16) for a in audio])
    np.testing.assert_array_equal(out, pcm[:, 0])
    # one chunk of exactly one frame's audio per video frame (533/534 samples at 16k/30fps)
    assert len(video) == len(audio) == 30
    assert {a.samples_per_channel for a in audio} <= {533, 534}
    assert all(a.sample_rate == SR and a.num_channels == 1 for a in audio)
    # each audio chunk follows its picture
    kinds = [type(i).__name__ for i in items[:-1]]
    assert kinds == ["VideoFrame", "AudioFrame"] * 30
    v = video[0]
    assert (v.width, v.height, v.type) == (SIZE, SIZE, rtc.VideoBufferType.RGBA)
    assert len(v.data) == SIZE * SIZE * 4
    # paced in real time, not dumped at once (a little ahead is allowed: lookahead)
    assert 0.8 <= elapsed <= 1.6
    assert gen.stats.speech_frames == 30
    assert gen.stats.audio_samples_out == gen.stats.audio_samples_in == SR
    assert gen.stats.segments == 1

    # the offline path is the same audio->frames code: same chunks, same pictures
    offline = list(gen.render_offline(pcm[:, 0]))
    assert len(offline) == 30
    for (rgba, chunk), vf, af in zip(offline, video, audio, strict=True):
        np.testing.assert_array_equal(chunk[:, 0], np.frombuffer(af.data, np.int16))
        np.testing.assert_array_equal(rgba.reshape(-1), np.frombuffer(vf.data, np.uint8))


async def test_mouth_moves_with_speech(gen: FaceVideoGenerator) -> None:
    await _push(gen, _tone(0.5))
    it = aiter(gen)
    mouths = []
    for item in await _collect(it):
        if isinstance(item, rtc.AudioFrame):
            assert gen.last_state is not None
            mouths.append(gen.last_state.mouth_open)
    assert max(mouths) > 0.9
    idle = await _collect(it, until_end=False, seconds=0.4)
    assert gen.last_state is not None and gen.last_state.mouth_open == 0.0
    assert all(isinstance(i, rtc.VideoFrame) for i in idle)


async def test_idle_frames_keep_coming_without_audio(gen: FaceVideoGenerator) -> None:
    items = await _collect(aiter(gen), until_end=False, seconds=0.5)
    assert all(isinstance(i, rtc.VideoFrame) for i in items)
    # real-time pace: about 15 frames in 0.5 s, not a flood
    assert 10 <= len(items) <= 18
    assert gen.stats.idle_frames == len(items)
    assert gen.stats.audio_samples_out == 0


async def test_clear_buffer_mid_segment(gen: FaceVideoGenerator) -> None:
    pcm = _tone(2.0)
    await _push(gen, pcm)
    it = aiter(gen)
    items: list[Item] = []

    async def run() -> None:
        audio_frames = 0
        async for item in it:
            items.append(item)
            if isinstance(item, rtc.AudioFrame):
                audio_frames += 1
                if audio_frames == 10:
                    assert gen.last_state is not None and gen.last_state.mouth_open > 0.5
                    gen.clear_buffer()
            if isinstance(item, AudioSegmentEnd):
                return

    await asyncio.wait_for(run(), timeout=5.0)
    audio = [i for i in items if isinstance(i, rtc.AudioFrame)]
    # nothing more was played once cleared: the end comes straight after
    assert len(audio) == 10
    assert isinstance(items[-2], rtc.AudioFrame)
    assert isinstance(items[-1], AudioSegmentEnd)
    stats = gen.stats
    assert stats.interruptions == 1 and stats.segments == 0
    assert stats.audio_samples_out + stats.audio_samples_cleared == len(pcm)
    # the mouth shuts at once, and idle frames carry on with no audio
    idle = await _collect(it, until_end=False, seconds=0.3)
    assert idle and all(isinstance(i, rtc.VideoFrame) for i in idle)
    assert gen.last_state is not None and gen.last_state.mouth_open == 0.0

    # the next segment plays normally
    await _push(gen, _tone(0.2))
    items = await _collect(it)
    got = sum(i.samples_per_channel for i in items if isinstance(i, rtc.AudioFrame))
    assert got == int(0.2 * SR)


async def test_clear_buffer_when_idle_yields_nothing(gen: FaceVideoGenerator) -> None:
    gen.clear_buffer()
    items = await _collect(aiter(gen), until_end=False, seconds=0.2)
    assert items and all(isinstance(i, rtc.VideoFrame) for i in items)
    assert gen.stats.interruptions == 0


async def test_end_without_audio_is_not_a_segment(gen: FaceVideoGenerator) -> None:
    await gen.push_audio(AudioSegmentEnd())
    items = await _collect(aiter(gen), until_end=False, seconds=0.2)
    assert not any(isinstance(i, AudioSegmentEnd) for i in items)


async def test_other_rates_and_channels_are_converted(gen: FaceVideoGenerator) -> None:
    # 1 s of 48 kHz stereo comes out as ~1 s of 16 kHz mono
    await _push(gen, _tone(1.0, rate=48000, channels=2), rate=48000)
    items = await _collect(aiter(gen))
    audio = [i for i in items if isinstance(i, rtc.AudioFrame)]
    assert all(a.sample_rate == SR and a.num_channels == 1 for a in audio)
    total = sum(a.samples_per_channel for a in audio)
    assert abs(total - SR) <= SR * 0.01
    assert total == gen.stats.audio_samples_in


async def test_frames_dropped_when_the_consumer_lags(gen: FaceVideoGenerator) -> None:
    it = aiter(gen)
    await it.__anext__()
    await asyncio.sleep(0.2)  # e.g. the event loop was busy
    await it.__anext__()
    assert gen.stats.frames_dropped >= 4
    assert gen.stats.stalls == 0
    # the missed slots were skipped, not replayed as a burst of catch-up frames
    t0 = time.monotonic()
    await it.__anext__()
    await it.__anext__()
    assert time.monotonic() - t0 >= 0.02


async def test_long_hold_up_is_a_stall_not_drops(gen: FaceVideoGenerator) -> None:
    # AvatarRunner holds the first frame until its tracks are published and subscribed
    it = aiter(gen)
    await it.__anext__()
    await asyncio.sleep(0.5)
    await it.__anext__()
    assert gen.stats.stalls == 1
    assert gen.stats.frames_dropped == 0
    t0 = time.monotonic()
    await it.__anext__()
    assert time.monotonic() - t0 >= 0.02  # back on the frame clock


async def test_with_av_synchronizer() -> None:
    gen = FaceVideoGenerator(width=SIZE, height=SIZE, fps=FPS, sample_rate=SR)
    audio_source = rtc.AudioSource(SR, 1, queue_size_ms=100)
    video_source = rtc.VideoSource(SIZE, SIZE)
    av_sync = rtc.AVSynchronizer(
        audio_source=audio_source,
        video_source=video_source,
        video_fps=FPS,
        video_queue_size_ms=100,
    )
    pcm = _tone(1.2)
    skew: list[float] = []
    audio_end = 0.0
    ends = 0
    try:

        async def produce() -> None:
            # start idle, like an agent before its first reply; arrive mid-frame so audio
            # sent early would be heard before its picture shows
            await asyncio.sleep(0.205)
            await _push(gen, pcm)

        producer = asyncio.create_task(produce())

        async def consume() -> None:
            # like AvatarRunner._forward_video, plus media timestamps to measure A/V skew
            nonlocal audio_end, ends
            async for item in gen:
                if isinstance(item, AudioSegmentEnd):
                    ends += 1
                    return
                if isinstance(item, rtc.VideoFrame):
                    await av_sync.push(item, audio_end)
                else:
                    audio_end += item.duration
                    await av_sync.push(item, audio_end)
                    if audio_end > 0.2:
                        skew.append(av_sync.last_audio_time - av_sync.last_video_time)

        await asyncio.wait_for(consume(), timeout=5.0)
        await producer
        await asyncio.wait_for(av_sync.wait_for_playout(), timeout=2.0)
    finally:
        await av_sync.aclose()
        await audio_source.aclose()
        await video_source.aclose()

    assert ends == 1
    assert audio_end == pytest.approx(1.2, abs=1e-6)
    # the audio being heard lies within the frame on screen (ideally half a frame in)
    assert skew and max(abs(s - 0.5 / FPS) for s in skew) < 0.6 / FPS
    assert av_sync.actual_fps == pytest.approx(FPS, rel=0.15)
    assert gen.stats.frames_dropped <= 3 and gen.stats.stalls == 0


async def test_aclose_stops_iteration(gen: FaceVideoGenerator) -> None:
    it = aiter(gen)
    await it.__anext__()
    await gen.aclose()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(it.__anext__(), timeout=1.0)


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="fps"):
        FaceVideoGenerator(fps=0)
    with pytest.raises(ValueError, match="channels"):
        FaceVideoGenerator(channels=3)
    with pytest.raises(ValueError, match="sample_rate"):
        FaceVideoGenerator(sample_rate=100)
    with pytest.raises(ValueError, match="even number"):
        FaceVideoGenerator(width=101)
    with pytest.raises(ValueError, match="matching sizes"):
        FaceVideoGenerator(width=256, height=256, renderer=FaceRenderer(128, 128))


def test_render_offline_accepts_float_and_other_rates() -> None:
    gen = FaceVideoGenerator(width=SIZE, height=SIZE)
    t = np.arange(24000) / 24000
    pcm = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)  # 1 s at 24 kHz
    frames = list(gen.render_offline(pcm, 24000))
    total = sum(len(chunk) for _, chunk in frames)
    assert abs(total - SR) <= SR * 0.01
    assert len(frames) == pytest.approx(30, abs=1)
    assert all(rgba.shape == (SIZE, SIZE, 4) for rgba, _ in frames)
    # the live generator was not touched
    assert gen.stats.frames_rendered == 0 and gen.last_state is None
