"""How much of an utterance an avatar really played, measured from the audio it published.

A remote avatar buffers the agent's audio and plays it in real time; when it vanishes, the
only trustworthy record of what the user heard is the avatar's own audio track. The tracker
keeps the last seconds of it, and :func:`locate` finds where its tail sits in the utterance
that was sent (normalised cross-correlation), so the rest can be replayed from exactly there.
When the avatar published nothing recognisable, the caller falls back to a clock estimate.

Decoding the avatar's track costs CPU at 100 frames a second, and its record only matters
while an utterance is going to that avatar: if it is lost then, the rest is replayed from
where its audio stopped. So the tracker reads the track only from the moment the relay sends
an utterance's first frame to that avatar (:func:`sending`, which the relay's ``on_sending``
reaches) until :data:`LINGER` seconds after the utterance is over there (played, cleared, or
moved away on a loss); a rescue that is measuring (:meth:`PlaybackTracker.settle`) keeps it
reading until it is done. A silent avatar costs nothing.
"""

from __future__ import annotations

import asyncio
import collections
import time
import weakref
from typing import Any

import numpy as np
from livekit import rtc

from .log import logger

PCM = np.ndarray[Any, np.dtype[np.int16]]

KEEP_SECONDS = 3.0
WINDOWS = (0.2, 0.1, 0.05, 0.025)  # seconds of the avatar's last audio matched, longest first
SILENCE = 64  # int16 peak below which a stretch counts as silence
MATCH = 0.8  # normalised correlation that counts as "this is that audio"
MIN_PEAK = 0.2  # ... or a lower peak (coded audio), if it stands out from every other offset
PROMINENCE = 5.0  # by this factor
FRAME_MS = 40
"""Frames read from the avatar's track: 25 a second rather than livekit's 100, a quarter of
the per-frame work while the agent speaks; still finer than settle()'s quiet window."""
LINGER = 1.0  # seconds the track is still read after an utterance is over at that avatar

_followed: weakref.WeakKeyDictionary[object, PlaybackTracker] = weakref.WeakKeyDictionary()


def sending(sink: object, active: bool) -> None:
    """An utterance starts (``active``) or is over at ``sink``: the tracker following that
    sink, if any, starts or stops reading its avatar's audio."""
    tracker = _followed.get(sink)
    if tracker is not None:
        if active:
            tracker.begin()
        else:
            tracker.end()


