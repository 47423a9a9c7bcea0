"""A minimal provider used by the tests: it creates nothing remote and records its calls."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import attrs

from avatarkit import AvatarProvider, CreateRequest, EndRequest, RemoteSession
from avatarkit_providers.local.provider import LocalProvider


@attrs.frozen(kw_only=True)
class EchoOptions:
    color: str = "red"
    create_delay: float = 0.0
    fail_create: bool = False


class EchoProvider(AvatarProvider[EchoOptions]):
    name = "echo"
    options_class = EchoOptions
    default_identity = "echo-avatar"
    calls: ClassVar[list[tuple[str, str]]] = []

    async def create(self, request: CreateRequest) -> RemoteSession:
        await asyncio.sleep(self.options.create_delay)
        if self.options.fail_create:
            raise RuntimeError("echo create failed")
        self.calls.append(("create", request.room_name))
        return RemoteSession(provider=self.name, id=f"echo-{len(self.calls)}")

    async def end(self, remote: RemoteSession, request: EndRequest) -> None:
        self.calls.append(("end", f"{remote.id}:{request.reason}:{request.graceful}"))


class MirrorProvider(LocalProvider):
    """A third-party provider as a package would ship one (here: the local renderer)."""

    name = "mirror"
    default_identity = "mirror-avatar"
