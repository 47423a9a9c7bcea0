"""Fixtures: MyAvatar's API double, an in-memory LiveKit server, the agent's room and session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from livekit.agents import AgentSession

from avatarkit.testing import MemoryLiveKit, MemoryRoom, in_memory_livekit

from .api_double import MyAvatarAPI


@pytest.fixture
async def myavatar() -> AsyncIterator[MyAvatarAPI]:
    async with MyAvatarAPI() as api:
        yield api


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
