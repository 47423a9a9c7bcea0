"""Small pieces shared by the in-memory server, rooms and streams."""

from __future__ import annotations

import logging
import secrets
import string
import time

from livekit import rtc
from livekit.rtc._proto import handle_pb2

from .realism import (
    RPC_MAX_ROUND_TRIP_LATENCY,
    RPC_MAX_V1_PAYLOAD_BYTES,
    RPC_RESPONSE_TIMEOUT,
)

logger = logging.getLogger("memory_livekit")

# livekit's own numbers, so behaviour that depends on them (chunking, RPC deadlines) matches
STREAM_CHUNK_SIZE = 15_000
RPC_DEFAULT_RESPONSE_TIMEOUT = RPC_RESPONSE_TIMEOUT
RPC_DEFAULT_MAX_ROUND_TRIP_LATENCY = RPC_MAX_ROUND_TRIP_LATENCY
_RPC_MAX_MESSAGE_BYTES = 256
_RPC_MAX_DATA_BYTES = RPC_MAX_V1_PAYLOAD_BYTES

_ALPHABET = string.ascii_letters + string.digits


def new_sid(prefix: str) -> str:
    """A server id in LiveKit's shape, e.g. ``PA_x2Lk9...``."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(12))


def no_ffi_handle() -> handle_pb2.FfiOwnedHandle:
    """Handle 0, the FFI's invalid handle: SDK objects built on it never reach the FFI."""
    return handle_pb2.FfiOwnedHandle(id=0)


def now_ms() -> int:
    return int(time.time() * 1000)


def builtin_rpc_error(code: rtc.RpcError.ErrorCode) -> rtc.RpcError:
    """A built-in error as the handler side raises it (no data)."""
    return rtc.RpcError(code, rtc.RpcError.ErrorMessage[code])


def _truncate_utf8(text: str, limit: int) -> str:
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode(errors="ignore")


def wire_rpc_error(code: int, message: str, data: str | None) -> rtc.RpcError:
    """An error as the caller receives it: rebuilt from the wire, so it is a new object, its
    message and data are truncated like the Rust SDK does, and a missing data is ``""``."""
    return rtc.RpcError(
        code,
        _truncate_utf8(message, _RPC_MAX_MESSAGE_BYTES),
        _truncate_utf8(data or "", _RPC_MAX_DATA_BYTES),
    )


def caller_rpc_error(code: rtc.RpcError.ErrorCode) -> rtc.RpcError:
    """A built-in error raised on the caller's side, in the shape the caller gets."""
    return wire_rpc_error(code, rtc.RpcError.ErrorMessage[code], None)


def split_bytes(data: bytes, size: int = STREAM_CHUNK_SIZE) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def split_text(text: str, size: int = STREAM_CHUNK_SIZE) -> list[str]:
    """Split at most ``size`` UTF-8 bytes per chunk, never inside a character."""
    encoded = text.encode()
    chunks: list[str] = []
    while encoded:
        cut = min(size, len(encoded))
        while cut < len(encoded) and (encoded[cut] & 0xC0) == 0x80:
            cut -= 1
        chunks.append(encoded[:cut].decode())
        encoded = encoded[cut:]
    return chunks