def locate(sent: PCM, tail: PCM) -> int | None:
    """Where ``tail`` (the last audio an avatar published) ends within ``sent``; None if it
    is silent or not found there."""
    loud = np.flatnonzero(np.abs(tail.astype(np.int32)) > SILENCE)
    if loud.size == 0 or sent.size == 0:
        return None
    tail = tail[: loud[-1] + 1]  # trailing silence is padding, not speech
    tail = tail[-min(tail.size, sent.size) :]
    n, m = sent.size, tail.size
    if m < 16:
        return None
    x = sent.astype(np.float64)
    y = tail.astype(np.float64)
    size = 1 << int(np.ceil(np.log2(n + m)))
    corr = np.fft.irfft(np.fft.rfft(x, size) * np.conj(np.fft.rfft(y, size)), size)[: n - m + 1]
    energy = np.concatenate(([0.0], np.cumsum(x * x)))
    window = energy[m:] - energy[:-m]
    denom = np.sqrt(np.maximum(window, 1e-9) * float(np.dot(y, y)))
    score = corr / denom
    best = int(np.argmax(score))
    if score[best] >= MATCH:
        return best + m
    # Opus at voice bitrates keeps little of a noisy waveform (a normalised peak of 0.3-0.5
    # for white noise) but still puts it in one place: a peak that stands far above every
    # other offset is a match, to within the codec's lag of a few milliseconds
    guard = max(16, m // 100)
    rest = np.concatenate((score[: max(best - guard, 0)], score[best + guard + 1 :]))
    if rest.size and score[best] >= MIN_PEAK and score[best] >= PROMINENCE * rest.max():
        return best + m
    return None


class PlaybackTracker:
    """Keeps the last seconds of audio that ``identity`` publishes in ``room``, while an
    utterance is going to it (:meth:`begin` to :meth:`end`, usually through :func:`sending`)."""

    def __init__(self, room: rtc.Room, identity: str, sample_rate: int) -> None:
        self._room = room
        self._identity = identity
        self._rate = sample_rate
        self._chunks: collections.deque[tuple[float, PCM]] = collections.deque()
        self._kept = 0
        self._track: rtc.Track | None = None
        self._task: asyncio.Task[None] | None = None
        self._wanted = False  # an utterance is going to this avatar
        self._settling = 0  # rescues measuring now
        self._stop_timer: asyncio.TimerHandle | None = None
        self._sink: object | None = None
        self._closed = False
        self.last_audio_at: float | None = None
        self.last_frame_at: float | None = None
        """When a frame of the avatar's audio last arrived, or when listening to it began:
        None while nothing at all is known of its audio."""
        room.on("track_subscribed", self._on_track_subscribed)
        participant = room.remote_participants.get(identity)
        if participant is not None:
            for publication in participant.track_publications.values():
                if publication.track is not None:
                    self._on_track_subscribed(publication.track, publication, participant)

    @property
    def listening(self) -> bool:
        """The avatar's audio is being read now."""
        return self._task is not None and not self._task.done()

    def follow(self, sink: object) -> None:
        """Track this avatar whenever the relay sends an utterance to ``sink`` (its output)."""
        try:
            _followed[sink] = self
        except TypeError:  # an output that cannot be weakly referenced: read all the time
            self.begin()
            return
        self._sink = sink

    def begin(self) -> None:
        """An utterance is going to the avatar: read its audio until :meth:`end`."""
        if self._closed:
            return
        self._wanted = True
        if self._stop_timer is not None:
            self._stop_timer.cancel()
            self._stop_timer = None
        self._listen()

    def end(self) -> None:
        """The utterance is over at the avatar: stop reading after :data:`LINGER` seconds
        (a next utterance within them keeps the same stream)."""
        self._wanted = False
        self._schedule_stop()

    def _on_track_subscribed(
        self, track: rtc.Track, _: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        if participant.identity != self._identity or track.kind != rtc.TrackKind.KIND_AUDIO:
            return
        self._track = track  # the newest: an avatar may publish its audio again
        if self._wanted and not self.listening:
            self._task = None
            self._listen()

    def _listen(self) -> None:
        if self._task is not None or self._track is None:
            return
        # the stream is opened here, before the utterance's first frame is sent, so that
        # nothing the avatar plays of it can arrive before the stream does
        stream = rtc.AudioStream.from_track(
            track=self._track, sample_rate=self._rate, num_channels=1, frame_size_ms=FRAME_MS
        )
        self.last_frame_at = time.monotonic()
        self._task = asyncio.create_task(self._read(stream, self._track), name="avatarkit.playback")

    def _schedule_stop(self) -> None:
        if self._stop_timer is not None or self._closed:
            return
        if self._task is None:
            self._chunks.clear()
            self._kept = 0
            return
        self._stop_timer = asyncio.get_running_loop().call_later(LINGER, self._stop)

    def _stop(self) -> None:
        self._stop_timer = None
        if self._wanted or self._settling:
            return  # begin() or settle() again: they reschedule the stop when done
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        self._chunks.clear()
        self._kept = 0

    async def _read(self, stream: rtc.AudioStream, track: rtc.Track) -> None:
        ended = False
        try:
            async for event in stream:
                pcm = np.frombuffer(event.frame.data, dtype=np.int16).copy()
                now = self.last_frame_at = time.monotonic()
                self._chunks.append((now, pcm))
                self._kept += pcm.size
                if pcm.size and (pcm.max() > SILENCE or pcm.min() < -SILENCE):
                    self.last_audio_at = now
                while self._kept - self._chunks[0][1].size >= KEEP_SECONDS * self._rate:
                    self._kept -= self._chunks.popleft()[1].size
            ended = True
        except Exception:
            logger.debug("stopped tracking the avatar's audio", exc_info=True)
        finally:
            if ended and self._track is track:
                self._track = None  # the track ended (the avatar left): what was read stays
            await stream.aclose()

    async def settle(self, *, quiet: float = 0.08, limit: float = 0.3) -> None:
        """Wait until the avatar's speech has stopped arriving: ``quiet`` seconds with no
        audible frame (counted from this call at the earliest), at most ``limit`` seconds.
        What was in flight when it left still counts; silent frames do not, since a track may
        carry them after its speaker left."""
        start = time.monotonic()
        deadline = start + limit
        self._settling += 1
        try:
            while (now := time.monotonic()) < deadline:
                if now - max(self.last_audio_at or start, start) >= quiet:
                    return
                await asyncio.sleep(quiet / 4)
        finally:
            self._settling -= 1
            if not self._wanted and not self._settling:
                self._schedule_stop()

    def heard(self, sent: PCM, since: float | None) -> int | None:
        """How many samples of ``sent`` the avatar played, if its audio says so.

        Only audio received after ``since`` (monotonic time the utterance was first sent)
        counts; 0 if the avatar published nothing but silence since then; None if what it
        published is not found in ``sent`` (or nothing is known of its audio).
        """
        chunks = [pcm for at, pcm in self._chunks if since is None or at >= since]
        if not chunks:
            return 0 if self.last_frame_at is not None else None
        audio = np.concatenate(chunks)
        loud = np.flatnonzero(np.abs(audio.astype(np.int32)) > SILENCE)
        if loud.size == 0:
            return 0
        end, first = int(loud[-1]) + 1, int(loud[0])
        # The window must hold this utterance only: right after an utterance starts, the
        # avatar may still be playing the end of the previous one. Shorter windows reach
        # less far back; silence before the first loud sample is the avatar idling.
        for seconds in WINDOWS:
            found = locate(sent, audio[max(first, end - int(seconds * self._rate)) : end])
            if found is not None:
                # quiet samples it played after its last loud one were heard too
                after, rest = audio[end:], sent[found:]
                n = min(after.size, rest.size)
                differs = np.flatnonzero(after[:n] != rest[:n])
                return found + (int(differs[0]) if differs.size else n)
        return None

    async def aclose(self) -> None:
        self._closed = True
        self._wanted = False
        self._room.off("track_subscribed", self._on_track_subscribed)
        if self._sink is not None and _followed.get(self._sink) is self:
            del _followed[self._sink]
        if self._stop_timer is not None:
            self._stop_timer.cancel()
            self._stop_timer = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._chunks.clear()
        self._kept = 0
        self._track = None  # its native handle goes when the track object does
