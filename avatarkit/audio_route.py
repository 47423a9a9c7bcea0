"""The edits avatarkit makes to livekit's audio chain, and how they are undone.

``install()`` puts the relay where the AgentSession's audio goes (below livekit's swap point
once the AgentSession runs, as ``replace_audio_tail()`` does; its ``output.audio`` before),
remembering exactly what it replaced. ``restore()`` puts that back, or, when there was
nothing, leaves the agent's own room track in place so the agent stays audible.
"""

from __future__ import annotations

import asyncio
from typing import Any

from livekit import rtc
from livekit.agents import AgentSession
from livekit.agents.voice.io import AudioOutput

from ._compat import SwapPoint, swap_point
from .relay import AudioRelay
from .room_audio import room_audio_output

DEFAULT_SAMPLE_RATE = 24000  # the room track's rate when the relay has none


class AudioRoute:
    """The relay in the AgentSession's audio chain, from :meth:`install` to :meth:`restore`."""

    def __init__(self, agent_session: AgentSession[Any], room: rtc.Room, relay: AudioRelay) -> None:
        self._agent_session = agent_session
        self._room = room
        self._relay = relay
        self._restore: tuple[SwapPoint | None, AudioOutput | None] | None = None
        self._room_sink: AudioOutput | None = None
        self._own_room_sink = False
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
            # so the fallback to room audio needs one of our own, published ahead of need
            previous = room_audio_output(
                self._room, sample_rate=relay.sample_rate or DEFAULT_SAMPLE_RATE
            )
            self._own_room_sink = True
        self._room_sink = previous

    async def restore(self) -> None:
        """Put back what :meth:`install` replaced and close the relay (once)."""
        if self._restore is None:
            return
        agent_session, relay = self._agent_session, self._relay
        agent_session.off("close", self._on_agent_session_close)
        proxy, previous = self._restore
        previous = previous or self._room_sink
        if proxy is not None and proxy.next_in_chain is relay and previous is not None:
            proxy.set_next_in_chain(previous)
        elif agent_session.output.audio is relay:
            agent_session.output.audio = previous
        await relay.aclose()
        if self._own_room_sink and self._room_sink is not None:
            # it now carries the agent's audio; it goes when the AgentSession does
            sink = self._room_sink
            if self._agent_session_closed:
                await _aclose_sink(sink)
            else:
                agent_session.once("close", lambda _: self._spawn(_aclose_sink(sink)))
        self._restore = None

    def _on_agent_session_close(self, _: Any) -> None:
        self._agent_session_closed = True

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _aclose_sink(sink: AudioOutput) -> None:
    aclose = getattr(sink, "aclose", None)
    if aclose is not None:
        await aclose()
