"""Finding where an avatar stopped in an utterance, from the audio it published, and
reading that audio only while it can matter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np
import pytest
from livekit import rtc

from avatarkit.playback import PlaybackTracker, locate, sending
from memory_livekit import MemoryLiveKit, MemoryRoom
from tests.helpers.audio import SAMPLE_RATE, frames_of, noise
from tests.helpers.outputs import NullOutput


def test_the_tail_of_what_was_played_is_found_to_the_sample() -> None:
    sent = noise(4.0, seed=1)
    for end in (200, 16000, 40001, len(sent)):
        assert locate(sent, sent[max(0, end - 3200) : end]) == end


def test_trailing_silence_is_padding_not_speech() -> None:
    sent = noise(2.0, seed=2)
    tail = np.concatenate([sent[9000:12000], np.zeros(800, np.int16)])
    assert locate(sent, tail) == 12000


def test_a_lossy_copy_still_matches() -> None:
    sent = noise(2.0, seed=3)
    rng = np.random.default_rng(0)
    lossy = (sent[5000:8200] + rng.normal(0, 600, 3200)).astype(np.int16)  # ~16 dB SNR
    assert locate(sent, lossy) == 8200


def test_silence_or_other_audio_is_not_a_position() -> None:
    sent = noise(2.0, seed=4)
    assert locate(sent, np.zeros(3200, np.int16)) is None
    assert locate(sent, noise(0.2, seed=5)) is None  # something the agent did not say


# -- the tracker reads the avatar's audio only while an utterance goes to it ---------------


async def _until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


async def test_the_tracker_reads_the_avatar_only_while_an_utterance_goes_to_it(
    livekit: MemoryLiveKit, agent_room: MemoryRoom
) -> None:
    avatar = await livekit.join("room-1", "avatar-1", kind="agent")
    source = rtc.AudioSource(SAMPLE_RATE, 1)
    track = rtc.LocalAudioTrack.create_audio_track("avatar-audio", source)
    await avatar.local_participant.publish_track(track)
    tracker = PlaybackTracker(agent_room, "avatar-1", SAMPLE_RATE)
    sink = NullOutput()  # the avatar's output, as the relay knows it
    tracker.follow(sink)
    pcm = noise(3.0, seed=7)
    played = 0

    async def play(seconds: float) -> None:
        nonlocal played
        for frame in frames_of(pcm[played : played + int(seconds * SAMPLE_RATE)]):
            await source.capture_frame(frame)
            played += frame.samples_per_channel

    await _until(
        lambda: any(
            p.track for p in agent_room.remote_participants["avatar-1"].track_publications.values()
        ),
        "the agent never subscribed to the avatar's audio",
    )
    await play(0.3)  # the avatar speaks, but nothing is sent to it: nothing is read
    await source.wait_for_playout()
    assert not tracker.listening and tracker.last_frame_at is None

    sending(sink, True)  # an utterance goes to the avatar
    assert tracker.listening
    since = time.monotonic()
    await play(0.5)
    await source.wait_for_playout()
    await tracker.settle()
    assert tracker.heard(pcm[:played], since) == played  # what it played, to the sample

    sending(sink, False)  # over there: the tracker stops within LINGER
    await _until(lambda: not tracker.listening, "the tracker kept reading after the utterance")
    await tracker.aclose()
    assert not tracker.listening
    await source.aclose()
    await avatar.disconnect()


def _opus(pcm: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]
    from memory_livekit.opus import OpusRoundTrip

    return np.concatenate(OpusRoundTrip(24_000).code(pcm))


@pytest.mark.parametrize("cut", [0.7, 1.1, 1.6])
def test_locate_finds_where_opus_coded_audio_ends(cut: float) -> None:
    # At 24 kbps Opus keeps little of a noisy waveform (peak correlation ~0.3), but its peak
    # stands alone; the coded audio lags by the codec's lookahead (6.5 ms at 48 kHz).
    rate = 48_000
    sent = noise(2.0, seed=3, rate=rate)
    end = int(cut * rate)
    heard = _opus(sent[:end])
    found = locate(sent, heard[-int(0.4 * rate) :])
    assert found is not None and abs(found - end) <= 0.010 * rate, (found, end)


def test_locate_does_not_take_other_coded_audio_for_the_utterance() -> None:
    rate = 48_000
    sent = noise(2.0, seed=3, rate=rate)
    other = _opus(noise(1.0, seed=4, rate=rate))
    assert locate(sent, other[-int(0.4 * rate) :]) is None
