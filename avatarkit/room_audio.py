"""The agent's own audio track in the room, for when no avatar can speak for it.

livekit's RoomIO publishes the agent's audio unless an output is already set, and an avatar
that starts before the AgentSession sets one. avatarkit then publishes the same track RoomIO
would (livekit's ``_ParticipantAudioOutput``, kept private by livekit-agents ~=1.8, so it
comes through :mod:`avatarkit._compat`) as soon as the room is connected, so that falling
back to it costs no publish round trip.
"""

from __future__ import annotations

import asyncio

from livekit import rtc
from livekit.agents.voice.io import AudioOutput

from ._compat import ParticipantAudioOutput
from .log import logger

TRACK_NAME = "roomio_audio"  # the name RoomIO gives it, so frontends find it as usual


def room_audio_output(room: rtc.Room, *, sample_rate: int) -> AudioOutput:
    """An audio output publishing to ``room`` as the agent, started in the background."""
    output = ParticipantAudioOutput(
        room,
        sample_rate=sample_rate,
        num_channels=1,
        track_publish_options=rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE),
        track_name=TRACK_NAME,
    )
    task = asyncio.create_task(_start(room, output), name="avatarkit.room_audio")
    _starting.add(task)
    task.add_done_callback(_starting.discard)
    return output


_starting: set[asyncio.Task[None]] = set()


async def _start(room: rtc.Room, output: ParticipantAudioOutput) -> None:
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
    try:
        await output.start()
    except Exception:
        logger.exception("could not publish the agent's audio track")
