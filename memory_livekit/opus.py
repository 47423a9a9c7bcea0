"""Opus round trip: what a sender's WebRTC stack encodes and a receiver's decodes.

WebRTC sends 20 ms Opus frames at 48 kHz; the decoder's output keeps the encoder's lookahead
(about 6.5 ms) at its start, as a WebRTC receiver's does, so coded audio lags the original
by that much besides being lossy.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms, WebRTC's Opus packet time


class OpusRoundTrip:
    """Mono 48 kHz s16 in, the same after Opus at ``bitrate`` out, 20 ms at a time."""

    def __init__(self, bitrate: int) -> None:
        self._encoder = av.CodecContext.create("libopus", "w")
        self._encoder.sample_rate = SAMPLE_RATE
        self._encoder.layout = "mono"
        self._encoder.format = "s16"
        self._encoder.bit_rate = bitrate
        self._encoder.time_base = Fraction(1, SAMPLE_RATE)
        self._encoder.open()
        self._decoder = av.CodecContext.create("libopus", "r")
        self._decoder.sample_rate = SAMPLE_RATE
        self._decoder.layout = "mono"
        self._pending: npt.NDArray[np.int16] = np.zeros(0, dtype=np.int16)
        self._pts = 0

    def code(self, samples: npt.NDArray[np.int16]) -> list[npt.NDArray[np.int16]]:
        """Feed samples; returns the decoded 20 ms frames that are ready, in order."""
        self._pending = np.concatenate((self._pending, samples))
        out: list[npt.NDArray[np.int16]] = []
        while len(self._pending) >= FRAME_SAMPLES:
            chunk = self._pending[:FRAME_SAMPLES]
            self._pending = self._pending[FRAME_SAMPLES:]
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            frame.pts = self._pts
            self._pts += FRAME_SAMPLES
            for packet in self._encoder.encode(frame):
                for decoded in self._decoder.decode(packet):
                    out.append(decoded.to_ndarray().reshape(-1).astype(np.int16, copy=False))
        return out

    def reset_input(self) -> None:
        """Drop samples not yet coded (the publisher went silent on the network)."""
        self._pending = np.zeros(0, dtype=np.int16)
