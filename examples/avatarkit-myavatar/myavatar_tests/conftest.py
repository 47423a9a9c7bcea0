"""Fixtures: MyAvatar's API double, an in-memory LiveKit server, the agent's room and session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from livekit.agents import AgentSession
from myavatar_avatarkit.double import MYAVATAR

from avatarkit.testing import MemoryLiveKit, MemoryRoom, in_memory_livekit
from avatarkit_doubles.engine import ApiDouble
from avatarkit_providers.local.video import FaceVideoGenerator


def _small_face() -> FaceVideoGenerator:
    return FaceVideoGenerator(width=64, height=64, fps=20, label="myavatar (emulated)")


@pytest.fixture
async def myavatar() -> AsyncIterator[ApiDouble]:
    # MyAvatar's API as double.py describes it: its avatars join the room with their token
    async with ApiDouble(MYAVATAR, video=_small_face) as double:
        yield double


@pytest.fixture
async def livekit() -> AsyncIterator[MemoryLiveKit]:
    # workers that join its URL (the double's avatars) join the in-memory server
    async with in_memory_livekit() as server:
        yield server


@pytest.fixture
async def agent_room(livekit: MemoryLiveKit) -> MemoryRoom:
    return await livekit.join("room-1", "agent-1", kind="agent")


@pytest.fixture
async def agent_session() -> AsyncIterator[AgentSession[Any]]:
    session: AgentSession[Any] = AgentSession()
    yield session
    await session.aclose()
