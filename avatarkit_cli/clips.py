"""The speech clip avatarkit ships for its demo and comparisons (espeak-ng, 16 kHz mono)."""

from __future__ import annotations

import wave
from importlib import resources

import attrs
import numpy as np
from numpy.typing import NDArray

SAMPLE_RATE = 16000


@attrs.frozen
class Utterance:
    """One thing the scripted agent says: its text and its audio."""

    text: str
    pcm: NDArray[np.int16] = attrs.field(repr=False, eq=False)
    sample_rate: int = SAMPLE_RATE

    @property
    def duration(self) -> float:
        return len(self.pcm) / self.sample_rate


_TEXTS = (
    ("utterance1.wav", "Hello! I am an avatar, drawn by avatarkit from the sound of my voice."),
    ("utterance2.wav", "When I stop talking, my mouth rests. Switching providers is one word."),
)


def bundled_utterances() -> list[Utterance]:
    """The bundled clip: two short utterances."""
    utterances = []
    for name, text in _TEXTS:
        with (
            resources.files("avatarkit_cli.data").joinpath(name).open("rb") as f,
            wave.open(f) as w,
        ):
            assert w.getframerate() == SAMPLE_RATE and w.getnchannels() == 1
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        utterances.append(Utterance(text, pcm))
    return utterances
