"""Benchmark what a user sees and hears while avatarkit renews the avatar mid-conversation.

Run: ``python bench/bench_renewal.py`` (``--runs``, ``--seconds``, ``--renew-after``,
``--cap``, ``--provisioning``, ``--cold-video``, ``--json PATH``; each run is a round).

Everything runs in one process: an in-memory LiveKit server (``MemoryLiveKit``), the Runway
emulator on 127.0.0.1 (``RunwayEmulator``, 64x64 video at 25 fps from one face renderer
built ahead, see ``FaceVideos``; sessions ended ``--cap`` seconds after READY, leaving
mid-utterance as Runway does), a real ``AgentSession`` and a "user" participant that
subscribes to every track in the room. The agent talks continuously
for ``--seconds``: utterances of unique random int16 noise (``--utterance`` s each, then a
``--pause`` s pause). Two contenders, alternating run by run:

* ``renewal``: ``avatarkit.get("runway", renew_after=2.0)``: the remote session is replaced by
  a fresh one before the cap, the audio moving to it at an utterance boundary;
* ``no renewal``: the same avatar without ``renew_after``: the emulated cap ends the avatar
  mid-utterance; avatarkit then plays the rest through the agent's own track and brings up a
  new avatar (``on_loss="renew"``). The official plugin has no renewal at all, so this is the
  nearest peer that can run the same script.

Measured at the user, per handover (old avatar -> new one) and in total:

* video: the largest gap between consecutive video frames of the union of every avatar's
  video track ("the agent's video"), in a window around the handover and over the whole talk
  (goal <= 100 ms);
* audio: the samples the agent sent that the user never received on any track, and those
  received more than once (goal 0 and 0). The in-memory path is lossless at 16 kHz, so every
  received run of samples is located exactly in the sent stream.

The ``Listener`` and the sample accounting here are shared with ``bench_loss.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import figure, goal, machine, plural, table, write_json
from livekit import rtc
from livekit.agents import Agent, AgentSession, APIConnectOptions

import avatarkit
from avatarkit.events import AvatarkitMetrics, AvatarStateChanged
from avatarkit.rooms import register_connector
from avatarkit_providers.local.render import FaceRenderer
from avatarkit_providers.local.video import FaceVideoGenerator
from avatarkit_providers.runway.emulator.emulator import RunwayEmulator
from memory_livekit import MemoryLiveKit

RATE = 16000
FRAME = RATE // 100  # 10 ms
AGENT = "agent-1"
USER = "user"
ROOM_TRACK = "roomio_audio"  # the agent's own audio track (avatarkit's fallback)
FAST = APIConnectOptions(max_retry=2, retry_interval=0.05, timeout=2.0)
GOAL_GAP_MS = 100.0
PCM = np.ndarray[Any, np.dtype[np.int16]]


# -------------------------------------------------------------------------- the agent's audio


def noise(seconds: float, *, seed: int) -> PCM:
    """Unique loud noise with no zero sample (zeros are what tracks carry when idle)."""
    rng = np.random.default_rng(seed)
    pcm = (rng.standard_normal(int(seconds * RATE)) * 4000).clip(-32000, 32000).astype(np.int16)
    pcm[pcm == 0] = 1
    return pcm


def frames_of(pcm: PCM) -> list[rtc.AudioFrame]:
    return [
        rtc.AudioFrame(pcm[i : i + FRAME].tobytes(), RATE, 1, len(pcm[i : i + FRAME]))
        for i in range(0, len(pcm), FRAME)
    ]


async def audio_stream(frames: list[rtc.AudioFrame]) -> AsyncIterator[rtc.AudioFrame]:
    for frame in frames:
        yield frame


# -------------------------------------------------------------------------- the user's side


@attrs.define
class Track:
    """One track the user subscribed to, with the arrival time of every frame."""

    identity: str
    name: str
    kind: str  # "audio" | "video"
    chunks: list[PCM] = attrs.Factory(list)
    times: list[float] = attrs.Factory(list)  # monotonic arrival time per frame

    def pcm(self) -> PCM:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)

    def sample_times(self) -> np.ndarray[Any, np.dtype[np.float64]]:
        """The arrival time of the frame each received sample came in."""
        sizes = [c.size for c in self.chunks]
        return np.repeat(np.asarray(self.times, dtype=np.float64), sizes)


class Listener:
    """A participant that subscribes to every track and records what arrives, and when."""

    def __init__(self, room: rtc.Room) -> None:
        self.room = room
        self.tracks: list[Track] = []
        self.connected: dict[str, float] = {}
        self.disconnected: dict[str, float] = {}
        self._tasks: list[asyncio.Task[None]] = []
        room.on("track_subscribed", self._on_track)
        room.on("participant_connected", self._on_connected)
        room.on("participant_disconnected", self._on_disconnected)
        for p in room.remote_participants.values():
            self.connected[p.identity] = time.monotonic()
            for pub in p.track_publications.values():
                if pub.track is not None:
                    self._on_track(pub.track, pub, p)

    def _on_connected(self, p: rtc.RemoteParticipant) -> None:
        self.connected.setdefault(p.identity, time.monotonic())

    def _on_disconnected(self, p: rtc.RemoteParticipant) -> None:
        self.disconnected.setdefault(p.identity, time.monotonic())

    def _on_track(self, track: rtc.Track, _: Any, participant: rtc.RemoteParticipant) -> None:
        audio = track.kind == rtc.TrackKind.KIND_AUDIO
        rec = Track(participant.identity, track.name, "audio" if audio else "video")
        self.tracks.append(rec)
        reader = self._read_audio if audio else self._read_video
        self._tasks.append(asyncio.create_task(reader(track, rec)))

    async def _read_audio(self, track: rtc.Track, rec: Track) -> None:
        stream = rtc.AudioStream.from_track(track=track, sample_rate=RATE, num_channels=1)
        try:
            async for ev in stream:
                rec.times.append(time.monotonic())
                rec.chunks.append(np.frombuffer(bytes(ev.frame.data), dtype=np.int16).copy())
        finally:
            await stream.aclose()

    async def _read_video(self, track: rtc.Track, rec: Track) -> None:
        stream = rtc.VideoStream.from_track(track=track)
        try:
            async for _ in stream:
                rec.times.append(time.monotonic())
        finally:
            await stream.aclose()

    def avatar_video(self, avatars: set[str]) -> np.ndarray[Any, np.dtype[np.float64]]:
        """Arrival times of every video frame from any avatar, sorted: the agent's video."""
        videos = [tr for tr in self.tracks if tr.kind == "video" and tr.identity in avatars]
        return np.sort(np.asarray([t for tr in videos for t in tr.times], dtype=np.float64))

    def first_frame(self, identity: str) -> float | None:
        """When the first video frame from ``identity`` arrived."""
        times = [tr.times[0] for tr in self.tracks
                 if tr.kind == "video" and tr.identity == identity and tr.times]  # fmt: skip
        return min(times, default=None)

    async def aclose(self) -> None:
        self.room.off("track_subscribed", self._on_track)
        self.room.off("participant_connected", self._on_connected)
        self.room.off("participant_disconnected", self._on_disconnected)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


