"""Validation of ``POST /v1/realtime_sessions`` bodies, modelled on Runway's public API.

Runway validates with zod (the two messages users have reported verbatim,
``Unrecognized key: livekit`` and ``Too big: expected number to be <=1800``, are zod's),
so messages here follow zod's wording. The API answers with the first issue as
``error``; every issue is also returned, with its path, under ``issues``.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import attrs

from ..options import KNOWN_PRESETS, MAX_DURATION

__all__ = [
    "API_VERSION",
    "MAX_DURATION_LIMIT",
    "MISSING",
    "MODEL",
    "RUNWAY_PRESETS",
    "CreateBodyValidator",
    "ValidationIssue",
    "is_public_host",
]

API_VERSION = "2024-11-06"
MODEL = "gwm1_avatars"
MAX_DURATION_LIMIT = MAX_DURATION
RUNWAY_PRESETS = KNOWN_PRESETS  # the client's list is the API's: one place to update

_TOOL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# A public DNS name never ends in a numeric label; this also catches shorthand IPs
# such as "127.1" or "0x7f.1" that resolvers expand to loopback.
_TLD = re.compile(r"[a-z](?:[a-z0-9-]*[a-z0-9])?")
_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".lan", ".intranet")
_SCALAR_TYPES = ("string", "integer", "number", "boolean")
_PARAM_TYPES = (*_SCALAR_TYPES, "array", "object")

Path = tuple[str | int, ...]


@attrs.frozen
class ValidationIssue:
    """One problem found in a request body.

    ``code`` follows zod's issue codes (``invalid_type``, ``unrecognized_keys``, ...),
    ``path`` locates the offending value, ``message`` is what the API answers.
    """

    code: str
    path: Path
    message: str

    def to_json(self) -> dict[str, Any]:
        """The issue as it appears in an error body's ``issues`` list."""
        return {"code": self.code, "path": list(self.path), "message": self.message}


def _received(value: Any) -> str:
    if value is MISSING:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _options(values: Sequence[str]) -> str:
    if len(values) == 1:
        return f'Invalid input: expected "{values[0]}"'
    return "Invalid option: expected one of " + "|".join(f'"{v}"' for v in values)


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


#: Stands for an absent value (zod's ``undefined``), e.g. a request without a body.
MISSING: Any = _Missing()


