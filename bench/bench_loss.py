"""Benchmark how fast the agent is audible again when its avatar leaves mid-utterance.

Run: ``python bench/bench_loss.py`` (``--runs``, ``--seed-runs``, ``--utterance``,
``--on-loss``, ``--rounds``, ``--json PATH``).

Everything runs in one process: an in-memory LiveKit server, the Runway emulator on
127.0.0.1 (64x64 video at 25 fps), a real ``AgentSession`` and a "user" participant that
subscribes to every track. In each run the agent says one utterance of unique random int16
noise (``--utterance``, default 3 s) and the emulated avatar leaves the room partway through
it (``emu.worker_faults.next(leave_after=...)``; the delay cycles through 2 % to 90 % of
the utterance, so the loss lands at different points of it, the first 200 ms included).
Contenders, interleaved:

* ``avatarkit``: ``avatarkit.get("runway", on_loss="renew")`` (the default): the rest of
  the utterance goes to the agent's own ``roomio_audio`` track, and a new avatar is brought up;
* ``seed``: the official ``livekit.plugins.runway.AvatarSession`` (``pip install -e
  '.[bench]'``), in a ``JobContext`` as it requires. It has no recovery: nothing more of the
  agent is heard, and ``wait_for_playout()`` does not return; the bench waits
  ``--hang-after`` seconds past the utterance's end before calling it hung.

Measured at the user: from the avatar participant's ``participant_disconnected`` to the
arrival of the first sample of the agent's speech on the agent's ``roomio_audio`` track (goal
<= 250 ms), and the samples of the utterance never received on any track or received twice
(the in-memory path is lossless at 16 kHz: every received run is located exactly).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import attrs
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import chunks, figure, goal, machine, median, percentile, plural, table, write_json
from bench_renewal import (
    AGENT,
    FAST,
    RATE,
    ROOM_TRACK,
    USER,
    FaceVideos,
    Listener,
    account,
    audio_stream,
    frames_of,
    locate_runs,
    noise,
    quiet_emulator_noise,
)
from livekit import rtc
from livekit.agents import Agent, AgentSession, utils
from livekit.agents.voice.avatar import DataStreamAudioOutput

import avatarkit
from avatarkit.events import AvatarkitMetrics
from avatarkit.rooms import register_connector
from avatarkit_providers.runway.emulator.emulator import RunwayEmulator
from memory_livekit import MemoryLiveKit, MemoryRoom
from memory_livekit.job import job_context

seed_runway: Any
try:
    seed_runway = importlib.import_module("livekit.plugins.runway")
except ImportError:  # the [bench] extra is not installed
    seed_runway = None

GOAL_MS = 250.0
LEAVE_AT = (0.02, 0.05, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9)  # fractions of the utterance, in turn
SEED_IDENTITY = "runway-avatar-agent"
CLEANUP_TIMEOUT = 10.0


@attrs.define
class Run:
    contender: str
    left_into: float | None  # s into the utterance when the avatar left (at the user)
    to_audible_ms: float | None  # None: never audible again on roomio_audio
    lost: int
    dup: int
    hung: bool  # wait_for_playout() did not return
    playout_s: float | None  # say() to wait_for_playout() returning
    metric_ms: float | None  # avatarkit's loss_to_audible
    heard: dict[str, int]
    sent: int
    error: str | None = None


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.server = MemoryLiveKit()
        self.unregister = register_connector(
            self.server.url, lambda _url, token: self.server.connect(token)
        )
        # one face renderer, built ahead, for every emulated avatar (bench_renewal.FaceVideos)
        self.videos = FaceVideos()
        self.emu = RunwayEmulator(provisioning_delay=args.provisioning, video=self.videos)
        self.n = 0

    async def __aenter__(self) -> Bench:
        await self.emu.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.emu.close()
        await self.server.aclose()
        self.unregister()

    def leave_after(self, i: int) -> float:
        """Spread the loss over the utterance, from just after its start to near its end.

        The delay counts from the worker joining, a few tens of ms before the agent starts
        speaking, so the "left at" column (measured) is a little less than this.
        """
        return float(self.args.utterance) * LEAVE_AT[i % len(LEAVE_AT)]

    async def _rooms(self) -> tuple[MemoryRoom, MemoryRoom, Listener]:
        self.n += 1
        name = f"loss-{self.n}"
        agent_room = await self.server.join(name, AGENT, kind="agent")
        user = await self.server.join(name, USER, kind="standard")
        return agent_room, user, Listener(user)

    async def _speak(
        self, session: AgentSession[Any], pcm: np.ndarray[Any, Any], limit: float
    ) -> tuple[float, float | None, bool]:
        said_at = time.monotonic()
        handle = session.say("x", audio=audio_stream(frames_of(pcm)), add_to_chat_ctx=False)
        try:
            await asyncio.wait_for(handle.wait_for_playout(), limit)
            return said_at, time.monotonic() - said_at, False
        except asyncio.TimeoutError:
            handle.interrupt(force=True)
            return said_at, None, True

    def _measure(
        self,
        contender: str,
        listener: Listener,
        avatar_identity: str,
        pcm: np.ndarray[Any, Any],
        said_at: float,
        playout: float | None,
        hung: bool,
        metric: float | None,
    ) -> Run:
        acc = account(pcm, listener.tracks)
        left = listener.disconnected.get(avatar_identity)
        first: float | None = None
        for tr in listener.tracks:
            if tr.kind == "audio" and tr.identity == AGENT and tr.name == ROOM_TRACK:
                runs = locate_runs(pcm, tr.pcm())
                if runs:
                    rx = min(r.rx for r in runs)
                    t = float(tr.sample_times()[rx])
                    first = t if first is None else min(first, t)
        heard: dict[str, int] = {}
        for key, n in acc.per_track.items():
            owner = key.split("/")[0]
            heard[owner] = heard.get(owner, 0) + n
        return Run(
            contender,
            None if left is None else left - said_at,
            None if first is None or left is None else (first - left) * 1000,
            acc.lost(),
            acc.dup(),
            hung,
            playout,
            None if metric is None else metric * 1000,
            {k: v for k, v in heard.items() if v},
            acc.sent,
        )

    async def avatarkit(self, i: int) -> Run:
        args = self.args
        agent_room, user, listener = await self._rooms()
        self.emu.worker_faults.next(leave_after=self.leave_after(i))
        session: AgentSession[Any] = AgentSession()
        avatar = avatarkit.get(
            "runway",
            api_key=self.emu.api_key,
            api_url=self.emu.url,
            preset_id="influencer",
            livekit_url=self.server.url,
            livekit_api_key=self.server.api_key,
            livekit_api_secret=self.server.api_secret,
            conn_options=FAST,
            on_loss=args.on_loss,
        )
        metrics: list[AvatarkitMetrics] = []
        avatar.on("metrics_collected", metrics.append)
        pcm = noise(args.utterance, seed=i)
        try:
            await avatar.start(session, room=agent_room)
            await session.start(agent=Agent(instructions="You are a benchmark agent."))
            await avatar.wait_for_join(timeout=10)
            identity = avatar.avatar_identity
            said_at, playout, hung = await self._speak(
                session, pcm, args.utterance + args.hang_after
            )
            await asyncio.sleep(0.5)  # the last audio drains from the tracks
        finally:
            await asyncio.wait_for(avatar.aclose(), CLEANUP_TIMEOUT)
            await asyncio.wait_for(session.aclose(), CLEANUP_TIMEOUT)
            await listener.aclose()
            await user.disconnect()
            await agent_room.disconnect()
        lost = [m for m in metrics if m.event == "lost"]
        metric = lost[0].loss_to_audible if lost else None
        return self._measure("avatarkit", listener, identity, pcm, said_at, playout, hung, metric)

    async def seed(self, i: int) -> Run:
        assert seed_runway is not None
        args = self.args
        agent_room, user, listener = await self._rooms()
        self.emu.worker_faults.next(leave_after=self.leave_after(i))
        pcm = noise(args.utterance, seed=i)
        async with job_context(agent_room):
            session: AgentSession[Any] = AgentSession()
            avatar = seed_runway.AvatarSession(
                preset_id="influencer", api_key=self.emu.api_key, api_url=self.emu.url
            )
            try:
                await avatar.start(
                    session,
                    agent_room,
                    livekit_url=self.server.url,
                    livekit_api_key=self.server.api_key,
                    livekit_api_secret=self.server.api_secret,
                )
                await session.start(agent=Agent(instructions="You are a benchmark agent."))
                await asyncio.wait_for(
                    utils.wait_for_track_publication(
                        room=agent_room, identity=SEED_IDENTITY, kind=rtc.TrackKind.KIND_VIDEO
                    ),
                    10,
                )
                said_at, playout, hung = await self._speak(
                    session, pcm, args.utterance + args.hang_after
                )
                await asyncio.sleep(0.5)
            finally:
                await _close_seed(session, avatar)
                await listener.aclose()
                await user.disconnect()
                await agent_room.disconnect()
        return self._measure("seed", listener, SEED_IDENTITY, pcm, said_at, playout, hung, None)


async def _close_seed(session: AgentSession[Any], avatar: Any) -> None:
    """Close the seed's session and avatar, bounded: its audio output may still wait for an
    avatar that is gone."""
    sink = session.output.audio
    while sink is not None:
        task = sink._start_atask if isinstance(sink, DataStreamAudioOutput) else None
        if task is not None and not task.done():
            task.cancel()
        sink = sink.next_in_chain
    for closing in (session.aclose(), avatar.aclose()):
        with contextlib.suppress(Exception):
            await asyncio.wait_for(closing, CLEANUP_TIMEOUT)


def _ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q):.0f}" if values else "-"


def report(runs: list[Run], args: argparse.Namespace, active_after: int) -> None:
    load = os.getloadavg()
    print(
        f"loss: one {args.utterance:.0f} s utterance, the avatar leaves 2-90 % into it; "
        f"on_loss={args.on_loss!r}; emulated provisioning {args.provisioning} s "
        f"({machine()}, load average {load[0]:.1f})"
    )
    rows = []
    for name in ("avatarkit", "seed"):
        rs = [r for r in runs if r.contender == name]
        if not rs:
            if name == "seed" and seed_runway is None:
                rows.append([name, "0", "not installed: pip install -e '.[bench]'"] + [""] * 9)
            continue
        audible = [r.to_audible_ms for r in rs if r.to_audible_ms is not None]
        never = sum(r.to_audible_ms is None for r in rs)
        metric = [r.metric_ms for r in rs if r.metric_ms is not None]
        playout = [r.playout_s for r in rs if r.playout_s is not None]
        rows.append(
            [
                name,
                str(len(rs)),
                _ms(audible, 50),
                _ms(audible, 95),
                _ms(audible, 100),
                str(never) if never == 0 else f"{never} (never)",
                str(sum(r.lost for r in rs)),
                str(max(r.lost for r in rs)),
                str(sum(r.dup for r in rs)),
                f"{sum(r.hung for r in rs)}",
                f"{median(playout):.2f}" if playout else "-",
                _ms(metric, 50),
            ]
        )
    print(
        table(
            [
                "contender",
                "runs",
                "to audible p50 ms",
                "p95",
                "max",
                "never audible",
                "lost total",
                "lost max/run",
                "dup",
                "hung",
                "playout s p50",
                "avatarkit metric p50 ms",
            ],
            rows,
        )
    )
    print(
        "  to audible: the avatar's participant_disconnected at the user, to the first sample "
        "of the\n  agent's speech on its roomio_audio track there. lost / dup: samples of the "
        "utterance never\n  heard / heard twice, over every track. hung: wait_for_playout() "
        f"had not returned {args.hang_after:.0f} s after\n  the utterance's end. playout: say() "
        "to wait_for_playout() returning (the utterance is "
        f"{args.utterance:.1f} s).\n  avatarkit metric: its own loss_to_audible (loss noticed "
        "to the rest of the audio handed to the room)."
    )
    print(f"  remote sessions still active after every run: {active_after}")
    print("\nPer run:")
    print(
        table(
            ["#", "contender", "left at s", "to audible ms", "lost", "dup", "playout s", "heard"],
            [
                [
                    str(i + 1),
                    r.contender,
                    "-" if r.left_into is None else f"{r.left_into:.2f}",
                    "never" if r.to_audible_ms is None else f"{r.to_audible_ms:.0f}",
                    str(r.lost),
                    str(r.dup),
                    "hung" if r.playout_s is None else f"{r.playout_s:.2f}",
                    ", ".join(f"{k} {v / RATE:.2f} s" for k, v in r.heard.items()),
                ]
                for i, r in enumerate(runs)
            ],
        )
    )
    ak = [r for r in runs if r.contender == "avatarkit"]
    audible = [r.to_audible_ms for r in ak if r.to_audible_ms is not None]
    worst = max(audible) if audible and len(audible) == len(ak) else float("inf")
    print(
        f"\ngoal, avatarkit: audible again within {GOAL_MS:.0f} ms (p95): "
        f"{'met' if audible and percentile(audible, 95) <= GOAL_MS else 'NOT met'}"
        f" (p95 {_ms(audible, 95)} ms, max {worst:.0f} ms); lost 0 and duplicated 0: "
        f"{'met' if sum(r.lost + r.dup for r in ak) == 0 else 'NOT met'}"
    )
    seeds = sum(r.contender == "seed" for r in runs)
    write_json(
        args.json,
        "loss",
        figures(runs, args),
        runs=len(ak),
        round=(
            f"{plural(-(-len(ak) // args.rounds), 'avatarkit run')}; the official plugin's "
            f"{plural(seeds, 'run')} are interleaved"
        ),
    )


def figures(runs: list[Run], args: argparse.Namespace) -> list[dict[str, object]]:
    """The published figures; a round is ``--runs`` / ``--rounds`` avatarkit runs in a row."""
    ak = [r for r in runs if r.contender == "avatarkit"]
    seed = [r for r in runs if r.contender == "seed"]
    rounds = chunks(list(range(len(ak))), args.rounds)

    def audible(rs: list[Run]) -> list[float]:
        # a run that never became audible counts as infinitely late
        return [math.inf if r.to_audible_ms is None else r.to_audible_ms for r in rs]

    every = audible(ak)
    per_round = [audible([ak[int(i)] for i in idx]) for idx in rounds]
    if seed:
        never = sum(r.to_audible_ms is None for r in seed)
        peer = (
            f"official plugin: never audible again in {never} of {len(seed)} runs, "
            f"`wait_for_playout()` hung in {sum(r.hung for r in seed)}"
            if never
            else f"official plugin: p95 {_ms(audible(seed), 95)} ms"
        )
        peer_lost = (
            f"official plugin: {sum(r.lost for r in seed):,} lost, "
            f"{sum(r.dup for r in seed)} repeated in {plural(len(seed), 'run')}"
        )
    else:
        peer = peer_lost = "official plugin not installed"
    bad = [[ak[int(i)].lost + ak[int(i)].dup for i in idx] for idx in rounds]
    return [
        figure(
            "loss.to_audible",
            "avatar leaves mid-utterance: until the agent is audible again, p95",
            percentile(every, 95),
            "ms",
            rounds=[percentile(r, 95) for r in per_round],
            peer_text=peer,
            goal=goal("value", "<=", GOAL_MS),
            note=(
                f"p50 {percentile(every, 50):.0f} ms over {plural(len(ak), 'run')}, the loss "
                f"landing 2-90 % into a {args.utterance:g} s utterance"
            ),
            readme=True,
        ),
        figure(
            "loss.samples",
            "avatar leaves mid-utterance: samples lost or repeated",
            sum(sum(b) for b in bad),
            "samples",
            rounds=[sum(b) for b in bad],
            spread="exact",
            peer_text=peer_lost,
            goal=goal("value", "==", 0),
            note=(
                f"{sum(r.lost for r in ak)} lost, {sum(r.dup for r in ak)} repeated; "
                f"`wait_for_playout()` hung in {sum(r.hung for r in ak)} of {len(ak)} runs"
            ),
            readme=True,
        ),
    ]


async def bench(args: argparse.Namespace) -> None:
    runs: list[Run] = []
    seed_every = max(1, args.runs // max(args.seed_runs, 1))
    seeds = 0
    deadline = time.monotonic() + args.max_seconds
    async with Bench(args) as b:
        for i in range(args.runs):
            if time.monotonic() > deadline:
                break
            runs.append(await b.avatarkit(i))
            if (
                seed_runway is not None
                and seeds < args.seed_runs
                and i % seed_every == seed_every // 2
            ):
                runs.append(await b.seed(i))
                seeds += 1
            print(f"  run {i + 1}/{args.runs} done", file=sys.stderr)
        await asyncio.sleep(0.2)
        active_after = len(b.emu.server.active_sessions())
    report(runs, args, active_after)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="avatarkit runs (default 20)")
    parser.add_argument(
        "--seed-runs", type=int, default=4, help="seed plugin runs, interleaved (default 4)"
    )
    parser.add_argument("--utterance", type=float, default=3.0, help="seconds (default 3)")
    parser.add_argument(
        "--hang-after",
        type=float,
        default=3.0,
        help="seconds past the utterance's end before wait_for_playout() counts as hung",
    )
    parser.add_argument("--on-loss", default="renew", choices=["renew", "audio_only"])
    parser.add_argument(
        "--provisioning", type=float, default=0.1, help="emulated provisioning delay (s)"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=150.0, help="start no run after this many seconds"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="cut the avatarkit runs into this many rounds"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures here as JSON")
    args = parser.parse_args()
    quiet_emulator_noise()
    warnings.simplefilter("ignore", DeprecationWarning)
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