# -------------------------------------------------------------------------- accounting


def _keys(pcm: PCM) -> np.ndarray[Any, np.dtype[np.uint64]]:
    """A 64-bit key for every window of 4 consecutive samples."""
    u = pcm.astype(np.int64) & 0xFFFF
    if u.size < 4:
        return np.zeros(0, np.uint64)
    k = u[:-3] | (u[1:-2] << 16) | (u[2:-1] << 32) | (u[3:] << 48)
    return k.astype(np.uint64)


@attrs.define
class Run:
    """``n`` received samples, from ``rx`` in the track, that are sent[``pos`` : ``pos+n``]."""

    rx: int
    pos: int
    n: int


def locate_runs(sent: PCM, received: PCM) -> list[Run]:
    """Every run of ``received`` that appears in ``sent``, located exactly."""
    sk, rk = _keys(sent), _keys(received)
    if sk.size == 0 or rk.size == 0:
        return []
    order = np.argsort(sk, kind="stable")
    sorted_keys = sk[order]
    idx = np.searchsorted(sorted_keys, rk)
    idx[idx >= sorted_keys.size] = 0
    hit = sorted_keys[idx] == rk
    pos = np.where(hit, order[idx], -1)
    # a run goes on while each window's match is the previous one's + 1
    valid = pos >= 0
    cont = np.zeros(pos.size, dtype=bool)
    cont[1:] = (pos[1:] == pos[:-1] + 1) & valid[1:] & valid[:-1]
    cont_next = np.zeros(pos.size, dtype=bool)
    cont_next[:-1] = cont[1:]
    starts = np.flatnonzero(valid & ~cont)
    ends = np.flatnonzero(valid & ~cont_next)
    return [Run(int(s), int(pos[s]), int(e - s) + 4) for s, e in zip(starts, ends, strict=True)]


