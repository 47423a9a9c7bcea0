"""LiveKit Inference on the wire, against ``livekit.agents.inference.AvatarSession``.

Both sides call the gateway double, which holds the in-memory server's key pair as the gateway
holds the project's: it verifies each side's gateway JWT and mints the avatar's room token.
Beyond the shared harness (tests/providers/parity.py), this file compares what that harness
cannot see for this provider:

- the gateway JWT, masked in the records: its claims stand in for the ``authorization`` header;
- the per-request random header values (``idempotency-key``, ``x-livekit-session-id``) and the
  agent's participant sid, checked against their form and then replaced by placeholders;
- the terminate request's body and headers (the harness keeps only "METHOD path" of requests
  made while closing), its session id and HMAC replaced by placeholders once checked.

The avatar's token is the gateway's, not either side's: the claims compared are those of the
token the double minted from each side's create request (it hands the harness that token, not
a second mint), so they show what each side's room fields make the gateway grant.
"""

from __future__ import annotations

import json
import re
from typing import Any

import attrs
import pytest
from aiohttp import web
from livekit import rtc
from livekit.agents import AgentSession, inference

import avatarkit
from avatarkit.secret import MASK
from avatarkit_doubles.engine import token_claims
from avatarkit_providers.inference.double import GatewayDouble
from memory_livekit import MemoryLiveKit
from tests.helpers.avatars import small_video
from tests.providers.parity import assert_parity, compare

INTENDED: dict[str, str] = {}  # none: the same requests, token claims, audio path and ending

_ENV = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "LIVEKIT_INFERENCE_URL",
        "LIVEKIT_INFERENCE_API_KEY", "LIVEKIT_INFERENCE_API_SECRET")  # fmt: skip
# header: (the form every value must have, its placeholder)
_GENERATED_HEADERS = {
    "idempotency-key": (r"[0-9a-f]{32}", "<uuid4 hex>"),  # one per start()
    "x-livekit-session-id": (r"inference_[0-9A-Za-z]+", "<inference session id>"),  # per call
    "x-livekit-agent-id": (r"PA_[0-9A-Za-z]+", "<agent participant sid>"),  # per room
}
_TRANSPORT = {"host", "content-length", "user-agent", "accept", "accept-encoding"}  # as parity.py


class Official(inference.AvatarSession):
    """The official session, started as the harness starts every plugin's: this one takes no
    LiveKit key pair (the gateway mints the avatar's token), so start() drops it."""

    async def start(  # type: ignore[override]
        self,
        agent_session: AgentSession[Any],
        room: rtc.Room,
        *,
        livekit_url: str,
        livekit_api_key: str,
        livekit_api_secret: str,
    ) -> None:
        await super().start(agent_session, room, livekit_url=livekit_url)


class RecordingGateway(GatewayDouble):
    """The gateway double, recording the gateway JWT's claims in place of its mask and the
    generated header values as placeholders (after checking their form)."""

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        response = await super()._record(request, handler)
        record = self.requests[-1]  # this request's: the double answers one at a time here
        headers = {k.lower(): v for k, v in record.headers.items()}
        if headers.get("authorization") == MASK:  # sent, and masked in the record
            headers["authorization"] = self._jwt(request.headers["Authorization"])
        for name, (form, placeholder) in _GENERATED_HEADERS.items():
            if name in headers and re.fullmatch(form, headers[name]):
                headers[name] = placeholder
        self.requests[-1] = attrs.evolve(record, headers=headers)
        return response

    def _jwt(self, header: str) -> str:
        try:
            claims = token_claims(header.removeprefix("Bearer "))
            claims["ttl_s"] = claims.pop("exp") - claims.pop("nbf")
        except (ValueError, LookupError):  # not a LiveKit JWT (the double answered 401)
            return MASK
        if claims.get("iss") == self.api_key:
            claims["iss"] = "<the project's key>"
        return "Bearer " + json.dumps(claims, sort_keys=True)


def _terminates(double: GatewayDouble) -> dict[str, Any]:
    """Each side's terminate request, its session's id and HMAC replaced once checked."""
    sessions = list(double.sessions.values())
    ends = double.requests_for("end")
    assert len(sessions) == len(ends) == 2, "one session and one terminate per side"
    flat: dict[str, Any] = {}
    for side, session, end in zip(("official", "avatarkit"), sessions, ends, strict=True):
        body = dict(end.body)
        if body.get("provider_session_id") == session.id:
            body["provider_session_id"] = "<its provider_session_id>"
        if body.get("terminate_token") == double.terminate_token(session.id):
            body["terminate_token"] = "<its terminate_token>"
        headers = {k: v for k, v in end.headers.items() if k not in _TRANSPORT}
        flat[side] = {"ending[0].body": body, "ending[0].headers": headers}
    return flat


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


CASES = [
    # given as options; the agent id and LemonSlice's options mapped onto the request
    ({"model": "lemonslice/agent_abc",
      "extra_kwargs": {"prompt": "smile", "idle_timeout": 30, "voice": "calm"}}, "options", 24000),
    # the gateway and the pair from LIVEKIT_INFERENCE_*; an image instead of an agent id
    ({"model": "lemonslice",
      "extra_kwargs": {"image_url": "https://cdn.example.com/face.png", "idle_prompt": "wait"}},
     "inference variables", 16000),
    # the pair from the project's LIVEKIT_API_KEY / LIVEKIT_API_SECRET
    ({"model": "lemonslice"}, "project variables", 24000),
]  # fmt: skip


@pytest.mark.parametrize(("options", "configured_by", "sample_rate"), CASES)
async def test_the_wire_matches_the_official_plugin(
    livekit: MemoryLiveKit,
    monkeypatch: pytest.MonkeyPatch,
    options: dict[str, Any],
    configured_by: str,
    sample_rate: int,
) -> None:
    async with RecordingGateway(
        api_key=livekit.api_key,
        api_secret=livekit.api_secret,
        sample_rate=sample_rate,  # the rate both sides must stream at
        video=small_video,
    ) as double:
        common = dict(options)
        pair = {"api_key": livekit.api_key, "api_secret": livekit.api_secret}
        if configured_by == "options":
            common.update(base_url=double.url, **pair)
        else:
            prefix = "LIVEKIT_INFERENCE_" if configured_by == "inference variables" else "LIVEKIT_"
            monkeypatch.setenv("LIVEKIT_INFERENCE_URL", double.url)
            monkeypatch.setenv(f"{prefix}API_KEY", livekit.api_key)
            monkeypatch.setenv(f"{prefix}API_SECRET", livekit.api_secret)
        differences = await compare(
            double,
            livekit,
            official=lambda: Official(**common),
            ours=lambda: avatarkit.get("inference", **common),
            generated={r"RM_[0-9A-Za-z]+": "<room sid>"},
        )
        # one token per side, and the harness compared those: not a second mint of its own
        assert len(double.minted) == 2
        assert [r.status for r in double.requests] == [200, 200, 200, 200]
        terminates = _terminates(double)
    theirs, mine = terminates["official"], terminates["avatarkit"]
    differences.update({k: (theirs[k], mine[k]) for k in sorted(theirs) if theirs[k] != mine[k]})
    assert_parity(differences, INTENDED)
