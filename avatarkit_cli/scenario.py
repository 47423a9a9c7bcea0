"""A scripted agent session through any provider, timed: what ``demo`` and ``compare`` run.

The agent (a real ``AgentSession``) says the given utterances; the avatar is started, joins,
speaks them and is ended; a recorder in the agent's room times what arrives. The room is a
real LiveKit server's when ``LIVEKIT_URL`` / ``LIVEKIT_API_KEY`` / ``LIVEKIT_API_SECRET`` are
set, else an in-memory one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from livekit import api, rtc

from .clips import Utterance
from .recording import AvatarRecorder, Recording

if TYPE_CHECKING:
    from avatarkit.session import AvatarkitSession

AGENT_IDENTITY = "avatarkit-agent"
EventSink = Callable[[float, str, str], None]


@attrs.define
class LiveKitEnv:
    """Where a scenario runs: a LiveKit server's URL and keys, and how the agent joins."""

    url: str
    api_key: str = attrs.field(repr=False)
    api_secret: str = attrs.field(repr=False)
    in_memory: bool
    _join: Callable[[str, str], Any] = attrs.field(repr=False)

    async def join_agent(self, room_name: str) -> rtc.Room:
        room: rtc.Room = await self._join(room_name, AGENT_IDENTITY)
        return room

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls) -> AsyncIterator[LiveKitEnv]:
        """The real server named by ``LIVEKIT_*`` if set, else an in-memory one."""
        url = os.environ.get("LIVEKIT_URL")
        key, secret = os.environ.get("LIVEKIT_API_KEY"), os.environ.get("LIVEKIT_API_SECRET")
        if url and key and secret:

            async def join_real(room_name: str, identity: str) -> rtc.Room:
                token = (
                    api.AccessToken(key, secret)
                    .with_identity(identity)
                    .with_kind("agent")
                    .with_grants(api.VideoGrants(room_join=True, room=room_name))
                    .to_jwt()
                )
                room = rtc.Room()
                await room.connect(url, token)
                return room

            yield cls(url, key, secret, False, join_real)
            return

        from avatarkit.testing import in_memory_livekit

        async with in_memory_livekit() as server:

            async def join_memory(room_name: str, identity: str) -> rtc.Room:
                return await server.join(room_name, identity, kind="agent")

            yield cls(server.url, server.api_key, server.api_secret, True, join_memory)


@attrs.define
class ScenarioResult:
    """What one scripted session did, in seconds from the start of ``avatar.start()``."""

    provider: str
    events: list[tuple[float, str, str]] = attrs.field(factory=list)
    join_latency: float | None = None
    first_frame_latency: float | None = None
    played: list[float] = attrs.field(factory=list)
    """Seconds of speech played per utterance."""
    end_outcome: str | None = None
    remote_status: str | None = None
    error: str | None = None
    recording: Recording | None = None


