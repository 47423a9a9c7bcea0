"""The conformance kit: what every avatarkit provider must do, checked against its double.

A provider package, built-in or third-party, runs it from one test module::

    from avatarkit.testing.conformance import ProviderConformance

    class TestMyAvatar(ProviderConformance):
        provider = "myavatar"

pytest collects the inherited tests (pytest-asyncio in ``auto`` mode runs them). Each runs the
provider on its double (:meth:`~avatarkit.doubles.ProviderDouble.offline`) in an in-memory
LiveKit room, with a real ``AgentSession``, and checks: a light plugin module; options
validated at ``get()`` with close matches suggested; create, join, the agent's audio heard
through the avatar, and one end; a failed or cancelled start ending what it created; no secret
in logs, reprs or errors; the avatar's token; interruptions; renewal; loss detection. Checks of
a remote session are skipped for a provider whose double has none (``Offline.double`` None).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import attrs
import numpy as np
import pytest
from livekit import api, rtc
from livekit.agents import Agent, AgentSession, APIConnectOptions

import avatarkit
from avatarkit.doubles import Observable, SessionRecord
from avatarkit.errors import ConfigurationError
from avatarkit.tokens import DEFAULT_TOKEN_TTL, TOKEN_MARGIN

from . import MemoryLiveKit, in_memory_livekit

ROOM, AGENT = "conformance", "agent-1"
_NO_END = "the service has no end call, and an avatar that never joined has no room to leave"
_FAST = APIConnectOptions(max_retry=1, retry_interval=0.05, timeout=3.0)


async def until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait for ``condition`` (polled), failing with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.02)


def tone(seconds: float, rate: int = 24000) -> list[rtc.AudioFrame]:
    """A loud tone as 10 ms frames."""
    n = rate // 100
    t = np.arange(int(seconds * rate)) / rate
    pcm = (np.sin(2 * np.pi * 220 * t) * 12000).astype(np.int16)
    return [rtc.AudioFrame(pcm[i : i + n].tobytes(), rate, 1, n) for i in range(0, len(pcm), n)]


async def _frames(frames: list[rtc.AudioFrame]) -> AsyncIterator[rtc.AudioFrame]:
    for frame in frames:
        yield frame


class Listener:
    """A user in the room: how much loud audio it heard from each participant."""

    def __init__(self, room: rtc.Room) -> None:
        self.loud: dict[str, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        room.on("track_subscribed", self._on_track)

    def _on_track(self, track: rtc.Track, _: Any, participant: rtc.RemoteParticipant) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            self._tasks.append(asyncio.create_task(self._read(track, participant.identity)))

    async def _read(self, track: rtc.Track, identity: str) -> None:
        stream = rtc.AudioStream.from_track(track=track, sample_rate=24000, num_channels=1)
        async for event in stream:
            pcm = np.frombuffer(bytes(event.frame.data), dtype=np.int16)
            self.loud[identity] = self.loud.get(identity, 0) + int((np.abs(pcm) > 4000).sum())

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@attrs.define
class Rig:
    """One test's world: the server, the agent's room and session, the provider's double."""

    provider: str
    livekit: MemoryLiveKit
    room: rtc.Room
    session: AgentSession[Any]
    options: dict[str, Any]
    double: Observable | None
    avatars: list[Any] = attrs.Factory(list)

    def avatar(self, **extra: Any) -> Any:
        """``avatarkit.get()`` of the provider on its double, joining the in-memory server."""
        options = {
            **self.options,
            "livekit_url": self.livekit.url,
            "livekit_api_key": self.livekit.api_key,
            "livekit_api_secret": self.livekit.api_secret,
            "conn_options": _FAST,
            "join_timeout": 10.0,
            **extra,
        }
        avatar = avatarkit.get(self.provider, **options)
        self.avatars.append(avatar)
        return avatar

    @property
    def end_calls(self) -> int:
        """End calls a session should get: one, unless the service has no end call (the core
        then takes the avatar out of the room)."""
        return 1 if avatarkit.provider_info(self.provider).load().end_api else 0

    def records(self) -> list[SessionRecord]:
        if self.double is None:
            pytest.skip("the provider's double has no remote sessions to check")
        return self.double.session_records()

    async def speak(self, seconds: float) -> Any:
        return self.session.say("...", audio=_frames(tone(seconds)), add_to_chat_ctx=False)


