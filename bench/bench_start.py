"""Benchmark avatarkit's overhead per ``start()`` against the seed plugin's, in one run.

Run: ``python bench/bench_start.py`` (``--iterations``, ``--max-seconds``, ``--rounds``,
``--json PATH``; ``--profile N`` to cProfile N more starts of each contender afterwards and
print where their time differs).

Both contenders start a Runway avatar inside a real ``livekit.agents.JobContext`` (so both
take the in-job path and share the job's HTTP session), with a real ``AgentSession`` and an
in-memory room (``MemoryLiveKit().join``), against one ``RunwayAPIServer`` on 127.0.0.1 that
never finishes provisioning: ``start()`` returns once the create call has been answered, so
what is timed is the start itself (token, create request, audio routing), not the avatar
joining. Contenders, interleaved in a rotating order every iteration:

* ``avatarkit``: ``avatarkit.get("runway", ...).start(session, room, livekit_url=...)``;
* ``seed``: ``livekit.plugins.runway.AvatarSession(...).start(session, room, livekit_url=...)``;
* ``aiohttp floor``: a bare ``POST /v1/realtime_sessions`` of the seed's body through the
  same HTTP session: the HTTP round trip every start contains;
* ``avatarkit (session first)`` and ``seed (session first)``: the same two starts, but the
  ``AgentSession`` was started first (``session.start(agent, room=room)``, untimed), so it
  already has its room audio output when the avatar starts. The contenders above start the
  avatar first, as the README's quick start does, on a session with no audio output yet.

Building the avatar object, closing it (its remote session is cancelled with a DELETE), the
room and the AgentSession all happen outside the timed region. Each created session is
checked against the server's records.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import logging
import pstats
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import chunks, figure, goal, machine, median, percentile, plural, table, write_json
from livekit.agents import Agent, AgentSession
from livekit.agents.utils import http_context
from livekit.agents.voice.avatar import DataStreamAudioOutput
from livekit.plugins import runway as seed_runway

import avatarkit
from avatarkit_providers.runway.emulator.api import RunwayAPIServer
from memory_livekit import MemoryLiveKit, MemoryRoom
from memory_livekit.job import job_context

GOAL_RATIO = 1.05
API_KEY = "key_bench_0123456789"
AGENT = "agent-1"
PRESET = "influencer"
AK_LATE, SEED_LATE = "avatarkit (session first)", "seed (session first)"
NAMES = ("avatarkit", "seed", "aiohttp floor", AK_LATE, SEED_LATE)
# avatarkit's contender and the seed's, per start order
ORDERS = {"avatar first": ("avatarkit", "seed"), "session first": (AK_LATE, SEED_LATE)}
CLEANUP_TIMEOUT = 10.0


async def _close(room: MemoryRoom, avatar: Any, session: AgentSession[Any]) -> None:
    # DataStreamAudioOutput waits for the avatar to join in a task nothing ever stops (its
    # error would be logged when the room goes): stop it, as no avatar is coming here.
    sink = session.output.audio
    while sink is not None:
        task = (
            getattr(sink, "_start_atask", None) if isinstance(sink, DataStreamAudioOutput) else None
        )
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        sink = sink.next_in_chain
    await room.disconnect()
    await avatar.aclose()
    await session.aclose()


class Bench:
    def __init__(self, lk: MemoryLiveKit, server: RunwayAPIServer) -> None:
        self.lk = lk
        self.server = server
        self.token = lk.create_token("unused", AGENT, kind="agent")  # identity for the job
        self.lk_args = {
            "livekit_url": lk.url,
            "livekit_api_key": lk.api_key,
            "livekit_api_secret": lk.api_secret,
        }
        self.body: dict[str, Any] | None = None  # the floor's body, captured from the seed
        self.session_ids: dict[str, list[str]] = {n: [] for n in NAMES}
        # when profiling: one profiler per contender, enabled around its start() only
        self.profiles: dict[str, cProfile.Profile] = {}
        self.rooms = 0

    async def _room(self) -> MemoryRoom:
        self.rooms += 1
        return await self.lk.join(f"bench-{self.rooms}", AGENT, kind="agent")

    async def _start(self, name: str, make: Callable[[], Any], session_first: bool) -> float:
        room = await self._room()
        async with job_context(room):
            session: AgentSession[Any] = AgentSession()
            if session_first:
                await session.start(agent=Agent(instructions="A benchmark agent."), room=room)
            avatar = make()
            gc_was = gc.isenabled()
            gc.disable()  # a collection would land in whichever start happens to trigger it
            profile = self.profiles.get(name)
            try:
                if profile is not None:
                    profile.enable()
                t0 = time.perf_counter()
                await avatar.start(session, room, **self.lk_args)
                elapsed = time.perf_counter() - t0
                if profile is not None:
                    profile.disable()
            finally:
                if gc_was:
                    gc.enable()
            sid = (
                avatar.remote_session.id
                if isinstance(avatar, avatarkit.AvatarkitSession) and avatar.remote_session
                else getattr(avatar, "_realtime_session_id", None)
            )
            if not sid:
                raise RuntimeError(f"{name}: start() returned without a session id")
            self.session_ids[name].append(sid)
            if isinstance(avatar, avatarkit.AvatarkitSession):
                # the in-job path: avatarkit must have used the job's HTTP session
                assert avatar.backend.http.session() is http_context.http_session()
            # Close as an app would at the end of the job: the room goes, then the avatar
            # (which cancels the remote session through the API), then the AgentSession.
            await asyncio.wait_for(_close(room, avatar, session), CLEANUP_TIMEOUT)
            await self.lk.delete_room(room.name)
        return elapsed

    def make_avatarkit(self) -> avatarkit.AvatarkitSession:
        return avatarkit.get("runway", preset_id=PRESET, api_key=API_KEY, api_url=self.server.url)

    def make_seed(self) -> seed_runway.AvatarSession:
        return seed_runway.AvatarSession(preset_id=PRESET, api_key=API_KEY, api_url=self.server.url)

    async def floor(self) -> float:
        assert self.body is not None
        http = http_context.http_session()
        url = f"{self.server.url}/v1/realtime_sessions"
        headers = {"Authorization": f"Bearer {API_KEY}", "X-Runway-Version": "2024-11-06"}
        gc_was = gc.isenabled()
        gc.disable()
        try:
            t0 = time.perf_counter()
            async with http.post(url, headers=headers, json=self.body) as resp:
                resp.raise_for_status()
                payload = await resp.json()
            elapsed = time.perf_counter() - t0
        finally:
            if gc_was:
                gc.enable()
        self.session_ids["aiohttp floor"].append(payload["id"])
        async with http.delete(f"{url}/{payload['id']}", headers=headers) as resp:
            resp.raise_for_status()
        return elapsed

    async def run(self, name: str) -> float:
        if name in ("avatarkit", AK_LATE):
            return await self._start(name, self.make_avatarkit, name == AK_LATE)
        if name in ("seed", SEED_LATE):
            return await self._start(name, self.make_seed, name == SEED_LATE)
        return await self.floor()

    def capture_body(self) -> None:
        """The seed's create body as the server recorded it, token included, for the floor."""
        for record in reversed(self.server.requests_for("create", method="POST")):
            body = record.body
            if isinstance(body, dict) and "livekit" in body:
                body = dict(body)
                body["livekit"] = dict(body["livekit"], token=self.token)
                self.body = body
                return
        raise RuntimeError("no create request from the seed plugin was recorded")