async def run_scenario(
    provider: str,
    options: dict[str, Any],
    *,
    env: LiveKitEnv,
    utterances: Sequence[Utterance],
    room_name: str,
    pause: float = 1.0,
    record_to: Path | None = None,
    join_timeout: float | None = None,
    on_event: EventSink | None = None,
) -> ScenarioResult:
    """Run one scripted session through ``provider``. Bad options raise
    ``ConfigurationError``; an avatar that fails is reported in the result instead (what
    happened and what to do), so a comparison can go on. ``join_timeout`` bounds the wait for
    the avatar to join (default: a little past its own ``join_timeout`` option)."""
    from livekit.agents import Agent, AgentSession

    import avatarkit

    result = ScenarioResult(provider)
    t0 = time.monotonic()
    stage = "start"
    if join_timeout is None:  # the avatar's own deadline, normally the one that fires
        join_timeout = float(options.get("join_timeout", 20.0)) + 5.0

    def mark(label: str, detail: str = "") -> float:
        at = time.monotonic() - t0
        result.events.append((at, label, detail))
        if on_event is not None:
            on_event(at, label, detail)
        return at

    avatar = avatarkit.get(  # bad options raise here, before anything joins
        provider,
        livekit_url=env.url,
        livekit_api_key=env.api_key,
        livekit_api_secret=env.api_secret,
        **options,
    )
    room = await env.join_agent(room_name)
    session: AgentSession[Any] = AgentSession()
    recorder = AvatarRecorder(room, avatar.avatar_identity, path=record_to)
    recorder.start()
    t0 = time.monotonic()
    try:
        await avatar.start(session, room=room)
        remote = avatar.remote_session
        mark("created", f"{provider} session {remote.id if remote else '?'}")
        stage = "join"

        async def joined() -> None:
            try:
                await avatar.wait_for_join(timeout=join_timeout)
            except asyncio.TimeoutError:  # its message is empty: say which wait ran out
                raise _JoinTimeout(f"no video within {join_timeout:g} s") from None
            result.join_latency = mark("joined", f"{avatar.avatar_identity} published video")

        # timed on its own: the agent's own start-up is not the avatar's join latency
        join = asyncio.create_task(joined())
        try:
            await session.start(agent=Agent(instructions="Read the script."))
            await join
        finally:
            join.cancel()
        for i, utterance in enumerate(utterances):
            stage = f"utterance {i + 1}"
            if i:
                await asyncio.sleep(pause)
            handle = session.say(utterance.text, audio=_frames(utterance), add_to_chat_ctx=False)
            await handle.wait_for_playout()
            result.played.append(utterance.duration)
            mark(f"utterance {i + 1} played", f"{utterance.duration:.1f}s: {utterance.text}")
        await asyncio.sleep(0.5)  # let the last words reach the room
    except Exception as exc:
        result.error = explain_failure(provider, stage, exc, in_memory=env.in_memory)
        mark("failed", result.error)
    finally:
        await session.aclose()
        await avatar.aclose()
        result.end_outcome = avatar.end_outcome
        mark("ended", f"avatarkit ended it: {avatar.end_outcome}")
        result.recording = await recorder.aclose()
        first = result.recording.first_video
        if first is not None:
            # the recorder's clock started just before t0
            result.first_frame_latency = first - (t0 - recorder._t0)
            result.events.append((result.first_frame_latency, "first frame", "video arrived"))
        result.remote_status = await _final_status(avatar)
        if result.remote_status:
            mark("remote session", result.remote_status)
        await room.disconnect()
    result.events.sort(key=lambda e: e[0])
    return result


class _JoinTimeout(Exception):
    """The scenario's own wait for the avatar to join ran out."""


def describe_exception(exc: BaseException) -> str:
    """``Type: message``; an exception with no message is described by its type and, if
    any, what it was raised from or while handling."""
    text = str(exc).strip()
    if text:
        return f"{type(exc).__name__}: {text}"
    cause = exc.__cause__ or exc.__context__
    return type(exc).__name__ + (f" (after {describe_exception(cause)})" if cause else "")


def explain_failure(provider: str, stage: str, exc: BaseException, *, in_memory: bool) -> str:
    """What went wrong at ``stage`` (``start``, ``join`` or ``utterance N``) and what to do."""
    what = describe_exception(exc) if not isinstance(exc, _JoinTimeout) else str(exc)
    if stage == "start":
        return (
            f"{provider} avatar could not be created: {what}. Check its options and "
            f"credentials with: avatarkit doctor {provider}"
        )
    if stage == "join":
        if in_memory:
            todo = (
                "The room is in memory here, so only an avatar running in this process (a "
                "provider's double) can join it; for a cloud provider set LIVEKIT_URL, "
                "LIVEKIT_API_KEY and LIVEKIT_API_SECRET to a LiveKit server it can reach"
            )
        else:
            todo = (
                f"Check that {provider} can reach the LiveKit server, or raise its "
                "join_timeout option"
            )
        return f"{provider} avatar did not join: {what}. {todo}"
    return (
        f"{provider} session failed during {stage}: {what}. Run again with --verbose for "
        "livekit's logs"
    )


async def _final_status(avatar: AvatarkitSession, wait: float = 3.0) -> str | None:
    # A graceful end is asynchronous at the provider: give it a moment to be recorded.
    remote = avatar.remote_session
    if remote is None:
        return None
    deadline = time.monotonic() + wait
    try:
        while True:
            status = await avatar.backend.status(remote)
            if status is None:
                return None
            if not status.active or time.monotonic() > deadline:
                return status.status + (f" ({status.detail})" if status.detail else "")
            await asyncio.sleep(0.1)
    except Exception as exc:
        return f"unknown ({type(exc).__name__})"
    finally:
        await avatar.backend.http.aclose()  # the avatar closed its own; this one is ours


async def _frames(utterance: Utterance) -> AsyncIterator[rtc.AudioFrame]:
    step = utterance.sample_rate // 50  # 20 ms frames
    for i in range(0, len(utterance.pcm), step):
        chunk = utterance.pcm[i : i + step]
        yield rtc.AudioFrame(chunk.tobytes(), utterance.sample_rate, 1, len(chunk))
