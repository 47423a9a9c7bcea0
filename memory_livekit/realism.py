"""``Realism``: the knobs of the in-memory server's realistic mode, and the numbers behind them.

Without it, :class:`~memory_livekit.MemoryLiveKit` is kind: everything arrives at once, RPC to
a missing participant fails at once, audio is bit-exact. With
``MemoryLiveKit(realism=Realism(...))`` it behaves as a LiveKit server and the SDK do, with
the numbers below, each taken from the source it is cited from (livekit/livekit for the
server, livekit/rust-sdks for the SDK under livekit-rtc).

``time_scale`` shrinks the durations the server and the SDK pick (timeouts, periods), so a
test of a 20 s rule runs in 2 s at ``time_scale=0.1``. Durations your code passes (an RPC's
``response_timeout``, ``reconnect(downtime=...)``) are used as given, and network latencies
are never scaled: they are already short, and they are what your own timers must absorb.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

# -- the SDK's (livekit/rust-sdks) ---------------------------------------------------------------

RPC_MAX_ROUND_TRIP_LATENCY = 7.0
"""The caller waits this long for the callee's ACK, then fails with ``CONNECTION_TIMEOUT``
(livekit/src/room/rpc/mod.rs, ``PerformRpcData::default``; livekit/src/room/rpc/client.rs)."""
RPC_RESPONSE_TIMEOUT = 15.0
"""After the ACK, the caller waits this long for the response, then fails with
``RESPONSE_TIMEOUT`` (same files)."""
RPC_MIN_EFFECTIVE_TIMEOUT = 1.0
"""The handler is given ``max(response_timeout - max_round_trip_latency, this)``
(livekit/src/room/rpc/client.rs, ``min_effective_timeout``)."""
RPC_MAX_V1_PAYLOAD_BYTES = 15_360
"""Request and response payloads over this are refused when RPC travels in data packets (v1):
``REQUEST_PAYLOAD_TOO_LARGE`` at the caller, ``RESPONSE_PAYLOAD_TOO_LARGE`` from the callee
(livekit/src/room/rpc/mod.rs ``MAX_V1_PAYLOAD_BYTES``; rpc/client.rs; rpc/server.rs)."""
CLIENT_PROTOCOL_DATA_STREAM_RPC = 1
"""A callee whose ``client_protocol`` is at least this gets RPC over data streams (v2), with no
payload limit (livekit-common/src/lib.rs; livekit/src/room/rpc/client.rs ``use_v2``)."""
DATA_PACKET_MAX_BYTES = 64_000
"""The SDK refuses a data packet whose encoded size exceeds the negotiated SCTP
max-message-size, capped at this (livekit/src/rtc_engine/rtc_session.rs,
``DEFAULT_MAX_MESSAGE_SIZE`` and its use in the data channel task)."""

# -- the server's (livekit/livekit) ----------------------------------------------------------------

JOIN_BATCH_INTERVAL = 3.0
"""Updates about participants that do not publish are sent in batches on this period
(pkg/rtc/room.go, ``subscriberUpdateInterval`` and ``changeUpdateWorker``)."""
EMPTY_TIMEOUT = 300.0
"""A room where no participant other than agents and egress ever joined closes this long after
its creation (pkg/config/config.go ``EmptyTimeout``; pkg/rtc/room.go ``CloseIfEmpty``)."""
DEPARTURE_TIMEOUT = 20.0
"""Once only agents and egress are left, a room closes this long after the last departure
(pkg/config/config.go ``DepartureTimeout``; pkg/rtc/room.go ``CloseIfEmpty``)."""


@dataclass(frozen=True)
class Realism:
    """How harsh the in-memory server is. ``Realism()`` is a plausible good connection;
    :meth:`harsh` a poor one. Set a latency or jitter to ``0``, or another knob to ``None``,
    to leave that behaviour out.

    What each knob does is in ``docs/memory-livekit.md`` ("Realistic mode")."""

    time_scale: float = 1.0
    """Multiplies every duration the server or the SDK picks (not latencies, not durations
    your code passes)."""
    data_latency: float = 0.03
    """One-way delay, in seconds, of data packets, streams and RPC messages."""
    data_jitter: float = 0.01
    """Extra random delay, up to this, per message; order per sender is kept, as the reliable
    data channel keeps it."""
    media_latency: float = 0.06
    """One-way delay of audio and video frames, network and jitter buffer together."""
    media_jitter: float = 0.02
    """Extra random delay per frame, up to this; frames are never reordered."""
    opus_bitrate: int | None = 32_000
    """Audio goes through Opus at this rate unless the publisher set
    ``TrackPublishOptions.audio_encoding.max_bitrate``; ``None`` keeps it bit-exact."""
    data_packet_limit: int | None = DATA_PACKET_MAX_BYTES
    """Encoded size above which ``publish_data`` raises ``PublishDataError`` (0 or None: no
    limit)."""
    client_protocol: int = 0
    """The ``client_protocol`` participants report unless ``join(client_protocol=...)`` says
    otherwise. Below 1, RPC to them travels in data packets and its payloads are capped at
    15 KiB; a current Python or Rust SDK reports 2."""
    join_batch_interval: float | None = JOIN_BATCH_INTERVAL
    """Period of the batches of updates about participants that publish nothing."""
    empty_timeout: float | None = EMPTY_TIMEOUT
    """Auto-close of a room nobody but agents joined, after its creation."""
    departure_timeout: float | None = DEPARTURE_TIMEOUT
    """Auto-close of a room once only agents are left, after the last departure."""
    seed: int | None = None
    """Seed of the jitter, for reproducible runs."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "seed" or value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"Realism.{f.name} must be a number, not {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"Realism.{f.name} must be finite and >= 0, not {value!r}")
        if self.time_scale <= 0:
            raise ValueError(f"Realism.time_scale must be > 0, not {self.time_scale!r}")
        if self.opus_bitrate is not None and not 6_000 <= self.opus_bitrate <= 510_000:
            raise ValueError(f"Realism.opus_bitrate must be 6000-510000, not {self.opus_bitrate}")
        for name in ("join_batch_interval", "empty_timeout", "departure_timeout"):
            if getattr(self, name) == 0:
                raise ValueError(f"Realism.{name} must be > 0, or None to leave it out")

    @classmethod
    def harsh(cls, *, time_scale: float = 1.0, seed: int | None = None) -> Realism:
        """A poor but working connection: more latency and jitter, speech-rate Opus (the SDK's
        ``AudioPresets.speech``, livekit/src/room/options.rs)."""
        return cls(
            time_scale=time_scale,
            data_latency=0.08,
            data_jitter=0.04,
            media_latency=0.12,
            media_jitter=0.05,
            opus_bitrate=24_000,
            seed=seed,
        )

    def scaled(self, seconds: float) -> float:
        """A duration the server or the SDK picks, in this world's time."""
        return seconds * self.time_scale
