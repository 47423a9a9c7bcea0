"""Benchmark many avatar sessions in one process: memory, event-loop lag, and what is left.

Run: ``python bench/bench_many.py`` (``--concurrent``, ``--sequential``, ``--fps``,
``--utterance``, ``--peer-rounds``, ``--json PATH``).

Everything runs in one process: an in-memory LiveKit server and the Runway emulator on
127.0.0.1, whose avatars draw 64x64 video at ``--fps`` (default 10) with one face renderer
built ahead and shared (``bench_renewal.FaceVideos``). Every session has its own room, its own
real ``AgentSession`` and its own ``avatarkit.get("runway", ...)`` avatar (livekit's default
``conn_options``; ``--fast-api`` for the tests' 2 s timeout); every agent and
every avatar uses the same identities (``agent``, ``runway-avatar-agent``), the default, so
that sessions crossing each other's playback RPCs would show.

1. One warm-up session, then the baseline: RSS (``VmRSS`` in ``/proc/self/status``), the
   asyncio tasks, avatarkit's RPC routes (``avatarkit.streaming._routes``), livekit's
   class-level ``DataStreamAudioOutput._playback_finished_handlers`` and
   ``DataStreamAudioReceiver._clear_buffer_handlers``.
2. ``--concurrent`` sessions (default 100) start at once, wait until every avatar has joined,
   then every agent says one utterance at the same time. A task that sleeps 10 ms in a loop
   records how late the event loop wakes it (lag). RSS with all of them up, minus the
   baseline, divided by the count, is the memory per session (the emulated avatar workers,
   which run in this process, included). Then all are closed, and what is left is counted
   against the baseline; the emulator must have no active session (those avatarkit never
   learned the id of, because their create call was answered too late, are counted apart).
3. ``--sequential`` sessions (default 200), one after another, each saying a short utterance:
   RSS and task count every 25 sessions, for leaks. This process's idle CPU is measured after
   the warm-up and again after these sessions (``--idle``): it must stay flat.
4. Against the official plugin (``--peer-rounds``, default 2; run first): each round starts a
   fresh process per contender (``--child``), in alternating order, that brings up
   ``--concurrent`` sessions at once and reports the RSS per session, the whole process's CPU
   while every avatar is joined and every agent silent, and its CPU per second of speech while
   they all speak. Fresh processes, because RSS never shrinks back.

``--json PATH`` also writes the figures ``bench/run`` publishes.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import importlib
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import figure, goal, machine, median, percentile, plural, table, write_json
from bench_renewal import (
    FAST,
    FaceVideos,
    LagMonitor,
    audio_stream,
    frames_of,
    noise,
    quiet_emulator_noise,
)
from livekit import rtc
from livekit.agents import Agent, AgentSession, utils
from livekit.agents.voice.avatar import DataStreamAudioOutput, DataStreamAudioReceiver

import avatarkit
from avatarkit import streaming
from avatarkit.rooms import register_connector
from avatarkit_providers.runway.emulator.emulator import RunwayEmulator
from memory_livekit import MemoryLiveKit, MemoryRoom
from memory_livekit.job import job_context

seed_runway: Any
try:
    seed_runway = importlib.import_module("livekit.plugins.runway")
except ImportError:  # the [bench] extra is not installed
    seed_runway = None

JOIN_TIMEOUT = 120.0
IDLE_FLAT_MS = 5.0  # idle CPU counts as flat within this many ms of CPU per second
CLEANUP_TIMEOUT = 30.0


def rss_mb() -> float:
    """This process's resident memory now (``VmRSS``), in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def routes() -> int:
    """avatarkit's RPC routes still registered: (participant, method, caller) triples."""
    tables = list(streaming._routes.values())
    return sum(len(callers) for methods in tables for callers in methods.values())


