"""Fixtures: an in-memory LiveKit server, the agent's room, the Runway emulator, a real
livekit-agents AgentSession, and third-party provider registration. Helpers that tests call
directly live in :mod:`tests.helpers`."""

from __future__ import annotations

import types
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from livekit.agents import AgentSession

import avatarkit
from avatarkit import ProviderSpec
from avatarkit.testing import in_memory_livekit
from avatarkit_providers.runway.emulator.emulator import RunwayEmulator
from memory_livekit import MemoryLiveKit, MemoryRoom

from .helpers.avatars import make_runway_avatar, small_video


@pytest.fixture
async def livekit() -> AsyncIterator[MemoryLiveKit]:
    async with in_memory_livekit() as server:
        yield server


@pytest.fixture
async def agent_room(livekit: MemoryLiveKit) -> MemoryRoom:
    return await livekit.join("room-1", "agent-1", kind="agent")


@pytest.fixture
async def runway() -> AsyncIterator[RunwayEmulator]:
    async with RunwayEmulator(provisioning_delay=0.05, video=small_video) as emulator:
        yield emulator


@pytest.fixture
def runway_avatar(
    livekit: MemoryLiveKit, runway: RunwayEmulator
) -> Callable[..., avatarkit.AvatarkitSession]:
    """:func:`~tests.helpers.avatars.make_runway_avatar` bound to the test's emulator and
    server."""
    return lambda **options: make_runway_avatar(runway, livekit, **options)


@pytest.fixture
async def agent_session() -> AsyncIterator[AgentSession[Any]]:
    session: AgentSession[Any] = AgentSession()
    yield session
    await session.aclose()


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
