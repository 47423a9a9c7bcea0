"""The local backend: create starts an in-process avatar worker, end stops it."""

from __future__ import annotations

import uuid

from avatarkit import AvatarProvider, CreateRequest, EndRequest, RemoteSession, RemoteStatus
from avatarkit.http import HttpClient

from .options import LocalOptions
from .render import FaceStyle
from .video import FaceVideoGenerator
from .worker import AvatarWorker, unless_gone


class LocalProvider(AvatarProvider[LocalOptions]):
    """An avatar rendered in this process, joining the room as its own participant."""

    name = "local"
    options_class = LocalOptions
    default_identity = "local-avatar"
    sample_rate = 16000
    reports_playback_start = True  # livekit's AvatarRunner calls lk.playback_started

    def __init__(self, options: LocalOptions, http: HttpClient) -> None:
        super().__init__(options, http)
        self._style = FaceStyle(**options.colors)  # type: ignore[arg-type]
        self.workers: dict[str, AvatarWorker] = {}

    def video(self) -> FaceVideoGenerator:
        """A face video generator with these options."""
        opts = self.options
        return FaceVideoGenerator(
            width=opts.width,
            height=opts.height,
            fps=opts.fps,
            sample_rate=self.sample_rate,
            style=self._style,
            portrait=opts.portrait,
            seed=opts.seed,
        )

    async def create(self, request: CreateRequest) -> RemoteSession:
        # The agent's room going away (deleted, or the agent left) ends the wait at once:
        # the core waits for this create before it can end anything.
        worker = await unless_gone(
            AvatarWorker.join(
                request.livekit_url,
                request.avatar_token,
                agent_identity=request.agent_identity,
                video=self.video(),
            ),
            request.room,
            what="local",
        )
        session_id = f"local_{uuid.uuid4().hex[:12]}"
        self.workers[session_id] = worker
        return RemoteSession(provider=self.name, id=session_id)

    async def end(self, remote: RemoteSession, request: EndRequest) -> None:
        # Nothing bills here, but the participant must leave either way.
        if (worker := self.workers.pop(remote.id, None)) is not None:
            await worker.aclose()

    async def status(self, remote: RemoteSession) -> RemoteStatus:
        running = remote.id in self.workers
        return RemoteStatus("RUNNING" if running else "ENDED", running)

    async def aclose(self) -> None:
        while self.workers:
            await self.workers.popitem()[1].aclose()