def task_name(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    return getattr(coro, "__qualname__", None) or task.get_name()


@attrs.define
class Snapshot:
    rss: float
    tasks: set[asyncio.Task[Any]]
    routes: int
    finished_handlers: int
    clear_handlers: int
    active: int
    workers: int

    @classmethod
    async def take(cls, emu: RunwayEmulator, lk: MemoryLiveKit) -> Snapshot:
        await lk.settle()
        await asyncio.sleep(0.3)  # what was closing has closed
        gc.collect()
        return cls(
            rss_mb(),
            set(asyncio.all_tasks()),
            routes(),
            len(DataStreamAudioOutput._playback_finished_handlers),
            len(DataStreamAudioReceiver._clear_buffer_handlers),
            len(emu.server.active_sessions()),
            len(emu.workers),
        )


@attrs.define
class One:
    """One agent, its room, its AgentSession and its avatar."""

    room: MemoryRoom
    session: AgentSession[Any]
    avatar: avatarkit.AvatarkitSession
    joined_in: float = 0.0
    playout: float | None = None
    degraded: bool = False


@attrs.define
class Outcome:
    """What became of the concurrent sessions' remote avatars."""

    created: int  # sessions the emulator created
    known: int  # of those, the ones whose id avatarkit learned
    active_known: int  # still active after closing, id known to avatarkit
    active_unknown: int  # still active after closing, id never learned (orphaned)
    lost: collections.Counter[str]  # why avatarkit dropped an avatar
    outcomes: collections.Counter[str]  # how avatarkit ended each remote avatar
    degraded: int  # sessions that spent some time without an avatar

    @classmethod
    def of(cls, emu: RunwayEmulator, ones: list[One], before: set[str]) -> Outcome:
        """``before``: the session ids that existed before these sessions started."""
        remotes = [r for o in ones for r in o.avatar.remote_avatars]
        known = {r.session_id for r in remotes if r.session_id}
        created = set(emu.server.sessions) - before
        active = {s.id for s in emu.server.active_sessions()}
        return cls(
            len(created),
            len(known & created),
            len(active & known),
            len(active - known),
            collections.Counter(_short_reason(r.lost_reason) for r in remotes if r.lost_reason),
            collections.Counter(str(r.end_outcome) for r in remotes),
            sum(o.degraded for o in ones),
        )


def _short_reason(reason: str) -> str:
    return reason.split(" 3.0 s")[0].split(" after")[0] if reason else reason


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.lk = MemoryLiveKit()
        self.unregister = register_connector(self.lk.url, lambda _url, t: self.lk.connect(t))
        self.emu = RunwayEmulator(
            provisioning_delay=args.provisioning, video=FaceVideos(fps=args.fps)
        )
        self.n = 0

    async def open(self) -> One:
        self.n += 1
        room = await self.lk.join(f"many-{self.n}", "agent", kind="agent")
        session: AgentSession[Any] = AgentSession()
        avatar = avatarkit.get(
            "runway",
            api_key=self.emu.api_key,
            api_url=self.emu.url,
            preset_id="influencer",
            livekit_url=self.lk.url,
            livekit_api_key=self.lk.api_key,
            livekit_api_secret=self.lk.api_secret,
            **({"conn_options": FAST} if self.args.fast_api else {}),
        )
        one = One(room, session, avatar)
        avatar.on("avatar_state_changed", lambda ev: _mark(one, ev.state))
        t0 = time.monotonic()
        await avatar.start(session, room=room)
        await session.start(agent=Agent(instructions="You are a benchmark agent."))
        await avatar.wait_for_join(timeout=JOIN_TIMEOUT)
        one.joined_in = time.monotonic() - t0
        return one

    async def speak(self, one: One, seconds: float, seed: int) -> None:
        pcm = noise(seconds, seed=seed)
        t0 = time.monotonic()
        handle = one.session.say("x", audio=audio_stream(frames_of(pcm)), add_to_chat_ctx=False)
        try:
            await asyncio.wait_for(handle.wait_for_playout(), seconds + 30)
            one.playout = time.monotonic() - t0
        except asyncio.TimeoutError:
            handle.interrupt(force=True)

    async def close(self, one: One) -> None:
        await asyncio.wait_for(one.avatar.aclose(), CLEANUP_TIMEOUT)
        await asyncio.wait_for(one.session.aclose(), CLEANUP_TIMEOUT)
        await one.room.disconnect()
        await self.lk.delete_room(one.room.name)


def _mark(one: One, state: str) -> None:
    if state == "degraded":
        one.degraded = True


def _lag_row(label: str, lags: list[float]) -> list[str]:
    ms = [lag * 1000 for lag in lags]
    if not ms:
        return [label, "0", "-", "-", "-"]
    return [
        label,
        str(len(ms)),
        f"{percentile(ms, 50):.1f}",
        f"{percentile(ms, 99):.1f}",
        f"{max(ms):.1f}",
    ]


def _left(before: Snapshot, after: Snapshot) -> list[str]:
    new = after.tasks - before.tasks
    names = collections.Counter(task_name(t) for t in new)
    return [f"{n} x {name}" for name, n in names.most_common(6)]


async def idle_cpu(seconds: float, windows: int) -> list[float]:
    """This process's CPU time per second of wall time while it waits, in ms, per window."""
    out = []
    for _ in range(max(1, windows)):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds / max(1, windows))
        out.append((time.process_time() - cpu0) / (time.perf_counter() - wall0) * 1000)
    return out


