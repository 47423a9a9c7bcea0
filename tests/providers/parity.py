"""Wire parity with the official plugins: run a plugin's ``AvatarSession`` and avatarkit's
provider with the same options against the same recording double and the same in-memory room,
in a real job context, and compare what each put on the wire.

Compared, per side: every request (method, path, headers with credentials masked, JSON body
with the avatar token and generated names replaced by placeholders), the avatar token's claims
(kind, identity, name, grants, attributes, lifetime), the audio path (the data-stream output's
destination, sample rate, awaited track kind, playback-start reporting) and the requests made
while closing. A difference that is not declared intended fails with the diff.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import pprint
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import attrs
from livekit.agents import Agent, AgentSession
from livekit.agents.voice.avatar import DataStreamAudioOutput

from avatarkit_doubles.engine import ApiDouble, Recorded, token_claims
from memory_livekit import MemoryLiveKit
from memory_livekit.job import job_context

AGENT = "agent-1"
_TRANSPORT_HEADERS = {"host", "content-length", "user-agent", "accept", "accept-encoding"}


@contextmanager
def audio_outputs() -> Iterator[list[dict[str, Any]]]:
    """Record how every ``DataStreamAudioOutput`` (livekit's, or avatarkit's subclass) is built."""
    built: list[dict[str, Any]] = []
    original = DataStreamAudioOutput.__init__

    def spy(self: Any, *args: Any, **kwargs: Any) -> None:
        bound = inspect.signature(original).bind(self, *args, **kwargs)
        bound.apply_defaults()  # compare what each side gets, given or by default
        built.append({k: v for k, v in bound.arguments.items() if k not in ("self", "room")})
        original(self, *args, **kwargs)

    DataStreamAudioOutput.__init__ = spy  # type: ignore[method-assign]
    try:
        yield built
    finally:
        DataStreamAudioOutput.__init__ = original  # type: ignore[method-assign]


@attrs.frozen
class Wire:
    requests: list[dict[str, Any]]
    claims: dict[str, Any]
    audio: dict[str, Any]
    ending: list[str]

    def flat(self) -> dict[str, Any]:
        flat: dict[str, Any] = {"ending": self.ending}
        for i, request in enumerate(self.requests):
            for key, value in request.items():
                flat[f"request[{i}].{key}"] = value
        flat.update({f"claims.{k}": v for k, v in self.claims.items()})
        flat.update({f"audio.{k}": v for k, v in self.audio.items()})
        return flat


def _normalize(value: Any, token: str, generated: Mapping[str, str]) -> Any:
    text = json.dumps(value, sort_keys=True).replace(token, "<avatar token>")
    text = re.sub(r"parity-(official|avatarkit)", "<room>", text)
    for pattern, placeholder in generated.items():
        text = re.sub(pattern, placeholder, text)
    return json.loads(text)


def _request(record: Recorded, token: str, generated: Mapping[str, str]) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in record.headers.items()}
    headers = {k: v for k, v in sorted(headers.items()) if k not in _TRANSPORT_HEADERS}
    return {
        "method": record.method,
        "path": _normalize(record.path, token, generated),
        "headers": headers,
        "body": _normalize(record.body, token, generated),
    }


async def observe(
    make: Callable[[], Any],
    double: ApiDouble,
    livekit: MemoryLiveKit,
    room_name: str,
    generated: Mapping[str, str],
) -> Wire:
    """Start ``make()``'s avatar in a fresh room as a job would, let it join, close it."""
    room = await livekit.join(room_name, AGENT, kind="agent")
    first = len(double.requests)
    with audio_outputs() as outputs:
        async with job_context(room):
            session: AgentSession[Any] = AgentSession()
            avatar = make()
            await avatar.start(
                session,
                room,
                livekit_url=livekit.url,
                livekit_api_key=livekit.api_key,
                livekit_api_secret=livekit.api_secret,
            )
            await session.start(agent=Agent(instructions="parity"))
            await avatar.wait_for_join(timeout=10)
            created = list(double.sessions.values())[-1]
            _, token = double.description.join(created.body)
            before_close = len(double.requests)
            await asyncio.wait_for(avatar.aclose(), 10)
            await session.aclose()
    await room.disconnect()
    claims = token_claims(token)
    audio = dict(outputs[0]) if outputs else {}
    audio.pop("room", None)
    return Wire(
        requests=[_request(r, token, generated) for r in double.requests[first:before_close]],
        claims={
            "kind": claims.get("kind"),
            "identity": claims.get("sub"),
            "name": claims.get("name"),
            "video": _normalize(claims.get("video"), token, generated),
            "attributes": claims.get("attributes"),
            "ttl_minutes": round((claims["exp"] - time.time()) / 60),
        },
        audio={k: str(v) for k, v in sorted(audio.items())},
        ending=[
            f"{r.method} {_normalize(r.path, token, generated)}"
            for r in double.requests[before_close:]
        ],
    )


async def compare(
    double: ApiDouble,
    livekit: MemoryLiveKit,
    *,
    official: Callable[[], Any],
    ours: Callable[[], Any],
    generated: Mapping[str, str] = {},
) -> dict[str, tuple[Any, Any]]:
    """The differences (key: (official, avatarkit)) between the two sides' wire."""
    theirs = (await observe(official, double, livekit, "parity-official", generated)).flat()
    mine = (await observe(ours, double, livekit, "parity-avatarkit", generated)).flat()
    return {
        key: (theirs.get(key), mine.get(key))
        for key in sorted(set(theirs) | set(mine))
        if theirs.get(key) != mine.get(key)
    }


def assert_parity(differences: dict[str, tuple[Any, Any]], intended: Mapping[str, str]) -> None:
    """Every difference is declared in ``intended`` (key: why), and every declared one exists."""
    unexplained = {k: v for k, v in differences.items() if k not in intended}
    assert not unexplained, "wire differences from the official plugin:\n" + pprint.pformat(
        {k: {"official": a, "avatarkit": b} for k, (a, b) in unexplained.items()}, width=100
    )
    stale = set(intended) - set(differences)
    assert not stale, f"declared differences that no longer exist: {sorted(stale)}"