@attrs.define
class Accounting:
    sent: int
    count: np.ndarray[Any, np.dtype[np.int32]]  # per sent sample: times received
    per_track: dict[str, int]  # samples of speech received, per "identity/name"
    runs: dict[str, list[Run]]

    def lost(self, lo: int = 0, hi: int | None = None) -> int:
        return int((self.count[lo:hi] == 0).sum())

    def dup(self, lo: int = 0, hi: int | None = None) -> int:
        return int((self.count[lo:hi] > 1).sum())


def account(sent: PCM, tracks: list[Track]) -> Accounting:
    count = np.zeros(sent.size, dtype=np.int32)
    per_track: dict[str, int] = {}
    runs: dict[str, list[Run]] = {}
    for i, tr in enumerate(tracks):
        if tr.kind != "audio":
            continue
        key = f"{tr.identity}/{tr.name}#{i}"
        found = locate_runs(sent, tr.pcm())
        for r in found:
            count[r.pos : r.pos + r.n] += 1
        runs[key] = found
        per_track[key] = sum(r.n for r in found)
    return Accounting(sent.size, count, per_track, runs)


def max_gap(times: np.ndarray[Any, np.dtype[np.float64]], lo: float, hi: float) -> float:
    """The largest interval without a frame that overlaps [lo, hi], in seconds."""
    if times.size == 0:
        return hi - lo
    # the last frame at or before lo, every frame in between, the first at or after hi
    a = max(int(np.searchsorted(times, lo, side="right")) - 1, 0)
    b = min(int(np.searchsorted(times, hi, side="left")) + 1, times.size)
    window = times[a:b]
    gaps = [float(np.diff(window).max())] if window.size > 1 else []
    if window[0] > lo:
        gaps.append(float(window[0] - lo))
    if window[-1] < hi:
        gaps.append(float(hi - window[-1]))
    return max(gaps) if gaps else 0.0


# -------------------------------------------------------------------------- the scenario


class FaceVideos:
    """The emulated avatars' face video: one renderer, built ahead, shared by every avatar.

    Building a face renderer (it draws the face's patch banks) blocks the event loop for
    100-200 ms on this machine. The emulator builds a generator, renderer included, when a
    session's worker joins, in this same process and loop, where that stall freezes every
    other participant's video too, the user's view of the old avatar included. Runway does
    that work on its own servers, so the bench builds one renderer before the talk starts and
    hands each emulated avatar a generator around it (``FaceRenderer.render`` keeps no
    per-frame state, so sharing it is safe). ``cold=True`` (``--cold-video``) builds a
    renderer per avatar as the emulator would by default.
    """

    def __init__(self, *, size: int = 64, fps: float = 25, cold: bool = False) -> None:
        self.size, self.fps = size, fps
        self.renderer = None if cold else FaceRenderer(size, size)

    def __call__(self) -> FaceVideoGenerator:
        return FaceVideoGenerator(
            width=self.size, height=self.size, fps=self.fps, renderer=self.renderer
        )