async def bench(args: argparse.Namespace) -> None:
    lk = MemoryLiveKit()
    server = RunwayAPIServer(
        API_KEY,
        provisioning_delay=3600.0,  # never READY: no avatar has to join
        allow_private_livekit_urls=True,  # the in-memory server's wss://...invalid URL
    )
    async with server, http_context.open():
        b = Bench(lk, server)
        # warm-up: imports, the keep-alive connection, first-call caches
        for _ in range(args.warmup):
            for name in ("seed", "avatarkit", SEED_LATE, AK_LATE):
                await b.run(name)
        b.capture_body()
        for _ in range(args.warmup):
            await b.floor()
        for ids in b.session_ids.values():
            ids.clear()
        created_before = len(server.requests_for("create", method="POST"))
        gc.collect()

        times: dict[str, list[float]] = {n: [] for n in NAMES}
        deadline = time.monotonic() + args.max_seconds
        for i in range(args.iterations):
            if time.monotonic() > deadline:
                break
            order = NAMES[i % len(NAMES) :] + NAMES[: i % len(NAMES)]
            for name in order:
                times[name].append(await b.run(name))
            if i % 20 == 19:
                gc.collect()  # outside the timed regions

        # every start really created one session, and every one was cancelled
        created = [
            r
            for r in server.requests_for("create", method="POST")[created_before:]
            if r.status == 200
        ]
        expected = sum(len(v) for v in times.values())
        if len(created) != expected:
            raise RuntimeError(f"server saw {len(created)} created sessions, expected {expected}")
        recorded = {r.session_id for r in created}
        for name, ids in b.session_ids.items():
            missing = set(ids) - recorded
            if missing or len(set(ids)) != len(ids):
                raise RuntimeError(f"{name}: sessions not created as expected: {missing}")
        still_active = len(server.active_sessions())

        # profiling slows everything down, so it is a separate phase after the timed one
        profiled = 0
        if args.profile:
            b.profiles = {"avatarkit": cProfile.Profile(), "seed": cProfile.Profile()}
            deadline = time.monotonic() + args.max_seconds
            for i in range(args.profile):
                if time.monotonic() > deadline:
                    break
                for name in ("avatarkit", "seed") if i % 2 else ("seed", "avatarkit"):
                    await b.run(name)
                profiled += 1
    await lk.aclose()

    report(times, len(created), still_active, args)
    if profiled:
        print_profile(b.profiles, profiled)


