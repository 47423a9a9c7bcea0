"""Measurements on a :class:`~avatarkit_cli.recording.Recording`, the same for every provider."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .recording import AUDIO_RATE, Recording

BIN = 0.01  # seconds
MAX_LAG = 0.5


def frames_dropped(recording: Recording) -> int:
    """Video frames missing from the stream: gaps longer than 1.5 frame intervals, counted in
    intervals (the nominal interval is the median one)."""
    times = np.asarray(recording.video_times)
    if len(times) < 3:
        return 0
    gaps = np.diff(times)
    nominal = float(np.median(gaps))
    if nominal <= 0:
        return 0
    late = gaps[gaps > 1.5 * nominal]
    return int(np.maximum(np.rint(late / nominal) - 1, 0).sum())


def av_offset(recording: Recording) -> float | None:
    """How late the avatar's video moves relative to its audio, in seconds (negative: video
    early). The picture is cut into an 8x8 grid; the cell whose distance from its resting
    look best follows the speech envelope (the mouth, whatever the face) gives the lag.
    None when no cell follows the speech well enough to tell."""
    pcm = recording.pcm().astype(np.float64)
    if recording.audio_start is None or len(recording.video_times) < 10 or len(pcm) < AUDIO_RATE:
        return None
    per_bin = int(AUDIO_RATE * BIN)
    bins = len(pcm) // per_bin
    envelope = np.sqrt((pcm[: bins * per_bin].reshape(bins, per_bin) ** 2).mean(axis=1))
    grid_t = recording.audio_start + np.arange(bins) * BIN
    cells = np.asarray(recording.blocks, dtype=np.float64)
    # The resting look is what the picture shows while the avatar is silent.
    loudness = np.interp(recording.video_times, grid_t, envelope)
    quiet = loudness < 0.05 * envelope.max()
    rest = np.median(cells[quiet] if quiet.sum() >= 5 else cells, axis=0)
    away = np.abs(cells - rest)
    lags = np.arange(-int(MAX_LAG / BIN), int(MAX_LAG / BIN) + 1)
    a = _standard(envelope)
    best_score, best_lag = 0.0, 0
    for cell in away.T:
        v = _standard(np.interp(grid_t, recording.video_times, cell))
        for lag in lags:
            k = int(lag)
            score = float(
                np.dot(a[max(0, -k) : bins - max(0, k)], v[max(0, k) : bins - max(0, -k)])
            )
            if score / bins > best_score:
                best_score, best_lag = score / bins, k
    if best_score < 0.3 or abs(best_lag) == lags[-1]:  # weak, or outside the window
        return None
    return best_lag * BIN


def _standard(x: NDArray[np.float64]) -> NDArray[np.float64]:
    std = float(x.std())
    return (x - x.mean()) / std if std > 0 else np.zeros_like(x)
