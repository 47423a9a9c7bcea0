"""The events and metrics every avatarkit session emits, whatever its provider."""

from __future__ import annotations

import time
from typing import Literal

import attrs
from livekit.agents.metrics.base import AvatarMetrics

AvatarState = Literal["starting", "joined", "renewing", "degraded", "failed_over", "ended"]
"""``starting``: a remote avatar is being created and joined; ``joined``: an avatar speaks for
the agent; ``renewing``: a fresh session is being brought in before the current one's cap;
``degraded``: no avatar, the agent speaks through the room's audio; ``failed_over``: a provider
failed and the next one is being tried; ``ended``: closed."""


@attrs.frozen
class AvatarStateChanged:
    """Emitted as ``avatar_state_changed`` on the :class:`~avatarkit.AvatarkitSession`."""

    state: AvatarState
    previous: AvatarState | None
    provider: str
    session_id: str | None
    reason: str
    created_at: float = attrs.field(factory=time.time)


class AvatarkitMetrics(AvatarMetrics):
    """livekit's ``AvatarMetrics``, with what avatarkit measures for every provider.

    Emitted as ``metrics_collected`` on the avatar session and on the AgentSession (as
    livekit's avatar plugins do). ``event`` says which fields are set:

    - ``joined``: ``join_latency`` (create to the avatar's video track),
      ``first_frame_latency`` (create to its first video frame, when known);
    - ``renewed``: ``renewal_gap`` (seconds the agent's audio had no avatar around the handover);
    - ``lost``: ``loss_to_audible`` (the loss noticed to the rest of the utterance sent to the
      room or the next avatar);
    - ``ended``: ``outcome`` (graceful, forced, failed, not_created) for one remote session,
      and ``audio_without_avatar`` (seconds of agent audio played by the room so far).
    """

    event: str = ""
    provider: str = ""
    session_id: str | None = None
    join_latency: float | None = None
    first_frame_latency: float | None = None
    renewal_gap: float | None = None
    loss_to_audible: float | None = None
    audio_without_avatar: float | None = None
    outcome: str | None = None