@attrs.define
class Round:
    """One concurrent phase: ``--concurrent`` sessions up at once, speaking, then closed."""

    base: Snapshot
    after: Snapshot
    ones: list[One]
    errors: list[BaseException]
    lag: LagMonitor
    marks: tuple[float, float, float, float]  # started, all joined, idle done, all spoke
    rss_all: float
    closed_in: float
    outcome: Outcome

    @property
    def rss_per_session(self) -> float:
        """KiB."""
        return (self.rss_all - self.base.rss) / max(len(self.ones), 1) * 1024

    @property
    def left(self) -> int:
        """Tasks, routes and livekit handlers left after closing, against the baseline."""
        a, b = self.after, self.base
        return (
            len(a.tasks - b.tasks)
            + max(0, a.routes - b.routes)
            + max(0, a.finished_handlers - b.finished_handlers)
            + max(0, a.clear_handlers - b.clear_handlers)
        )


async def concurrent_round(b: Bench, args: argparse.Namespace) -> Round:
    base = await Snapshot.take(b.emu, b.lk)
    before = set(b.emu.server.sessions)
    lag = LagMonitor()
    lag.start()
    t0 = time.monotonic()
    opened = await asyncio.gather(
        *(b.open() for _ in range(args.concurrent)), return_exceptions=True
    )
    ones = [o for o in opened if isinstance(o, One)]
    errors = [o for o in opened if isinstance(o, BaseException)]
    t_joined = time.monotonic()
    await asyncio.sleep(1.0)  # all idle, every avatar publishing video
    t_idle = time.monotonic()
    gc.collect()
    rss_all = rss_mb()
    await asyncio.gather(*(b.speak(o, args.utterance, seed=i) for i, o in enumerate(ones)))
    t_spoke = time.monotonic()
    await lag.stop()
    closing = time.monotonic()
    await asyncio.gather(*(b.close(o) for o in ones), return_exceptions=True)
    closed_in = time.monotonic() - closing
    after = await Snapshot.take(b.emu, b.lk)
    outcome = Outcome.of(b.emu, ones, before)
    return Round(
        base,
        after,
        ones,
        errors,
        lag,
        (t0, t_joined, t_idle, t_spoke),
        rss_all,
        closed_in,
        outcome,
    )


