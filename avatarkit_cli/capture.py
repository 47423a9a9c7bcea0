"""Stills of an avatar at fixed moments of the script, for ``avatarkit compare --report``.

The script's clock starts when the clip's first sample is heard in the room: the avatar's
audio track is watched for the clip's first loud 10 ms (its level is known from the clip), and
each moment is a fixed offset into the clip from there. At each moment the still is the video
frame the room was showing then (the last one to arrive before it), whatever the provider, so
the providers' pictures line up side by side.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from typing import Any

import attrs
import numpy as np
from livekit import rtc
from numpy.typing import NDArray

from avatarkit.tokens import ATTRIBUTE_PUBLISH_ON_BEHALF

from .clips import Utterance
from .scenario import LiveKitEnv

AUDIO_RATE = 48000
WINDOW = 0.01  # seconds: the level of the clip and of the room's audio is taken per 10 ms
LOUD = 0.1  # of the clip's loudest window: what counts as speech having started
MAX_WIDTH = 320  # pixels: larger stills are scaled down (a cloud provider's 720p, say)


@attrs.frozen
class Moment:
    """A point of the script: ``at`` seconds from the clip's start."""

    at: float
    label: str


@attrs.frozen
class Still:
    """What the room showed of the avatar at ``moment``: RGB pixels, or why there are none."""

    moment: Moment
    rgb: NDArray[np.uint8] | None = attrs.field(default=None, eq=False, repr=False)
    note: str = ""


def speech_levels(pcm: NDArray[np.int16], rate: int) -> NDArray[np.float64]:
    """The RMS level of each 10 ms of ``pcm``."""
    per = max(1, int(rate * WINDOW))
    n = len(pcm) // per
    x = pcm[: n * per].astype(np.float64).reshape(n, per)
    levels: NDArray[np.float64] = np.sqrt((x**2).mean(axis=1))
    return levels


def speech_onset(utterance: Utterance) -> tuple[float, float]:
    """``(seconds, level)``: where the clip's speech starts, and the RMS level (int16 units)
    that marks it."""
    levels = speech_levels(utterance.pcm, utterance.sample_rate)
    if not len(levels) or levels.max() <= 0:
        return 0.0, math.inf
    threshold = LOUD * float(levels.max())
    return float(np.argmax(levels >= threshold)) * WINDOW, threshold


def script_moments(utterance: Utterance, inside: int = 5) -> list[Moment]:
    """The moments compared: the first sound, ``inside`` evenly through the speech, and a
    moment after it (the resting face)."""
    start, _ = speech_onset(utterance)
    end = utterance.duration
    moments = [Moment(round(start, 2), "first sound")]
    for k in range(inside):
        at = start + (end - start) * (k + 0.5) / inside
        moments.append(Moment(round(at, 2), "speaking"))
    moments.append(Moment(round(end + 0.25, 2), "after the last word"))
    return moments


def _shrink(rgb: NDArray[np.uint8], max_width: int) -> NDArray[np.uint8]:
    step = max(1, math.ceil(rgb.shape[1] / max_width))
    small: NDArray[np.uint8] = rgb[::step, ::step].copy()
    return small


