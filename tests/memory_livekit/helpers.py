"""What the in-memory server's tests share: bounded tests, waits with timeouts, event records."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from livekit import rtc

_T = TypeVar("_T")
TEST_TIMEOUT = 20.0


def bounded(
    fn: Callable[..., Coroutine[Any, Any, None]],
) -> Callable[..., Coroutine[Any, Any, None]]:
    """Fail a test that does not finish in TEST_TIMEOUT instead of hanging the run."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> None:
        await asyncio.wait_for(fn(*args, **kwargs), TEST_TIMEOUT)

    return wrapper


async def within(aw: Awaitable[_T], timeout: float = 5.0) -> _T:
    return await asyncio.wait_for(aw, timeout)


class Recorder:
    """Records a room's events, in order, with their arguments."""

    def __init__(self, room: rtc.Room, *events: str) -> None:
        self.events: list[tuple[str, tuple[Any, ...]]] = []
        self._changed = asyncio.Event()
        for event in events:
            room.on(event, functools.partial(self._record, event))  # type: ignore[arg-type]

    def _record(self, name: str, *args: Any) -> None:
        self.events.append((name, args))
        self._changed.set()

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def args(self, name: str) -> list[tuple[Any, ...]]:
        return [args for n, args in self.events if n == name]

    async def wait_for(self, name: str, count: int = 1, timeout: float = 5.0) -> None:
        await self.wait_until(lambda: self.names.count(name) >= count, timeout)

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        async def wait() -> None:
            while not condition():
                self._changed.clear()
                await self._changed.wait()

        await within(wait(), timeout)