async def bench(args: argparse.Namespace) -> None:
    # fresh processes first, so that this process's own sessions do not load the machine
    peers = peer_rounds(args)
    b = Bench(args)
    await b.emu.start()
    try:
        # 1. warm-up, then the idle baseline
        warm = await b.open()
        await b.speak(warm, 0.2, seed=0)
        await b.close(warm)
        await Snapshot.take(b.emu, b.lk)
        idle_base = await idle_cpu(args.idle, args.idle_windows)

        # 2. concurrent
        first = await concurrent_round(b, args)

        # 3. sequential
        seq: list[tuple[int, float, int]] = []  # (sessions done, RSS MiB, tasks)
        seq_hung = 0
        seq_start = time.monotonic()
        seq_base = await Snapshot.take(b.emu, b.lk)
        for i in range(args.sequential):
            if time.monotonic() - seq_start > args.max_seconds:
                break
            one = await b.open()
            await b.speak(one, args.seq_utterance, seed=10_000 + i)
            seq_hung += one.playout is None
            await b.close(one)
            if (i + 1) % 25 == 0 or i + 1 == args.sequential:
                snap = await Snapshot.take(b.emu, b.lk)
                seq.append((i + 1, snap.rss, len(snap.tasks)))
        seq_after = await Snapshot.take(b.emu, b.lk)
        seq_secs = time.monotonic() - seq_start
        idle_after = await idle_cpu(args.idle, args.idle_windows)
    finally:
        await b.emu.close()
        await b.lk.aclose()
        b.unregister()
    concurrent = (
        first.base,
        first.after,
        first.ones,
        first.errors,
        first.lag,
        first.marks,
        first.rss_all,
    )
    sequential = (seq_base, seq_after, seq, seq_hung, seq_secs)
    report(args, concurrent, first.closed_in, first.outcome, sequential)
    print(
        f"\nIdle CPU of this process: {median(idle_base):.1f} ms/s after the warm-up, "
        f"{median(idle_after):.1f} ms/s after the {seq[-1][0] if seq else 0} sequential "
        f"sessions (medians of {len(idle_base)} windows of {args.idle / len(idle_base):g} s)"
    )
    report_peers(args, peers)
    write_json(
        args.json,
        "many",
        figures(args, first, sequential, idle_base, idle_after, peers),
        concurrent=args.concurrent,
        sequential=seq[-1][0] if seq else 0,
        round=(
            f"a fresh process per contender with {args.concurrent} concurrent sessions, "
            f"alternating; idle CPU: a {args.idle / args.idle_windows:g} s window"
        ),
    )


def _peer_figure(
    fid: str,
    what: str,
    key: str,
    unit: str,
    peers: list[dict[str, dict[str, Any]]],
    **kw: Any,
) -> dict[str, object]:
    kit = [p["avatarkit"][key] for p in peers]
    seed = [p["seed"][key] for p in peers]
    return figure(
        fid,
        what,
        median(kit),
        unit,
        rounds=kit,
        peer=median(seed),
        peer_rounds=seed,
        peer_text="official plugin, same harness, fresh process",
        **kw,
    )


def figures(
    args: argparse.Namespace,
    first: Round,
    sequential: Any,
    idle_base: list[float],
    idle_after: list[float],
    peers: list[dict[str, dict[str, Any]]],
) -> list[dict[str, object]]:
    seq_base, seq_after, seq, hung, _ = sequential
    n = args.concurrent
    done = seq[-1][0] if seq else 0
    growth = (seq[-1][1] - seq[0][1]) / max(seq[-1][0] - seq[0][0], 1) * 1024 if seq else 0.0
    seq_left = len(seq_after.tasks - seq_base.tasks) + max(0, seq_after.routes - seq_base.routes)
    left = [first.left, seq_left] + [p["avatarkit"]["left"] for p in peers]
    active = first.outcome.active_known + first.outcome.active_unknown + seq_after.active
    out = []
    if peers:
        m = args.concurrent
        rounds = f"{plural(len(peers), 'fresh process', 'fresh processes')} per contender"
        out += [
            _peer_figure(
                "many.rss",
                f"{m} concurrent sessions in one process: memory per session",
                "rss_per_session",
                "KiB",
                peers,
                goal=goal("ratio", "<=", 1.15),
                note=(
                    "RSS with all up minus RSS after one warm-up session, per session, the "
                    f"emulated avatar's worker included; {rounds}"
                ),
                readme=True,
            ),
            _peer_figure(
                "many.silent_cpu",
                f"{m} concurrent sessions, avatars joined, agents silent: whole-process CPU",
                "silent_cpu",
                "ms/s",
                peers,
                digits=1,
                goal=goal("ratio", "<=", 1.1),
                note=f"CPU time per second of wall time over {args.window:g} s; {rounds}",
                readme=True,
            ),
            _peer_figure(
                "many.speak_cpu",
                f"{m} concurrent sessions, every agent speaking: whole-process CPU per second "
                "of speech",
                "speak_cpu",
                "ms/s",
                peers,
                digits=1,
                goal=goal("ratio", "<=", 1.2),
                note=(
                    f"the process's CPU time from say() until every {args.utterance:g} s "
                    "utterance played out, over the seconds of speech said; the emulated "
                    f"avatars' side included, so not the agent-side figure; {rounds}"
                ),
                readme=True,
            ),
        ]
    out += [
        figure(
            "many.left",
            f"{n} concurrent, then {done} sequential sessions: tasks, RPC routes and "
            "livekit handlers left after closing",
            sum(left),
            "objects",
            rounds=left,
            spread="exact",
            goal=goal("value", "==", 0),
            note=(
                f"{active} remote sessions still active; sequential RSS {growth:+.1f} KiB per "
                f"session after the first {seq[0][0] if seq else 0}; {hung} of {done} "
                "utterances hung"
            ),
            readme=True,
        ),
        figure(
            "many.idle_cpu",
            f"idle CPU after {done} sequential sessions, minus before them",
            median(idle_after) - median(idle_base),
            "ms/s",
            digits=1,
            rounds=[a - b for a, b in zip(idle_after, idle_base, strict=True)],
            spread="absolute",
            tolerance=IDLE_FLAT_MS,
            goal=goal("value", "<=", IDLE_FLAT_MS, f"flat: \u2264 +{IDLE_FLAT_MS:g} ms/s"),
            note=f"{median(idle_base):.1f} ms of CPU per s before, {median(idle_after):.1f} after",
            readme=True,
        ),
    ]
    return out


