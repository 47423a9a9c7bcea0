"""LiveAvatar on the wire, against livekit-plugins-liveavatar.

The harness compares the sessions API (token, start), the avatar's token and the requests made
while closing. LiveAvatar hears the agent over its own WebSocket, not LiveKit data streams, so
the harness's audio path is empty on both sides; this test adds that channel: each side's
avatar, once joined, is given the same scripted utterance, and what the agent sent over the
socket (the events in order, ids as placeholders, and the audio bytes of each utterance) is
compared too, with how the utterance ended and the full stop request (the harness compares
only its method and path).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from livekit import rtc
from livekit.agents import AgentSession, AgentStateChangedEvent
from livekit.plugins import liveavatar

import avatarkit
from avatarkit.testing.conformance import until
from avatarkit_doubles.engine import Recorded
from avatarkit_providers.liveavatar.double import LiveAvatarApi, SocketReceiver
from memory_livekit import MemoryLiveKit
from tests.helpers.audio import stream, tone_frames
from tests.helpers.avatars import small_video
from tests.providers.parity import _TRANSPORT_HEADERS, assert_parity, compare

AVATAR = "65f9e3c9-d48b-4118-b73a-4ae2e3cbb8f0"
SESSION_ID = r"\bs\d{6}\b"  # the double's session ids

Script = Callable[[AgentSession[Any], SocketReceiver], Awaitable[bool]]
"""Says something once the avatar has joined; returns whether the speech was interrupted."""


async def played(session: AgentSession[Any], _: SocketReceiver) -> bool:
    handle = session.say("hi", audio=stream(tone_frames(1.0)), add_to_chat_ctx=False)
    await handle.wait_for_playout()  # the avatar's agent.speak_ended ends it
    return handle.interrupted


async def interrupted(session: AgentSession[Any], _: SocketReceiver) -> bool:
    speaking = asyncio.Event()

    def on_state(ev: AgentStateChangedEvent) -> None:
        if ev.new_state == "speaking":
            speaking.set()

    session.on("agent_state_changed", on_state)
    handle = session.say("long", audio=stream(tone_frames(4.0)), add_to_chat_ctx=False)
    await speaking.wait()  # the agent has had the avatar's agent.speak_started
    handle.interrupt()
    await handle.wait_for_playout()
    return handle.interrupted


async def cut_before_the_avatar_speaks(session: AgentSession[Any], heard: SocketReceiver) -> bool:
    handle = session.say("long", audio=stream(tone_frames(4.0)), add_to_chat_ctx=False)
    await until(lambda: bool(heard.audio_bytes), "the first agent.speak")
    handle.interrupt()  # LiveAvatar holds audio it has not begun to speak
    await handle.wait_for_playout()
    return handle.interrupted


class Scripted:
    """Either side's avatar with a script once it has joined: the harness starts it, waits for
    the join and closes it, and the script runs in between. With ``session_first``, closing
    first closes the AgentSession, as an app hanging up does, and waits for the stop."""

    def __init__(
        self, avatar: Any, double: LiveAvatarApi, script: Script, *, session_first: bool
    ) -> None:
        self.avatar, self.double, self.script = avatar, double, script
        self.session_first = session_first
        self.interrupted: bool | None = None
        self.session_id = ""
        self._session: AgentSession[Any] | None = None

    async def start(self, session: AgentSession[Any], room: rtc.Room, **livekit: Any) -> None:
        self._session = session
        await self.avatar.start(session, room, **livekit)
        self.session_id = list(self.double.sessions)[-1]

    async def wait_for_join(self, *, timeout: float) -> None:
        await self.avatar.wait_for_join(timeout=timeout)
        assert self._session is not None
        heard = self.double.socket(self.session_id)
        self.interrupted = await asyncio.wait_for(self.script(self._session, heard), 10)

    async def aclose(self) -> None:
        if self.session_first:
            assert self._session is not None
            await self._session.aclose()
            await until(lambda: bool(self.stops()), "the session's stop")
        await self.avatar.aclose()

    def stops(self) -> list[Recorded]:
        return [r for r in self.double.requests_for("end")
                if r.body.get("session_id") == self.session_id]  # fmt: skip

    def wire(self) -> dict[str, Any]:
        """What the test adds to the harness's comparison, for this side."""
        heard = self.double.socket(self.session_id)
        events = [{k: "<event id>" if k == "event_id" else v for k, v in ev.items()}
                  for ev in heard.received if ev["type"] != "session.keep_alive"]  # fmt: skip
        utterances: list[int] = []
        sizes, total = iter(heard.audio_bytes), 0
        for ev in heard.received:
            if ev["type"] == "agent.speak":
                total += next(sizes)
            elif ev["type"] == "agent.speak_end":
                utterances.append(total)
                total = 0
        if total:
            utterances.append(total)  # audio that no agent.speak_end closed
        stops = [
            {"headers": {k.lower(): v for k, v in sorted(r.headers.items())
                         if k.lower() not in _TRANSPORT_HEADERS},
             "body": {**r.body, "session_id": "<session id>"}}
            for r in self.stops()
        ]  # fmt: skip
        return {
            "socket.keep_alives": len(heard.received) - len(events),  # timed, not scripted
            "socket.events": events,
            "socket.audio_bytes": utterances,
            "speech.interrupted": self.interrupted,
            "ending.stop": stops,
        }


