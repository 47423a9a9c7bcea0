"""RPC as the SDK runs it over a real server (realistic mode only).

The caller sends the request and waits ``max_round_trip_latency`` (7 s) for the callee's
acknowledgement, which the callee's SDK sends on receipt; without it the call fails with
``CONNECTION_TIMEOUT``. It then waits ``response_timeout`` (15 s) for the response, else
``RESPONSE_TIMEOUT``. Nothing tells the caller that a callee left, or that there is no such
participant: the server drops packets for nobody, so those calls time out too. When the callee
reports a ``client_protocol`` below 1, RPC travels in data packets (v1) and payloads over
15 KiB are refused. (livekit/rust-sdks: livekit/src/room/rpc/client.rs ``perform_rpc``,
rpc/server.rs ``handle_v1_request``, rpc/mod.rs.)

The SDK's default timeouts are scaled by ``Realism.time_scale``; timeouts the caller passes
are used as given.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from typing import TYPE_CHECKING

from livekit import rtc

from ._common import builtin_rpc_error, caller_rpc_error
from .realism import (
    CLIENT_PROTOCOL_DATA_STREAM_RPC,
    RPC_MAX_ROUND_TRIP_LATENCY,
    RPC_MAX_V1_PAYLOAD_BYTES,
    RPC_MIN_EFFECTIVE_TIMEOUT,
    RPC_RESPONSE_TIMEOUT,
    Realism,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from .room import MemoryRoom
    from .server import ServerParticipant

    _MakeItem = Callable[[MemoryRoom], Callable[[], None]]

_Codes = rtc.RpcError.ErrorCode


async def call(
    caller: MemoryRoom, sender: ServerParticipant, info: rtc.RpcCallInfo, realism: Realism
) -> str:
    """Perform ``info`` from ``caller`` (whose participant is ``sender``)."""
    response_timeout = (
        info.response_timeout
        if info.response_timeout is not None
        else realism.scaled(RPC_RESPONSE_TIMEOUT)
    )
    max_round_trip = (
        info.max_round_trip_latency
        if info.max_round_trip_latency is not None
        else realism.scaled(RPC_MAX_ROUND_TRIP_LATENCY)
    )
    # the transport is chosen from what the caller knows of the callee (0 if unknown)
    known = caller._remote_participants.get(info.destination_identity)
    v1 = (known._info.client_protocol if known else 0) < CLIENT_PROTOCOL_DATA_STREAM_RPC
    if v1 and len(info.payload.encode()) > RPC_MAX_V1_PAYLOAD_BYTES:
        raise caller_rpc_error(_Codes.REQUEST_PAYLOAD_TOO_LARGE)

    loop = asyncio.get_running_loop()
    request_id = str(uuid.uuid4())
    ack: asyncio.Future[None] = loop.create_future()
    response: asyncio.Future[str] = loop.create_future()
    caller._pending_acks[request_id] = ack
    caller._pending_calls[request_id] = response
    handler_timeout = max(
        response_timeout - max_round_trip, realism.scaled(RPC_MIN_EFFECTIVE_TIMEOUT)
    )
    target = sender.room._participants.get(info.destination_identity)
    if target is not None and target is not sender:
        session = target.session
        request = functools.partial(
            session._on_rpc_request,
            request_id,
            caller,
            sender.identity,
            info.method,
            info.payload,
            handler_timeout,
            v1,
        )
        sender.room.server._network.send(sender, target, request)
    try:
        try:
            await asyncio.wait_for(ack, max_round_trip)
        except asyncio.TimeoutError:
            raise caller_rpc_error(_Codes.CONNECTION_TIMEOUT) from None
        try:
            return await asyncio.wait_for(response, response_timeout)
        except asyncio.TimeoutError:
            raise caller_rpc_error(_Codes.RESPONSE_TIMEOUT) from None
    finally:
        caller._pending_acks.pop(request_id, None)
        caller._pending_calls.pop(request_id, None)


def acknowledge(callee: MemoryRoom, request_id: str, caller_identity: str) -> None:
    """The callee's SDK acknowledges a request as soon as it arrives."""
    _reply(callee, caller_identity, lambda s: functools.partial(s._on_rpc_ack, request_id))


def answer(
    callee: MemoryRoom,
    request_id: str,
    caller_identity: str,
    v1: bool,
    response: str | None,
    error: rtc.RpcError | None,
) -> None:
    """Send the handler's outcome back; lost if the callee is no longer in the room."""
    if error is None and v1 and len((response or "").encode()) > RPC_MAX_V1_PAYLOAD_BYTES:
        response, error = None, builtin_rpc_error(_Codes.RESPONSE_PAYLOAD_TOO_LARGE)
    wire = None if error is None else (error.code, error.message, error.data)
    _reply(
        callee,
        caller_identity,
        lambda s: functools.partial(s._on_rpc_response, request_id, response or "", wire),
    )


def _reply(callee: MemoryRoom, caller_identity: str, make: _MakeItem) -> None:
    me = callee._server_participant
    if me is None or me.room._participants.get(me.identity) is not me:
        return  # it left: nothing it still had to say gets out
    target = me.room._participants.get(caller_identity)  # the server routes by identity
    if target is not None:
        me.room.server._network.send(me, target, make(target.session))