# -------------------------------------------------------------------------- against the seed
#
# Memory and CPU per session are measured in fresh processes, one per contender and round,
# so that neither inherits the other's heap: RSS never shrinks back, and a process that has
# already held N sessions reuses their memory for the next N.


def peer_rounds(args: argparse.Namespace) -> list[dict[str, dict[str, Any]]]:
    """``--peer-rounds`` pairs of fresh processes (avatarkit, seed), in alternating order."""
    if args.peer_rounds <= 0 or seed_runway is None:
        return []
    out = []
    for k in range(args.peer_rounds):
        pair: dict[str, dict[str, Any]] = {}
        for name in ("avatarkit", "seed") if k % 2 == 0 else ("seed", "avatarkit"):
            cmd = [
                sys.executable,
                __file__,
                "--child",
                name,
                "--concurrent",
                str(args.concurrent),
                "--fps",
                str(args.fps),
                "--utterance",
                str(args.utterance),
                "--provisioning",
                str(args.provisioning),
                "--window",
                str(args.window),
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"{name} child failed:\n{proc.stderr[-3000:]}")
            pair[name] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"  round {k + 1}: {name} done", file=sys.stderr)
        out.append(pair)
    return out


def report_peers(args: argparse.Namespace, peers: list[dict[str, dict[str, Any]]]) -> None:
    if not peers:
        why = "not installed: pip install -e '.[bench]'" if seed_runway is None else "skipped"
        print(f"\nAgainst the official plugin: {why}")
        return
    print(
        f"\nAgainst the official plugin: {args.concurrent} concurrent sessions in a fresh "
        "process per contender and round (avatar first, then the AgentSession)"
    )
    rows = []
    for k, pair in enumerate(peers):
        for name in ("avatarkit", "seed"):
            r = pair[name]
            rows.append(
                [
                    f"{k + 1}",
                    name,
                    f"{r['started']}/{args.concurrent}",
                    f"{r['rss_per_session']:.0f}",
                    f"{r['silent_cpu']:.1f}",
                    f"{r['speak_cpu']:.1f}",
                    f"{r['playout']:.2f}" if r["playout"] is not None else "-",
                    str(r["left"]),
                    str(r["active"]),
                ]
            )
    print(
        table(
            [
                "round",
                "contender",
                "started",
                "RSS KiB/session",
                "silent CPU ms/s",
                "CPU ms per s of speech",
                "playout s p50",
                "left",
                "active after",
            ],
            rows,
        )
    )
    for key, label in (
        ("rss_per_session", "memory"),
        ("silent_cpu", "CPU silent"),
        ("speak_cpu", "CPU speaking"),
    ):
        ratios = [p["avatarkit"][key] / p["seed"][key] for p in peers]
        print(f"  avatarkit / seed, {label}: " + ", ".join(f"{r:.2f}" for r in ratios))