class FrameCapture:
    """Watches the agent's room of one scripted session and keeps a :class:`Still` of its
    avatar at each of ``moments``. :meth:`attach` hands ``run_scenario`` an environment whose
    agent room is watched; :meth:`aclose` after the session returns the stills."""

    def __init__(
        self, utterance: Utterance, moments: list[Moment], *, max_width: int = MAX_WIDTH
    ) -> None:
        self._moments = sorted(moments, key=lambda m: m.at)
        self._onset, self._threshold = speech_onset(utterance)
        self._max_width = max_width
        self._pending = list(self._moments)
        self._stills: dict[Moment, Still] = {}
        # The script's start on the monotonic clock, once the first sound is heard.
        self._zero: float | None = None
        self._first_video: float | None = None
        self._last_video: float | None = None
        # Recent frames, enough to look back from the moment the first sound is recognised
        # to the script's start (the clip's leading silence) and across one frame interval.
        self._keep = self._onset + 0.5
        self._history: collections.deque[tuple[float, rtc.VideoFrame]] = collections.deque()
        self._room: rtc.Room | None = None
        self._seen: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._streams: list[rtc.AudioStream | rtc.VideoStream] = []

    def attach(self, env: LiveKitEnv) -> LiveKitEnv:
        """``env``, with the agent's room watched from the moment it is joined."""

        async def join(room_name: str, identity: str) -> rtc.Room:
            room = await env.join_agent(room_name)
            self._watch(room)
            return room

        return attrs.evolve(env, join=join)

    def _watch(self, room: rtc.Room) -> None:
        self._room = room
        room.on("track_subscribed", self._on_track)
        for participant in room.remote_participants.values():
            for publication in participant.track_publications.values():
                if publication.track is not None:
                    self._on_track(publication.track, publication, participant)

    def _on_track(
        self, track: rtc.Track, publication: Any, participant: rtc.RemoteParticipant
    ) -> None:
        room = self._room
        if room is None or track.sid in self._seen:
            return
        # the avatar is the participant that publishes on the agent's behalf
        if (
            participant.attributes.get(ATTRIBUTE_PUBLISH_ON_BEHALF)
            != room.local_participant.identity
        ):
            return
        self._seen.add(track.sid)
        if track.kind == rtc.TrackKind.KIND_VIDEO:
            video = rtc.VideoStream(track, format=rtc.VideoBufferType.RGB24)
            self._streams.append(video)
            self._tasks.append(asyncio.create_task(self._read_video(video)))
        elif track.kind == rtc.TrackKind.KIND_AUDIO:
            audio = rtc.AudioStream(track, sample_rate=AUDIO_RATE, num_channels=1)
            self._streams.append(audio)
            self._tasks.append(asyncio.create_task(self._read_audio(audio)))

    async def _read_audio(self, stream: rtc.AudioStream) -> None:
        async for event in stream:
            frame = event.frame
            pcm = np.frombuffer(frame.data, dtype=np.int16)
            if not len(pcm) or self._zero is not None:
                continue
            level = float(np.sqrt((pcm.astype(np.float64) ** 2).mean()))
            if level >= self._threshold:
                # this frame ends now: its sound started a frame's length ago
                heard = time.monotonic() - frame.samples_per_channel / frame.sample_rate
                self._zero = heard - self._onset
                return

    async def _read_video(self, stream: rtc.VideoStream) -> None:
        async for event in stream:
            now = time.monotonic()
            if self._first_video is None:
                self._first_video = now
            self._last_video = now
            self._history.append((now, event.frame))
            while self._history and self._history[0][0] < now - self._keep:
                self._history.popleft()
            self._take_due(now)

    def _take_due(self, now: float) -> None:
        """Keep a still of each pending moment that ``now``'s frame is past."""
        if self._zero is None:
            return
        while self._pending and self._zero + self._pending[0].at <= now:
            moment = self._pending.pop(0)
            self._stills[moment] = self._still_at(moment, self._zero + moment.at)

    def _still_at(self, moment: Moment, when: float) -> Still:
        if self._first_video is None or when < self._first_video:
            return Still(moment, note="no video yet")
        shown = None
        for arrived, frame in self._history:
            if arrived > when:
                break
            shown = frame
        if shown is None:  # before the frames kept: the oldest is the nearest
            shown = self._history[0][1]
        rgb = np.frombuffer(shown.data, dtype=np.uint8).reshape(shown.height, shown.width, 3)
        return Still(moment, _shrink(rgb, self._max_width))

    async def aclose(self) -> list[Still]:
        """Stop watching; a still for every moment, in order (with a note where the room
        showed nothing)."""
        if self._room is not None:
            self._room.off("track_subscribed", self._on_track)
        # a pending read is not woken by closing its stream: cancel the readers first
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for stream in self._streams:
            await stream.aclose()
        self._history.clear()
        if self._zero is None:
            missing = "the avatar's video never arrived" if self._first_video is None else None
            note = missing or "no speech was heard from the avatar"
        else:
            note = "the session had ended"
        return [self._stills.get(m) or Still(m, note=note) for m in self._moments]
