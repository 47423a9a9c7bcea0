"""The in-memory LiveKit server: rooms, participants, tokens, routing and fault switches."""

from __future__ import annotations

import asyncio
import datetime
import functools
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from livekit import api, rtc
from livekit.api.access_token import Claims
from livekit.rtc._proto import participant_pb2 as proto_participant
from livekit.rtc._proto import track_pb2 as proto_track

from ._common import logger, new_sid, now_ms

if TYPE_CHECKING:
    from .room import MemoryRoom
    from .streams import OutgoingStream

DEFAULT_URL = "wss://memory.livekit.invalid"

ParticipantKindName = Literal["standard", "ingress", "egress", "sip", "agent"]

_KINDS: dict[str, proto_participant.ParticipantKind.ValueType] = {
    "standard": rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD,
    "ingress": rtc.ParticipantKind.PARTICIPANT_KIND_INGRESS,
    "egress": rtc.ParticipantKind.PARTICIPANT_KIND_EGRESS,
    "sip": rtc.ParticipantKind.PARTICIPANT_KIND_SIP,
    "agent": rtc.ParticipantKind.PARTICIPANT_KIND_AGENT,
    "connector": rtc.ParticipantKind.PARTICIPANT_KIND_CONNECTOR,
    "bridge": rtc.ParticipantKind.PARTICIPANT_KIND_BRIDGE,
}

SOURCE_NAMES: dict[proto_track.TrackSource.ValueType, str] = {
    rtc.TrackSource.SOURCE_CAMERA: "camera",
    rtc.TrackSource.SOURCE_MICROPHONE: "microphone",
    rtc.TrackSource.SOURCE_SCREENSHARE: "screen_share",
    rtc.TrackSource.SOURCE_SCREENSHARE_AUDIO: "screen_share_audio",
}

_SETTLE_ROUNDS = 100


@dataclass(frozen=True)
class DataPacketRecord:
    """One ``publish_data`` call as the server saw it."""

    sender: str
    payload: bytes
    topic: str
    reliable: bool
    destination_identities: tuple[str, ...]
    """As the sender asked; empty means everyone else."""
    delivered_to: tuple[str, ...]


@dataclass
class StreamRecord:
    """One byte or text stream as the server saw it; updated while it is open."""

    stream_id: str
    kind: Literal["byte", "text"]
    sender: str
    topic: str
    name: str
    attributes: dict[str, str]
    destination_identities: tuple[str, ...]
    delivered_to: tuple[str, ...]
    size: int = 0
    """Bytes written so far (UTF-8 bytes for text)."""
    chunks: int = 0
    closed: bool = False
    reason: str = ""
    """The close reason, or why the server ended the stream."""


@dataclass
class RpcRecord:
    """One ``perform_rpc`` call that reached the server; updated when it is answered."""

    caller: str
    destination: str
    method: str
    payload: str
    response: str | None = None
    error_code: int | None = None
    done: bool = False


class ServerTrack:
    """A published track as the server holds it: the publisher's real local track."""

    def __init__(
        self,
        publisher: str,
        track: rtc.LocalAudioTrack | rtc.LocalVideoTrack,
        options: rtc.TrackPublishOptions,
    ) -> None:
        self.sid = new_sid("TR_")
        self.publisher = publisher
        self.track = track
        self.name = track.name
        self.kind: proto_track.TrackKind.ValueType = track.kind
        self.source: proto_track.TrackSource.ValueType = options.source
        self._simulcast = options.simulcast
        self._mime_type = (
            "audio/opus"
            if track.kind == rtc.TrackKind.KIND_AUDIO
            else "video/" + rtc.VideoCodec.Name(options.video_codec).lower()
        )
        self._subscribers: set[str] = set()
        self._announced = False  # the publisher hears of its first subscriber once

    @property
    def subscribers(self) -> frozenset[str]:
        """Identities currently subscribed to this track."""
        return frozenset(self._subscribers)

    def publication_info(self, *, remote: bool) -> proto_track.TrackPublicationInfo:
        return proto_track.TrackPublicationInfo(
            sid=self.sid,
            name=self.name,
            kind=self.kind,
            source=self.source,
            simulcasted=self._simulcast and self.kind == rtc.TrackKind.KIND_VIDEO,
            mime_type=self._mime_type,
            muted=self.track.muted,
            remote=remote,
        )

    def __repr__(self) -> str:
        kind = rtc.TrackKind.Name(self.kind)
        return f"ServerTrack(sid={self.sid}, publisher={self.publisher}, kind={kind})"


