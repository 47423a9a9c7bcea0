"""Every private livekit-agents API avatarkit relies on, and nothing else.

livekit-agents keeps these private, so any release may move them; our dependency range
(``livekit-agents~=1.8``) pins them, and ``tests/core/test_compat.py`` fails naming what moved.
The rest of the core goes through the names below and never spells a private livekit name.

- ``_ParticipantAudioOutput`` (``voice.room_io._output``): the agent's own room track, as
  RoomIO publishes it (:data:`ParticipantAudioOutput`), and its ``_publication``
  (:func:`published_track`), which livekit's ``aclose()`` leaves in the room.
- ``voice.avatar._datastream_io``: the playback RPC method names, and the private hooks of
  ``DataStreamAudioOutput`` / ``DataStreamAudioReceiver`` that register those RPCs in
  class-level tables (:class:`DataStreamOutputHooks`, :class:`DataStreamReceiverHooks`) plus
  the attributes read when an output is retired.
- ``set_next_in_chain``: the swap point (livekit's private ``_AudioSinkProxy``) an
  AgentSession puts at the bottom of its audio chain once started (:func:`swap_point`).
- ``AudioOutput._pending_playback_count`` (:func:`pending_playbacks`).
- ``AvatarSession._wait_avatar_join`` and ``_emit_metrics`` (:class:`AvatarSessionHooks`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol, cast

from livekit import rtc
from livekit.agents.metrics.base import AvatarMetrics
from livekit.agents.voice.avatar import (
    AvatarSession,
    DataStreamAudioOutput,
    DataStreamAudioReceiver,
)
from livekit.agents.voice.avatar._datastream_io import (
    RPC_CLEAR_BUFFER,
    RPC_PLAYBACK_FINISHED,
    RPC_PLAYBACK_STARTED,
)
from livekit.agents.voice.io import AudioOutput
from livekit.agents.voice.room_io._output import _ParticipantAudioOutput

__all__ = [
    "RPC_CLEAR_BUFFER",
    "RPC_PLAYBACK_FINISHED",
    "RPC_PLAYBACK_STARTED",
    "AvatarSessionHooks",
    "DataStreamOutputHooks",
    "DataStreamReceiverHooks",
    "Handler",
    "ParticipantAudioOutput",
    "SwapPoint",
    "pending_playbacks",
    "published_track",
    "swap_point",
]

Handler = Callable[[rtc.RpcInvocationData], str]

ParticipantAudioOutput = _ParticipantAudioOutput
"""The audio output RoomIO publishes the agent's track with (``roomio_audio``)."""


def published_track(output: _ParticipantAudioOutput) -> rtc.LocalTrackPublication | None:
    """The track ``output`` published, once ``publish_track()`` returned; its ``aclose()``
    does not unpublish it."""
    return output._publication


# -- the AgentSession's audio chain ---------------------------------------------------------


class SwapPoint(Protocol):
    """livekit's ``_AudioSinkProxy``: a stable link whose downstream sink can be replaced."""

    @property
    def next_in_chain(self) -> AudioOutput | None: ...

    def set_next_in_chain(self, new: AudioOutput) -> None: ...


def swap_point(sink: AudioOutput | None) -> SwapPoint | None:
    """The swap point in ``sink``'s chain, if any.

    A started AgentSession puts one at the bottom of its wrapper chain; livekit's
    ``replace_audio_tail()`` swaps below it, and so does avatarkit. Found by its
    ``set_next_in_chain`` method, since the class is private.
    """
    while sink is not None:
        if hasattr(sink, "set_next_in_chain"):
            return cast(SwapPoint, sink)
        sink = sink.next_in_chain
    return None


def pending_playbacks(output: AudioOutput) -> int:
    """Segments ``output`` captured that have not reported ``playback_finished`` yet."""
    return output._pending_playback_count


# -- the avatar's data-stream audio ---------------------------------------------------------


class DataStreamOutputHooks(DataStreamAudioOutput):
    """livekit's ``DataStreamAudioOutput``, with its private hooks under names of ours.

    livekit registers the playback RPCs through two private classmethods into class-level
    tables keyed by the avatar's identity; here both go to :meth:`_route_rpc`, which a
    subclass implements.
    """

    def _route_rpc(self, room: rtc.Room, method: str, caller: str, handler: Handler) -> None:
        raise NotImplementedError

    def _register_playback_finished_rpc(  # type: ignore[override]
        self, room: rtc.Room, *, caller_identity: str, handler: Handler
    ) -> None:
        self._route_rpc(room, RPC_PLAYBACK_FINISHED, caller_identity, handler)

    def _register_playback_started_rpc(  # type: ignore[override]
        self, room: rtc.Room, *, caller_identity: str, handler: Handler
    ) -> None:
        self._route_rpc(room, RPC_PLAYBACK_STARTED, caller_identity, handler)

    @property
    def output_room(self) -> rtc.Room:
        """The room the audio is streamed in."""
        return self._room

    def playback_routes(self) -> list[tuple[str, str, Handler]]:
        """(RPC method, caller identity, handler) of each playback RPC this output takes."""
        avatar = self._destination_identity
        return [
            (RPC_PLAYBACK_FINISHED, avatar, self._handle_playback_finished),
            (RPC_PLAYBACK_STARTED, avatar, self._handle_playback_started),
        ]

    @property
    def start_task(self) -> asyncio.Task[Any] | None:
        """The task that waits for the avatar before the first frame is sent, once begun."""
        return self._start_atask


class DataStreamReceiverHooks(DataStreamAudioReceiver):
    """livekit's ``DataStreamAudioReceiver`` (the avatar's side), with its private
    ``lk.clear_buffer`` registration going to :meth:`_route_rpc`."""

    def _route_rpc(self, room: rtc.Room, method: str, caller: str, handler: Handler) -> None:
        raise NotImplementedError

    def _register_clear_buffer_rpc(  # type: ignore[override]
        self, room: rtc.Room, *, caller_identity: str, handler: Handler
    ) -> None:
        self._route_rpc(room, RPC_CLEAR_BUFFER, caller_identity, handler)

    @property
    def receiver_room(self) -> rtc.Room:
        """The room the audio arrives from."""
        return self._room


# -- the avatar session base class ----------------------------------------------------------


class AvatarSessionHooks(AvatarSession[Any]):
    """livekit's ``AvatarSession``, with its private hooks under names of ours.

    The base class keeps ``_room``, ``_agent_session`` and ``_wait_avatar_join_task`` for
    itself: subclasses must not use those attribute names.
    """

    async def _wait_avatar_join(self) -> None:  # livekit's hook, started by start()
        await self._wait_joined()

    async def _wait_joined(self) -> None:
        """Wait for the avatar to join; livekit's default waits for ``avatar_identity``."""
        await super()._wait_avatar_join()

    def _publish_metrics(self, metrics: AvatarMetrics) -> None:
        """Emit ``metrics_collected`` on this session and on the AgentSession."""
        self._emit_metrics(metrics)


def inference_gateway_auth() -> tuple[Callable[[str, str], str], Callable[[], dict[str, str]]]:
    """livekit-agents' own helpers for LiveKit Inference's gateway (private, in
    ``livekit.agents.inference._utils``): a signed access token for the key and secret, and
    the identification headers its requests carry. Imported when used: only the ``inference``
    provider needs them."""
    from livekit.agents.inference._utils import create_access_token, get_inference_headers

    return create_access_token, get_inference_headers
