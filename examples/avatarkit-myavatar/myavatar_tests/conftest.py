"""Fixtures: MyAvatar's API double, an in-memory LiveKit server, the agent's room and session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from livekit.agents import AgentSession

from avatarkit.rooms import register_connector
from avatarkit.testing import MemoryLiveKit, MemoryRoom

from .api_double import MyAvatarAPI


@pytest.fixture
async def myavatar() -> AsyncIterator[MyAvatarAPI]:
    async with MyAvatarAPI() as api:
        yield api


@pytest.fixture
async def livekit() -> AsyncIterator[MemoryLiveKit]:
    server = MemoryLiveKit()
    # workers that join server.url (the double's avatars) join the in-memory server
    unregister = register_connector(server.url, lambda _url, token: server.connect(token))
    yield server
    unregister()
    await server.aclose()


@pytest.fixture
async def agent_room(livekit: MemoryLiveKit) -> MemoryRoom:
    return await livekit.join("room-1", "agent-1", kind="agent")


@pytest.fixture
async def agent_session() -> AsyncIterator[AgentSession[Any]]:
    session: AgentSession[Any] = AgentSession()
    yield session
    await session.aclose()