class _Checker:
    """Accumulates issues while walking one body."""

    def __init__(self, validator: CreateBodyValidator) -> None:
        self.v = validator
        self.issues: list[ValidationIssue] = []

    def add(self, code: str, path: Path, message: str) -> None:
        self.issues.append(ValidationIssue(code, path, message))

    def type_issue(self, path: Path, expected: str, value: Any) -> None:
        self.add(
            "invalid_type", path, f"Invalid input: expected {expected}, received {_received(value)}"
        )

    # -- primitives ------------------------------------------------------------

    def obj(self, path: Path, value: Any) -> dict[str, Any] | None:
        if isinstance(value, dict):
            return value
        self.type_issue(path, "object", value)
        return None

    def keys(self, path: Path, obj: Mapping[str, Any], allowed: Collection[str]) -> None:
        # zod reports unknown keys after the known fields, in one issue per object.
        unknown = [k for k in obj if k not in allowed]
        if unknown:
            plural = "s" if len(unknown) > 1 else ""
            self.add("unrecognized_keys", path, f"Unrecognized key{plural}: {', '.join(unknown)}")

    def string(
        self, path: Path, obj: Mapping[str, Any], key: str, *, required: bool, nonempty: bool
    ) -> str | None:
        value = obj.get(key, MISSING)
        if value is MISSING and not required:
            return None
        if not isinstance(value, str):
            self.type_issue((*path, key), "string", value)
            return None
        if nonempty and not value:
            self.add("too_small", (*path, key), "Too small: expected string to have >=1 characters")
            return None
        return value

    def boolean(self, path: Path, obj: Mapping[str, Any], key: str) -> None:
        value = obj.get(key, MISSING)
        if value is not MISSING and not isinstance(value, bool):
            self.type_issue((*path, key), "boolean", value)

    def number(
        self,
        path: Path,
        obj: Mapping[str, Any],
        key: str,
        *,
        integer: bool,
        maximum: int | None = None,
    ) -> None:
        value = obj.get(key, MISSING)
        if value is MISSING:
            return
        where = (*path, key)
        # bool is an int in Python but not a number in JSON.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.type_issue(where, "number", value)
        elif not math.isfinite(value):
            self.add("invalid_type", where, "Invalid input: expected number, received NaN")
        elif integer and not (isinstance(value, int) or value.is_integer()):
            self.add("invalid_type", where, "Invalid input: expected int, received number")
        elif value <= 0:
            self.add("too_small", where, "Too small: expected number to be >0")
        elif maximum is not None and value > maximum:
            self.add("too_big", where, f"Too big: expected number to be <={maximum}")

    def choice(
        self, path: Path, obj: Mapping[str, Any], key: str, values: Sequence[str]
    ) -> str | None:
        value = obj.get(key, MISSING)
        if isinstance(value, str) and value in values:
            return value
        self.add("invalid_value", (*path, key), _options(values))
        return None

    def url(self, path: Path, value: str) -> None:
        try:
            parts = urlsplit(value)
            host = parts.hostname or ""
            _ = parts.port  # raises ValueError on a malformed port
        except ValueError:
            self.add("invalid_format", path, "Invalid URL")
            return
        schemes: tuple[str, ...] = ("wss", "https")
        if self.v.allow_private_livekit_urls:
            schemes = ("wss", "https", "ws", "http")
        if parts.scheme.lower() not in schemes or not host:
            self.add("invalid_format", path, "Invalid URL: expected a wss:// or https:// URL")
        elif not self.v.allow_private_livekit_urls and not is_public_host(host):
            self.add("custom", path, "Invalid URL: host must resolve to a public address")

    # -- body parts ------------------------------------------------------------

    def body(self, value: Any) -> None:
        body = self.obj((), value)
        if body is None:
            return
        if body.get("model", MISSING) != MODEL:
            self.add("invalid_value", ("model",), _options([MODEL]))
        self.avatar(body.get("avatar", MISSING))
        allowed = {
            "model",
            "avatar",
            "integration",
            "maxDuration",
            "personality",
            "startScript",
            "tools",
        }
        if "integration" in body:
            self.integration(("integration",), body["integration"], legacy=False)
        if not self.v.reject_legacy_livekit:
            allowed.add("livekit")
            if "livekit" in body:
                self.integration(("livekit",), body["livekit"], legacy=True)
                if "integration" in body:
                    self.add(
                        "custom",
                        ("livekit",),
                        "Invalid input: provide either integration or livekit, not both",
                    )
        self.number((), body, "maxDuration", integer=True, maximum=self.v.max_duration_limit)
        self.string((), body, "personality", required=False, nonempty=False)
        self.string((), body, "startScript", required=False, nonempty=False)
        if "tools" in body:
            self.tools(body["tools"])
        self.keys((), body, allowed)

    def avatar(self, value: Any) -> None:
        path: Path = ("avatar",)
        avatar = self.obj(path, value)
        if avatar is None:
            return
        kind = self.choice(path, avatar, "type", ("runway-preset", "custom"))
        if kind == "runway-preset":
            self.choice(path, avatar, "presetId", tuple(self.v.presets))
            self.keys(path, avatar, ("type", "presetId"))
        elif kind == "custom":
            avatar_id = self.string(path, avatar, "avatarId", required=True, nonempty=False)
            if avatar_id is not None and not _UUID.fullmatch(avatar_id):
                self.add("invalid_format", (*path, "avatarId"), "Invalid UUID")
            self.keys(path, avatar, ("type", "avatarId"))

    def integration(self, path: Path, value: Any, *, legacy: bool) -> None:
        spec = self.obj(path, value)
        if spec is None:
            return
        if legacy:
            kind: str | None = "livekit"
        else:
            kind = self.choice(path, spec, "type", ("livekit", "elevenlabs"))
        if kind == "livekit":
            url = self.string(path, spec, "url", required=True, nonempty=True)
            if url is not None:
                self.url((*path, "url"), url)
            self.string(path, spec, "token", required=True, nonempty=True)
            self.string(path, spec, "roomName", required=True, nonempty=True)
            self.string(path, spec, "agentIdentity", required=False, nonempty=True)
            fields = ("url", "token", "roomName", "agentIdentity")
            self.keys(path, spec, fields if legacy else ("type", *fields))
        elif kind == "elevenlabs":
            signed = self.string(path, spec, "signedUrl", required=True, nonempty=True)
            if signed is not None:
                self.url((*path, "signedUrl"), signed)
            self.keys(path, spec, ("type", "signedUrl"))

    def tools(self, value: Any) -> None:
        if not isinstance(value, list):
            self.type_issue(("tools",), "array", value)
            return
        for index, item in enumerate(value):
            path: Path = ("tools", index)
            tool = self.obj(path, item)
            if tool is None:
                continue
            kind = self.choice(path, tool, "type", ("client_event", "backend_rpc"))
            if kind is None:
                continue
            name = self.string(path, tool, "name", required=True, nonempty=False)
            if name is not None and not _TOOL_NAME.fullmatch(name):
                self.add(
                    "invalid_format",
                    (*path, "name"),
                    f"Invalid string: must match pattern /^{_TOOL_NAME.pattern}$/",
                )
            self.string(path, tool, "description", required=True, nonempty=False)
            if "parameters" in tool:
                self.parameters((*path, "parameters"), tool["parameters"])
            allowed = ["type", "name", "description", "parameters"]
            if kind == "backend_rpc":
                self.number(path, tool, "timeoutSeconds", integer=False)
                allowed.append("timeoutSeconds")
            self.keys(path, tool, allowed)

    def parameters(self, path: Path, value: Any) -> None:
        if not isinstance(value, list):
            self.type_issue(path, "array", value)
            return
        for index, item in enumerate(value):
            where: Path = (*path, index)
            param = self.obj(where, item)
            if param is None:
                continue
            kind = self.choice(where, param, "type", _PARAM_TYPES)
            if kind is None:
                continue
            self.string(where, param, "name", required=True, nonempty=False)
            self.string(where, param, "description", required=True, nonempty=False)
            self.boolean(where, param, "required")
            allowed = ["type", "name", "description", "required"]
            if kind == "string":
                allowed.append("enum")
                enum = param.get("enum", MISSING)
                if enum is not MISSING and not (
                    isinstance(enum, list) and all(isinstance(e, str) for e in enum)
                ):
                    self.type_issue((*where, "enum"), "array of strings", enum)
            elif kind == "array":
                allowed.append("items")
                items = self.obj((*where, "items"), param.get("items", MISSING))
                if items is not None:
                    self.choice((*where, "items"), items, "type", _SCALAR_TYPES)
                    self.keys((*where, "items"), items, ("type",))
            elif kind == "object":
                allowed.append("properties")
                props = param.get("properties", MISSING)
                if not isinstance(props, list):
                    self.type_issue((*where, "properties"), "array", props)
            self.keys(where, param, allowed)


