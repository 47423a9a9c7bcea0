"""Shared fixtures: an in-memory LiveKit server, the agent's room, the Runway emulator, and a
real livekit-agents AgentSession."""

from __future__ import annotations

import types
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from livekit.agents import Agent, AgentSession, APIConnectOptions
from livekit.agents.voice.room_io._output import _ParticipantAudioOutput

import avatarkit
from avatarkit import ProviderSpec
from avatarkit.rooms import register_connector
from avatarkit.testing import MemoryLiveKit, MemoryRoom
from avatarkit_local.video import FaceVideoGenerator
from avatarkit_runway.emulator.emulator import RunwayEmulator

FAST = APIConnectOptions(max_retry=2, retry_interval=0.05, timeout=2.0)


@pytest.fixture
async def livekit() -> AsyncIterator[MemoryLiveKit]:
    server = MemoryLiveKit()
    unregister = register_connector(server.url, lambda _url, token: server.connect(token))
    yield server
    unregister()
    await server.aclose()


@pytest.fixture
async def agent_room(livekit: MemoryLiveKit) -> MemoryRoom:
    return await livekit.join("room-1", "agent-1", kind="agent")


def small_video() -> FaceVideoGenerator:
    return FaceVideoGenerator(width=64, height=64, fps=20)


@pytest.fixture
async def runway() -> AsyncIterator[RunwayEmulator]:
    async with RunwayEmulator(provisioning_delay=0.05, video=small_video) as emulator:
        yield emulator


def make_runway_avatar(
    runway: RunwayEmulator, livekit: MemoryLiveKit, **options: Any
) -> avatarkit.AvatarkitSession:
    """``avatarkit.get("runway", ...)`` pointed at ``runway`` and the in-memory server."""
    options.setdefault("preset_id", "influencer")
    options.setdefault("conn_options", FAST)
    return avatarkit.get(
        "runway",
        api_key=runway.api_key,
        api_url=runway.url,
        livekit_url=livekit.url,
        livekit_api_key=livekit.api_key,
        livekit_api_secret=livekit.api_secret,
        **options,
    )


@pytest.fixture
def runway_avatar(
    livekit: MemoryLiveKit, runway: RunwayEmulator
) -> Callable[..., avatarkit.AvatarkitSession]:
    """:func:`make_runway_avatar` bound to the test's emulator and server."""
    return lambda **options: make_runway_avatar(runway, livekit, **options)


def end_calls(livekit: MemoryLiveKit, room: str = "room-1") -> list[Any]:
    """The END_CALL packets sent in ``room``."""
    return [p for p in livekit.rooms[room].data_packets if b"END_CALL" in p.payload]


@pytest.fixture
async def agent_session() -> AsyncIterator[AgentSession[Any]]:
    session: AgentSession[Any] = AgentSession()
    yield session
    await session.aclose()


async def start_agent(session: AgentSession[Any]) -> None:
    await session.start(agent=Agent(instructions="You are a test agent."))


@pytest.fixture
def third_party() -> Iterator[Callable[[ProviderSpec], None]]:
    """Install providers as a third-party package would (a plugin registering a spec),
    and uninstall them after the test."""
    pm = avatarkit.plugin_manager()
    registered: list[object] = []

    def add(spec: ProviderSpec) -> None:
        plugin = types.SimpleNamespace()

        @avatarkit.hookimpl
        def register_providers(register: Callable[[ProviderSpec], None]) -> None:
            register(spec)

        plugin.register_providers = register_providers
        pm.register(plugin)
        registered.append(plugin)
        avatarkit.refresh()

    yield add
    for plugin in registered:
        pm.unregister(plugin)
    avatarkit.refresh()


def local_avatar(livekit: MemoryLiveKit, **options: Any) -> avatarkit.AvatarkitSession:
    """``avatarkit.get("local", ...)``, small and fast, joining the in-memory server."""
    return avatarkit.get(
        "local",
        width=64,
        height=64,
        fps=20,
        livekit_url=livekit.url,
        livekit_api_key=livekit.api_key,
        livekit_api_secret=livekit.api_secret,
        conn_options=FAST,
        **options,
    )


def assert_room_audio(session: AgentSession[Any]) -> None:
    """The agent speaks through its own track in the room (livekit's room audio output),
    as it would with no avatar at all."""
    output = session.output.audio
    assert isinstance(output, _ParticipantAudioOutput), output
    assert output._room.isconnected()