class ServerParticipant:
    """A participant as the server holds it, with live views of its session's handlers."""

    def __init__(
        self, room: ServerRoom, session: MemoryRoom, claims: Claims, grants: api.VideoGrants
    ) -> None:
        self.room = room
        self.session = session
        """The client side: the :class:`MemoryRoom` this participant is connected through."""
        self.grants = grants
        self._info = proto_participant.ParticipantInfo(
            sid=new_sid("PA_"),
            identity=claims.identity,
            name=claims.name,
            metadata=claims.metadata,
            attributes=dict(claims.attributes or {}),
            kind=_KINDS.get(
                claims.kind or "standard", rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD
            ),
            state=rtc.ParticipantState.PARTICIPANT_STATE_ACTIVE,
            joined_at=now_ms(),
            permission=proto_participant.ParticipantPermission(
                can_subscribe=grants.can_subscribe,
                can_publish=grants.can_publish,
                can_publish_data=grants.can_publish_data,
                hidden=bool(grants.hidden),
                can_update_metadata=bool(grants.can_update_own_metadata),
                can_subscribe_metrics=bool(grants.can_subscribe_metrics),
                can_manage_agent_session=bool(grants.can_manage_agent_session),
            ),
        )
        self._tracks: dict[str, ServerTrack] = {}

    @property
    def identity(self) -> str:
        return self._info.identity

    @property
    def sid(self) -> str:
        return self._info.sid

    @property
    def name(self) -> str:
        return self._info.name

    @property
    def metadata(self) -> str:
        return self._info.metadata

    @property
    def kind(self) -> proto_participant.ParticipantKind.ValueType:
        return self._info.kind

    @property
    def attributes(self) -> dict[str, str]:
        return dict(self._info.attributes)

    @property
    def tracks(self) -> Mapping[str, ServerTrack]:
        """Published tracks by sid."""
        return MappingProxyType(self._tracks)

    @property
    def rpc_methods(self) -> tuple[str, ...]:
        """RPC methods the session has registered right now (sorted)."""
        return self.session.rpc_methods

    @property
    def byte_stream_topics(self) -> tuple[str, ...]:
        """Topics the session has a byte stream handler for right now (sorted)."""
        return self.session.byte_stream_topics

    @property
    def text_stream_topics(self) -> tuple[str, ...]:
        """Topics the session has a text stream handler for right now (sorted)."""
        return self.session.text_stream_topics

    def info(
        self, state: proto_participant.ParticipantState.ValueType
    ) -> proto_participant.ParticipantInfo:
        """A copy of the server's view, as sent to a client."""
        info = proto_participant.ParticipantInfo()
        info.CopyFrom(self._info)
        info.state = state
        return info

    def __repr__(self) -> str:
        room = self.room.name
        return f"ServerParticipant(identity={self.identity!r}, sid={self.sid}, room={room!r})"


class ServerRoom:
    """A room on the in-memory server, and what passed through it."""

    def __init__(self, server: MemoryLiveKit, name: str) -> None:
        self.server = server
        self.name = name
        self.sid = new_sid("RM_")
        self.creation_time = time.time()
        self._participants: dict[str, ServerParticipant] = {}
        self._open_streams: dict[str, OutgoingStream] = {}
        self.deleted = False
        self.data_packets: list[DataPacketRecord] = []
        """Every ``publish_data`` in this room, in order."""
        self.streams: list[StreamRecord] = []
        """Every byte and text stream opened in this room, in order."""
        self.rpc_calls: list[RpcRecord] = []
        """Every RPC call routed in this room, in order."""

    @property
    def participants(self) -> Mapping[str, ServerParticipant]:
        """Connected participants by identity."""
        return MappingProxyType(self._participants)

    def __repr__(self) -> str:
        names = list(self._participants)
        return f"ServerRoom(name={self.name!r}, sid={self.sid}, participants={names})"


def _normalize_url(url: str) -> str:
    url = url.strip().rstrip("/")
    for http, ws in (("https://", "wss://"), ("http://", "ws://")):
        if url.startswith(http):
            return ws + url[len(http) :]
    return url


