"""The local avatar worker: a participant that speaks the agent's audio with a drawn face.

It joins the room with its own token (kind ``agent``, publishing on behalf of the agent),
receives the agent's audio over LiveKit byte streams exactly as a cloud avatar does
(``DataStreamAudioReceiver``), and publishes lip-synced audio and video through livekit's
``AvatarRunner``. The ``local`` provider runs one in-process; the Runway emulator runs one per
emulated session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

from livekit import rtc
from livekit.agents.voice.avatar import AvatarOptions, AvatarRunner

from avatarkit.errors import AvatarClosedError
from avatarkit.rooms import connect_room
from avatarkit.secret import Secret
from avatarkit.streaming import RoomAudioReceiver

from .video import FaceVideoGenerator

logger = logging.getLogger("avatarkit.local")
T = TypeVar("T")


async def unless_gone(
    aw: Awaitable[T], room: rtc.Room, *, what: str, participant: str | None = None
) -> T:
    """Await ``aw``, unless ``room`` disconnects (or ``participant`` leaves it) first: then
    cancel it and raise :class:`~avatarkit.AvatarClosedError`. Joining waits for the agent
    to take the avatar's tracks, which never happens once the room is gone."""
    gone: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def set_gone(reason: str) -> None:
        if not gone.done():
            gone.set_result(reason)

    def on_disconnected(*_: object) -> None:
        set_gone("the room disconnected")

    def on_left(left: rtc.RemoteParticipant) -> None:
        if left.identity == participant:
            set_gone(f"{participant} left the room")

    task = asyncio.ensure_future(aw)
    room.on("disconnected", on_disconnected)
    room.on("participant_disconnected", on_left)
    try:
        if not room.isconnected():
            on_disconnected()
        waits: set[asyncio.Future[Any]] = {task, gone}
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        room.off("disconnected", on_disconnected)
        room.off("participant_disconnected", on_left)
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
    if not task.cancelled():
        return task.result()
    raise AvatarClosedError(f"{what}: {gone.result()} before the avatar was ready")


class AvatarWorker:
    """Runs one avatar participant in ``room`` until :meth:`aclose`."""

    def __init__(self, room: rtc.Room, *, agent_identity: str, video: FaceVideoGenerator) -> None:
        self.room = room
        self.agent_identity = agent_identity
        self.video = video
        self._receiver = RoomAudioReceiver(room, sender_identity=agent_identity)
        self._runner = AvatarRunner(
            room,
            audio_recv=self._receiver,
            video_gen=video,
            options=AvatarOptions(
                video_width=video.width,
                video_height=video.height,
                video_fps=video.fps,
                audio_sample_rate=video.sample_rate,
                audio_channels=video.channels,
            ),
        )
        if not hasattr(self._runner, "_read_audio_atask"):
            # livekit-agents sets it only in start(), and its aclose() reads it
            self._runner._read_audio_atask = None  # type: ignore[assignment]
        self._closed: asyncio.Task[None] | None = None

    @classmethod
    async def join(
        cls,
        url: str,
        token: str | Secret,
        *,
        agent_identity: str,
        video: FaceVideoGenerator,
    ) -> AvatarWorker:
        """Join ``url`` with ``token`` and start speaking for ``agent_identity``."""
        room = await connect_room(url, token)
        worker = cls(room, agent_identity=agent_identity, video=video)
        try:
            await unless_gone(
                worker.start(), room, what="the avatar worker", participant=agent_identity
            )
        except BaseException:
            await worker.aclose()
            raise
        return worker

    @property
    def identity(self) -> str:
        return self.room.local_participant.identity

    async def start(self) -> None:
        """Wait for the agent, then start receiving audio and publishing audio and video."""
        await self._runner.start()

    def stall(self) -> None:
        """Freeze (a fault for tests): stay in the room, but stop playing audio, publishing
        video and acknowledging playback."""
        for task in (self._runner._read_audio_atask, self._runner._forward_video_atask):
            if task is not None:
                task.cancel()

    async def aclose(self) -> None:
        """Stop and leave the room; safe to call more than once."""
        if self._closed is None:
            self._closed = asyncio.create_task(self._aclose())
        await asyncio.shield(self._closed)

    async def _aclose(self) -> None:
        try:
            await self._runner.aclose()
        except Exception:
            logger.exception("error while stopping the avatar runner")
        finally:
            await self.video.aclose()
            if self.room.isconnected():
                await self.room.disconnect()
