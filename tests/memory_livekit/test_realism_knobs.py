"""``Realism``'s knobs: the presets and what is refused."""

from __future__ import annotations

import math

import pytest

from memory_livekit import MemoryLiveKit, Realism


def test_presets_and_scaling() -> None:
    """``Realism()`` turns every behaviour on with the real numbers; ``harsh`` worsens the
    network; ``time_scale`` shrinks what the server and the SDK pick. ``MemoryLiveKit()``
    stays the kind stand-in."""
    real = Realism()
    assert (real.time_scale, real.join_batch_interval) == (1.0, 3.0)
    assert (real.empty_timeout, real.departure_timeout) == (300.0, 20.0)
    assert (real.data_packet_limit, real.client_protocol) == (64_000, 0)
    harsh = Realism.harsh(time_scale=0.1, seed=3)
    assert harsh.data_latency > real.data_latency and harsh.media_jitter > real.media_jitter
    assert harsh.opus_bitrate == 24_000 and harsh.seed == 3
    assert harsh.scaled(7.0) == pytest.approx(0.7)
    assert MemoryLiveKit().realism is None
    assert MemoryLiveKit(realism=harsh).realism is harsh


@pytest.mark.parametrize(
    ("knobs", "error"),
    [
        ({"time_scale": 0}, ValueError),
        ({"data_latency": -0.1}, ValueError),
        ({"media_jitter": math.nan}, ValueError),
        ({"empty_timeout": math.inf}, ValueError),
        ({"join_batch_interval": 0}, ValueError),
        ({"opus_bitrate": 1_000}, ValueError),
        ({"data_latency": "fast"}, TypeError),
        ({"time_scale": True}, TypeError),
    ],
)
def test_refused_knobs(knobs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error, match="Realism"):
        Realism(**knobs)  # type: ignore[arg-type]