def is_public_host(host: str) -> bool:
    """Whether ``host`` (a URL's hostname) can be a public internet host.

    No DNS lookup is made: IP literals must be globally routable, and names must not be
    ``localhost``, single-label, or under a private-use suffix such as ``.local``.
    """
    host = host.strip("[]").rstrip(".").lower()
    if not host:
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            return ip.ipv4_mapped.is_global
        return ip.is_global
    if host == "localhost" or host.endswith(_PRIVATE_SUFFIXES):
        return False
    labels = host.split(".")
    return len(labels) >= 2 and all(labels) and _TLD.fullmatch(labels[-1]) is not None


def _str_tuple(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


@attrs.frozen
class CreateBodyValidator:
    """Checks a create body the way the real API does.

    ``presets``: accepted ``presetId`` values (Runway's list grows).
    ``allow_private_livekit_urls``: accept ``ws://``/``http://`` and private or loopback
    hosts, so an emulator can point the avatar at a local LiveKit server.
    ``reject_legacy_livekit``: treat the deprecated top-level ``livekit`` key as unknown,
    reproducing livekit/agents#5547; by default it is accepted.
    """

    presets: tuple[str, ...] = attrs.field(default=RUNWAY_PRESETS, converter=_str_tuple)
    allow_private_livekit_urls: bool = False
    reject_legacy_livekit: bool = False
    max_duration_limit: int = MAX_DURATION_LIMIT

    def issues(self, body: Any) -> list[ValidationIssue]:
        """All issues in ``body`` (parsed JSON, or ``MISSING``), in the order zod reports them."""
        checker = _Checker(self)
        checker.body(body)
        return checker.issues
