"""The realistic mode's messages: RPC with the SDK's timeouts, codes and limits, and data
packets with latency and the SDK's size limit. Each test says what the default stand-in does
instead."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from livekit import rtc
from livekit.rtc.participant import PublishDataError

from memory_livekit import MemoryLiveKit, MemoryRoom, Realism

from .helpers import Recorder, bounded, within

CODES = rtc.RpcError.ErrorCode
SCALE = 0.05  # 7 s -> 0.35 s, 15 s -> 0.75 s
EPSILON = 0.02  # timers may fire this much early on a busy machine's clock


@pytest.fixture
async def realistic() -> AsyncIterator[Callable[..., MemoryLiveKit]]:
    servers: list[MemoryLiveKit] = []

    def make(**knobs: Any) -> MemoryLiveKit:
        knobs.setdefault("time_scale", SCALE)
        knobs.setdefault("opus_bitrate", None)
        server = MemoryLiveKit(realism=Realism(seed=7, **knobs))
        servers.append(server)
        return server

    yield make
    for server in servers:
        await within(server.aclose())
        assert server.pending_tasks == ()


async def rpc_error(room: MemoryRoom, destination: str, method: str, **kwargs: Any) -> rtc.RpcError:
    with pytest.raises(rtc.RpcError) as info:
        await room.local_participant.perform_rpc(
            destination_identity=destination,
            method=method,
            payload=kwargs.pop("payload", ""),
            **kwargs,
        )
    return info.value


def now() -> float:
    return asyncio.get_running_loop().time()


@bounded
async def test_rpc_to_a_missing_or_frozen_participant_fails_with_connection_timeout(
    realistic: Callable[..., MemoryLiveKit],
) -> None:
    """Nothing tells the caller's SDK that a callee is missing or frozen: no ACK comes, and
    after max_round_trip_latency (7 s, scaled) the call fails with CONNECTION_TIMEOUT.
    The default stand-in fails at once with RECIPIENT_NOT_FOUND, and cannot freeze anyone."""
    server = realistic()
    agent = await server.join("room", "agent", kind="agent")
    avatar = await server.join("room", "avatar", kind="agent")
    ran: list[str] = []

    def ping(data: rtc.RpcInvocationData) -> str:
        ran.append(data.payload)
        return "pong"

    avatar.local_participant.register_rpc_method("ping", ping)

    started = now()
    missing = await rpc_error(agent, "nobody", "ping")
    assert now() - started >= 7 * SCALE - EPSILON
    assert (missing.code, missing.message) == (CODES.CONNECTION_TIMEOUT, "Connection timeout")

    server.freeze("room", "avatar")
    assert "avatar" in server.rooms["room"].participants  # frozen, still in the room
    started = now()
    frozen = await rpc_error(agent, "avatar", "ping", payload="1")
    assert now() - started >= 7 * SCALE - EPSILON
    assert frozen.code == CODES.CONNECTION_TIMEOUT
    assert ran == []  # the request never reached it

    server.thaw("room", "avatar")
    reply = await agent.local_participant.perform_rpc(
        destination_identity="avatar", method="ping", payload="2"
    )
    assert (reply, ran) == ("pong", ["2"])

    with pytest.raises(RuntimeError, match="realism"):
        MemoryLiveKit().freeze("room", "avatar")


@bounded
async def test_rpc_callee_that_leaves_mid_call_gives_response_timeout(
    realistic: Callable[..., MemoryLiveKit],
) -> None:
    """A callee that is removed (or crashes) after acknowledging never answers: the caller
    fails with RESPONSE_TIMEOUT once response_timeout (15 s, scaled) has passed since the ACK.
    A callee that leaves by itself answers RECIPIENT_DISCONNECTED first, as the Python SDK
    drains its handlers before disconnecting. The default stand-in answers
    RECIPIENT_DISCONNECTED at once in both cases."""
    server = realistic()
    agent = await server.join("room", "agent", kind="agent")
    started = asyncio.Event()

    async def stuck(data: rtc.RpcInvocationData) -> str:
        started.set()
        await asyncio.sleep(60)
        return "late"

    avatar = await server.join("room", "avatar", kind="agent")
    avatar.local_participant.register_rpc_method("stuck", stuck)
    call_started = now()
    pending = asyncio.create_task(rpc_error(agent, "avatar", "stuck"))
    await within(started.wait())
    await server.remove_participant("room", "avatar")
    error = await within(pending)
    assert (error.code, error.message) == (CODES.RESPONSE_TIMEOUT, "Response timeout")
    assert now() - call_started >= 15 * SCALE - EPSILON

    started.clear()
    avatar = await server.join("room", "avatar", kind="agent")
    avatar.local_participant.register_rpc_method("stuck", stuck)
    await server.settle()
    call_started = now()
    pending = asyncio.create_task(rpc_error(agent, "avatar", "stuck"))
    await within(started.wait())
    await avatar.disconnect()
    assert (await within(pending)).code == CODES.RECIPIENT_DISCONNECTED
    assert now() - call_started < 15 * SCALE


@bounded
async def test_rpc_messages_take_the_data_latency_and_deadlines_are_scaled(
    realistic: Callable[..., MemoryLiveKit],
) -> None:
    """Request, ACK and response each travel with the data latency; the handler is told the
    SDK's response_timeout - max_round_trip_latency (8 s), scaled. The default stand-in
    answers within the same few loop iterations and tells the handler 8 s."""
    server = realistic(data_latency=0.05, data_jitter=0.0, time_scale=0.1)
    agent = await server.join("room", "agent", kind="agent")
    avatar = await server.join("room", "avatar", kind="agent")
    told: list[float] = []

    def echo(data: rtc.RpcInvocationData) -> str:
        told.append(data.response_timeout)
        return data.payload

    avatar.local_participant.register_rpc_method("echo", echo)
    started = now()
    reply = await agent.local_participant.perform_rpc(
        destination_identity="avatar", method="echo", payload="hi"
    )
    assert reply == "hi"
    assert now() - started >= 2 * 0.05 - EPSILON  # there and back
    assert told == [pytest.approx((15 - 7) * 0.1)]
    (record,) = server.rooms["room"].rpc_calls
    assert (record.response, record.done) == ("hi", True)


@bounded
async def test_rpc_payloads_over_15_kib_are_refused_by_a_v1_peer(
    realistic: Callable[..., MemoryLiveKit],
) -> None:
    """Between an SDK and a callee reporting client_protocol 0, RPC travels in data packets:
    a request over 15,360 bytes fails at once with REQUEST_PAYLOAD_TOO_LARGE, a response over
    it comes back as RESPONSE_PAYLOAD_TOO_LARGE. A callee reporting data-stream RPC (2, a
    current SDK) takes any size. The default stand-in has no limit."""
    server = realistic()
    agent = await server.join("room", "agent", kind="agent")
    old = await server.join("room", "old", kind="agent")
    new = await server.join("room", "new", kind="agent", client_protocol=2)
    for room in (old, new):
        room.local_participant.register_rpc_method("echo", lambda data: data.payload)
        room.local_participant.register_rpc_method("big", lambda data: "y" * 15_361)
    await server.settle()  # the agent learns the others' client_protocol (batched joins)
    assert agent.remote_participants["new"]._info.client_protocol == 2

    limit = "x" * 15_360
    lp = agent.local_participant
    assert await lp.perform_rpc(destination_identity="old", method="echo", payload=limit) == limit
    started = now()
    refused = await rpc_error(agent, "old", "echo", payload=limit + "x")
    assert now() - started < 7 * SCALE  # refused by the caller's SDK, not timed out
    assert (refused.code, refused.message) == (
        CODES.REQUEST_PAYLOAD_TOO_LARGE,
        "Request payload too large",
    )
    too_big = await rpc_error(agent, "old", "big")
    assert too_big.code == CODES.RESPONSE_PAYLOAD_TOO_LARGE

    big = "x" * 100_000
    assert await lp.perform_rpc(destination_identity="new", method="echo", payload=big) == big
    assert len(await lp.perform_rpc(destination_identity="new", method="big", payload="")) == 15_361


@bounded
async def test_data_packets_arrive_late_in_order_and_are_capped_at_64000_bytes(
    realistic: Callable[..., MemoryLiveKit],
) -> None:
    """Data packets arrive after the data latency plus jitter, in the order they were sent;
    a packet whose encoding exceeds 64,000 bytes is refused by the sender's SDK with its
    message. The default stand-in delivers any size at once."""
    server = realistic(data_latency=0.04, data_jitter=0.04)
    sender = await server.join("room", "sender", kind="agent")
    receiver = await server.join("room", "receiver", kind="agent")
    seen = Recorder(receiver, "data_received")
    arrivals: list[float] = []
    receiver.on("data_received", lambda _packet: arrivals.append(now()))

    sent = now()
    for i in range(30):
        await sender.local_participant.publish_data(str(i).encode(), topic="seq")
    await seen.wait_for("data_received", 30)
    payloads = [packet.data for (packet,) in seen.args("data_received")]
    assert payloads == [str(i).encode() for i in range(30)]
    assert arrivals[0] - sent >= 0.04 - EPSILON

    with pytest.raises(PublishDataError, match=r"maximum message size \(64000 bytes\)"):
        await sender.local_participant.publish_data(b"x" * 64_000)
    await sender.local_participant.publish_data(b"x" * 63_000)
    await seen.wait_for("data_received", 31)
    assert [len(r.payload) for r in server.rooms["room"].data_packets][-1] == 63_000
    assert len(server.rooms["room"].data_packets) == 31  # the refused one never left
