"""The edits avatarkit makes to livekit's audio chain, and how they are undone.

``install()`` puts the relay where the AgentSession's audio goes (below livekit's swap point
once the AgentSession runs, as ``replace_audio_tail()`` does; its ``output.audio`` before),
remembering exactly what it replaced. ``restore()`` puts that back, or, when there was
nothing, leaves the agent's own room track in place so the agent stays audible.

That track (:class:`~avatarkit.room_audio.AgentTrack`) is avatarkit's, so avatarkit ends it:
when the room disconnects or the AgentSession closes, whichever comes first, before or after
``restore()``; then nothing of it is left (task, publication, audio source, listener).
"""

from __future__ import annotations

import asyncio
from typing import Any

from livekit import rtc
from livekit.agents import AgentSession
from livekit.agents.voice.io import AudioOutput

from . import playback
from ._compat import SwapPoint, swap_point
from .relay import AudioRelay
from .room_audio import AgentTrack

DEFAULT_SAMPLE_RATE = 24000  # the room track's rate when the relay has none


class AudioRoute:
    """The relay in the AgentSession's audio chain, from :meth:`install` to :meth:`restore`."""

    def __init__(self, agent_session: AgentSession[Any], room: rtc.Room, relay: AudioRelay) -> None:
        self._agent_session = agent_session
        self._room = room
        self._relay = relay
        self._restore: tuple[SwapPoint | None, AudioOutput | None] | None = None
        self._room_sink: AudioOutput | None = None
        self._track: AgentTrack | None = None  # the agent's own room track, if ours
        self._agent_session_closed = False
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def room_sink(self) -> AudioOutput | None:
        """The agent's own audio track in the room: where the audio goes without an avatar."""
        return self._room_sink

    def install(self) -> None:
        """Put the relay in the chain, remembering what it replaced."""
        agent_session, relay = self._agent_session, self._relay
        agent_session.on("close", self._on_agent_session_close)
        relay.on_sending = self._on_sending
        proxy = swap_point(agent_session.output.audio)
        if proxy is not None:
            previous = proxy.next_in_chain
            self._restore = (proxy, previous)
            proxy.set_next_in_chain(relay)
        else:
            previous = agent_session.output.audio
            self._restore = (None, previous)
            agent_session.output.audio = relay
        if previous is None:
            # livekit's RoomIO will not publish the agent's audio now that an output is set,
            # so the fallback to room audio needs one of our own; it is published when the
            # first utterance goes to an avatar (or at once if the room needs it first)
            previous = self._track = AgentTrack(
                self._room, sample_rate=relay.sample_rate or DEFAULT_SAMPLE_RATE
            )
            self._room.on("disconnected", self._on_room_disconnected)
        self._room_sink = previous

    async def restore(self) -> None:
        """Put back what :meth:`install` replaced and close the relay (once)."""
        if self._restore is None:
            return
        agent_session, relay = self._agent_session, self._relay
        proxy, previous = self._restore
        self._restore = None
        track = self._track
        if previous is None and track is not None and self._track_wanted():
            # the agent's own track now carries its audio, for the AgentSession to keep
            # (field note: a failed avatar must never leave the agent mute); it goes when
            # the room or the AgentSession does
            previous = track.release()
        if proxy is not None and proxy.next_in_chain is relay and previous is not None:
            proxy.set_next_in_chain(previous)
        elif agent_session.output.audio is relay:
            agent_session.output.audio = previous
        relay.on_sending = None
        await relay.aclose()
        if track is None or not self._track_wanted():
            agent_session.off("close", self._on_agent_session_close)
            if track is not None:
                await self._close_track()

    def _track_wanted(self) -> bool:
        """The agent's own track may still be heard: its room and AgentSession are there."""
        return (
            self._track is not None
            and not self._track.closed
            and not self._agent_session_closed
            and self._room.isconnected()
        )

    def _on_sending(self, sink: AudioOutput, active: bool) -> None:
        if active and self._track is not None and sink is not self._track:
            # the first utterance goes to an avatar: publish the fallback while it plays,
            # so that losing the avatar finds it ready
            self._track.prepare()
        playback.sending(sink, active)

    def _on_agent_session_close(self, _: Any) -> None:
        self._agent_session_closed = True
        if self._track is not None:
            self._spawn(self._close_track())

    def _on_room_disconnected(self, *_: Any) -> None:
        self._spawn(self._close_track())

    async def _close_track(self) -> None:
        """End the agent's own track and stop listening for when to (once is enough)."""
        track = self._track
        if track is None:
            return
        self._room.off("disconnected", self._on_room_disconnected)
        if self._restore is None:  # restored: nothing else listens for the close
            self._agent_session.off("close", self._on_agent_session_close)
        await track.aclose()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro, name="avatarkit.room_audio.close")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
