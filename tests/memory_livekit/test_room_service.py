"""RoomService over HTTP for the in-memory server, through livekit-api's real client."""

from __future__ import annotations

import asyncio

import pytest
from livekit import api, rtc

from avatarkit.testing import in_memory_livekit


async def test_remove_participant_through_livekit_api() -> None:
    async with in_memory_livekit() as server:
        agent = await server.join("r", "agent-1", kind="agent")
        await server.join("r", "avatar-1", kind="agent")
        gone = asyncio.Event()
        agent.on(
            "participant_disconnected", lambda p: gone.set() if p.identity == "avatar-1" else None
        )
        async with api.LiveKitAPI(server.url, server.api_key, server.api_secret) as lk:
            listed = await lk.room.list_participants(api.ListParticipantsRequest(room="r"))
            assert {p.identity for p in listed.participants} == {"agent-1", "avatar-1"}
            await lk.room.remove_participant(
                api.RoomParticipantIdentity(room="r", identity="avatar-1")
            )
            await asyncio.wait_for(gone.wait(), 5)
            with pytest.raises(api.TwirpError) as missing:
                await lk.room.remove_participant(
                    api.RoomParticipantIdentity(room="r", identity="avatar-1")
                )
            assert missing.value.code == "not_found"
            rooms = await lk.room.list_rooms(api.ListRoomsRequest())
            assert [room.name for room in rooms.rooms] == ["r"]
        assert agent.connection_state == rtc.ConnectionState.CONN_CONNECTED


async def test_a_token_without_room_admin_is_refused() -> None:
    async with in_memory_livekit() as server:
        await server.join("r", "avatar-1", kind="agent")
        async with api.LiveKitAPI(
            server.url, server.api_key, "not-the-secret-of-this-server-at-all-32b"
        ) as lk:
            with pytest.raises(api.TwirpError) as refused:
                await lk.room.remove_participant(
                    api.RoomParticipantIdentity(room="r", identity="avatar-1")
                )
        assert refused.value.status == 401
        assert "avatar-1" in server.rooms["r"].participants