def _ending(change: Any) -> str:
    """How the emulator says a session ended: ``END_CALL`` (the agent ended it gracefully),
    ``runtime_cap``, ``DELETE``, or the status and reason."""
    if change.status.value == "COMPLETED" and change.reason == "control":
        return "END_CALL"
    if change.status.value == "CANCELLED" and change.reason == "delete":
        return "DELETE"
    if change.reason == "runtime_cap":
        return "runtime_cap"
    return f"{change.status.value}/{change.reason}"


class LagMonitor:
    """How late the event loop runs a task that sleeps ``interval`` in a loop."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (when it woke, overshoot in s)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="bench.lag")

    async def _run(self) -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(self.interval)
            now = time.monotonic()
            self.samples.append((now, now - t - self.interval))

    def lags(self, lo: float = -math.inf, hi: float = math.inf) -> list[float]:
        return [lag for t, lag in self.samples if lo <= t <= hi]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


@attrs.define
class Utterance:
    lo: int  # sample range in the sent stream
    hi: int
    said_at: float
    done_at: float
    hung: bool


@attrs.define
class Handover:
    old: str
    new: str
    kind: str  # "renewal" (planned), or "loss (why the old session ended)"
    window: tuple[float, float]  # seconds from the start of talk
    video_gap_ms: float
    overlap_ms: float  # the new avatar's first frame to the old one leaving (>0: both shown)
    lost: int
    dup: int
    metric_ms: float | None  # avatarkit's own renewal_gap / loss_to_audible
    loop_lag_ms: float  # the event loop's worst lateness in the window


@attrs.define
class Result:
    name: str
    run: int
    handovers: list[Handover]
    talk_gap_ms: float  # over the whole talk
    away_gap_ms: float  # over the talk outside every handover window
    away_lag_ms: float
    sent: int
    lost: int
    dup: int
    per_owner: dict[str, int]
    room_audio_s: float
    hangs: int
    states: list[str]
    remotes: list[str]  # per remote avatar: how it ended, and why avatarkit dropped it
    caps_hit: int
    still_active: int


class Scenario:
    """One room, one emulator, one avatar; the agent talks for ``seconds``."""

    def __init__(self, args: argparse.Namespace, *, renew: bool, run: int) -> None:
        self.args = args
        self.renew = renew
        self.run = run
        self.states: list[tuple[float, AvatarStateChanged]] = []
        self.metrics: list[AvatarkitMetrics] = []
        self.utterances: list[Utterance] = []
        self.sent: list[PCM] = []
        self.lag = LagMonitor()

    async def __call__(self) -> Result:
        args = self.args
        server = MemoryLiveKit()
        unregister = register_connector(server.url, lambda _url, token: server.connect(token))
        emu = RunwayEmulator(
            provisioning_delay=args.provisioning,
            runtime_cap=args.cap,
            video=FaceVideos(cold=args.cold_video),
        )
        await emu.start()
        room_name = f"renewal-{self.run}"
        agent_room = await server.join(room_name, AGENT, kind="agent")
        user = await server.join(room_name, USER, kind="standard")
        listener = Listener(user)
        session: AgentSession[Any] = AgentSession()
        options: dict[str, Any] = {"renew_after": args.renew_after} if self.renew else {}
        avatar = avatarkit.get(
            "runway",
            api_key=emu.api_key,
            api_url=emu.url,
            preset_id="influencer",
            livekit_url=server.url,
            livekit_api_key=server.api_key,
            livekit_api_secret=server.api_secret,
            conn_options=FAST,
            **options,
        )
        avatar.on("avatar_state_changed", lambda ev: self.states.append((time.monotonic(), ev)))
        avatar.on("metrics_collected", self.metrics.append)
        try:
            await avatar.start(session, room=agent_room)
            await session.start(agent=Agent(instructions="You are a benchmark agent."))
            await avatar.wait_for_join(timeout=10)
            self.lag.start()
            talk_start = time.monotonic()
            await self.talk(session, talk_start + args.seconds)
            talk_end = time.monotonic()
            await asyncio.sleep(0.5)  # the last audio drains from the tracks
            room_audio = avatar.audio_without_avatar
        finally:
            await self.lag.stop()
            await avatar.aclose()
            await session.aclose()
            await listener.aclose()
            await user.disconnect()
            await agent_room.disconnect()
            await asyncio.sleep(0.1)
            still_active = len(emu.server.active_sessions())
            ended_by = {  # avatar identity -> (session id, why the emulator ended it)
                r.identity: (
                    r.session_id,
                    _ending(emu.server.sessions[r.session_id].history[-1])
                    if r.session_id in emu.server.sessions
                    else "not created",
                )
                for r in avatar.remote_avatars
                if r.session_id is not None
            }
            remotes = [
                f"{r.identity}: {ended_by.get(r.identity, (None, '-'))[1]}, {r.end_outcome}"
                + (f", lost: {r.lost_reason}" if r.lost_reason else "")
                for r in avatar.remote_avatars
            ]
            await emu.close()
            await server.aclose()
            unregister()
        result = self.evaluate(listener, talk_start, talk_end, ended_by)
        result.room_audio_s = room_audio
        result.remotes = remotes
        result.still_active = still_active
        return result

    async def talk(self, session: AgentSession[Any], until: float) -> None:
        args = self.args
        pos, seed = 0, 1000 * self.run
        while time.monotonic() < until:
            pcm = noise(args.utterance, seed=seed)
            seed += 1
            self.sent.append(pcm)
            said_at = time.monotonic()
            handle = session.say("x", audio=audio_stream(frames_of(pcm)), add_to_chat_ctx=False)
            hung = False
            try:
                await asyncio.wait_for(handle.wait_for_playout(), args.utterance + 10)
            except asyncio.TimeoutError:
                hung = True
                handle.interrupt(force=True)
            self.utterances.append(Utterance(pos, pos + pcm.size, said_at, time.monotonic(), hung))
            pos += pcm.size
            await asyncio.sleep(args.pause)

    def evaluate(
        self,
        listener: Listener,
        talk_start: float,
        talk_end: float,
        ended_by: Mapping[str, tuple[str | None, str]],
    ) -> Result:
        sent = np.concatenate(self.sent)
        acc = account(sent, listener.tracks)
        avatars = [i for i in listener.connected if i not in (AGENT, USER)]
        avatars.sort(key=lambda i: listener.connected[i])
        video = listener.avatar_video(set(avatars))
        first_frame = {a: listener.first_frame(a) for a in avatars}
        renewed = {m.session_id: m for m in self.metrics if m.event == "renewed"}
        lost = {m.session_id: m for m in self.metrics if m.event == "lost"}
        handovers: list[Handover] = []
        windows: list[tuple[float, float]] = []
        for old, new in itertools.pairwise(avatars):
            old_left = listener.disconnected.get(old, talk_end)
            new_first = first_frame.get(new) or talk_end
            new_in = listener.connected[new]
            if old_left >= talk_end and new_in >= talk_end:
                continue  # the next one came after the talk: not a handover the user saw
            # from the new avatar arriving (or the old one leaving, whichever is first) to the
            # old one gone and the new one on screen, with half a second either side
            lo = max(min(new_in, old_left) - 0.5, talk_start)
            hi = min(max(new_first, old_left) + 0.5, talk_end)
            windows.append((lo, hi))
            window_lost = window_dup = 0
            for u in self.utterances:
                if u.said_at <= hi and u.done_at >= lo:
                    window_lost += acc.lost(u.lo, u.hi)
                    window_dup += acc.dup(u.lo, u.hi)
            # planned if the old session was ended by avatarkit, not by the cap or a fault
            old_sid, why = ended_by.get(old, (None, "?"))
            kind = "renewal" if why == "END_CALL" else f"loss ({why})"
            m = (
                renewed.get(ended_by.get(new, (None, ""))[0])
                if kind == "renewal"
                else lost.get(old_sid)
            )
            value = None
            if m is not None:
                value = m.renewal_gap if kind == "renewal" else m.loss_to_audible
            handovers.append(
                Handover(
                    old,
                    new,
                    kind,
                    (lo - talk_start, hi - talk_start),
                    max_gap(video, lo, hi) * 1000,
                    (old_left - new_first) * 1000,
                    window_lost,
                    window_dup,
                    None if value is None else value * 1000,
                    max(self.lag.lags(lo, hi), default=0.0) * 1000,
                )
            )
        # away from the handovers: the same measures, for the noise floor of this machine
        talk = video[(video >= talk_start) & (video <= talk_end)]
        away_gap = 0.0
        for a, b in itertools.pairwise(talk):
            if not any(a < hi and b > lo for lo, hi in windows):
                away_gap = max(away_gap, float(b - a))
        away_lag = [
            lag
            for t, lag in self.lag.samples
            if talk_start <= t <= talk_end and not any(lo <= t <= hi for lo, hi in windows)
        ]
        per_owner: dict[str, int] = {}
        for key, n in acc.per_track.items():
            owner = key.split("/")[0]
            per_owner[owner] = per_owner.get(owner, 0) + n
        return Result(
            name="renewal" if self.renew else "no renewal",
            run=self.run // 2 + 1,
            handovers=handovers,
            talk_gap_ms=max_gap(video, talk_start, talk_end) * 1000,
            away_gap_ms=away_gap * 1000,
            away_lag_ms=max(away_lag, default=0.0) * 1000,
            sent=acc.sent,
            lost=acc.lost(),
            dup=acc.dup(),
            per_owner={k: v for k, v in per_owner.items() if v},
            room_audio_s=0.0,
            hangs=sum(u.hung for u in self.utterances),
            states=[ev.state for _, ev in self.states],
            remotes=[],
            caps_hit=sum(why == "runtime_cap" for _, why in ended_by.values()),
            still_active=0,
        )


# -------------------------------------------------------------------------- report


def quiet_emulator_noise() -> None:
    """Errors are shown, except one the emulated avatar logs for every utterance.

    The emulator's worker is livekit's ``AvatarRunner``, which calls ``lk.playback_started``
    on the agent after each utterance starts; avatarkit registers that RPC only for
    providers that declare ``reports_playback_start`` (Runway does not), so livekit logs
    "remote participant didn't register lk.playback_started RPC" at ERROR each time. It is
    expected here and says nothing about avatarkit.
    """
    logging.basicConfig(level=logging.ERROR)

    class _Filter(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "didn't register lk.playback_started" not in record.getMessage()

    logging.getLogger("livekit.agents").addFilter(_Filter())


def short(identity: str) -> str:
    """``runway-avatar-agent-2`` -> ``avatar-2`` (the first one is ``avatar-0``)."""
    base = "runway-avatar-agent"
    if identity == base:
        return "avatar-0"
    return identity.replace(base, "avatar") if identity.startswith(base + "-") else identity


def report(results: list[Result], args: argparse.Namespace) -> None:
    print(
        f"renewal: {args.seconds:.0f} s of talk ({args.utterance} s utterances, {args.pause} s "
        f"pauses), emulated cap {args.cap} s, provisioning {args.provisioning} s, "
        f"renew_after={args.renew_after}, face video "
        f"{'built on join' if args.cold_video else 'built ahead'} ({machine()}, "
        f"load average {os.getloadavg()[0]:.1f})"
    )
    rows = []
    for r in results:
        for i, h in enumerate(r.handovers):
            rows.append(
                [
                    f"{r.name} #{r.run}",
                    str(i + 1),
                    h.kind,
                    f"{short(h.old)} -> {short(h.new)}",
                    f"{h.window[0]:.1f}-{h.window[1]:.1f}",
                    f"{h.video_gap_ms:.0f}",
                    f"{h.overlap_ms:+.0f}",
                    str(h.lost),
                    str(h.dup),
                    "-" if h.metric_ms is None else f"{h.metric_ms:.0f}",
                    f"{h.loop_lag_ms:.0f}",
                ]
            )
    print("\nPer handover, as the user saw it (window: s from the start of the talk):")
    print(
        table(
            [
                "run",
                "#",
                "kind",
                "avatars",
                "window s",
                "video gap ms",
                "overlap ms",
                "lost",
                "dup",
                "avatarkit ms",
                "loop lag ms",
            ],
            rows,
        )
    )
    print(
        "  video gap: the longest stretch in the window with no frame from any avatar.\n"
        "  overlap: how long after the new avatar's first frame the old one left "
        "(negative: no avatar on screen).\n"
        "  lost / dup: samples of the utterances in the window never heard / heard twice.\n"
        "  avatarkit ms: its own metric, renewal_gap for a renewal, loss_to_audible for a loss.\n"
        "  loop lag: the worst lateness of this process's event loop in the window (the agent,\n"
        "  the emulated avatars and the user share it, so a stall stops every video at once)."
    )
    totals = []
    for name in ("renewal", "no renewal"):
        rs = [r for r in results if r.name == name]
        if not rs:
            continue
        hs = [h for r in rs for h in r.handovers]
        totals.append(
            [
                name,
                str(len(rs)),
                str(sum(h.kind == "renewal" for h in hs)),
                str(sum(h.kind.startswith("loss") for h in hs)),
                f"{max((h.video_gap_ms for h in hs), default=0.0):.0f}",
                f"{max(r.away_gap_ms for r in rs):.0f}",
                f"{max(r.away_lag_ms for r in rs):.0f}",
                f"{sum(r.sent for r in rs) / RATE:.1f}",
                str(sum(r.lost for r in rs)),
                str(sum(r.dup for r in rs)),
                f"{sum(r.room_audio_s for r in rs):.2f}",
                str(sum(r.hangs for r in rs)),
                str(sum(r.caps_hit for r in rs)),
                str(sum(r.still_active for r in rs)),
            ]
        )
    print("\nTotals:")
    print(
        table(
            [
                "contender",
                "runs",
                "renewals",
                "losses",
                "gap at handovers ms",
                "gap elsewhere ms",
                "loop lag elsewhere ms",
                "sent s",
                "lost",
                "dup",
                "room audio s",
                "hung",
                "capped",
                "active after",
            ],
            totals,
        )
    )
    print(
        "  gap / loop lag elsewhere: the same measures over the rest of the talk (the noise\n"
        "  floor of this machine). lost / dup: samples, over every utterance. room audio:\n"
        "  seconds the agent's own track played. hung: utterances whose wait_for_playout did\n"
        "  not return. capped: sessions the emulated cap ended. active after: sessions still\n"
        "  running after aclose()."
    )
    for r in results:
        owners = ", ".join(f"{short(k)} {v / RATE:.2f} s" for k, v in r.per_owner.items())
        print(f"\n  {r.name} #{r.run}: heard from {owners}")
        print(f"    states: {' '.join(r.states)}")
        print("    sessions: " + "; ".join(short(x) for x in r.remotes))
    ok = [r for r in results if r.name == "renewal"]
    gap = max((h.video_gap_ms for r in ok for h in r.handovers), default=0.0)
    lost, dup = sum(r.lost for r in ok), sum(r.dup for r in ok)
    print(
        f"\ngoal, with renewal: video gap <= {GOAL_GAP_MS:.0f} ms around renewals: "
        f"{'met' if gap <= GOAL_GAP_MS else 'NOT met'} ({gap:.0f} ms); "
        f"lost 0 and duplicated 0: {'met' if lost == dup == 0 else 'NOT met'} "
        f"({lost} lost, {dup} duplicated)"
    )


async def bench(args: argparse.Namespace) -> None:
    results: list[Result] = []
    deadline = time.monotonic() + args.max_seconds
    for run in range(args.runs):
        for renew in (True, False) if run % 2 == 0 else (False, True):
            if time.monotonic() > deadline:
                break
            result = await Scenario(args, renew=renew, run=2 * run + int(not renew))()
            print(f"  {result.name} #{result.run}: done", file=sys.stderr)
            results.append(result)
    results.sort(key=lambda r: (r.name != "renewal", r.run))
    report(results, args)
    write_json(
        args.json,
        "renewal",
        figures(results, args),
        runs=len(results),
        round=f"one {args.seconds:g} s talk per contender, alternating",
    )


def figures(results: list[Result], args: argparse.Namespace) -> list[dict[str, object]]:
    """The published figures; each ``renewal`` run is a round."""
    ok = [r for r in results if r.name == "renewal"]
    other = [r for r in results if r.name == "no renewal"]
    gaps = [max((h.video_gap_ms for h in r.handovers), default=0.0) for r in ok]
    hs = [h for r in ok for h in r.handovers]
    peer = "no peer: the official plugin has no renewal"
    if other:
        ohs = [h for r in other for h in r.handovers]
        gap = (
            f"{max(h.video_gap_ms for h in ohs):.0f} ms gap at its handovers"
            if ohs
            else "no new avatar on screen before the talk ended"
        )
        peer += (
            f"; avatarkit without renewal: {gap}, "
            f"{sum(r.room_audio_s for r in other) / len(other):.2f} s per run "
            "through the room's audio"
        )
    talk = (
        f"{args.seconds:g} s of talk, emulated cap {args.cap:g} s, renew_after={args.renew_after:g}"
    )
    return [
        figure(
            "renewal.gap",
            f"renewal handover: largest video gap at 25 fps ({talk})",
            max(gaps, default=0.0),
            "ms",
            rounds=gaps,
            peer_text=peer,
            goal=goal("value", "<=", GOAL_GAP_MS),
            note=(
                f"{sum(h.kind == 'renewal' for h in hs)} renewals and "
                f"{sum(h.kind.startswith('loss') for h in hs)} losses in {plural(len(ok), 'run')}; "
                f"largest gap elsewhere {max((r.away_gap_ms for r in ok), default=0.0):.0f} ms"
            ),
            readme=True,
        ),
        figure(
            "renewal.samples",
            "renewal handover: samples lost or repeated",
            sum(r.lost + r.dup for r in ok),
            "samples",
            rounds=[r.lost + r.dup for r in ok],
            spread="exact",
            goal=goal("value", "==", 0),
            note=(
                f"{sum(r.lost for r in ok)} lost, {sum(r.dup for r in ok)} repeated, "
                f"{sum(r.hangs for r in ok)} utterances hung; "
                f"{sum(r.still_active for r in ok)} sessions active after close"
            ),
            readme=True,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2, help="runs of each contender (default 2)")
    parser.add_argument("--seconds", type=float, default=8.0, help="talk per run (default 8)")
    parser.add_argument("--utterance", type=float, default=0.8, help="seconds per utterance")
    parser.add_argument("--pause", type=float, default=0.2, help="seconds between utterances")
    parser.add_argument("--renew-after", type=float, default=2.0, help="renew_after (default 2)")
    parser.add_argument("--cap", type=float, default=4.0, help="emulated runtime cap (default 4)")
    parser.add_argument(
        "--provisioning", type=float, default=0.5, help="emulated provisioning delay (default 0.5)"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=100.0, help="start no run after this many seconds"
    )
    parser.add_argument(
        "--cold-video",
        action="store_true",
        help="build each emulated avatar's face renderer when it joins (in this loop)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures here as JSON")
    args = parser.parse_args()
    quiet_emulator_noise()
    warnings.simplefilter("ignore", DeprecationWarning)
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
