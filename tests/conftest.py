"""Shared fixtures: an in-memory LiveKit server, the agent's room, the Runway emulator, and a
real livekit-agents AgentSession."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from livekit.agents import Agent, AgentSession, APIConnectOptions

import avatarkit
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


@pytest.fixture
def runway_avatar(
    livekit: MemoryLiveKit, runway: RunwayEmulator
) -> Callable[..., avatarkit.AvatarkitSession]:
    """``avatarkit.get("runway", ...)`` pointed at the emulator and the in-memory server."""

    def make(**options: Any) -> avatarkit.AvatarkitSession:
        options.setdefault("preset_id", "influencer")
        return avatarkit.get(
            "runway",
            api_key=runway.api_key,
            api_url=runway.url,
            livekit_url=livekit.url,
            livekit_api_key=livekit.api_key,
            livekit_api_secret=livekit.api_secret,
            conn_options=FAST,
            **options,
        )

    return make


@pytest.fixture
async def agent_session() -> AsyncIterator[AgentSession[Any]]:
    session: AgentSession[Any] = AgentSession()
    yield session
    await session.aclose()


async def start_agent(session: AgentSession[Any]) -> None:
    await session.start(agent=Agent(instructions="You are a test agent."))
