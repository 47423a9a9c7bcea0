"""The one audio output the AgentSession keeps while avatarkit is attached.

An avatar can go away mid-utterance (a provider's runtime cap, a crash, a renewal), and the
AgentSession cannot be told to resend what it already handed over. So the relay keeps the
current utterance (segment) as captured, and forwards it to a *sink*: an avatar's output, or
the room's own audio. :meth:`AudioRelay.switch` moves to another sink from a given position in
the segment, so whatever the user did not hear yet is played by the next sink, and nothing that
was heard is played again. Before the first sink arrives the relay holds the audio.

Playback events reach the AgentSession exactly once per segment, in segment coordinates,
whatever sinks the segment went through.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents.voice.io import (
    AudioOutput,
    AudioOutputCapabilities,
    PlaybackFinishedEvent,
    PlaybackStartedEvent,
)

from ._compat import pending_playbacks
from .log import logger


class AudioRelay(AudioOutput):
    """An ``AudioOutput`` whose destination can change mid-utterance without losing audio."""

    def __init__(self, *, sample_rate: int, num_channels: int = 1) -> None:
        super().__init__(
            label="avatarkit",
            capabilities=AudioOutputCapabilities(pause=True),
            sample_rate=sample_rate,
        )
        self._rate = sample_rate
        self._channels = num_channels
        self._sink: AudioOutput | None = None
        self._sink_is_room = False
        self._closed = False
        self._pump: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._resampler: rtc.AudioResampler | None = None
        self._tail_task: asyncio.Task[None] | None = None
        # the current segment, in samples per channel from its start
        self._frames: list[rtc.AudioFrame] = []
        self._ends: list[int] = []
        self._captured = 0
        self._capturing = False
        self._flushed = False  # the agent finished the segment (flush or clear)
        self._open = False  # captured and not yet reported finished
        self._base = 0  # where the current sink's part of the segment starts
        self._sent = 0  # how far the current sink got
        self._sink_flushed = False
        self._started_reported = False
        self.segment_id = 0
        self.sent_at: float | None = None
        """When the current sink was first handed audio of this segment."""
        self.room_seconds = 0.0
        """Seconds of agent audio handed to the room's own audio (no avatar)."""
        self.on_flushed: Callable[[int, float], None] | None = None
        """Called with (segment id, seconds of audio the current sink still has to play)
        once a segment is complete and handed over; a supervisor arms its ack timer with it."""
        self.on_sending: Callable[[AudioOutput, bool], None] | None = None
        """Called with (sink, True) just before a segment's first frame goes to ``sink``, and
        with (sink, False) once that segment is over there: finished, cleared, or moved to
        another sink. What only matters while a sink plays (the avatar's playback tracker,
        the room track's publication) starts and stops with it."""
        self.on_sink_failed: Callable[[AudioOutput, BaseException], None] | None = None
        """Called when a sink raised while taking audio: its segment cannot be acknowledged,
        so the supervisor must treat it as a lost avatar at once."""
        self._sending_to: AudioOutput | None = None
        self._paused = False
        self._paused_natively = False  # the sink (the room's track) pauses by itself
        self.on_pause: Callable[[], None] | None = None
        """Called when the agent pauses (a possible false interruption) while an avatar plays:
        the supervisor stops it where the user stopped hearing it (:meth:`hold_at`)."""
        self.on_resume: Callable[[], None] | None = None
        """Called on resume when no sink holds the utterance: the supervisor gives it one."""

    # -- what the supervisor sees ----------------------------------------------------------

    @property
    def sink(self) -> AudioOutput | None:
        return self._sink

    @property
    def busy(self) -> bool:
        """A segment is being captured or played (not at an utterance boundary)."""
        return self._open

    async def wait_idle(self) -> None:
        """Wait for an utterance boundary."""
        await self._idle.wait()

    @property
    def paused(self) -> bool:
        return self._paused

    def hold_at(self, heard: int) -> None:
        """With no sink, make sample ``heard`` of the current segment where the next sink
        starts (a pause: the user heard up to there)."""
        if self._sink is None and self._open:
            self._base = self._sent = min(max(heard, 0), self._captured)

    @property
    def base(self) -> int:
        return self._base

    @property
    def sent(self) -> int:
        return self._sent

    def segment_pcm(self) -> np.ndarray[Any, np.dtype[np.int16]]:
        """The current segment's samples (first channel), as captured so far."""
        if not self._frames:
            return np.zeros(0, dtype=np.int16)
        pcm = np.concatenate(
            [np.frombuffer(bytes(f.data), dtype=np.int16)[:: f.num_channels] for f in self._frames]
        )
        return pcm

    def switch(
        self, sink: AudioOutput | None, *, heard: int | None = None, room: bool = False
    ) -> None:
        """Send the rest of the current segment, from sample ``heard`` (default: where the
        current sink started), and everything after it, to ``sink``; ``None`` holds the audio.

        The old sink is abandoned: its later events are ignored. Clear it first if it is
        still playing.
        """
        if sink is self._sink or self._closed:
            return
        old = self._sink
        self._sending(None)
        if old is not None:
            old.off("playback_finished", self._on_sink_finished)
            old.off("playback_started", self._on_sink_started)
        if self._pump is not None:
            self._pump.cancel()  # it may be waiting on the old sink
            self._pump = None
        self._sink = sink
        self._sink_is_room = room
        self._resampler = None
        start = self._base if heard is None else min(max(heard, 0), self._captured)
        self._base = self._sent = start
        self._sink_flushed = False
        self.sent_at = None
        if sink is None:
            return
        sink.on("playback_finished", self._on_sink_finished)
        sink.on("playback_started", self._on_sink_started)
        if self._open and self._flushed and start >= self._captured:
            # everything was heard already: the segment is over
            self._finish(start, interrupted=False)
        if not self._paused:  # paused, it starts on resume()
            self._start_pump(sink)

    def _start_pump(self, sink: AudioOutput) -> None:
        self._pump = asyncio.create_task(self._run_pump(sink), name="avatarkit.relay")
        self._wake.set()

    async def aclose(self) -> None:
        """Detach from the sink. An utterance still open ends as interrupted where the sink
        got to, so that nothing above waits for a playback that will not be reported."""
        self._closed = True
        if self._open:
            self._finish(self._sent, interrupted=True)
        self._sending(None)
        if self._sink is not None:
            self._sink.off("playback_finished", self._on_sink_finished)
            self._sink.off("playback_started", self._on_sink_started)
            self._sink = None
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
            self._pump = None

    # -- AudioOutput ----------------------------------------------------------------------

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self._closed:
            return  # a speech that began before close(); flush() reports it so nobody waits
        if not self._capturing:
            self._begin_segment()
        n = frame.samples_per_channel
        self._frames.append(frame)
        self._captured += n
        self._ends.append(self._captured)
        self._wake.set()

    def flush(self) -> None:
        super().flush()
        if self._closed:
            if pending_playbacks(self):
                self.on_playback_finished(playback_position=0.0, interrupted=True)
            return
        if not self._capturing:
            return
        self._capturing = False
        self._flushed = True
        self._wake.set()

    def pause(self) -> None:
        """Stop playing the utterance where the user is (livekit-agents pauses on a possible
        false interruption); :meth:`resume` plays on from there, :meth:`clear_buffer` ends it."""
        if self._closed or self._paused or not self._open:
            return
        self._paused = True
        sink = self._sink
        if sink is not None and sink.can_pause:
            self._paused_natively = True
            sink.pause()
            return
        if self._pump is not None:
            self._pump.cancel()  # nothing more goes out
            self._pump = None
        if sink is not None and self.on_pause is not None:
            self.on_pause()

    def resume(self) -> None:
        if not self._paused:
            return
        self._paused = False
        sink = self._sink
        if self._paused_natively:
            self._paused_natively = False
            if sink is not None:
                sink.resume()
        elif sink is not None:
            self._start_pump(sink)
        elif self.on_resume is not None:
            self.on_resume()

    def clear_buffer(self) -> None:
        if not self._open:
            return
        if self._paused and not self._paused_natively:
            sink = self._sink
            if sink is None:  # held where the user stopped hearing it: it ends there
                self._finish(self._base, interrupted=True)
                return
            # the supervisor has not stopped the avatar yet: stop it as any interruption
            self._paused = False
        # what was not handed to a sink yet is dropped, as the user asked
        self._truncate(self._sent)
        self._capturing = False
        self._flushed = True
        sink = self._sink
        if sink is None or self._sent == self._base:
            self._finish(self._base, interrupted=True)
            return
        if not self._sink_flushed:
            self._flush_sink(sink)
        sink.clear_buffer()

    # -- internals ------------------------------------------------------------------------

    def _begin_segment(self) -> None:
        self._frames.clear()
        self._ends.clear()
        self._captured = self._base = self._sent = 0
        self._capturing = self._open = True
        self._flushed = self._sink_flushed = self._started_reported = False
        self._idle.clear()
        self.segment_id += 1
        self.sent_at = None
        self._resampler = None

    def _truncate(self, end: int) -> None:
        i = bisect.bisect_left(self._ends, end)
        if i < len(self._frames):
            start = self._ends[i - 1] if i else 0
            keep = end - start
            self._frames[i + 1 :] = []
            self._ends[i + 1 :] = []
            if keep:
                self._frames[i] = _slice(self._frames[i], 0, keep)
                self._ends[i] = end
            else:
                del self._frames[i]
                del self._ends[i]
        self._captured = end

    def _frame_at(self, pos: int) -> rtc.AudioFrame:
        i = bisect.bisect_right(self._ends, pos)
        start = self._ends[i - 1] if i else 0
        frame = self._frames[i]
        if pos == start:
            return frame
        return _slice(frame, pos - start, frame.samples_per_channel)

    async def _run_pump(self, sink: AudioOutput) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._sink is sink and self._open and self._sent < self._captured:
                    frame = self._frame_at(self._sent)
                    if self.sent_at is None:
                        self.sent_at = time.monotonic()
                        self._sending(sink)
                    await self._deliver(sink, frame)
                    if self._sink is not sink:
                        return
                    self._sent += frame.samples_per_channel
                    if self._sink_is_room:
                        self.room_seconds += frame.duration
                if (
                    self._sink is sink
                    and self._open
                    and self._flushed
                    and not self._sink_flushed
                    and self._sent >= self._captured
                ):
                    if self._sent == self._base:
                        self._finish(self._base, interrupted=False)
                    else:
                        self._flush_sink(sink)
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            # a broken sink must not take the agent's audio with it: what it did not take
            # is still here, and the supervisor moves it on
            logger.exception("audio sink failed")
            self._sink_failed(sink, exc)

    def _sink_failed(self, sink: AudioOutput, exc: BaseException) -> None:
        if self._sink is sink and self.on_sink_failed is not None:
            self.on_sink_failed(sink, exc)

    async def _deliver(self, sink: AudioOutput, frame: rtc.AudioFrame) -> None:
        rate = sink.sample_rate
        if rate is None or rate == frame.sample_rate:
            await sink.capture_frame(frame)
            return
        if self._resampler is None:
            self._resampler = rtc.AudioResampler(
                frame.sample_rate, rate, num_channels=frame.num_channels
            )
        for out in self._resampler.push(frame):
            await sink.capture_frame(out)

    def _flush_sink(self, sink: AudioOutput) -> None:
        self._sink_flushed = True
        if self._resampler is not None:
            tail = self._resampler.flush()
            self._resampler = None
            if tail:
                # rare (a sink at another rate); the tail is under one resampler block
                self._tail_task = asyncio.create_task(self._capture_then_flush(sink, tail))
                return
        sink.flush()
        if self.on_flushed is not None:
            remaining = (self._sent - self._base) / self._rate
            if self.sent_at is not None:
                remaining -= time.monotonic() - self.sent_at
            self.on_flushed(self.segment_id, max(remaining, 0.0))

    async def _capture_then_flush(self, sink: AudioOutput, frames: list[rtc.AudioFrame]) -> None:
        try:
            for f in frames:
                await sink.capture_frame(f)
        except Exception as exc:
            logger.exception("audio sink failed")
            self._sink_failed(sink, exc)
            return
        if self._sink is sink:
            sink.flush()

    def _on_sink_started(self, ev: PlaybackStartedEvent) -> None:
        if self._open and not self._started_reported:
            self._started_reported = True
            self.on_playback_started(created_at=ev.created_at)

    def _on_sink_finished(self, ev: PlaybackFinishedEvent) -> None:
        if not self._open:
            return
        played = round(ev.playback_position * self._rate)
        self._finish(self._base + played, interrupted=ev.interrupted)

    def _sending(self, sink: AudioOutput | None) -> None:
        """Report which sink the current segment is going to (None: to no sink)."""
        old, self._sending_to = self._sending_to, sink
        if old is sink or self.on_sending is None:
            return
        if old is not None:
            self.on_sending(old, False)
        if sink is not None:
            self.on_sending(sink, True)

    def _finish(self, position: int, *, interrupted: bool) -> None:
        self._paused = self._paused_natively = False
        self._sending(None)
        self._open = self._capturing = False
        self._frames.clear()
        self._ends.clear()
        self._captured = self._base = self._sent = 0
        self._idle.set()
        self.on_playback_finished(playback_position=position / self._rate, interrupted=interrupted)


def _slice(frame: rtc.AudioFrame, start: int, end: int) -> rtc.AudioFrame:
    ch = frame.num_channels
    data = np.frombuffer(bytes(frame.data), dtype=np.int16)[start * ch : end * ch]
    return rtc.AudioFrame(data.tobytes(), frame.sample_rate, ch, end - start)
