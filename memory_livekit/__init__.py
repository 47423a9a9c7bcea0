"""An in-memory LiveKit server and room for tests, no server needed.

.. code-block:: python

    server = MemoryLiveKit()
    agent = await server.join("room", "agent", kind="agent")
    avatar = await server.join(
        "room", "avatar", kind="agent", attributes={"lk.publish_on_behalf": "agent"}
    )
    # agent and avatar are rtc.Room objects: pass them to livekit-agents code as is
    ...
    await server.aclose()

:class:`MemoryRoom` subclasses ``rtc.Room`` (its participants and publications subclass or are
the real ``rtc`` classes) and emits the same events with the same arguments in the same order
as the SDK. Tokens are real JWTs checked like the server does. Published tracks are the
publisher's real ``rtc.LocalAudioTrack`` / ``rtc.LocalVideoTrack``: a subscriber's
``rtc.AudioStream`` / ``rtc.VideoStream`` yields the frames captured into the publisher's source.

``MemoryLiveKit(realism=Realism(...))`` turns on the realistic mode: latency, the SDK's RPC
timeouts and limits, Opus-coded delayed audio, join batching, reconnection, room auto-close.

This package imports nothing of avatarkit. What it does not model (where it is kinder than a
real server) is listed in ``docs/memory-livekit.md``.
"""

from __future__ import annotations

from .participant import MemoryLocalParticipant, MemoryRemoteTrackPublication
from .realism import Realism
from .room import MemoryRoom
from .server import (
    DEFAULT_URL,
    DataPacketRecord,
    MemoryLiveKit,
    ParticipantKindName,
    RpcRecord,
    ServerParticipant,
    ServerRoom,
    ServerTrack,
    StreamRecord,
)
from .streams import (
    MemoryByteStreamReader,
    MemoryByteStreamWriter,
    MemoryTextStreamReader,
    MemoryTextStreamWriter,
)

__all__ = [
    "DEFAULT_URL",
    "DataPacketRecord",
    "MemoryByteStreamReader",
    "MemoryByteStreamWriter",
    "MemoryLiveKit",
    "MemoryLocalParticipant",
    "MemoryRemoteTrackPublication",
    "MemoryRoom",
    "MemoryTextStreamReader",
    "MemoryTextStreamWriter",
    "ParticipantKindName",
    "Realism",
    "RpcRecord",
    "ServerParticipant",
    "ServerRoom",
    "ServerTrack",
    "StreamRecord",
]
