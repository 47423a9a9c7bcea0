"""Real rtc audio frames for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
from livekit import rtc

SAMPLE_RATE = 16000
FRAME = 160  # 10 ms


def tone_frames(
    seconds: float, *, rate: int = SAMPLE_RATE, hz: float = 220.0
) -> list[rtc.AudioFrame]:
    """``seconds`` of a loud tone as 10 ms frames."""
    per_frame = rate // 100
    total = int(seconds * rate)
    t = np.arange(total) / rate
    pcm = (np.sin(2 * np.pi * hz * t) * 12000).astype(np.int16)
    return [
        rtc.AudioFrame(pcm[i : i + per_frame].tobytes(), rate, 1, len(pcm[i : i + per_frame]))
        for i in range(0, total, per_frame)
    ]


async def stream(frames: list[rtc.AudioFrame]) -> AsyncIterator[rtc.AudioFrame]:
    for frame in frames:
        yield frame
