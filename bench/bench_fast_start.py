"""Benchmark how long ``start()`` holds the caller while the avatar provisions slowly.

Run: ``python bench/bench_fast_start.py`` (``--iterations``, ``--provisioning``,
``--rounds``, ``--json PATH``).

The Runway emulator on 127.0.0.1 answers the create call at once but takes
``--provisioning`` seconds (default 3) before the session is READY and its avatar joins the
in-memory room. Every start runs inside a real ``JobContext`` (``memory_livekit.job``, as
in ``bench_start.py``: the seed plugin needs one) with a new room and a new ``AgentSession``.
Contenders, one of each per iteration in a rotating order:

* ``avatarkit wait=0``: ``avatar.start(session, room, wait=0)``: returns at once, the create
  call and the join go on in the background;
* ``avatarkit``: ``avatar.start(session, room)``: returns once the remote session is created;
* ``seed``: ``livekit.plugins.runway.AvatarSession.start(...)``: returns once created.

Measured: how long ``await start(...)`` holds the caller (goal for ``wait=0``: <= 10 ms), and
the time from calling it to the avatar's video track being published in the agent's room
("joined", the same observer for every contender). For avatarkit, also when
``wait_for_join()`` returned.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import chunks, figure, goal, machine, median, percentile, plural, table, write_json
from bench_renewal import AGENT, FAST, FaceVideos, quiet_emulator_noise
from livekit import rtc
from livekit.agents import AgentSession, utils
from livekit.agents.voice.avatar import DataStreamAudioOutput

import avatarkit
from avatarkit.rooms import register_connector
from avatarkit_providers.runway.emulator.emulator import RunwayEmulator
from memory_livekit import MemoryLiveKit, MemoryRoom
from memory_livekit.job import job_context

seed_runway: Any
try:
    seed_runway = importlib.import_module("livekit.plugins.runway")
except ImportError:  # the [bench] extra is not installed
    seed_runway = None

GOAL_MS = 10.0
JOIN_TIMEOUT = 30.0
CLEANUP_TIMEOUT = 10.0


@attrs.define
class Sample:
    hold: float  # seconds start() held the caller
    joined: float | None  # start() called -> avatar video published in the room
    wait_for_join: float | None  # start() called -> wait_for_join() returned (avatarkit)
    created_on_return: bool  # the remote session id was known when start() returned


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.lk = MemoryLiveKit()
        self.unregister = register_connector(self.lk.url, lambda _url, t: self.lk.connect(t))
        self.videos = FaceVideos()  # one shared face renderer, built ahead
        self.emu = RunwayEmulator(provisioning_delay=args.provisioning, video=self.videos)
        self.rooms = 0
        self.lk_args = {
            "livekit_url": self.lk.url,
            "livekit_api_key": self.lk.api_key,
            "livekit_api_secret": self.lk.api_secret,
        }

    def contenders(self) -> dict[str, Callable[[], Any]]:
        out: dict[str, Callable[[], Any]] = {
            "avatarkit wait=0": self.make_avatarkit,
            "avatarkit": self.make_avatarkit,
        }
        if seed_runway is not None:
            out["seed"] = self.make_seed
        return out

    def make_avatarkit(self) -> avatarkit.AvatarkitSession:
        return avatarkit.get(
            "runway",
            preset_id="influencer",
            api_key=self.emu.api_key,
            api_url=self.emu.url,
            conn_options=FAST,
        )

    def make_seed(self) -> Any:
        assert seed_runway is not None
        return seed_runway.AvatarSession(
            preset_id="influencer", api_key=self.emu.api_key, api_url=self.emu.url
        )

    async def one(self, name: str) -> Sample:
        self.rooms += 1
        room = await self.lk.join(f"fast-{self.rooms}", AGENT, kind="agent")
        make = self.contenders()[name]
        kit = name.startswith("avatarkit")
        async with job_context(room):
            session: AgentSession[Any] = AgentSession()
            avatar = make()
            identity = avatar.avatar_identity
            published = asyncio.create_task(_video_published_at(room, identity))
            await asyncio.sleep(0)  # the watcher is in place before the clock starts
            kwargs: dict[str, Any] = dict(self.lk_args)
            if name == "avatarkit wait=0":
                kwargs["wait"] = 0
            gc_was = gc.isenabled()
            gc.disable()
            try:
                t0 = time.perf_counter()
                await avatar.start(session, room, **kwargs)
                hold = time.perf_counter() - t0
            finally:
                if gc_was:
                    gc.enable()
            created = (
                avatar.remote_session is not None
                if kit
                else getattr(avatar, "_realtime_session_id", None) is not None
            )
            waited: float | None = None
            joined: float | None = None
            try:
                if kit:
                    await avatar.wait_for_join(timeout=JOIN_TIMEOUT)
                    waited = time.perf_counter() - t0
                joined = await asyncio.wait_for(asyncio.shield(published), JOIN_TIMEOUT) - t0
            except (asyncio.TimeoutError, avatarkit.AvatarClosedError):
                pass
            finally:
                published.cancel()
                await _close(room, avatar, session)
                await self.lk.delete_room(room.name)
        return Sample(hold, joined, waited, created)


async def _video_published_at(room: MemoryRoom, identity: str) -> float:
    """``perf_counter()`` when ``identity``'s video track is published in ``room``."""
    await utils.wait_for_track_publication(
        room=room, identity=identity, kind=rtc.TrackKind.KIND_VIDEO
    )
    return time.perf_counter()


