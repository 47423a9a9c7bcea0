"""A participant's connection dropping and coming back, as the SDK recovers it (realistic mode).

From livekit/rust-sdks: livekit/src/rtc_engine/mod.rs (``reconnect_task``: a resume is tried
first, a failed one escalates to a full reconnect; a full reconnect the server asks for starts
as one), livekit/src/room/mod.rs (``handle_resuming``, ``handle_restarting``,
``handle_signal_restarted``, ``handle_restarted``) and livekit-ffi/src/server/room.rs
(``LocalTrackRepublished``).

A resume keeps the session: the others notice nothing; the participant's own room emits
``reconnecting`` then ``reconnected``. A full reconnect is a new session under the same
identity: the participant's own room drops every remote participant (track and participant
events), emits ``reconnecting``, gets the others back from the join response, publishes its
tracks again (``local_track_republished``, new sids) and emits ``reconnected``. The others see
it leave and come back: the server removes the old session as a duplicate identity without
telling them, and their SDK drops it when the new session id arrives.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING

from livekit import rtc
from livekit.rtc._proto import participant_pb2 as proto_participant
from livekit.rtc._proto import track_pb2 as proto_track

from .server import ServerTrack

if TYPE_CHECKING:
    from .server import MemoryLiveKit, ServerParticipant

_RECONNECTING = rtc.ConnectionState.CONN_RECONNECTING
_CONNECTED = rtc.ConnectionState.CONN_CONNECTED


async def reconnect(
    server: MemoryLiveKit,
    participant: ServerParticipant,
    *,
    full: bool,
    downtime: float,
    resume_first: bool,
) -> None:
    session = participant.session
    if not full or resume_first:
        participant.net = "resuming"
    if full and not resume_first:
        participant.net = "restarting"
        session._post(session._on_remotes_lost)
    session._post(functools.partial(session._on_connection_state, _RECONNECTING))
    session._post(session._on_reconnecting)
    await asyncio.sleep(downtime)
    room = participant.room
    if room._participants.get(participant.identity) is not participant or room.deleted:
        return  # it was removed, replaced or left meanwhile
    if not full:
        session._post(functools.partial(session._on_connection_state, _CONNECTED))
        session._post(session._on_reconnected)
        server._network.resume(participant)  # then what waited for it, and what it sent
        return
    if resume_first:
        session._post(session._on_remotes_lost)  # the resume failed: a full reconnect
    participant.net = "restarting"
    await _restart(server, participant)


async def _restart(server: MemoryLiveKit, old: ServerParticipant) -> None:
    session = old.session
    published = dict(old._tracks)
    new, others = server._rejoin(old)
    back: list[tuple[proto_participant.ParticipantInfo, list[proto_track.TrackPublicationInfo]]] = [
        (
            other.info(rtc.ParticipantState.PARTICIPANT_STATE_ACTIVE),
            [t.publication_info(remote=True) for t in other._tracks.values()],
        )
        for other in others
    ]
    session._post(functools.partial(session._on_remotes_back, back))
    await asyncio.sleep(0)
    # the SDK publishes every local track again (room/mod.rs, handle_restarted)
    for previous_sid, publication in list(session.local_participant._track_publications.items()):
        old_track = published.get(previous_sid)
        local = publication.track
        if old_track is None or not isinstance(local, (rtc.LocalAudioTrack, rtc.LocalVideoTrack)):
            continue
        track = ServerTrack(new.identity, local, old_track.options)
        track._announced = True  # the app had its first-subscription signal already
        server._publish(new, track)
        session._post(
            functools.partial(
                session._on_local_track_republished,
                previous_sid,
                track.publication_info(remote=False),
            )
        )
    server._network.resume(new)
    session._post(functools.partial(session._on_connection_state, _CONNECTED))
    session._post(session._on_reconnected)
