"""A real livekit-agents ``JobContext`` around an in-memory room, for tests and benchmarks.

Code under test sees what a job entrypoint sees (``get_job_context()``, the job's HTTP
session), and :meth:`FakeJob.shutdown` runs the worker's shutdown sequence in its order:
room disconnect, then the shutdown callbacks (``AvatarSession`` registers ``aclose`` there).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from livekit.protocol import agent, models

if TYPE_CHECKING:
    from livekit.agents import JobContext

    from .room import MemoryRoom


class _NoInference:
    async def do_inference(self, method: str, data: bytes) -> bytes | None:
        raise NotImplementedError("no inference executor in a test job")


class FakeJob:
    """The running job: its context, and the worker's shutdown sequence."""

    def __init__(self, ctx: JobContext, room: MemoryRoom) -> None:
        self.ctx = ctx
        self.room = room
        self.shutdown_reason: str | None = None

    async def shutdown(self, reason: str = "test shutdown") -> None:
        """Disconnect the room, then run every shutdown callback, as the worker does."""
        self.shutdown_reason = reason
        if self.room.isconnected():
            await self.room.disconnect()
        callbacks = list(self.ctx._shutdown_callbacks)
        await asyncio.gather(*(callback(reason) for callback in callbacks))


@contextlib.asynccontextmanager
async def job_context(room: MemoryRoom) -> AsyncIterator[FakeJob]:
    """Make ``room`` (already connected) the current job's room for the ``async with`` body."""
    from livekit.agents.job import (
        JobAcceptArguments,
        JobContext,
        JobExecutorType,
        JobProcess,
        RunningJobInfo,
        _JobContextVar,
    )
    from livekit.agents.utils import http_context

    identity = room.local_participant.identity
    server = room.server
    token = server.create_token(room.name, identity, kind="agent")
    info = RunningJobInfo(
        accept_arguments=JobAcceptArguments(name="", identity=identity, metadata=""),
        job=agent.Job(id="AJ_test", room=models.Room(name=room.name), type=agent.JT_ROOM),
        url=server.url,
        token=token,
        worker_id="AW_test",
        fake_job=True,
    )
    job = FakeJob(
        JobContext(
            proc=JobProcess(
                executor_type=JobExecutorType.THREAD, user_arguments=None, http_proxy=None
            ),
            info=info,
            room=room,
            on_connect=lambda: None,
            on_shutdown=lambda _reason: None,
            inference_executor=_NoInference(),
        ),
        room,
    )
    job.ctx._connected = True  # the room is connected already: connect() is a no-op
    reset = _JobContextVar.set(job.ctx)
    try:
        async with http_context.open():  # a pass-through when a session is already bound
            yield job
    finally:
        _JobContextVar.reset(reset)
        job.ctx._tempdir.cleanup()