async def child(args: argparse.Namespace) -> dict[str, Any]:
    """One contender's ``--concurrent`` sessions in this (fresh) process; prints JSON."""
    lk = MemoryLiveKit()
    unregister = register_connector(lk.url, lambda _url, t: lk.connect(t))
    emu = RunwayEmulator(provisioning_delay=args.provisioning, video=FaceVideos(fps=args.fps))
    await emu.start()
    kit = args.child == "avatarkit"
    n = args.concurrent
    up, spoke = _Count(n), _Count(n)
    speak_now, close_now = asyncio.Event(), asyncio.Event()
    playouts: list[float | None] = []

    async def life(i: int, count: bool = True) -> None:
        room = await lk.join(f"many-{args.child}-{i}", "agent", kind="agent")
        # A unique avatar identity per session, for both: livekit's DataStreamAudioOutput,
        # which the official plugin uses, keys its playback-finished handlers by the
        # avatar's identity for the whole process, so sessions sharing one would cross.
        identity = f"runway-avatar-{i + 1}"
        async with contextlib.AsyncExitStack() as stack:
            if not kit:
                await stack.enter_async_context(job_context(room))
            session: AgentSession[Any] = AgentSession()
            avatar: Any = None
            try:
                try:
                    lk_args = {
                        "livekit_url": lk.url,
                        "livekit_api_key": lk.api_key,
                        "livekit_api_secret": lk.api_secret,
                    }
                    if kit:
                        avatar = avatarkit.get(
                            "runway",
                            api_key=emu.api_key,
                            api_url=emu.url,
                            preset_id="influencer",
                            avatar_participant_identity=identity,
                            **lk_args,
                        )
                        await avatar.start(session, room=room)
                    else:
                        assert seed_runway is not None
                        avatar = seed_runway.AvatarSession(
                            preset_id="influencer",
                            api_key=emu.api_key,
                            api_url=emu.url,
                            avatar_participant_identity=identity,
                        )
                        await avatar.start(session, room, **lk_args)
                    await session.start(agent=Agent(instructions="You are a benchmark agent."))
                    await asyncio.wait_for(
                        utils.wait_for_track_publication(
                            room=room,
                            identity=identity,
                            kind=rtc.TrackKind.KIND_VIDEO,
                        ),
                        JOIN_TIMEOUT,
                    )
                finally:
                    if count:
                        up.done()
                if count:
                    await speak_now.wait()
                t0 = time.monotonic()
                pcm = noise(args.utterance if count else 0.2, seed=i + 1)
                handle = session.say("x", audio=audio_stream(frames_of(pcm)), add_to_chat_ctx=False)
                try:
                    await asyncio.wait_for(handle.wait_for_playout(), args.utterance + 30)
                    playouts.append(time.monotonic() - t0)
                except asyncio.TimeoutError:
                    handle.interrupt(force=True)
                    playouts.append(None)
            finally:
                if count:
                    spoke.done()
                    await close_now.wait()
                await _close_any(session, avatar)
                await room.disconnect()
                await lk.delete_room(room.name)

    try:
        await life(-1, count=False)  # warm-up (seed 0): imports, first-use caches, the connection
        playouts.clear()
        await lk.settle()
        await asyncio.sleep(0.3)
        gc.collect()
        base_rss = rss_mb()
        base_tasks = set(asyncio.all_tasks())
        tasks = [asyncio.create_task(life(i)) for i in range(n)]
        await up.wait()
        started = sum(not t.done() for t in tasks)
        await asyncio.sleep(1.0)  # settle: every avatar is publishing video
        gc.collect()
        rss_all = rss_mb()
        silent = await idle_cpu(args.window, 1)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        speak_now.set()
        await spoke.wait()
        speak_cpu = (time.process_time() - cpu0) * 1000
        speak_wall = time.perf_counter() - wall0
        close_now.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        errors = [repr(r) for r in results if isinstance(r, BaseException)]
        await lk.settle()
        await asyncio.sleep(0.3)
        gc.collect()
        left = len(set(asyncio.all_tasks()) - base_tasks)
        active = len(emu.server.active_sessions())
    finally:
        await emu.close()
        await lk.aclose()
        unregister()
    done = [p for p in playouts if p is not None]
    return {
        "started": started,
        "rss_per_session": (rss_all - base_rss) / max(started, 1) * 1024,
        "silent_cpu": silent[0],
        # CPU ms per second of speech per session: all of the process's CPU from say() to
        # the last utterance played out, over the speech the agents said
        "speak_cpu": speak_cpu / (max(started, 1) * args.utterance),
        "speak_wall": speak_wall,
        "playout": median(done) if done else None,
        "hung": len(playouts) - len(done),
        "left": left,
        "active": active,
        "errors": errors[:3],
    }


