"""Benchmark many avatar sessions in one process: memory, event-loop lag, and what is left.

Run: ``python bench/bench_many.py`` (``--concurrent``, ``--sequential``, ``--fps``,
``--utterance``).

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
   RSS and task count every 25 sessions, for leaks.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, median, percentile, table
from bench_renewal import (
    FAST,
    FaceVideos,
    LagMonitor,
    audio_stream,
    frames_of,
    noise,
    quiet_emulator_noise,
)
from livekit.agents import Agent, AgentSession
from livekit.agents.voice.avatar import DataStreamAudioOutput, DataStreamAudioReceiver

import avatarkit
from avatarkit import streaming
from avatarkit.rooms import register_connector
from avatarkit_providers.runway.emulator.emulator import RunwayEmulator
from memory_livekit import MemoryLiveKit, MemoryRoom

JOIN_TIMEOUT = 120.0
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


async def bench(args: argparse.Namespace) -> None:
    b = Bench(args)
    await b.emu.start()
    try:
        # 1. warm-up and baseline
        warm = await b.open()
        await b.speak(warm, 0.2, seed=0)
        await b.close(warm)
        base = await Snapshot.take(b.emu, b.lk)
        before = set(b.emu.server.sessions)

        # 2. concurrent
        lag = LagMonitor()
        lag.start()
        t0 = time.monotonic()
        opened = await asyncio.gather(
            *(b.open() for _ in range(args.concurrent)), return_exceptions=True
        )
        ones = [o for o in opened if isinstance(o, One)]
        errors = [o for o in opened if not isinstance(o, One)]
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
        concurrent = (base, after, ones, errors, lag, (t0, t_joined, t_idle, t_spoke), rss_all)

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
    finally:
        await b.emu.close()
        await b.lk.aclose()
        b.unregister()
    report(args, concurrent, closed_in, outcome, (seq_base, seq_after, seq, seq_hung, seq_secs))


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
    args = parser.parse_args()
    quiet_emulator_noise()
    warnings.simplefilter("ignore", DeprecationWarning)
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