def report(
    times: dict[str, list[float]], created: int, still_active: int, args: argparse.Namespace
) -> None:
    ms = {n: [t * 1000 for t in v] for n, v in times.items()}
    floor = median(ms["aiohttp floor"])
    rows = []
    for name in NAMES:
        v = ms[name]
        over = median(v) - floor
        rows.append(
            [
                name,
                str(len(v)),
                f"{median(v):.2f}",
                f"{percentile(v, 90):.2f}",
                "-" if name == "aiohttp floor" else f"{over:+.2f}",
            ]
        )
    print(f"start() against RunwayAPIServer on 127.0.0.1, in a JobContext ({machine()})")
    print(
        table(
            ["contender", "iterations", "median ms", "p90 ms", "over floor ms"],
            rows,
        )
    )
    figures = []
    for order, (ak_name, seed_name) in ORDERS.items():
        ak, seed = ms[ak_name], ms[seed_name]
        ratio = median(ak) / median(seed)
        # the ratio of paired iterations (same iteration, neighbouring in time) is less noisy
        paired = [a / s for a, s in zip(ak, seed, strict=False)]
        ak_rounds, seed_rounds = chunks(ak, args.rounds), chunks(seed, args.rounds)
        tenth = max(1, len(ak) // 10)
        verdict = "met" if ratio <= GOAL_RATIO else "NOT met"
        print(
            f"{order}: avatarkit / seed: {ratio:.3f} (ratio of medians, "
            f"{median(ak) - median(seed):+.3f} ms per start), "
            f"{median(paired):.3f} (median of per-iteration ratios); "
            f"goal <= {GOAL_RATIO}: {verdict}"
        )
        print(
            f"  per round of {len(ak_rounds[0])} iterations: "
            + ", ".join(
                f"{median(a) / median(s):.3f}" for a, s in zip(ak_rounds, seed_rounds, strict=True)
            )
            + f"; avatarkit first / last tenth: {median(ak[:tenth]):.2f} / "
            f"{median(ak[-tenth:]):.2f} ms"
        )
        figures.append(
            figure(
                "start." + order.replace(" ", "_"),
                f"`start()` against an instant loopback API, in a job, {order}",
                median(ak),
                "ms",
                digits=2,
                rounds=[median(r) for r in ak_rounds],
                peer=median(seed),
                peer_rounds=[median(r) for r in seed_rounds],
                peer_text="official plugin's `start()`",
                goal=goal("ratio", "<=", GOAL_RATIO),
                note=(
                    f"{len(ak)} interleaved iterations; median of per-iteration ratios "
                    f"{median(paired):.3f}; avatarkit first / last tenth "
                    f"{median(ak[:tenth]):.2f} / {median(ak[-tenth:]):.2f} ms"
                ),
                readme=True,
            )
        )
    print(
        f"server: {created} sessions created, one per timed call; "
        f"{still_active} still active after the run"
    )
    figures.append(
        figure(
            "start.active_after",
            "`start()` bench: remote sessions still active after closing every avatar",
            still_active,
            "sessions",
            rounds=[still_active],
            spread="exact",
            goal=goal("value", "==", 0),
            note=f"{created} sessions created, one per timed call",
        )
    )
    write_json(
        args.json,
        "start",
        figures,
        iterations=len(ms["avatarkit"]),
        round=(
            f"{plural(-(-len(ms['avatarkit']) // args.rounds), 'iteration')}, each starting every "
            "contender once, in a rotating order"
        ),
    )


def _short(key: tuple[str, int, str]) -> str:
    path, line, func = key
    for marker in ("site-packages/", "/lib/python3", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/lib/python3":
                path = "stdlib:" + path.split("/", 1)[1]
            break
    return f"{path}:{func}" if line else func


def print_profile(profiles: dict[str, cProfile.Profile], starts: int, top: int = 25) -> None:
    """Per start: event-loop iterations, profiled time, and the functions whose own time
    differs most between avatarkit and the seed (cProfile inflates every figure)."""
    own: dict[str, dict[str, tuple[int, float]]] = {}
    totals: dict[str, float] = {}
    loops: dict[str, int] = {}
    for name, profile in profiles.items():
        stats = pstats.Stats(profile, stream=io.StringIO())
        entries: dict[str, tuple[int, float]] = {}
        for key, (_, ncalls, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
            label = _short(key)
            calls, tt = entries.get(label, (0, 0.0))
            entries[label] = (calls + ncalls, tt + tottime)
        own[name] = entries
        totals[name] = stats.total_tt  # type: ignore[attr-defined]
        loops[name] = entries.get("stdlib:asyncio/base_events.py:_run_once", (0, 0.0))[0]

    print(f"\ncProfile of {starts} start() calls per contender (profiled times are inflated):")
    print(
        "  per start: "
        + "; ".join(
            f"{n}: {totals[n] / starts * 1e6:.0f} us profiled, "
            f"{loops[n] / starts:.1f} event-loop iterations"
            for n in profiles
        )
    )
    diffs = []
    for label in set(own["avatarkit"]) | set(own["seed"]):
        ak_calls, ak_tt = own["avatarkit"].get(label, (0, 0.0))
        seed_calls, seed_tt = own["seed"].get(label, (0, 0.0))
        diffs.append((ak_tt - seed_tt, label, ak_calls, seed_calls, ak_tt, seed_tt))
    diffs.sort(key=lambda d: -abs(d[0]))
    rows = [
        [
            label,
            f"{d / starts * 1e6:+.1f}",
            f"{ak_tt / starts * 1e6:.1f}",
            f"{seed_tt / starts * 1e6:.1f}",
            f"{ak_calls / starts:.1f}",
            f"{seed_calls / starts:.1f}",
        ]
        for d, label, ak_calls, seed_calls, ak_tt, seed_tt in diffs[:top]
    ]
    print(
        table(
            [
                "function (own time)",
                "diff us",
                "avatarkit us",
                "seed us",
                "avatarkit calls",
                "seed calls",
            ],
            rows,
        )
    )


class _NoJoinExpected(logging.Filter):
    """No avatar ever joins here (the server never finishes provisioning), so avatarkit's
    background wait for the join ends when the room closes, and it logs "avatar failed to
    start: room disconnected while waiting for participant" once per avatarkit start. That
    is expected, so the bench keeps it out of its output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "room disconnected while waiting for participant" not in record.getMessage()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--iterations", type=int, default=1000, help="timed iterations (default 1000)"
    )
    parser.add_argument("--warmup", type=int, default=10, help="untimed iterations first")
    parser.add_argument(
        "--max-seconds", type=float, default=60.0, help="stop starting iterations after this"
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="after the timed run, cProfile N more starts of each and compare them",
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="cut the iterations into this many rounds (5)"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures here as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("avatarkit").addFilter(_NoJoinExpected())
    warnings.simplefilter("ignore", DeprecationWarning)
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
