"""Validation of ``POST /v1/realtime_sessions`` bodies, modelled on Runway's public API.

The rules are those of Runway's published OpenAPI schema for the create body (repository
``runwayml/openapi``, ``openapi.json`` at commit ``032445ba2896ba05df86b5e0655e49a231876ae2``,
``paths["/v1/realtime_sessions"].post.requestBody``). The numbers are imported from
:mod:`..options`, which cites each one's place in the schema, so the client refuses at
``get()`` what this double refuses with a 400.

Runway validates with zod: the schema's own 400 answers describe "Zod body/query validation"
issues, and the two messages users have reported verbatim, ``Unrecognized key: livekit`` and
``Too big: expected number to be <=1800``, are zod's. Messages here follow zod's (v4) wording,
and lengths are counted as zod counts them, in UTF-16 code units. The API answers with the
first issue as ``error``; every issue is also returned, with its path, under ``issues``.

Beyond the schema, for documented reasons:

- unknown keys are refused (``Unrecognized key``), as the API has answered them
  (livekit/agents#5547), although this schema version does not mark the body
  ``additionalProperties: false``;
- tool names must be unique (Runway's tool reference,
  https://docs.dev.runwayml.com/characters/tools/reference/); the message is ours, Runway's
  is not published;
- a LiveKit ``url`` must be ``wss://`` or ``https://`` on a public host (Runway's docs; the
  schema says only ``format: uri``), unless ``allow_private_livekit_urls``.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import attrs

from ..options import (
    AGENT_IDENTITY_LENGTH,
    ARRAY_ITEM_TYPES,
    AVATAR_ID_PATTERN,
    DESCRIPTION_LENGTH,
    KNOWN_PRESETS,
    MAX_DURATION,
    MAX_ENUM_VALUE_LENGTH,
    MAX_ENUM_VALUES,
    MAX_OBJECT_PROPERTIES,
    MAX_PARAMETERS,
    MAX_TOOLS,
    MIN_DURATION,
    NAME_LENGTH,
    NAME_PATTERN,
    PARAMETER_KEYS,
    PARAMETER_TYPES,
    PERSONALITY_LENGTH,
    ROOM_NAME_LENGTH,
    START_SCRIPT_LENGTH,
    TIMEOUT_SECONDS,
    TOKEN_LENGTH,
    TOOL_KEYS,
    TOOL_TYPES,
    text_length,
)

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

_NAME = re.compile(NAME_PATTERN)
_UUID = re.compile(AVATAR_ID_PATTERN)
# A public DNS name never ends in a numeric label; this also catches shorthand IPs
# such as "127.1" or "0x7f.1" that resolvers expand to loopback.
_TLD = re.compile(r"[a-z](?:[a-z0-9-]*[a-z0-9])?")
_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".lan", ".intranet")

Bounds = tuple[int, int]
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

    def length(self, path: Path, value: str, bounds: Bounds) -> bool:
        """Check ``value``'s length (UTF-16 code units, as zod counts); whether it fits."""
        low, high = bounds
        size = text_length(value)
        if size < low:
            self.add("too_small", path, f"Too small: expected string to have >={low} characters")
            return False
        if size > high:
            self.add("too_big", path, f"Too big: expected string to have <={high} characters")
            return False
        return True

    def string(
        self,
        path: Path,
        obj: Mapping[str, Any],
        key: str,
        *,
        required: bool,
        bounds: Bounds | None = None,
        pattern: re.Pattern[str] | None = None,
    ) -> str | None:
        """The string at ``obj[key]`` if it is valid (None when absent or invalid)."""
        value = obj.get(key, MISSING)
        if value is MISSING and not required:
            return None
        where = (*path, key)
        if not isinstance(value, str):
            self.type_issue(where, "string", value)
            return None
        # zod runs every check of a string, so a name can be both too short and malformed.
        fits = bounds is None or self.length(where, value, bounds)
        if pattern is not None and not pattern.fullmatch(value):
            self.add(
                "invalid_format",
                where,
                f"Invalid string: must match pattern /^{pattern.pattern}$/",
            )
            return None
        return value if fits else None

    def array(self, path: Path, value: Any, max_items: int) -> list[Any] | None:
        """``value`` if it is an array; a too-long one is reported and still returned."""
        if not isinstance(value, list):
            self.type_issue(path, "array", value)
            return None
        if len(value) > max_items:
            self.add("too_big", path, f"Too big: expected array to have <={max_items} items")
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
        minimum: float,
        maximum: float,
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
        elif value < minimum:
            self.add("too_small", where, f"Too small: expected number to be >={minimum}")
        elif value > maximum:
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
        self.number(
            (),
            body,
            "maxDuration",
            integer=True,
            minimum=MIN_DURATION,
            maximum=self.v.max_duration_limit,
        )
        self.string((), body, "personality", required=False, bounds=PERSONALITY_LENGTH)
        self.string((), body, "startScript", required=False, bounds=START_SCRIPT_LENGTH)
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
            avatar_id = self.string(path, avatar, "avatarId", required=True)
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
            # format: uri, no length limits; an empty string is an invalid URL
            url = self.string(path, spec, "url", required=True)
            if url is not None:
                self.url((*path, "url"), url)
            self.string(path, spec, "token", required=True, bounds=TOKEN_LENGTH)
            self.string(path, spec, "roomName", required=True, bounds=ROOM_NAME_LENGTH)
            self.string(path, spec, "agentIdentity", required=False, bounds=AGENT_IDENTITY_LENGTH)
            fields = ("url", "token", "roomName", "agentIdentity")
            self.keys(path, spec, fields if legacy else ("type", *fields))
        elif kind == "elevenlabs":
            signed = self.string(path, spec, "signedUrl", required=True)
            if signed is not None:
                self.url((*path, "signedUrl"), signed)
            self.keys(path, spec, ("type", "signedUrl"))

    def tools(self, value: Any) -> None:
        tools = self.array(("tools",), value, MAX_TOOLS)
        if tools is None:
            return
        first: dict[str, int] = {}
        for index, item in enumerate(tools):
            path: Path = ("tools", index)
            tool = self.obj(path, item)
            if tool is None:
                continue
            kind = self.choice(path, tool, "type", TOOL_TYPES)
            if kind is None:
                continue
            name = self.string(path, tool, "name", required=True, bounds=NAME_LENGTH, pattern=_NAME)
            if name is not None and first.setdefault(name, index) != index:
                self.add(
                    "custom",
                    (*path, "name"),
                    f"Tool names must be unique: {name!r} is also tools[{first[name]}]",
                )
            self.string(path, tool, "description", required=True, bounds=DESCRIPTION_LENGTH)
            if "parameters" in tool:
                self.parameters((*path, "parameters"), tool["parameters"])
            if kind == "backend_rpc":
                low, high = TIMEOUT_SECONDS
                self.number(path, tool, "timeoutSeconds", integer=False, minimum=low, maximum=high)
            self.keys(path, tool, TOOL_KEYS[kind])

    def parameters(self, path: Path, value: Any) -> None:
        params = self.array(path, value, MAX_PARAMETERS)
        if params is None:
            return
        for index, item in enumerate(params):
            where: Path = (*path, index)
            param = self.obj(where, item)
            if param is None:
                continue
            kind = self.choice(where, param, "type", PARAMETER_TYPES)
            if kind is None:
                continue
            self.string(where, param, "name", required=True, bounds=NAME_LENGTH, pattern=_NAME)
            self.string(where, param, "description", required=True, bounds=DESCRIPTION_LENGTH)
            self.boolean(where, param, "required")
            if kind == "string" and "enum" in param:
                values = self.array((*where, "enum"), param["enum"], MAX_ENUM_VALUES)
                for number, enum_value in enumerate(values or ()):
                    at: Path = (*where, "enum", number)
                    if not isinstance(enum_value, str):
                        self.type_issue(at, "string", enum_value)
                    else:
                        self.length(at, enum_value, (0, MAX_ENUM_VALUE_LENGTH))
            elif kind == "array":
                items = self.obj((*where, "items"), param.get("items", MISSING))
                if items is not None:
                    self.choice((*where, "items"), items, "type", ARRAY_ITEM_TYPES)
                    self.keys((*where, "items"), items, ("type",))
            elif kind == "object":
                self.array(
                    (*where, "properties"), param.get("properties", MISSING), MAX_OBJECT_PROPERTIES
                )
            self.keys(where, param, PARAMETER_KEYS[kind])


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
