"""The agent's own audio track in the room, for when no avatar can speak for it.

livekit's RoomIO publishes the agent's audio unless an output is already set, and an avatar
that starts before the AgentSession sets one. avatarkit then publishes the same track RoomIO
would (livekit's ``_ParticipantAudioOutput``, kept private by livekit-agents ~=1.8, so it
comes through :mod:`avatarkit._compat`), as :class:`AgentTrack`.

Building that output and publishing it are two synchronous native calls of about 2 ms each,
so none of it happens in ``start()``: :meth:`AgentTrack.prepare` publishes in the background
(avatarkit calls it when the first utterance goes to an avatar, so that a loss during it
finds the track ready), and a frame sent to the track before then publishes it at once and
waits, as livekit's own output does, until it is published and subscribed: the relay holds
the audio meanwhile, and nothing is dropped. :meth:`AgentTrack.aclose` ends all of it: the
publish task (livekit's waits for a subscriber forever), the publication, the audio source.
"""

from __future__ import annotations

import asyncio
import contextlib

from livekit import rtc
from livekit.agents.voice.io import (
    AudioOutput,
    AudioOutputCapabilities,
    PlaybackFinishedEvent,
    PlaybackStartedEvent,
)

from ._compat import ParticipantAudioOutput, published_track
from .log import logger

TRACK_NAME = "roomio_audio"  # the name RoomIO gives it, so frontends find it as usual


class AgentTrack(AudioOutput):
    """The agent's own audio track in ``room``, built and published only when needed.

    An ``AudioOutput`` in front of livekit's ``_ParticipantAudioOutput``: what it captures
    goes there once that output is published and subscribed, and its playback events come
    back from there. :meth:`release` hands the output itself over (to the AgentSession, when
    avatarkit closes); it stays owned here, and :meth:`aclose` ends it.
    """

    def __init__(self, room: rtc.Room, *, sample_rate: int) -> None:
        super().__init__(
            label="avatarkit.room",
            capabilities=AudioOutputCapabilities(pause=False),
            sample_rate=sample_rate,
        )
        self._room = room
        self._rate = sample_rate
        self._output: ParticipantAudioOutput | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()  # published and subscribed, or closed
        self._forwarding = False
        self._closed = False
        self._close_task: asyncio.Task[None] | None = None

    @property
    def output(self) -> ParticipantAudioOutput | None:
        """livekit's output, once built."""
        return self._output

    @property
    def closed(self) -> bool:
        return self._closed

    def prepare(self) -> None:
        """Build and publish the track in the background, if not done yet."""
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._publish(), name="avatarkit.room_audio")

    def release(self) -> ParticipantAudioOutput:
        """livekit's output itself, built now if it was not, publishing (in the background)
        for whoever uses it next; this track no longer forwards to it."""
        output = self._build()
        self.prepare()
        self._forward(False)
        return output

    def _build(self) -> ParticipantAudioOutput:
        if self._output is None:
            self._output = ParticipantAudioOutput(
                self._room,
                sample_rate=self._rate,
                num_channels=1,
                track_publish_options=rtc.TrackPublishOptions(
                    source=rtc.TrackSource.SOURCE_MICROPHONE
                ),
                track_name=TRACK_NAME,
            )
            self._forward(True)
        return self._output

    def _forward(self, on: bool) -> None:
        output = self._output
        if output is None or on == self._forwarding:
            return
        self._forwarding = on
        if on:
            output.on("playback_finished", self._on_output_finished)
            output.on("playback_started", self._on_output_started)
        else:
            output.off("playback_finished", self._on_output_finished)
            output.off("playback_started", self._on_output_started)

    async def _publish(self) -> None:
        room = self._room
        if not room.isconnected():
            connected = asyncio.get_running_loop().create_future()

            def on_state(_: object) -> None:
                if room.isconnected() and not connected.done():
                    connected.set_result(None)

            room.on("connection_state_changed", on_state)
            try:
                await connected
            finally:
                room.off("connection_state_changed", on_state)
        output = self._build()
        await asyncio.sleep(0)  # the two native calls in two steps of the event loop
        try:
            await output.start()  # publishes, then waits for a subscriber
        except Exception:
            logger.exception("could not publish the agent's audio track")
            return
        self._ready.set()

    async def _wait_ready(self) -> ParticipantAudioOutput | None:
        self.prepare()
        await self._ready.wait()
        return None if self._closed else self._output

    # -- AudioOutput ----------------------------------------------------------------------

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        output = await self._wait_ready()  # the relay holds the audio until then
        if output is None:
            return  # closed: the room or the AgentSession is gone, nobody can hear it
        await super().capture_frame(frame)
        await output.capture_frame(frame)

    def flush(self) -> None:
        super().flush()
        if self._output is not None and not self._closed:
            self._output.flush()

    def clear_buffer(self) -> None:
        if self._output is not None and not self._closed:
            self._output.clear_buffer()

    def _on_output_finished(self, ev: PlaybackFinishedEvent) -> None:
        self.on_playback_finished(
            playback_position=ev.playback_position,
            interrupted=ev.interrupted,
            synchronized_transcript=ev.synchronized_transcript,
        )

    def _on_output_started(self, ev: PlaybackStartedEvent) -> None:
        self.on_playback_started(created_at=ev.created_at)

    # -- closing --------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Unpublish the track and close livekit's output and its audio source (once)."""
        if self._close_task is None:
            self._closed = True
            self._ready.set()
            self._close_task = asyncio.create_task(
                self._aclose(), name="avatarkit.room_audio.close"
            )
        await asyncio.shield(self._close_task)

    async def _aclose(self) -> None:
        task = self._task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        output = self._output
        if output is None:
            return
        self._forward(False)
        publication = published_track(output)
        if publication is not None and self._room.isconnected():
            with contextlib.suppress(Exception):
                await self._room.local_participant.unpublish_track(publication.sid)
        await output.aclose()
