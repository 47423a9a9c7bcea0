"""compare's measurements on synthetic recordings whose truth is known."""

from __future__ import annotations

import numpy as np
import pytest

from avatarkit_cli.measure import av_offset, frames_dropped
from avatarkit_cli.recording import AUDIO_RATE, Recording


def speech_like(seconds: float, seed: int = 1) -> np.ndarray:
    """Syllable-like bursts of noise with pauses, as int16 at AUDIO_RATE."""
    rng = np.random.default_rng(seed)
    n = int(seconds * AUDIO_RATE)
    envelope = np.zeros(n)
    t = 0.3
    while t < seconds - 0.5:
        length = rng.uniform(0.08, 0.3)
        start = int(t * AUDIO_RATE)
        envelope[start : start + int(length * AUDIO_RATE)] = rng.uniform(0.4, 1.0)
        t += length + rng.uniform(0.05, 0.4)
    return (rng.normal(0, 1, n) * envelope * 8000).astype(np.int16)


def recording(delay: float, fps: float = 30.0, seconds: float = 6.0) -> Recording:
    """A picture whose one 'mouth' cell opens with the audio, ``delay`` seconds late,
    and whose other cells sway a little on their own."""
    pcm = speech_like(seconds)
    rec = Recording(audio=[pcm], audio_start=0.5)
    per_frame = AUDIO_RATE / fps
    rng = np.random.default_rng(7)
    for i in range(int(seconds * fps)):
        at = 0.5 + i / fps
        source = int((i / fps - delay) * AUDIO_RATE)
        window = pcm[max(source, 0) : max(source, 0) + int(per_frame)].astype(float)
        loud = float(np.abs(window).mean()) if source >= 0 and len(window) else 0.0
        cells = 100 + rng.normal(0, 1.0, 64).astype(np.float32)
        cells[44] -= loud / 40  # the mouth darkens as it opens
        rec.video_times.append(at)
        rec.blocks.append(cells)
    return rec


@pytest.mark.parametrize("delay", [-0.1, 0.0, 0.15, 0.3])
def test_av_offset_finds_the_delay_of_the_moving_cell(delay: float) -> None:
    measured = av_offset(recording(delay))
    assert measured is not None
    assert abs(measured - delay) <= 0.04  # about one frame at 30 fps


def test_av_offset_is_none_when_the_picture_ignores_the_sound() -> None:
    rec = recording(0.0)
    rng = np.random.default_rng(3)
    rec.blocks = [100 + rng.normal(0, 1.0, 64).astype(np.float32) for _ in rec.blocks]
    assert av_offset(rec) is None


def test_frames_dropped_counts_missing_intervals() -> None:
    rec = Recording(video_times=[i / 30 for i in range(100)])
    assert frames_dropped(rec) == 0
    times = [i / 30 for i in range(100) if i not in (10, 11, 12, 50)]
    assert frames_dropped(Recording(video_times=times)) == 4