class ProviderConformance:
    """Subclass with :attr:`provider` set; optionally :attr:`options` for ``get()``."""

    provider: ClassVar[str]
    options: ClassVar[dict[str, Any]] = {}
    """Options beyond what the double supplies (its defaults and credentials)."""

    @pytest.fixture
    async def rig(self, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
        double = avatarkit.provider_info(self.provider).load_double()
        assert double is not None, f"provider {self.provider!r} declares no double"
        async with contextlib.AsyncExitStack() as stack:
            livekit = await stack.enter_async_context(in_memory_livekit())
            # as an app's environment has them (a double may need them, e.g. to sign tokens)
            monkeypatch.setenv("LIVEKIT_URL", livekit.url)
            monkeypatch.setenv("LIVEKIT_API_KEY", livekit.api_key)
            monkeypatch.setenv("LIVEKIT_API_SECRET", livekit.api_secret)
            offline = await stack.enter_async_context(double.offline(self.options, size=64))
            room = await livekit.join(ROOM, AGENT, kind="agent")
            session: AgentSession[Any] = AgentSession()
            rig = Rig(self.provider, livekit, room, session, dict(offline.options), offline.double)
            try:
                yield rig
            finally:
                for avatar in rig.avatars:
                    await avatar.aclose()
                await session.aclose()

    async def _start(self, rig: Rig, **extra: Any) -> Any:
        avatar = rig.avatar(**extra)
        await avatar.start(rig.session, room=rig.room)
        await rig.session.start(agent=Agent(instructions="conformance"))
        return avatar

    # -- the plugin and its options -------------------------------------------------------

    def test_plugin_module_is_light(self) -> None:
        spec = avatarkit.provider_info(self.provider).spec
        code = (
            "import sys, avatarkit; avatarkit.providers(); "
            f"heavy = [m for m in ('livekit.agents', {spec.provider.partition(':')[0]!r}) "
            "if m in sys.modules]; print(heavy); sys.exit(bool(heavy))"
        )
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert run.returncode == 0, f"listing providers imported {run.stdout or run.stderr}"

    def test_get_refuses_an_unknown_option_and_suggests_the_close_one(self) -> None:
        options_class = avatarkit.provider_info(self.provider).load().options_class
        names = [f.alias or f.name for f in attrs.fields(options_class) if len(f.name) > 5]
        with pytest.raises(ConfigurationError, match="unknown option 'no_such_option'"):
            avatarkit.get(self.provider, **self.options, no_such_option=1)
        if names:
            typo = names[0][:-1]
            with pytest.raises(ConfigurationError, match=repr(names[0])):
                avatarkit.get(self.provider, **self.options, **{typo: "x"})

    # -- a whole session --------------------------------------------------------------

    async def test_create_join_speak_and_end_once(self, rig: Rig) -> None:
        listener = Listener(await rig.livekit.join(ROOM, "listener"))
        avatar = await self._start(rig)
        await avatar.wait_for_join(timeout=10)
        identity = avatar.avatar_identity
        handle = await rig.speak(0.6)
        await asyncio.wait_for(handle.wait_for_playout(), 10)
        await until(lambda: listener.loud.get(identity, 0) > 2400, "the avatar to speak")
        assert not handle.interrupted
        await avatar.aclose()
        await listener.aclose()
        await until(lambda: identity not in rig.room.remote_participants, "the avatar to leave")
        if rig.double is not None:
            (record,) = rig.records()
            assert not record.active and record.end_calls == rig.end_calls, record

    async def test_the_avatar_token(self, rig: Rig) -> None:
        avatar = await self._start(rig)
        await avatar.wait_for_join(timeout=10)
        participant = rig.room.remote_participants[avatar.avatar_identity]
        assert participant.attributes.get("lk.publish_on_behalf") == AGENT
        assert participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
        (record,) = rig.records()
        assert record.token is not None
        verifier = api.TokenVerifier(rig.livekit.api_key, rig.livekit.api_secret)
        claims = verifier.verify(record.token)
        assert claims.identity == avatar.avatar_identity and claims.kind == "agent"
        assert claims.video is not None and claims.video.room == ROOM and claims.video.room_join
        # publishing on the agent's behalf, and nothing else an app did not put there: every
        # participant can read attributes (a gateway adds LiveKit's own lk.* ones)
        attributes = claims.attributes or {}
        assert attributes.get("lk.publish_on_behalf") == AGENT
        assert all(key.startswith("lk.") for key in attributes), attributes
        part = record.token.split(".")[1]
        payload = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        # bounded by the provider's session lifetime, not livekit's default of 6 hours
        lifetime = avatar.backend.session_lifetime()
        ttl = DEFAULT_TOKEN_TTL if lifetime is None else lifetime + TOKEN_MARGIN
        assert payload["exp"] - time.time() <= ttl + 5

    async def test_interruption_clears_the_avatar_and_ends_playout(self, rig: Rig) -> None:
        listener = Listener(await rig.livekit.join(ROOM, "listener"))
        avatar = await self._start(rig)
        await avatar.wait_for_join(timeout=10)
        handle = await rig.speak(30.0)
        await until(lambda: listener.loud.get(avatar.avatar_identity, 0) > 0, "speech")
        handle.interrupt()
        # without lk.clear_buffer and lk.playback_finished, playout would last 30 s or hang
        await asyncio.wait_for(handle.wait_for_playout(), 5)
        assert handle.interrupted
        await listener.aclose()

    # -- ending on every path -------------------------------------------------------------

    async def test_a_failed_start_ends_what_it_created(self, rig: Rig) -> None:
        if rig.double is None:
            pytest.skip("no remote sessions")
        if rig.end_calls == 0:
            pytest.skip(_NO_END)
        rig.double.next_worker(never_join=True)
        avatar = await self._start(rig, join_timeout=1.0)
        with pytest.raises(avatarkit.AvatarClosedError):
            await avatar.wait_for_join(timeout=10)
        await until(lambda: all(not r.active for r in rig.records()), "the session to end")
        assert [r.end_calls for r in rig.records()] == [rig.end_calls]

    async def test_a_refused_create_leaves_the_agent_audible(self, rig: Rig) -> None:
        if rig.double is None:
            pytest.skip("no remote sessions")
        rig.double.fail_next_create(400)
        listener = Listener(await rig.livekit.join(ROOM, "listener"))
        with pytest.raises(avatarkit.ProviderAPIError):
            await self._start(rig)
        await rig.session.start(agent=Agent(instructions="conformance"))
        handle = await rig.speak(0.5)
        await asyncio.wait_for(handle.wait_for_playout(), 10)
        await until(lambda: listener.loud.get(AGENT, 0) > 2400, "the agent heard in the room")
        assert rig.records() == []
        await listener.aclose()

    async def test_a_cancelled_start_ends_what_it_created(self, rig: Rig) -> None:
        if rig.double is None:
            pytest.skip("no remote sessions")
        if rig.end_calls == 0:
            pytest.skip(_NO_END)
        double = rig.double
        rig.double.next_worker(never_join=True)
        avatar = rig.avatar()
        start = asyncio.create_task(avatar.start(rig.session, room=rig.room, wait=10))
        await until(lambda: len(double.session_records()) == 1, "the create request")
        start.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await start
        await until(lambda: not rig.records()[0].active, "the created session to end")
        assert rig.records()[0].end_calls == rig.end_calls

    # -- secrets -----------------------------------------------------------------------

    async def test_no_secret_in_logs_reprs_or_errors(
        self, rig: Rig, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        secrets = [rig.livekit.api_secret]
        key = rig.options.get("api_key")
        if isinstance(key, str):
            secrets.append(key)
        shown: list[str] = []
        avatar = await self._start(rig)
        shown += [repr(avatar), repr(avatar.backend.options), str(avatar.backend.options)]
        await avatar.wait_for_join(timeout=10)
        await avatar.aclose()
        if key is not None:  # a wrong key: the error names the problem, never the key
            wrong = rig.avatar(api_key=f"wrong-{key}-wrong")
            with pytest.raises(avatarkit.ProviderAPIError) as error:
                await wrong.start(rig.session, room=rig.room)
            shown += [str(error.value), repr(error.value.__cause__)]
        shown += [record.getMessage() for record in caplog.records]
        shown += [str(record.__dict__) for record in caplog.records]
        for text in shown:
            for secret in secrets:
                assert secret not in text, "a secret was shown"

    # -- what the core adds -------------------------------------------------------------

    async def test_renewal_brings_in_a_new_session_and_ends_the_old_once(self, rig: Rig) -> None:
        listener = Listener(await rig.livekit.join(ROOM, "listener"))
        avatar = await self._start(rig, renew_after=1.0)
        await avatar.wait_for_join(timeout=10)
        first = avatar.remote_session
        await until(lambda: avatar.remote_session not in (None, first), "a renewal", 15)
        await until(lambda: avatar.state == "joined", "the new avatar to join", 10)
        handle = await rig.speak(0.5)
        await asyncio.wait_for(handle.wait_for_playout(), 10)
        await until(lambda: listener.loud.get(avatar.avatar_identity, 0) > 0, "speech")
        await listener.aclose()
        if rig.double is not None and first is not None:
            old = next(r for r in rig.records() if r.id == first.id)
            await until(lambda: not next(r for r in rig.records() if r.id == first.id).active, "")
            assert old.end_calls <= rig.end_calls

    async def test_a_lost_avatar_is_noticed_and_the_agent_stays_audible(self, rig: Rig) -> None:
        if rig.double is None:
            pytest.skip("no remote sessions")
        rig.double.next_worker(leave_after=0.3)
        avatar = await self._start(rig, on_loss="audio_only")
        await avatar.wait_for_join(timeout=10)
        await until(lambda: avatar.state == "degraded", "the loss to be noticed")
        listener = Listener(await rig.livekit.join(ROOM, "listener"))
        handle = await rig.speak(0.5)
        await asyncio.wait_for(handle.wait_for_playout(), 10)
        await until(lambda: listener.loud.get(AGENT, 0) > 2400, "the agent heard in the room")
        await listener.aclose()
        assert not rig.records()[0].active

    def test_declared_limits_leave_room_to_renew(self) -> None:
        from avatarkit.supervisor import renew_at

        provider = avatarkit.provider_info(self.provider).load()
        cap = provider.limits.runtime_cap or provider.limits.max_duration
        if cap is None:
            pytest.skip("the provider declares no session limit")
        assert 0 < renew_at(0.0, None, cap) < cap


__all__ = ["Listener", "ProviderConformance", "Rig", "tone", "until"]
