"""The agent's audio to LiveAvatar over its LITE-mode WebSocket, as livekit-plugins-liveavatar
sends it (docs.liveavatar.com/docs/lite-mode/events).

Once the server says ``session.state_updated: connected``, each utterance goes out as
``agent.speak`` events (16-bit 24 kHz PCM in base64, 0.6 s in the first, then 1 s) closed by
``agent.speak_end`` and ``agent.start_listening``; ``agent.interrupt`` clears what LiveAvatar
still holds, and ``session.keep_alive`` goes out after a minute of quiet (the idle timeout is
five). The avatar's ``agent.speak_started`` / ``agent.speak_ended`` are the playback events
the AgentSession waits for, as ``lk.playback_started`` / ``lk.playback_finished`` are over
LiveKit data streams (:class:`avatarkit.streaming.RoomAudioOutput`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import uuid
from typing import Any

import aiohttp
from livekit import rtc
from livekit.agents.voice.io import AudioOutput, AudioOutputCapabilities

from avatarkit.secret import Secret, redact_urls

logger = logging.getLogger("avatarkit.liveavatar")

SAMPLE_RATE = 24000
FIRST_CHUNK = 0.6  # seconds in the first agent.speak of an utterance: a quick start
NEXT_CHUNK = 1.0  # and in the next ones (LiveAvatar recommends about a second)
KEEP_ALIVE = 60.0
CONNECT_TIMEOUT = 10.0  # for the socket to say "connected" (the plugin would wait forever)


def event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "event_id": str(uuid.uuid4()), **fields}


class LiveAvatarAudioOutput(AudioOutput):
    """Streams one remote session's audio over its WebSocket (``ws_url`` from the start call)
    until :meth:`aclose`. Once the socket is gone, audio is dropped and never acknowledged:
    the supervisor takes the unacknowledged utterance as a lost avatar and replays it."""

    def __init__(self, ws_url: Secret, http: aiohttp.ClientSession) -> None:
        super().__init__(
            label="LiveAvatar", capabilities=AudioOutputCapabilities(pause=False),
            sample_rate=SAMPLE_RATE)  # fmt: skip
        self._url, self._http = ws_url, http
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._ready = asyncio.Event()  # connected, or failed (then _error is set)
        self._error: str | None = None
        self._closing = False
        self._resampler: rtc.AudioResampler | None = None
        self._chunk: list[bytes] = []
        self._chunk_seconds = 0.0
        # the open utterance (segment): captured and not reported finished yet
        self._playing = False
        self._sent = 0.0  # seconds of it sent
        self._first = True  # the next chunk is its first
        self._flushed = False  # agent.speak_end sent
        self._started_at: float | None = None  # when the avatar began speaking it
        self._idle = False  # the avatar went quiet before the utterance was complete
        self._speaking = False  # the avatar, as its events tell (cut speech: no longer)
        self._task = asyncio.create_task(self._run(), name="avatarkit.liveavatar.socket")

    # -- AudioOutput ------------------------------------------------------------------------

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await self._ready.wait()  # the plugin sends no audio before "connected" either
        await super().capture_frame(frame)
        if not self._playing:
            self._playing, self._sent, self._first, self._flushed = True, 0.0, True, False
            self._started_at, self._idle = None, False
        for f in self._resample(frame):
            self._chunk.append(bytes(f.data))
            self._chunk_seconds += f.duration
            if self._chunk_seconds >= (FIRST_CHUNK if self._first else NEXT_CHUNK):
                self._send_chunk()

    def flush(self) -> None:
        super().flush()
        if not self._playing or self._flushed:
            return
        if self._resampler is not None:
            self._chunk += [bytes(f.data) for f in self._resampler.flush()]
            self._resampler = None
        self._send_chunk()
        self._send(event("agent.speak_end"))
        self._send(event("agent.start_listening"))
        self._flushed = True
        if self._idle:  # the avatar already played all of it
            self._finish(self._sent, interrupted=False)

    def clear_buffer(self) -> None:
        self._chunk, self._chunk_seconds = [], 0.0  # not sent yet: dropped
        if not self._playing:
            return
        if self._sent:
            # even before speak_started: audio LiveAvatar holds would play after the cut
            self._send(event("agent.interrupt"))
        self._speaking = False  # its speak_ended, if it comes, is the cut speech's
        started = self._started_at
        played = 0.0 if started is None else min(self._sent, time.monotonic() - started)
        self._finish(played, interrupted=True)

    async def aclose(self) -> None:
        """Close the socket (the session itself is stopped through the API)."""
        self._closing = True
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._fail("closed")

    # -- internals --------------------------------------------------------------------------

    def _resample(self, frame: rtc.AudioFrame) -> list[rtc.AudioFrame]:
        if frame.sample_rate == SAMPLE_RATE:  # as the relay hands it over
            return [frame]
        if self._resampler is None:
            self._resampler = rtc.AudioResampler(frame.sample_rate, SAMPLE_RATE, num_channels=1)
        return self._resampler.push(frame)

    def _send_chunk(self) -> None:
        if self._chunk:
            audio = base64.b64encode(b"".join(self._chunk)).decode()
            self._send(event("agent.speak", audio=audio))
            self._sent += self._chunk_seconds
            self._chunk, self._chunk_seconds, self._first, self._idle = [], 0.0, False, False

    def _send(self, message: dict[str, Any]) -> None:
        if self._error is None:
            self._outbox.put_nowait(message)

    def _finish(self, position: float, *, interrupted: bool) -> None:
        self._playing = False
        self.on_playback_finished(playback_position=position, interrupted=interrupted)

    def _fail(self, why: str) -> None:
        if self._error is None:
            self._error = why
            if not self._closing:
                logger.warning("the LiveAvatar socket is gone (%s): its audio is dropped", why)
        self._ready.set()

    async def _run(self) -> None:
        try:
            connect = self._http.ws_connect(self._url.reveal())
            ws = await asyncio.wait_for(connect, CONNECT_TIMEOUT)
            tasks = [asyncio.create_task(self._receive(ws)), asyncio.create_task(self._pump(ws))]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await ws.close()
            why = "LiveAvatar closed it"
        except Exception as exc:
            why = redact_urls(repr(exc))  # its URL may hold a credential
        self._fail(why)

    async def _receive(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                self._on_event(json.loads(message.data))
            elif message.type == aiohttp.WSMsgType.ERROR:
                return

    async def _pump(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        await asyncio.wait_for(self._ready.wait(), CONNECT_TIMEOUT)
        while self._error is None:
            try:
                message = await asyncio.wait_for(self._outbox.get(), KEEP_ALIVE)
            except asyncio.TimeoutError:
                message = event("session.keep_alive")
            await ws.send_json(message)

    def _on_event(self, ev: dict[str, Any]) -> None:
        kind = ev.get("type")
        if kind == "session.state_updated":
            logger.debug("LiveAvatar session %s", ev.get("state"))
            if ev.get("state") == "connected":
                self._ready.set()
        elif kind == "agent.speak_started":
            self._on_speak_started()
        elif kind == "agent.speak_ended":
            self._on_speak_ended()
        elif kind in ("agent.speak_interrupted", "agent.audio_buffer_cleared"):
            self._speaking = False  # the speak_ended of cut speech ends no playback
        elif kind == "agent.state_updated":  # the same news, as a state (as the plugin reads it)
            state = ev.get("new_state", ev.get("state"))
            if state == "talking":
                self._on_speak_started()
            elif state in ("idle", "listening"):
                self._on_speak_ended()
        elif kind in ("error", "warning"):
            logger.log(logging.ERROR if kind == "error" else logging.WARNING, "LiveAvatar %s", ev)

    def _on_speak_started(self) -> None:
        if self._speaking:
            return
        self._speaking = True
        if self._playing and self._started_at is None:
            self._started_at = time.monotonic()
            self.on_playback_started(created_at=time.time())

    def _on_speak_ended(self) -> None:
        if not self._speaking:
            return
        self._speaking = False
        if not self._playing:
            return
        if self._flushed:
            self._finish(self._sent, interrupted=False)
        else:  # it ran out of audio mid-utterance: the rest is on its way
            self._idle = True
