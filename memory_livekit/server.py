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
from .lifetime import RoomLifetime
from .network import NetState, Network
from .realism import Realism
from .updates import ParticipantUpdates

if TYPE_CHECKING:
    from .media import TrackRelay
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
        self.options = options
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
        self.relay: TrackRelay | None = None
        """How its media reaches subscribers in realistic mode (created on first subscription)."""

    def close(self) -> None:
        """The track is gone: its media stops reaching subscribers."""
        if self.relay is not None:
            self.relay.close()

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
        self,
        room: ServerRoom,
        session: MemoryRoom,
        claims: Claims,
        grants: api.VideoGrants,
        *,
        order: int = 0,
        client_protocol: int = 0,
    ) -> None:
        self.room = room
        self.session = session
        """The client side: the :class:`MemoryRoom` this participant is connected through."""
        self.grants = grants
        self.claims = claims
        self.order = order
        """When this session joined the server: a larger number is a newer session."""
        self.is_publisher = False
        """It has published a track (the server's ``IsPublisher``; it stays set)."""
        self.net: NetState = "up"
        """Its network, in realistic mode: see :data:`memory_livekit.network.NetState`."""
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
            client_protocol=client_protocol,
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
    def client_protocol(self) -> int:
        """What its SDK reports (RPC to it travels in data streams from 1 on)."""
        return self._info.client_protocol

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
        self.created = time.monotonic()
        self._participants: dict[str, ServerParticipant] = {}
        self._open_streams: dict[str, OutgoingStream] = {}
        self.deleted = False
        self.data_packets: list[DataPacketRecord] = []
        """Every ``publish_data`` in this room, in order."""
        self.streams: list[StreamRecord] = []
        """Every byte and text stream opened in this room, in order."""
        self.rpc_calls: list[RpcRecord] = []
        """Every RPC call routed in this room, in order."""
        self.close_reason: proto_participant.DisconnectReason.ValueType | None = None
        """Why the room went away (``ROOM_DELETED``, or ``ROOM_CLOSED`` when it closed itself)."""
        self._updates: ParticipantUpdates | None = None
        self._lifetime: RoomLifetime | None = None

    @property
    def closes_at(self) -> float | None:
        """In realistic mode, when the server will close this room by itself
        (``time.monotonic()``), if nothing changes before."""
        return self._lifetime.deadline if self._lifetime is not None else None

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

    Without ``realism`` the server is kind: messages arrive at once, RPC to a missing
    participant fails at once, audio is bit-exact (``docs/memory-livekit.md`` lists what it
    does not model). ``realism=Realism(...)`` makes it behave as a real server and SDK do.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        api_key: str | None = None,
        api_secret: str | None = None,
        *,
        auto_create_rooms: bool = True,
        realism: Realism | None = None,
    ) -> None:
        self.url = url
        self.api_key = api_key or "APImem" + secrets.token_hex(5)
        self._api_secret = api_secret or secrets.token_urlsafe(32)
        self.auto_create_rooms = auto_create_rooms
        """When False, only rooms made with :meth:`create_room` can be joined."""
        self.realism = realism
        """The realistic mode's settings, or None for the kind stand-in."""
        self._rooms: dict[str, ServerRoom] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._posted = 0
        self._network = Network(realism)
        self._order = 0

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
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                pass  # its timers start with the first participant
            else:
                self._room_timers(room)
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

    async def connect(
        self,
        token: str,
        *,
        options: rtc.RoomOptions | None = None,
        client_protocol: int | None = None,
    ) -> MemoryRoom:
        """Connect a new :class:`MemoryRoom` with ``token``; raises ``rtc.ConnectError`` when
        the server would refuse it. ``client_protocol`` is what the participant's SDK reports
        (default: ``realism.client_protocol``, else 0)."""
        from .room import MemoryRoom

        room = MemoryRoom(self)
        room._client_protocol = client_protocol
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
        client_protocol: int | None = None,
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
        return await self.connect(token, options=options, client_protocol=client_protocol)

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
        server_room = self._rooms.get(room)
        if server_room is None:
            raise api.TwirpError("not_found", "requested room does not exist", status=404)
        for participant in self._close_room(server_room, rtc.DisconnectReason.ROOM_DELETED):
            await participant.session._wait_stopped()

    def freeze(self, room: str, identity: str) -> None:
        """Realistic mode: the participant stays in the room but nothing it sends arrives
        (data, streams, RPC acknowledgements and responses, audio and video) and nothing sent
        to it reaches it, so RPC to it fails with ``CONNECTION_TIMEOUT``. :meth:`thaw` ends it."""
        self._find(room, identity, "freeze").net = "frozen"

    def thaw(self, room: str, identity: str) -> None:
        """Undo :meth:`freeze`."""
        participant = self._find(room, identity, "thaw")
        if participant.net == "frozen":
            participant.net = "up"

    async def reconnect(
        self,
        room: str,
        identity: str,
        *,
        full: bool = True,
        downtime: float | None = None,
        resume_first: bool = True,
    ) -> None:
        """Realistic mode: the participant's connection drops for ``downtime`` seconds
        (default 1 s, scaled) and comes back, as the SDK recovers it; returns once it is back.

        ``full=False`` is a resume: invisible to the others; its own room emits
        ``reconnecting`` then ``reconnected``, and messages to and from it wait meanwhile.
        ``full=True`` is a full reconnect: a new session under the same identity, its tracks
        published again; the others see it leave and come back. ``resume_first`` (a dropped
        connection, whose resume failed) or not (the server asked for a full reconnect)
        changes the order of its own room's events; see ``docs/memory-livekit.md``."""
        from .reconnect import reconnect

        participant = self._find(room, identity, "reconnect")
        realism = self.realism
        assert realism is not None
        await reconnect(
            self,
            participant,
            full=full,
            downtime=realism.scaled(1.0) if downtime is None else downtime,
            resume_first=resume_first,
        )

    async def settle(self) -> None:
        """Wait until every event queued to any session, and any event those caused, has been
        delivered (in realistic mode, messages on their way and batched participant updates
        too). Raises RuntimeError if traffic never stops."""
        for _ in range(_SETTLE_ROUNDS):
            await self._network.wait_idle()
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
            if self._posted == before and self._network.idle:
                return
        raise RuntimeError(f"traffic did not settle after {_SETTLE_ROUNDS} rounds")

    async def aclose(self) -> None:
        """Delete every room, disconnecting every session."""
        for name in list(self._rooms):
            await self.delete_room(name)
        self._network.aclose()
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

    def _find(self, room: str, identity: str, what: str) -> ServerParticipant:
        if self.realism is None:
            raise RuntimeError(f"{what}() needs the realistic mode: MemoryLiveKit(realism=...)")
        server_room = self._rooms.get(room)
        participant = server_room._participants.get(identity) if server_room else None
        if participant is None:
            raise api.TwirpError("not_found", "participant not found", status=404)
        return participant

    def _room_timers(self, room: ServerRoom) -> None:
        """Start a realistic room's batching and auto-close (needs a running loop)."""
        realism = self.realism
        if realism is None or room._updates is not None:
            return
        interval = realism.join_batch_interval
        room._updates = ParticipantUpdates(
            room, self._network, realism.scaled(interval) if interval is not None else None
        )
        room._lifetime = RoomLifetime(room, realism)
        room._lifetime.update()

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
        self._room_timers(room)

        previous = room._participants.get(claims.identity)
        if previous is not None:
            # the server keeps the newest connection of an identity (pkg/service/roommanager.go,
            # "removing duplicate participant"); in realistic mode the others are not told
            self._depart(previous, rtc.DisconnectReason.DUPLICATE_IDENTITY)

        participant = self._new_participant(room, session, claims, grants, session._client_protocol)
        others = list(room._participants.values())
        room._participants[participant.identity] = participant
        session._attach(room, participant, others, options)
        if room._updates is not None and room._lifetime is not None:
            room._updates.push(participant, rtc.ParticipantState.PARTICIPANT_STATE_ACTIVE)
            room._lifetime.joined(participant)
            return participant

        joined = participant.info(rtc.ParticipantState.PARTICIPANT_STATE_JOINED)
        for other in others:
            s = other.session
            s._post(functools.partial(s._on_participant_connected, _copy_info(joined)))
            s._post(functools.partial(s._on_participant_active, participant.identity))
        return participant

    def _new_participant(
        self,
        room: ServerRoom,
        session: MemoryRoom,
        claims: Claims,
        grants: api.VideoGrants,
        client_protocol: int | None,
    ) -> ServerParticipant:
        self._order += 1
        if client_protocol is None:
            client_protocol = self.realism.client_protocol if self.realism is not None else 0
        return ServerParticipant(
            room, session, claims, grants, order=self._order, client_protocol=client_protocol
        )

    def _rejoin(self, old: ServerParticipant) -> tuple[ServerParticipant, list[ServerParticipant]]:
        """A full reconnect: ``old``'s session joins again as a new participant; the old one is
        removed as a duplicate identity (the others are not told). Returns the new participant
        and the others, as the join response lists them."""
        room, session = old.room, old.session
        self._remove(old, rtc.DisconnectReason.DUPLICATE_IDENTITY, keep_outbox=True)
        new = self._new_participant(room, session, old.claims, old.grants, old.client_protocol)
        # the token the SDK rejoins with is refreshed by the server with the participant's
        # current name, metadata and attributes (pkg/service/roommanager.go, refreshToken)
        new._info.name = old.name
        new._info.metadata = old.metadata
        new._info.attributes.clear()
        new._info.attributes.update(old._info.attributes)
        new.net = "restarting"  # until its tracks are published again
        others = list(room._participants.values())
        room._participants[new.identity] = new
        session._server_participant = new
        session.local_participant._info.sid = new.sid
        if room._updates is not None and room._lifetime is not None:
            room._updates.push(new, rtc.ParticipantState.PARTICIPANT_STATE_ACTIVE)
            room._lifetime.joined(new)
        return new, others

    def _remove(
        self,
        participant: ServerParticipant,
        reason: proto_participant.DisconnectReason.ValueType,
        *,
        notify_others: bool = True,
        keep_outbox: bool = False,
    ) -> list[ServerTrack] | None:
        """Take ``participant`` out of its room; returns its tracks, or None if it was not
        there."""
        room = participant.room
        if room._participants.get(participant.identity) is not participant:
            return None
        del room._participants[participant.identity]
        identity = participant.identity

        tracks = list(participant._tracks.values())
        participant._tracks.clear()
        for track in tracks:
            track.close()
        for other in room._participants.values():
            for track in other._tracks.values():
                track._subscribers.discard(identity)
                if track.relay is not None:
                    track.relay.drop(identity)
        for stream in list(room._open_streams.values()):
            if stream.sender == identity:
                stream.abort(f"participant {identity} disconnected while sending")

        if self.realism is not None:
            self._network.forget(participant, outbox=not keep_outbox)
            if notify_others and room._updates is not None:
                room._updates.push(
                    participant, rtc.ParticipantState.PARTICIPANT_STATE_DISCONNECTED, reason=reason
                )
            if room._lifetime is not None and not room.deleted:
                room._lifetime.left()
        elif notify_others:
            for other in room._participants.values():
                s = other.session
                for track in tracks:
                    s._post(functools.partial(s._on_track_unsubscribed, identity, track.sid))
                    s._post(functools.partial(s._on_track_unpublished, identity, track.sid))
                s._post(functools.partial(s._on_participant_disconnected, identity, reason))
        return tracks

    def _depart(
        self,
        participant: ServerParticipant,
        reason: proto_participant.DisconnectReason.ValueType,
        *,
        client_initiated: bool = False,
        notify_others: bool = True,
    ) -> None:
        tracks = self._remove(participant, reason, notify_others=notify_others)
        if tracks is None:
            return
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
            extra={
                "room": participant.room.name,
                "identity": participant.identity,
                "reason": reason,
            },
        )

    def _close_room(
        self, room: ServerRoom, reason: proto_participant.DisconnectReason.ValueType
    ) -> list[ServerParticipant]:
        """Forget ``room`` and disconnect everyone in it with ``reason``; returns them."""
        if self._rooms.get(room.name) is room:
            del self._rooms[room.name]
        room.deleted = True
        room.close_reason = reason
        if room._updates is not None:
            room._updates.close()
        if room._lifetime is not None:
            room._lifetime.cancel()
        participants = list(room._participants.values())
        for participant in participants:
            self._depart(participant, reason, notify_others=False)
        return participants

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
                item = functools.partial(s._on_data, sender.identity, payload, kind, topic)
                if self._network.send(sender, target, item):
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
        updates = publisher.room._updates
        if updates is not None:
            # a publisher's updates go at once, with any queued one (pkg/rtc/room.go)
            publisher.is_publisher = True
            updates.push(publisher, rtc.ParticipantState.PARTICIPANT_STATE_ACTIVE, immediate=True)
        for other in publisher.room._participants.values():
            if other is publisher:
                continue
            s = other.session
            info = track.publication_info(remote=True)
            s._post(functools.partial(s._on_track_published, publisher.identity, info))

    def _unpublish(self, publisher: ServerParticipant, sid: str) -> None:
        track = publisher._tracks.pop(sid, None)
        if track is None:
            return
        track.close()
        for other in publisher.room._participants.values():
            if other is publisher:
                continue
            s = other.session
            s._post(functools.partial(s._on_track_unsubscribed, publisher.identity, sid))
            s._post(functools.partial(s._on_track_unpublished, publisher.identity, sid))

    def _relay_output(
        self, track: ServerTrack, subscriber: ServerParticipant
    ) -> rtc.LocalAudioTrack | rtc.LocalVideoTrack | None:
        """Realistic mode: the native track ``subscriber`` reads ``track`` from."""
        realism = self.realism
        publisher = subscriber.room._participants.get(track.publisher)
        if realism is None or publisher is None:
            return None
        if track.relay is None:
            from .media import TrackRelay

            track.relay = TrackRelay(track, publisher, self._network, realism, self._track_task)
        return track.relay.output(subscriber)

    def _update_participant(
        self,
        participant: ServerParticipant,
        *,
        attributes: Mapping[str, str] | None = None,
        metadata: str | None = None,
        name: str | None = None,
    ) -> None:
        room = participant.room
        updates = room._updates
        # realistic mode: the others learn of it from the participant update, sent at once
        # (pkg/rtc/room.go, onParticipantUpdate), as their SDK compares it with what it knew
        everyone = updates is None
        sessions = [p.session for p in room._participants.values() if everyone or p is participant]
        identity = participant.identity
        info = participant._info
        changed_any = False
        if metadata is not None and metadata != info.metadata:
            info.metadata = metadata
            changed_any = True
            for s in sessions:
                s._post(functools.partial(s._on_metadata_changed, identity, metadata))
        if name is not None and name != info.name:
            info.name = name
            changed_any = True
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
                changed_any = True
                full = dict(info.attributes)
                for s in sessions:
                    s._post(
                        functools.partial(
                            s._on_attributes_changed, identity, dict(full), dict(changed)
                        )
                    )
        if updates is not None and changed_any:
            updates.push(participant, rtc.ParticipantState.PARTICIPANT_STATE_ACTIVE, immediate=True)


def _copy_info(info: proto_participant.ParticipantInfo) -> proto_participant.ParticipantInfo:
    copy = proto_participant.ParticipantInfo()
    copy.CopyFrom(info)
    return copy
