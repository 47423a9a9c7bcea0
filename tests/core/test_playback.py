"""Finding where an avatar stopped in an utterance, from the audio it published."""

from __future__ import annotations

import numpy as np

from avatarkit.playback import locate
from tests.helpers.audio import noise


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
