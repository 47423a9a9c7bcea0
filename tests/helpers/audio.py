"""Real rtc audio frames for tests."""

from __future__ import annotations

import asyncio
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


def noise(seconds: float, *, seed: int, rate: int = SAMPLE_RATE) -> np.ndarray:  # type: ignore[type-arg]
    """Unique loud noise: any 4 consecutive samples identify their position."""
    rng = np.random.default_rng(seed)
    pcm = (rng.standard_normal(int(seconds * rate)) * 4000).clip(-32000, 32000).astype(np.int16)
    pcm[pcm == 0] = 1  # silence is what tracks carry between utterances; never in speech
    return pcm


def frames_of(pcm: np.ndarray, *, rate: int = SAMPLE_RATE) -> list[rtc.AudioFrame]:  # type: ignore[type-arg]
    per_frame = rate // 100
    return [
        rtc.AudioFrame(pcm[i : i + per_frame].tobytes(), rate, 1, len(pcm[i : i + per_frame]))
        for i in range(0, len(pcm), per_frame)
    ]


class Ledger:
    """What a listener in the room heard of the agent's speech, sample by sample.

    The agent says unique noise (:func:`noise`); the listener subscribes to every audio track
    in the room (the avatars' and the agent's own) and records what each delivers. ``count``
    says how many times each sent sample was heard, over all tracks: 1 everywhere means nothing
    was lost and nothing was played twice.
    """

    def __init__(self, room: rtc.Room, *, rate: int = SAMPLE_RATE) -> None:
        self.room = room
        self.rate = rate
        self.sent: list[np.ndarray] = []  # type: ignore[type-arg]
        self.received: dict[str, list[np.ndarray]] = {}  # type: ignore[type-arg]
        self._tasks: list[asyncio.Task[None]] = []
        room.on("track_subscribed", self._on_track)
        for p in room.remote_participants.values():
            for pub in p.track_publications.values():
                if pub.track is not None:
                    self._on_track(pub.track, pub, p)

    def _on_track(self, track: rtc.Track, _: object, participant: rtc.RemoteParticipant) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            key = f"{participant.identity}/{track.sid}"
            self.received[key] = []
            self._tasks.append(asyncio.create_task(self._read(track, key)))

    async def _read(self, track: rtc.Track, key: str) -> None:
        stream = rtc.AudioStream.from_track(track=track, sample_rate=self.rate, num_channels=1)
        try:
            async for ev in stream:
                self.received[key].append(np.frombuffer(bytes(ev.frame.data), dtype=np.int16))
        finally:
            await stream.aclose()

    def say(self, pcm: np.ndarray) -> list[rtc.AudioFrame]:  # type: ignore[type-arg]
        self.sent.append(pcm)
        return frames_of(pcm, rate=self.rate)

    def counts(self) -> tuple[np.ndarray, dict[str, int]]:  # type: ignore[type-arg]
        """Per sent sample, how often it was heard; and per track, how many samples of speech."""
        sent = np.concatenate(self.sent) if self.sent else np.zeros(0, np.int16)
        index: dict[bytes, int] = {}
        for i in range(len(sent) - 3):
            index.setdefault(sent[i : i + 4].tobytes(), i)
        count = np.zeros(len(sent), dtype=np.int32)
        per_track: dict[str, int] = {}
        for key, chunks in self.received.items():
            rx = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
            heard, i = 0, 0
            while i < len(rx) - 3:
                pos = index.get(rx[i : i + 4].tobytes())
                if pos is None:
                    i += 1
                    continue
                n = 4
                while i + n < len(rx) and pos + n < len(sent) and rx[i + n] == sent[pos + n]:
                    n += 1
                count[pos : pos + n] += 1
                heard += n
                i += n
            per_track[key] = heard
        return count, per_track

    def loud(self, threshold: int) -> int:
        """Samples heard above ``threshold``, over every track (for coded audio)."""
        return sum(
            int((np.abs(chunk.astype(np.int32)) > threshold).sum())
            for chunks in self.received.values()
            for chunk in chunks
        )

    async def aclose(self) -> None:
        self.room.off("track_subscribed", self._on_track)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