class _Count:
    """Set once ``n`` tasks have called ``done()``."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.event = asyncio.Event()
        if n <= 0:
            self.event.set()

    def done(self) -> None:
        self.n -= 1
        if self.n <= 0:
            self.event.set()

    async def wait(self) -> None:
        await self.event.wait()


async def _close_any(session: AgentSession[Any], avatar: Any) -> None:
    """Close an avatar and its AgentSession, bounded; the seed's audio output may still be
    waiting for an avatar."""
    sink = session.output.audio
    while sink is not None:
        task = sink._start_atask if isinstance(sink, DataStreamAudioOutput) else None
        if task is not None and not task.done():
            task.cancel()
        sink = sink.next_in_chain
    closers = [session.aclose()] + ([avatar.aclose()] if avatar is not None else [])
    for closing in closers:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(closing, CLEANUP_TIMEOUT)


def report(
    args: argparse.Namespace,
    concurrent: Any,
    closed_in: float,
    outcome: Outcome,
    sequential: Any,
) -> None:
    base, after, ones, errors, lag, (t0, t_joined, t_idle, t_spoke), rss_all = concurrent
    load = os.getloadavg()
    n = len(ones)
    print(
        f"many: {args.concurrent} concurrent then {args.sequential} sequential Runway avatars "
        f"(emulated, 64x64 at {args.fps:g} fps, provisioning {args.provisioning} s) "
        f"({machine()}, load average {load[0]:.1f})"
    )
    joined = [o.joined_in for o in ones]
    playout = [o.playout for o in ones if o.playout is not None]
    print(f"\nConcurrent: {n} sessions up ({len(errors)} failed to start)")
    print(
        table(
            ["measure", "value"],
            [
                ["RSS before (after one warm-up session)", f"{base.rss:.1f} MiB"],
                ["RSS with all up", f"{rss_all:.1f} MiB"],
                ["RSS per session", f"{(rss_all - base.rss) / max(n, 1) * 1024:.0f} KiB"],
                [
                    "start() to joined, median / max",
                    f"{median(joined):.2f} / {max(joined):.2f} s" if joined else "-",
                ],
                [
                    f"playout of the {args.utterance:g} s utterance, median / max",
                    f"{median(playout):.2f} / {max(playout):.2f} s" if playout else "-",
                ],
                ["utterances that never finished", str(n - len(playout))],
                ["closing all", f"{closed_in:.2f} s"],
                ["RSS after closing all", f"{after.rss:.1f} MiB"],
            ],
        )
    )
    print("\nEvent-loop lag (a 10 ms sleep's overshoot), concurrent phase:")
    print(
        table(
            ["phase", "samples", "p50 ms", "p99 ms", "max ms"],
            [
                _lag_row("starting (all start at once)", lag.lags(t0, t_joined)),
                _lag_row("all up, idle", lag.lags(t_joined, t_idle)),
                _lag_row("all speaking", lag.lags(t_idle, t_spoke)),
                _lag_row("whole phase", lag.lags(t0, t_spoke)),
            ],
        )
    )
    print("\nLeft after closing every session, against the baseline:")
    print(
        table(
            ["what", "baseline", "after", "left"],
            [
                [
                    "asyncio tasks",
                    str(len(base.tasks)),
                    str(len(after.tasks)),
                    str(len(after.tasks - base.tasks)),
                ],
                [
                    "avatarkit RPC routes (streaming._routes)",
                    str(base.routes),
                    str(after.routes),
                    str(after.routes - base.routes),
                ],
                [
                    "DataStreamAudioOutput._playback_finished_handlers",
                    str(base.finished_handlers),
                    str(after.finished_handlers),
                    str(after.finished_handlers - base.finished_handlers),
                ],
                [
                    "DataStreamAudioReceiver._clear_buffer_handlers",
                    str(base.clear_handlers),
                    str(after.clear_handlers),
                    str(after.clear_handlers - base.clear_handlers),
                ],
                ["emulator active sessions", str(base.active), str(after.active), "-"],
                ["emulator workers", str(base.workers), str(after.workers), "-"],
            ],
        )
    )
    for line in _left(base, after):
        print(f"  new task: {line}")
    for e in errors[:3]:
        print(f"  start error: {e!r}")
    o = outcome
    print(
        f"  remote sessions: {o.created} created by the emulator, {o.known} with an id "
        f"avatarkit learned; still active after closing: {o.active_known} known, "
        f"{o.active_unknown} never known to avatarkit (orphaned: the create call was "
        f"answered after avatarkit had given up on it)"
    )
    print(
        f"  avatarkit end outcomes: {dict(o.outcomes)}; avatars dropped: "
        f"{dict(o.lost) or 'none'}; sessions that fell back to room audio: {o.degraded}"
    )

    seq_base, seq_after, seq, hung, secs = sequential
    if seq:
        print(f"\nSequential: {seq[-1][0]} sessions in {secs:.0f} s ({hung} utterances hung)")
        rows = [["0", f"{seq_base.rss:.1f}", str(len(seq_base.tasks))]]
        rows += [[str(k), f"{rss:.1f}", str(tasks)] for k, rss, tasks in seq]
        print(table(["sessions done", "RSS MiB", "asyncio tasks"], rows))
        first_k, first_rss, _ = seq[0]
        last_k, last_rss, _ = seq[-1]
        per = (last_rss - first_rss) / max(last_k - first_k, 1) * 1024
        print(
            f"  RSS growth after the first {first_k}: {last_rss - first_rss:+.1f} MiB over "
            f"{last_k - first_k} sessions ({per:+.1f} KiB per session); tasks left: "
            f"{len(seq_after.tasks - seq_base.tasks)}; routes left: "
            f"{seq_after.routes - seq_base.routes}; active sessions: {seq_after.active}"
        )
        for line in _left(seq_base, seq_after):
            print(f"  new task: {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrent", type=int, default=100, help="default 100")
    parser.add_argument("--sequential", type=int, default=200, help="default 200")
    parser.add_argument("--fps", type=float, default=10, help="avatar video fps (default 10)")
    parser.add_argument(
        "--utterance", type=float, default=1.0, help="seconds each concurrent agent says"
    )
    parser.add_argument(
        "--seq-utterance", type=float, default=0.1, help="seconds each sequential agent says"
    )
    parser.add_argument(
        "--provisioning", type=float, default=0.05, help="emulated provisioning delay (s)"
    )
    parser.add_argument(
        "--fast-api",
        action="store_true",
        help="conn_options with a 2 s timeout, as the tests use (default: livekit's, 10 s)",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=90.0,
        help="stop starting sequential sessions after this many seconds",
    )
    parser.add_argument(
        "--peer-rounds",
        type=int,
        default=2,
        help="rounds of fresh processes, one per contender, against the official plugin",
    )
    parser.add_argument(
        "--window", type=float, default=2.0, help="seconds of silent CPU measured (peer rounds)"
    )
    parser.add_argument("--child", choices=["avatarkit", "seed"], help=argparse.SUPPRESS)
    parser.add_argument(
        "--idle", type=float, default=2.0, help="seconds of idle CPU measured, before and after"
    )
    parser.add_argument("--idle-windows", type=int, default=4, help="windows of --idle")
    parser.add_argument("--json", metavar="PATH", help="also write the figures here as JSON")
    args = parser.parse_args()
    quiet_emulator_noise()
    warnings.simplefilter("ignore", DeprecationWarning)
    if args.child:
        print(json.dumps(asyncio.run(child(args))))
        return
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
