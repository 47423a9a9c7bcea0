"""One remote avatar session, from create to end: what the core does for each one it makes.

An :class:`~avatarkit.AvatarkitSession` may make several over its life (renewals, recovery
after a loss, failover to another provider); each is a :class:`RemoteAvatar` with its own
participant identity and token, watched for loss and ended exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from livekit import rtc
from livekit.agents import utils
from livekit.agents.voice.io import AudioOutput

from .http import deadline
from .log import logger
from .playback import PlaybackTracker
from .provider import (
    AvatarProvider,
    CreateRequest,
    EndReason,
    EndRequest,
    RemoteSession,
    StreamRequest,
)
from .rooms import remove_participant
from .streaming import RoomAudioOutput
from .tokens import DEFAULT_TOKEN_TTL, TOKEN_MARGIN, LiveKitSettings

STATUS_INTERVAL = 10.0
END_BUDGET_FACTOR = 2.0
"""A forced end (the provider's API), all retries and waits included, takes at most this
many times ``conn_options.timeout``; then it is given up and reported ``failed``."""


class AvatarLost(Exception):
    """A remote avatar left, failed, or stopped playing."""


class RemoteAvatar:
    """A remote avatar: created, joined, watched for loss, ended exactly once."""

    def __init__(
        self,
        provider: AvatarProvider[Any],
        request: CreateRequest,
        *,
        livekit: LiveKitSettings,
        on_lost: Callable[[RemoteAvatar, str], None],
    ) -> None:
        self.provider = provider
        self.request = request
        self.livekit = livekit
        self.identity = request.avatar_identity
        self.room = request.room
        self.remote: RemoteSession | None = None
        self.output: AudioOutput | None = None
        self.tracker: PlaybackTracker | None = None
        self.end_outcome: str | None = None
        self.lost_reason: str | None = None
        self.lost_at: float | None = None
        self.started_at = time.monotonic()
        self.created_at: float | None = None
        self.joined_at: float | None = None
        self.first_frame_at: float | None = None
        self._on_lost = on_lost
        self._create_task: asyncio.Task[RemoteSession] | None = None
        self._end_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._watching_video = False
        self._back = asyncio.Event()
        self._orphans: set[asyncio.Future[None]] = set()
        self.absent = False
        """Left the room after joining, not back yet (the supervisor gives it a grace)."""

    @property
    def name(self) -> str:
        return self.provider.name

    @property
    def session_id(self) -> str | None:
        return self.remote.id if self.remote is not None else None

    @property
    def ended(self) -> bool:
        return self._end_task is not None

    @property
    def in_room(self) -> bool:
        """The avatar's participant is in the room now."""
        return self.identity in self.room.remote_participants

    async def create(self) -> RemoteSession:
        """Create the remote session. Shielded: a cancelled caller still learns its id, so
        that :meth:`end` can end it."""
        self._create_task = asyncio.create_task(
            self.provider.create(self.request), name=f"avatarkit.{self.name}.create"
        )
        self.remote = await asyncio.shield(self._create_task)
        self.created_at = time.monotonic()
        logger.info(
            "avatar session created", extra={"provider": self.name, "session_id": self.remote.id}
        )
        return self.remote

    async def join(self) -> None:
        """Wait until the avatar is in the room with a video track, then watch it."""
        room, identity = self.room, self.identity
        self.tracker = PlaybackTracker(room, identity, self.provider.sample_rate)
        room.on("participant_disconnected", self._on_participant_disconnected)
        room.on("track_subscribed", self._on_track_subscribed)
        await utils.wait_for_participant(room=room, identity=identity)
        await utils.wait_for_track_publication(
            room=room, identity=identity, kind=rtc.TrackKind.KIND_VIDEO
        )
        self.joined_at = time.monotonic()
        for publication in room.remote_participants[identity].track_publications.values():
            if publication.track is not None:
                self._on_track_subscribed(publication.track, publication, None)
        assert self.remote is not None
        self.output = self.provider.stream(
            StreamRequest(room=room, remote=self.remote, avatar_identity=identity)
        )
        # its audio is read only while an utterance goes to that output (playback.sending)
        self.tracker.follow(self.output)
        if self.provider.status.__func__ is not AvatarProvider.status:  # type: ignore[attr-defined]
            self._spawn(self._poll_status())

    def lose(self, reason: str) -> None:
        """Declare this avatar lost (once); the supervisor moves the audio away from it."""
        if self.lost_reason is None and not self.ended:
            self.lost_reason = reason
            logger.warning(
                "avatar lost: %s",
                reason,
                extra={"provider": self.name, "session_id": self.session_id},
            )
            self._on_lost(self, reason)

    def _on_participant_disconnected(self, participant: rtc.RemoteParticipant) -> None:
        if participant.identity != self.identity or self.joined_at is None or self.absent:
            return
        if self.lost_reason is None and not self.ended:
            self.absent = True
            self._back.clear()
            logger.info(
                "the avatar left the room; it may be reconnecting",
                extra={"provider": self.name, "session_id": self.session_id},
            )
            self._on_lost(self, "the avatar left the room")

    async def returned(self) -> None:
        """Wait until the avatar is back with video after leaving the room."""
        await self._back.wait()

    def _on_track_subscribed(self, track: rtc.Track, _: Any, participant: Any) -> None:
        if participant is not None and participant.identity != self.identity:
            return
        if self.absent and track.kind == rtc.TrackKind.KIND_VIDEO:
            self.absent = False  # back (a reconnect): its video again
            self._back.set()
        if track.kind == rtc.TrackKind.KIND_VIDEO and not self._watching_video:
            self._watching_video = True
            self._spawn(self._first_frame(track))

    async def _first_frame(self, track: rtc.Track) -> None:
        stream = rtc.VideoStream.from_track(track=track)
        try:
            async for _ in stream:
                self.first_frame_at = time.monotonic()
                break
        finally:
            await stream.aclose()

    async def still_active(self) -> bool:
        """Whether the provider says the session goes on (True when it cannot tell): an
        avatar that left a session that is over (its runtime cap, a failure) will not be back."""
        if self.remote is None or self.provider.status.__func__ is AvatarProvider.status:  # type: ignore[attr-defined]
            return True
        try:
            with deadline(self.provider.http.conn_options.timeout):
                status = await self.provider.status(self.remote)
        except Exception as exc:
            logger.debug("status check failed: %r", exc)
            return True
        return status is None or status.active

    async def _poll_status(self) -> None:
        assert self.remote is not None
        while not self.ended:
            await asyncio.sleep(STATUS_INTERVAL)
            try:
                status = await self.provider.status(self.remote)
            except Exception as exc:
                logger.debug("status check failed: %r", exc)
                continue
            if status is not None and not status.active:
                self.lose(
                    f"the session is {status.status}"
                    + (f": {status.detail}" if status.detail else "")
                )
                return

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- ending ---------------------------------------------------------------------------

    def end(self, reason: EndReason) -> asyncio.Task[None]:
        """End the remote session, exactly once whoever asks and however often."""
        if self._end_task is None:
            self._end_task = asyncio.create_task(
                self._end(reason), name=f"avatarkit.{self.name}.end"
            )
        return self._end_task

    async def _left(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for the avatar to leave the room (or the room to go)."""
        room, identity = self.room, self.identity
        gone = asyncio.Event()

        def check(*_: Any) -> None:
            if not room.isconnected() or identity not in room.remote_participants:
                gone.set()

        room.on("participant_disconnected", check)
        room.on("disconnected", check)
        try:
            check()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(gone.wait(), timeout)
        finally:
            room.off("participant_disconnected", check)
            room.off("disconnected", check)
        return gone.is_set()

    def _watch_for_orphan(self) -> None:
        """A create that may have been carried out left a session whose id we never got: its
        avatar would join with our token, and bill. If it does while our room is up, take it
        out of the room (its service ends the session then); the token bounds how long."""
        room, identity = self.room, self.identity
        lifetime = (self.provider.session_lifetime() or DEFAULT_TOKEN_TTL) + TOKEN_MARGIN

        def remove(participant: rtc.RemoteParticipant) -> None:
            if participant.identity == identity:
                logger.warning(
                    "an avatar from a create that seemed to fail joined; taking it out",
                    extra={"provider": self.name, "identity": identity},
                )
                task = asyncio.ensure_future(self._remove_orphan())
                self._orphans.add(task)
                task.add_done_callback(self._orphans.discard)

        def stop(*_: Any) -> None:
            room.off("participant_connected", remove)
            room.off("disconnected", stop)
            timer.cancel()

        room.on("participant_connected", remove)
        room.on("disconnected", stop)
        timer = asyncio.get_running_loop().call_later(lifetime, stop)
        if identity in room.remote_participants:
            remove(room.remote_participants[identity])

    async def _take_out(self) -> bool:
        """RoomService ``RemoveParticipant`` of this avatar; False if it was not there."""
        settings = self.livekit
        with deadline(self.provider.http.conn_options.timeout):
            return await remove_participant(
                settings.url, settings.api_key, settings.api_secret, self.request.room_name,
                self.identity,
            )  # fmt: skip

    async def _remove_orphan(self) -> None:
        try:
            await self._take_out()
        except Exception as exc:
            logger.error("could not take the orphaned avatar out of the room: %r", exc)

    async def _remove_from_room(self, extra: dict[str, Any]) -> None:
        """End a session of a service with no end call: take its avatar out of the room."""
        try:
            self.end_outcome = "removed" if await self._take_out() else "gone"
            logger.info("avatar session ended", extra={**extra, "outcome": self.end_outcome})
        except Exception as exc:
            self.end_outcome = "failed"
            logger.error(
                "could not take the avatar out of the room (%r); its service has no end call, "
                "so it may bill until it times out",
                exc,
                extra=extra,
            )

    async def _end(self, reason: EndReason) -> None:
        self.room.off("participant_disconnected", self._on_participant_disconnected)
        self.room.off("track_subscribed", self._on_track_subscribed)
        for task in list(self._tasks):
            task.cancel()
        if isinstance(self.output, RoomAudioOutput):
            self.output.retire()
        if self.tracker is not None:
            await self.tracker.aclose()
        remote = self.remote
        if remote is None and self._create_task is not None:
            try:
                remote = await asyncio.shield(self._create_task)
            except asyncio.CancelledError:
                if not self._create_task.cancelled():
                    raise  # this end task itself is being cancelled
                remote = None
            except Exception as exc:
                remote = None  # the create failed: nothing was created that we know of...
                if getattr(exc, "may_have_been_carried_out", False):
                    self._watch_for_orphan()  # ...but it may have been, unknown to us
        if remote is None:
            self.end_outcome = "not_created"
            return

        room = self.room
        extra = {"provider": self.name, "session_id": remote.id, "reason": reason}
        if not self.provider.end_api:
            await self._remove_from_room(extra)
            return
        # a lost avatar (frozen, or not acknowledging) would not act on a message over the room
        graceful = (
            room.isconnected()
            and self.identity in room.remote_participants
            and not self.lost_reason
        )
        if graceful:
            timeout = self.provider.http.conn_options.timeout
            try:
                await asyncio.wait_for(
                    self.provider.end(
                        remote, EndRequest(reason, True, room, avatar_identity=self.identity)
                    ),
                    timeout,
                )
                # sent is not done: the avatar leaving says it was heard
                if await self._left(timeout):
                    self.end_outcome = "graceful"
                    logger.info("avatar session ended", extra={**extra, "outcome": "graceful"})
                    return
                logger.warning(
                    "the avatar was still in the room %.1f s after a graceful end; ending the "
                    "session through the API",
                    timeout,
                    extra=extra,
                )
            except Exception as exc:
                logger.warning(
                    "graceful end failed (%r); ending the session through the API", exc, extra=extra
                )
        budget = END_BUDGET_FACTOR * self.provider.http.conn_options.timeout
        try:
            with deadline(budget):  # the HTTP client fits its retries and waits in it
                await asyncio.wait_for(
                    self.provider.end(
                        remote, EndRequest(reason, False, None, avatar_identity=self.identity)
                    ),
                    budget,
                )
            self.end_outcome = "forced"
            logger.info("avatar session ended", extra={**extra, "outcome": "forced"})
        except Exception as exc:
            self.end_outcome = "failed"
            logger.error(
                "could not end the remote avatar session (%r); it may bill until it times out",
                exc,
                extra=extra,
            )