class MemoryLiveKit:
    """An in-process stand-in for a LiveKit server, holding rooms by name.

    Sessions connect with real JWTs (checked like the server does) through
    :class:`~memory_livekit.MemoryRoom`, which follows ``rtc.Room``. Everything is
    delivered asynchronously on the running event loop, in order per sender.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        api_key: str | None = None,
        api_secret: str | None = None,
        *,
        auto_create_rooms: bool = True,
    ) -> None:
        self.url = url
        self.api_key = api_key or "APImem" + secrets.token_hex(5)
        self._api_secret = api_secret or secrets.token_urlsafe(32)
        self.auto_create_rooms = auto_create_rooms
        """When False, only rooms made with :meth:`create_room` can be joined."""
        self._rooms: dict[str, ServerRoom] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._posted = 0

    @property
    def api_secret(self) -> str:
        """The secret tokens must be signed with (kept out of every repr)."""
        return self._api_secret

    @property
    def rooms(self) -> Mapping[str, ServerRoom]:
        """Rooms by name (deleted rooms are removed)."""
        return MappingProxyType(self._rooms)

    @property
    def pending_tasks(self) -> tuple[asyncio.Task[None], ...]:
        """Tasks started by this server's sessions that have not finished yet."""
        return tuple(t for t in self._tasks if not t.done())

    def create_room(self, name: str) -> ServerRoom:
        """The room with this name, created if needed."""
        room = self._rooms.get(name)
        if room is None:
            room = self._rooms[name] = ServerRoom(self, name)
        return room

    def create_token(
        self,
        room: str,
        identity: str,
        *,
        kind: ParticipantKindName = "standard",
        name: str = "",
        metadata: str = "",
        attributes: Mapping[str, str] | None = None,
        grants: api.VideoGrants | None = None,
        ttl: datetime.timedelta = datetime.timedelta(hours=1),
    ) -> str:
        """A token signed by this server. Default grants: join ``room`` and update own
        metadata/attributes (as LiveKit gives an agent)."""
        token = (
            api.AccessToken(self.api_key, self._api_secret)
            .with_identity(identity)
            .with_kind(kind)
            .with_ttl(ttl)
            .with_grants(
                grants or api.VideoGrants(room_join=True, room=room, can_update_own_metadata=True)
            )
        )
        if name:
            token = token.with_name(name)
        if metadata:
            token = token.with_metadata(metadata)
        if attributes:
            token = token.with_attributes(dict(attributes))
        return token.to_jwt()

    async def connect(self, token: str, *, options: rtc.RoomOptions | None = None) -> MemoryRoom:
        """Connect a new :class:`MemoryRoom` with ``token``; raises ``rtc.ConnectError`` when
        the server would refuse it."""
        from .room import MemoryRoom

        room = MemoryRoom(self)
        await room.connect(self.url, token, options)
        return room

    async def join(
        self,
        room_name: str,
        identity: str,
        *,
        kind: ParticipantKindName = "standard",
        name: str = "",
        metadata: str = "",
        attributes: Mapping[str, str] | None = None,
        grants: api.VideoGrants | None = None,
        options: rtc.RoomOptions | None = None,
    ) -> MemoryRoom:
        """Mint a token (see :meth:`create_token`) and connect with it."""
        token = self.create_token(
            room_name,
            identity,
            kind=kind,
            name=name,
            metadata=metadata,
            attributes=attributes,
            grants=grants,
        )
        return await self.connect(token, options=options)

    async def remove_participant(self, room: str, identity: str) -> None:
        """Like RoomService.RemoveParticipant: that session is disconnected with
        ``PARTICIPANT_REMOVED``, the others see it leave. Returns once the removed session
        has processed its disconnection."""
        server_room = self._rooms.get(room)
        participant = server_room._participants.get(identity) if server_room else None
        if participant is None:
            raise api.TwirpError("not_found", "participant not found", status=404)
        self._depart(participant, rtc.DisconnectReason.PARTICIPANT_REMOVED)
        await participant.session._wait_stopped()

    async def delete_room(self, room: str) -> None:
        """Like RoomService.DeleteRoom: every session is disconnected with ``ROOM_DELETED``
        and the room is forgotten. Returns once the sessions have processed it."""
        server_room = self._rooms.pop(room, None)
        if server_room is None:
            raise api.TwirpError("not_found", "requested room does not exist", status=404)
        server_room.deleted = True
        participants = list(server_room._participants.values())
        for participant in participants:
            self._depart(participant, rtc.DisconnectReason.ROOM_DELETED, notify_others=False)
        for participant in participants:
            await participant.session._wait_stopped()

    async def settle(self) -> None:
        """Wait until every event queued to any session, and any event those caused, has been
        delivered. Raises RuntimeError if traffic never stops."""
        for _ in range(_SETTLE_ROUNDS):
            before = self._posted
            markers: list[asyncio.Future[None]] = []
            for server_room in list(self._rooms.values()):
                for participant in list(server_room._participants.values()):
                    marker = asyncio.get_running_loop().create_future()
                    if participant.session._post_marker(marker):
                        markers.append(marker)
            if markers:
                await asyncio.wait(markers)
            await asyncio.sleep(0)
            if self._posted == before:
                return
        raise RuntimeError(f"traffic did not settle after {_SETTLE_ROUNDS} rounds")

    async def aclose(self) -> None:
        """Delete every room, disconnecting every session."""
        for name in list(self._rooms):
            await self.delete_room(name)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def __repr__(self) -> str:
        return (
            f"MemoryLiveKit(url={self.url!r}, api_key={self.api_key!r}, rooms={list(self._rooms)})"
        )

    # -- used by the sessions -----------------------------------------------------------------

    def _track_task(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _count_post(self) -> None:
        self._posted += 1

    def _verify(self, url: str, token: str) -> tuple[Claims, api.VideoGrants]:
        if _normalize_url(url) != _normalize_url(self.url):
            raise rtc.ConnectError(
                f"could not establish signal connection: no LiveKit server at {url} "
                f"(this in-memory server is {self.url})"
            )
        try:
            claims = api.TokenVerifier(self.api_key, self._api_secret).verify(token)
        except Exception as e:
            raise rtc.ConnectError(
                f"could not establish signal connection: 401 unauthorized: invalid token: {e}"
            ) from None
        grants = claims.video or api.VideoGrants()
        if not grants.room_join:
            raise rtc.ConnectError(
                "could not establish signal connection: 401 unauthorized: "
                "permissions denied: the token does not grant room_join"
            )
        if not grants.room:
            raise rtc.ConnectError(
                "could not establish signal connection: 401 unauthorized: "
                "room name is required in the token"
            )
        if not claims.identity:
            raise rtc.ConnectError(
                "could not establish signal connection: 401 unauthorized: identity cannot be empty"
            )
        return claims, grants

    def _admit(
        self, session: MemoryRoom, url: str, token: str, options: rtc.RoomOptions
    ) -> ServerParticipant:
        claims, grants = self._verify(url, token)
        room = self._rooms.get(grants.room)
        if room is None:
            if not self.auto_create_rooms:
                raise rtc.ConnectError(
                    "could not establish signal connection: 404 not found: "
                    f"requested room {grants.room!r} does not exist"
                )
            room = self.create_room(grants.room)

        previous = room._participants.get(claims.identity)
        if previous is not None:
            # the server keeps the newest connection of an identity
            self._depart(previous, rtc.DisconnectReason.DUPLICATE_IDENTITY)

        participant = ServerParticipant(room, session, claims, grants)
        others = list(room._participants.values())
        room._participants[participant.identity] = participant
        session._attach(room, participant, others, options)

        joined = participant.info(rtc.ParticipantState.PARTICIPANT_STATE_JOINED)
        for other in others:
            s = other.session
            s._post(functools.partial(s._on_participant_connected, _copy_info(joined)))
            s._post(functools.partial(s._on_participant_active, participant.identity))
        return participant

    def _depart(
        self,
        participant: ServerParticipant,
        reason: proto_participant.DisconnectReason.ValueType,
        *,
        client_initiated: bool = False,
        notify_others: bool = True,
    ) -> None:
        room = participant.room
        if room._participants.get(participant.identity) is not participant:
            return
        del room._participants[participant.identity]
        identity = participant.identity

        tracks = list(participant._tracks.values())
        participant._tracks.clear()
        for other in room._participants.values():
            for track in other._tracks.values():
                track._subscribers.discard(identity)
        for stream in list(room._open_streams.values()):
            if stream.sender == identity:
                stream.abort(f"participant {identity} disconnected while sending")

        if notify_others:
            for other in room._participants.values():
                s = other.session
                for track in tracks:
                    s._post(functools.partial(s._on_track_unsubscribed, identity, track.sid))
                    s._post(functools.partial(s._on_track_unpublished, identity, track.sid))
                s._post(functools.partial(s._on_participant_disconnected, identity, reason))

        session = participant.session
        if not client_initiated:
            session._post(
                functools.partial(
                    session._on_connection_state, rtc.ConnectionState.CONN_DISCONNECTED
                )
            )
            session._post(functools.partial(session._on_disconnected, reason))
        for track in tracks:
            session._post(functools.partial(session._on_local_track_unpublished, track.sid, None))
        session._stop()
        logger.debug(
            "participant left",
            extra={"room": room.name, "identity": identity, "reason": reason},
        )

    def _route_data(
        self,
        sender: ServerParticipant,
        payload: bytes,
        *,
        reliable: bool,
        destination_identities: tuple[str, ...],
        topic: str,
    ) -> None:
        room = sender.room
        kind = rtc.DataPacketKind.KIND_RELIABLE if reliable else rtc.DataPacketKind.KIND_LOSSY
        delivered: list[str] = []
        if sender.grants.can_publish_data:
            for target in self._targets(sender, destination_identities):
                s = target.session
                if s._post(functools.partial(s._on_data, sender.identity, payload, kind, topic)):
                    delivered.append(target.identity)
        else:
            logger.warning("dropping data from %s: no can_publish_data grant", sender.identity)
        room.data_packets.append(
            DataPacketRecord(
                sender=sender.identity,
                payload=payload,
                topic=topic,
                reliable=reliable,
                destination_identities=destination_identities,
                delivered_to=tuple(delivered),
            )
        )

    def _targets(
        self, sender: ServerParticipant, destination_identities: tuple[str, ...]
    ) -> list[ServerParticipant]:
        return [
            p
            for p in sender.room._participants.values()
            if p is not sender
            and (not destination_identities or p.identity in destination_identities)
        ]

    def _publish(self, publisher: ServerParticipant, track: ServerTrack) -> None:
        publisher._tracks[track.sid] = track
        for other in publisher.room._participants.values():
            if other is publisher:
                continue
            s = other.session
            info = track.publication_info(remote=True)
            s._post(functools.partial(s._on_track_published, publisher.identity, info))

    def _unpublish(self, publisher: ServerParticipant, sid: str) -> None:
        if publisher._tracks.pop(sid, None) is None:
            return
        for other in publisher.room._participants.values():
            if other is publisher:
                continue
            s = other.session
            s._post(functools.partial(s._on_track_unsubscribed, publisher.identity, sid))
            s._post(functools.partial(s._on_track_unpublished, publisher.identity, sid))

    def _update_participant(
        self,
        participant: ServerParticipant,
        *,
        attributes: Mapping[str, str] | None = None,
        metadata: str | None = None,
        name: str | None = None,
    ) -> None:
        room = participant.room
        sessions = [p.session for p in room._participants.values()]
        identity = participant.identity
        info = participant._info
        if metadata is not None and metadata != info.metadata:
            info.metadata = metadata
            for s in sessions:
                s._post(functools.partial(s._on_metadata_changed, identity, metadata))
        if name is not None and name != info.name:
            info.name = name
            for s in sessions:
                s._post(functools.partial(s._on_name_changed, identity, name))
        if attributes:
            changed: dict[str, str] = {}
            for key, value in attributes.items():
                # as the server does: an empty value deletes the key
                if value == "":
                    if key in info.attributes:
                        del info.attributes[key]
                        changed[key] = ""
                elif info.attributes.get(key) != value:
                    info.attributes[key] = value
                    changed[key] = value
            if changed:
                full = dict(info.attributes)
                for s in sessions:
                    s._post(
                        functools.partial(
                            s._on_attributes_changed, identity, dict(full), dict(changed)
                        )
                    )


def _copy_info(info: proto_participant.ParticipantInfo) -> proto_participant.ParticipantInfo:
    copy = proto_participant.ParticipantInfo()
    copy.CopyFrom(info)
    return copy
