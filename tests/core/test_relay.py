"""The relay on its own, with a sink that records what it is told."""

from __future__ import annotations

import asyncio

from livekit import rtc

from avatarkit.relay import AudioRelay
from tests.helpers.audio import tone_frames
from tests.helpers.outputs import NullOutput


class RecordingSink(NullOutput):
    def __init__(self) -> None:
        super().__init__(label="recording")
        self.frames = 0
        self.clears = 0
        self.playing = asyncio.Event()

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        self.frames += 1
        if self.frames >= 10:
            self.playing.set()

    def clear_buffer(self) -> None:
        self.clears += 1
        self.on_playback_finished(playback_position=0.1, interrupted=True)


async def test_a_clear_right_after_a_pause_stops_the_sink() -> None:
    # livekit-agents pauses on speech, then may find it a real interruption and clear before
    # the supervisor has stopped the avatar for the pause: the clear must stop it
    relay = AudioRelay(sample_rate=16000)
    sink = RecordingSink()
    paused: list[bool] = []
    relay.on_pause = lambda: paused.append(True)  # the supervisor acts on it later
    relay.switch(sink)
    for frame in tone_frames(0.3):
        await relay.capture_frame(frame)
    await asyncio.wait_for(sink.playing.wait(), 5)
    relay.pause()
    relay.clear_buffer()
    assert paused == [True] and sink.clears == 1
    assert not relay.busy and not relay.paused
    await relay.aclose()