async def _close(room: MemoryRoom, avatar: Any, session: AgentSession[Any]) -> None:
    sink = session.output.audio
    while sink is not None:
        task = sink._start_atask if isinstance(sink, DataStreamAudioOutput) else None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        sink = sink.next_in_chain
    await room.disconnect()
    for closing in (avatar.aclose(), session.aclose()):
        await asyncio.wait_for(closing, CLEANUP_TIMEOUT)


async def bench(args: argparse.Namespace) -> None:
    b = Bench(args)
    await b.emu.start()
    names = list(b.contenders())
    samples: dict[str, list[Sample]] = {n: [] for n in names}
    try:
        for name in names:  # warm-up, untimed: imports, the keep-alive connection
            await b.one(name)
        deadline = time.monotonic() + args.max_seconds
        for i in range(args.iterations):
            if time.monotonic() > deadline:
                break
            order = names[i % len(names) :] + names[: i % len(names)]
            for name in order:
                samples[name].append(await b.one(name))
            print(f"  iteration {i + 1}/{args.iterations} done", file=sys.stderr)
        await asyncio.sleep(0.2)
        active = len(b.emu.server.active_sessions())
    finally:
        await b.emu.close()
        await b.lk.aclose()
        b.unregister()
    report(samples, args, active)


def report(samples: dict[str, list[Sample]], args: argparse.Namespace, active: int) -> None:
    load = os.getloadavg()
    print(
        f"fast start: emulated provisioning {args.provisioning} s, create answered at once "
        f"({machine()}, load average {load[0]:.1f})"
    )
    rows = []
    for name, ss in samples.items():
        if not ss:
            continue
        hold = [s.hold * 1000 for s in ss]
        joined = [s.joined for s in ss if s.joined is not None]
        waited = [s.wait_for_join for s in ss if s.wait_for_join is not None]
        rows.append(
            [
                name,
                str(len(ss)),
                f"{median(hold):.2f}",
                f"{percentile(hold, 90):.2f}",
                f"{max(hold):.2f}",
                f"{median(joined):.3f}" if joined else "-",
                f"{max(joined):.3f}" if joined else "-",
                f"{median(waited):.3f}" if waited else "-",
                f"{len(ss) - len(joined)}",
                f"{sum(s.created_on_return for s in ss)}/{len(ss)}",
            ]
        )
    if seed_runway is None:
        rows.append(["seed", "0", "not installed: pip install -e '.[bench]'"] + [""] * 7)
    print(
        table(
            [
                "contender",
                "n",
                "start() holds median ms",
                "p90 ms",
                "max ms",
                "to joined median s",
                "max s",
                "wait_for_join median s",
                "never joined",
                "created when start() returned",
            ],
            rows,
        )
    )
    print(
        "  to joined: start() called -> the avatar's video track published in the agent's "
        "room.\n  created when start() returned: the remote session id was known then "
        f"(wait=0 returns before the create call is answered).\n  remote sessions still "
        f"active after the run: {active}"
    )
    fast = [s.hold * 1000 for s in samples.get("avatarkit wait=0", [])]
    if fast:
        print(
            f"goal: start(wait=0) holds the caller <= {GOAL_MS:.0f} ms: "
            f"{'met' if max(fast) <= GOAL_MS else 'NOT met'} (max {max(fast):.2f} ms)"
        )
    write_json(
        args.json,
        "fast_start",
        figures(samples, args, active),
        iterations=len(fast),
        round=(
            f"{plural(-(-len(fast) // args.rounds), 'interleaved iteration')}, each starting every "
            f"contender once; provisioning {args.provisioning:g} s"
        ),
    )


