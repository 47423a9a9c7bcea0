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

Known differences from a real server and SDK:

- ``connected`` is never emitted (the Python SDK does not emit it either);
  ``connection_state_changed`` (``CONN_CONNECTED``) follows ``connect()`` as in the SDK.
- RPC to an identity not in the room fails at once with ``RECIPIENT_NOT_FOUND`` (the SDK may
  instead wait ``max_round_trip_latency`` and report ``CONNECTION_TIMEOUT``); a recipient leaving
  mid-call gives ``RECIPIENT_DISCONNECTED``. No RPC payload size limit.
- A stream whose sender leaves mid-stream ends with ``rtc.StreamError`` at the receivers (the
  JS SDK's behaviour; the Rust SDK leaves such readers open).
- Unpublishing a track does not end a subscriber's ``rtc.AudioStream``/``VideoStream`` already
  reading it (the native track is shared, not stopped).
- ``set_attributes``/``set_metadata``/``set_name`` return once the caller's own room has applied
  the change; without the ``can_update_own_metadata`` grant they are refused (logged, no error,
  as in the SDK).
- Participants have no FFI handle: ``rtc.AudioStream.from_participant`` /
  ``rtc.VideoStream.from_participant`` do not work on them (``from_track`` does, and is what
  livekit-agents uses).
- No hidden participants, track subscription permissions, reconnection, simulcast layers, e2ee,
  data tracks, SIP DTMF, room metadata updates or connection-quality events; empty rooms stay
  until deleted.
- ``remove_participant``/``delete_room`` return once the removed sessions have processed it.
"""

from __future__ import annotations

from .participant import MemoryLocalParticipant, MemoryRemoteTrackPublication
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
    "RpcRecord",
    "ServerParticipant",
    "ServerRoom",
    "ServerTrack",
    "StreamRecord",
]
