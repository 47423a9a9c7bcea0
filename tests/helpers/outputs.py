"""Audio outputs for tests."""

from __future__ import annotations

from livekit import rtc
from livekit.agents.voice.io import AudioOutput, AudioOutputCapabilities


class NullOutput(AudioOutput):
    """An ``AudioOutput`` that takes frames and plays nothing: a stand-in for whatever an app
    had routed the agent's audio to."""

    def __init__(self, next_in_chain: AudioOutput | None = None, *, label: str = "null") -> None:
        super().__init__(
            label=label,
            next_in_chain=next_in_chain,
            sample_rate=16000,
            capabilities=AudioOutputCapabilities(pause=False),
        )

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)

    def flush(self) -> None:
        super().flush()

    def clear_buffer(self) -> None:
        pass