HARNESS = {
    "claims.ttl_minutes": "LiveAvatar declares no session lifetime: avatarkit's default of 1 h, "
    "not livekit's 6 h",
    "socket.keep_alives": "the plugin's keep-alive timer ticks once straight away, so it sends "
    "session.keep_alive as soon as the socket is connected; avatarkit sends one after 60 s of "
    "quiet only (LiveAvatar's idle timeout is five minutes)",
}
AVATAR_CLOSED_FIRST = {
    "ending": "avatarkit stops the session when the avatar is closed; the plugin only once the "
    "AgentSession has closed, from a background task, which here (the avatar closed, then the "
    "AgentSession, then the job's end) runs after the job's HTTP session has closed: the "
    "plugin's stop never goes out (agent-session-closed-first shows the worker's own order)",
    "ending.stop": "the same: the plugin's stop never went out",
}
SESSION_CLOSED_FIRST = {
    "ending.stop": "avatarkit's stop authenticates with the API key (X-API-KEY, which "
    "LiveAvatar's docs accept for the stop), the plugin's with the session's token "
    "(Authorization: Bearer)",
}
CUT_EARLY = {
    "socket.events": "avatarkit sends agent.interrupt once any audio has gone out, the plugin "
    "only after LiveAvatar's agent.speak_started: audio LiveAvatar holds but has not begun to "
    "speak would otherwise play after the cut",
}


@pytest.mark.parametrize(
    ("script", "session_first", "intended"),
    [
        (played, False, HARNESS | AVATAR_CLOSED_FIRST),
        (interrupted, False, HARNESS | AVATAR_CLOSED_FIRST),
        (cut_before_the_avatar_speaks, False, HARNESS | AVATAR_CLOSED_FIRST | CUT_EARLY),
        (played, True, HARNESS | SESSION_CLOSED_FIRST),
    ],
    ids=["played", "interrupted", "cut-before-the-avatar-speaks", "agent-session-closed-first"],
)
async def test_the_wire_matches_the_official_plugin(
    livekit: MemoryLiveKit,
    monkeypatch: pytest.MonkeyPatch,
    script: Script,
    session_first: bool,
    intended: dict[str, str],
) -> None:
    if script is cut_before_the_avatar_speaks:  # LiveAvatar has the audio, says nothing yet

        async def silent(self: SocketReceiver) -> None:
            pass

        monkeypatch.setattr(SocketReceiver, "notify_playback_started", silent)
    async with LiveAvatarApi(video=small_video) as double:
        common: dict[str, Any] = {
            "api_url": double.url,
            "api_key": double.api_key,
            "avatar_id": AVATAR,
        }
        official = Scripted(liveavatar.AvatarSession(**common), double, script,
                            session_first=session_first)  # fmt: skip
        ours = Scripted(avatarkit.get("liveavatar", **common), double, script,
                        session_first=session_first)  # fmt: skip
        differences = await compare(
            double,
            livekit,
            official=lambda: official,
            ours=lambda: ours,
            generated={SESSION_ID: "<session id>"},
        )
        theirs, mine = official.wire(), ours.wire()
    differences |= {k: (theirs[k], mine[k]) for k in theirs if theirs[k] != mine[k]}
    assert_parity(differences, intended)