def figures(
    samples: dict[str, list[Sample]], args: argparse.Namespace, active: int
) -> list[dict[str, object]]:
    """The published figures, each with its value per round of ``--rounds`` iterations."""
    n = args.rounds
    fast = chunks([s.hold * 1000 for s in samples["avatarkit wait=0"]], n)
    kit = chunks([s.hold * 1000 for s in samples["avatarkit"]], n)
    kit_joined = chunks([_joined_ms(s) for s in samples["avatarkit"]], n)
    seed = samples.get("seed", [])
    seed_hold = chunks([s.hold * 1000 for s in seed], n) if seed else None
    seed_joined = chunks([_joined_ms(s) for s in seed], n) if seed else None
    all_fast = [v for r in fast for v in r]
    all_kit = [v for r in kit for v in r]
    prov = f"provisioning takes {args.provisioning:g} s"
    out = [
        # The goal is on every start, so it is a count (exact); the typical hold is a median
        # (a maximum over a few starts is too noisy to publish as a number).
        figure(
            "fast_start.wait0_over",
            f"`start(wait=0)` while {prov}: starts that held the caller over {GOAL_MS:g} ms",
            sum(v > GOAL_MS for v in all_fast),
            "starts",
            rounds=[sum(v > GOAL_MS for v in r) for r in fast],
            spread="exact",
            goal=goal("value", "==", 0),
            note=f"of {len(all_fast)}; the longest held {max(all_fast):.2f} ms",
        ),
        figure(
            "fast_start.wait0",
            f"`start(wait=0)` while {prov}: hold of the caller, median",
            median(all_fast),
            "ms",
            digits=2,
            rounds=[median(r) for r in fast],
            # no ratio: the official plugin has no wait=0, its start() always waits for the
            # create call
            peer_text=(
                f"official plugin's `start()` (no wait=0): median "
                f"{median([v for r in seed_hold for v in r]):.2f} ms"
                if seed_hold
                else "official plugin not installed"
            ),
            goal=goal("value", "<=", GOAL_MS),
            note=f"the longest of {len(all_fast)} held {max(all_fast):.2f} ms",
            readme=True,
        ),
        figure(
            "fast_start.hold",
            f"`start()` (default wait) while {prov}: hold of the caller, median",
            median(all_kit),
            "ms",
            digits=2,
            rounds=[median(r) for r in kit],
            peer=median([v for r in seed_hold for v in r]) if seed_hold else None,
            peer_rounds=[median(r) for r in seed_hold] if seed_hold else None,
            peer_text="official plugin's `start()`",
            note="avatar started first; returns once the create call is answered",
        ),
    ]
    if seed_joined is not None:
        diff = [median(a) - median(b) for a, b in zip(kit_joined, seed_joined, strict=True)]
        every_kit = [v for r in kit_joined for v in r]
        every_seed = [v for r in seed_joined for v in r]
        out.append(
            figure(
                "fast_start.joined",
                f"`start()` to the avatar's video track published, while {prov}: "
                "avatarkit minus official plugin, medians",
                median(every_kit) - median(every_seed),
                "ms",
                digits=1,
                rounds=diff,
                spread="absolute",
                tolerance=1.0,
                goal=goal("value", "<=", 1.0),
                note=(
                    f"avatarkit {median(every_kit) / 1000:.3f} s, official plugin "
                    f"{median(every_seed) / 1000:.3f} s; the track's publication, not its "
                    "first frame"
                ),
            )
        )
    out.append(
        figure(
            "fast_start.active_after",
            "fast start: remote sessions still active after the run",
            active,
            "sessions",
            rounds=[active],
            spread="exact",
            goal=goal("value", "==", 0),
        )
    )
    return out


def _joined_ms(s: Sample) -> float:
    return float("inf") if s.joined is None else s.joined * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--iterations", type=int, default=5, help="timed starts per contender (default 5)"
    )
    parser.add_argument(
        "--provisioning", type=float, default=3.0, help="emulated provisioning delay (default 3)"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=100.0, help="start no iteration after this"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="cut the iterations into this many rounds"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures here as JSON")
    args = parser.parse_args()
    quiet_emulator_noise()
    warnings.simplefilter("ignore", DeprecationWarning)
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
