"""The Runway provider's options, validated when ``avatarkit.get("runway", ...)`` is called.

Every limit here is one of Runway's published OpenAPI schema for the create body of
``POST /v1/realtime_sessions``: repository ``runwayml/openapi``, file ``openapi.json`` at
commit ``032445ba2896ba05df86b5e0655e49a231876ae2`` (:data:`SCHEMA`), under
``paths["/v1/realtime_sessions"].post.requestBody.content["application/json"].schema``.
Comments below give each limit's place relative to that schema. The emulator's validator
(``emulator/validation.py``) enforces the same numbers, so a value refused here is one the
API double answers with a 400, and the other way round.

Two rules are not in the schema and are kept for a documented reason:

- tool names must be unique within a session (Runway's tool reference,
  https://docs.dev.runwayml.com/characters/tools/reference/, "Limits");
- unknown keys in a tool or parameter are refused: the API has answered unknown keys with
  ``400 Unrecognized key: ...`` (livekit/agents#5547), although this schema version does not
  mark the create body ``additionalProperties: false``.

Lengths are counted as Runway's validator (zod, named in the schema's 400 answers) counts
them: in UTF-16 code units, so a character outside the BMP, such as most emoji, counts twice.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from avatarkit.errors import ConfigurationError
from avatarkit.secret import Secret, redact_urls

DEFAULT_API_URL = "https://api.dev.runwayml.com"
API_KEY_ENV = "RUNWAYML_API_SECRET"
API_URL_ENV = "RUNWAYML_BASE_URL"

SCHEMA = (
    "runwayml/openapi openapi.json@032445ba2896ba05df86b5e0655e49a231876ae2, "
    'paths["/v1/realtime_sessions"].post.requestBody'
)
"""Where the limits below come from."""

# -- the schema's limits (paths relative to the request body's schema) -------------------
# properties.avatar.oneOf[RunwayPresetAvatar].properties.presetId.enum
KNOWN_PRESETS = (
    "game-character",
    "music-superstar",
    "game-character-man",
    "cat-character",
    "influencer",
    "tennis-coach",
    "human-resource",
    "fashion-designer",
    "cooking-teacher",
)
# properties.avatar.oneOf[CustomAvatar].properties.avatarId: format uuid, this pattern (v4)
AVATAR_ID_PATTERN = (
    "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}"
)
# properties.maxDuration: integer, minimum 10, maximum 1800 (default 300)
MIN_DURATION = 10
MAX_DURATION = 1800
# properties.personality / properties.startScript: string, minLength 1, maxLength ...
PERSONALITY_LENGTH = (1, 10_000)
START_SCRIPT_LENGTH = (1, 2_000)
# properties.tools: array, maxItems 20, items oneOf ClientEventTool | BackendRPCTool
MAX_TOOLS = 20
TOOL_TYPES = ("client_event", "backend_rpc")
# tools[].name and tools[].parameters[].name: minLength 1, maxLength 64, this pattern
NAME_PATTERN = "[a-zA-Z_][a-zA-Z0-9_]*"
NAME_LENGTH = (1, 64)
# tools[].description and tools[].parameters[].description: minLength 1, maxLength 1024
DESCRIPTION_LENGTH = (1, 1024)
# tools[].parameters: array, maxItems 20, items oneOf String|Integer|Number|Boolean|Array|
# ObjectParameter (discriminator "type"); "required" is a boolean (default true)
MAX_PARAMETERS = 20
PARAMETER_TYPES = ("string", "integer", "number", "boolean", "array", "object")
# StringParameter.enum: array, maxItems 20, items string maxLength 64 (no minLength)
MAX_ENUM_VALUES = 20
MAX_ENUM_VALUE_LENGTH = 64
# ArrayParameter.items (required): object, properties.type enum (required)
ARRAY_ITEM_TYPES = ("string", "integer", "number", "boolean")
# ObjectParameter.properties (required): array, maxItems 20, items {} (anything)
MAX_OBJECT_PROPERTIES = 20
# BackendRPCTool.timeoutSeconds: number, minimum 1, maximum 8 (default 4)
TIMEOUT_SECONDS = (1, 8)
# properties.integration.oneOf[LiveKitIntegration] and the deprecated properties.livekit:
# token 1-2048, roomName 1-256, agentIdentity 1-256 (optional), url format uri. These are
# known only at start() (the room, the minted token, the agent), so only the emulator
# checks them; they are here to keep the schema's numbers in one place.
TOKEN_LENGTH = (1, 2048)
ROOM_NAME_LENGTH = (1, 256)
AGENT_IDENTITY_LENGTH = (1, 256)

_BASE_PARAMETER_KEYS = ("type", "name", "description", "required")
PARAMETER_KEYS: dict[str, tuple[str, ...]] = {
    "string": (*_BASE_PARAMETER_KEYS, "enum"),
    "integer": _BASE_PARAMETER_KEYS,
    "number": _BASE_PARAMETER_KEYS,
    "boolean": _BASE_PARAMETER_KEYS,
    "array": (*_BASE_PARAMETER_KEYS, "items"),
    "object": (*_BASE_PARAMETER_KEYS, "properties"),
}
"""The keys each parameter type may have (schema: each ToolParameter variant's properties)."""
TOOL_KEYS: dict[str, tuple[str, ...]] = {
    "client_event": ("type", "name", "description", "parameters"),
    "backend_rpc": ("type", "name", "description", "parameters", "timeoutSeconds"),
}
"""The keys each tool type may have (schema: ClientEventTool, BackendRPCTool properties)."""

_AVATAR_ID = re.compile(AVATAR_ID_PATTERN)
_NAME = re.compile(NAME_PATTERN)


def text_length(value: str) -> int:
    """``value``'s length as Runway counts it: UTF-16 code units (JavaScript's ``length``)."""
    return len(value.encode("utf-16-le", "surrogatepass")) // 2


def length_problem(value: object, bounds: tuple[int, int]) -> str | None:
    """What is wrong with ``value`` as a string of ``bounds`` characters, or None."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    low, high = bounds
    size = text_length(value)
    if low <= size <= high:
        return None
    twice = " (characters beyond U+FFFF, such as emoji, count twice)" if size != len(value) else ""
    wanted = f"at most {high}" if low == 0 else f"{low} to {high}"
    return f"must have {wanted} characters, got {size}{twice}"


def _fail(message: str) -> ConfigurationError:
    return ConfigurationError(f"runway: {message}")


def _shown(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "…" + text[-4:]


def _check_avatar_id(_: object, __: attrs.Attribute[Any], value: str | None) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not _AVATAR_ID.fullmatch(value):
        raise _fail(
            "avatar_id must be the UUID of a custom avatar from Runway's dashboard, a "
            f"version-4 UUID (xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx), got {_shown(value)}"
        )


def _check_preset_id(_: object, __: attrs.Attribute[Any], value: str | None) -> None:
    if value is None or value in KNOWN_PRESETS:
        return
    close = difflib.get_close_matches(str(value), KNOWN_PRESETS, n=1, cutoff=0.75)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise _fail(
        f"unknown preset_id {_shown(value)}: {hint}Runway's API accepts "
        f"{', '.join(KNOWN_PRESETS)} (for an avatar of your own, pass avatar_id)"
    )


def _check_max_duration(_: object, __: attrs.Attribute[Any], value: int | None) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not MIN_DURATION <= value <= MAX_DURATION
    ):
        raise _fail(
            f"max_duration must be a whole number of seconds from {MIN_DURATION} to "
            f"{MAX_DURATION} (Runway's limits), got {_shown(value)}"
        )


def _check_api_url(_: object, __: attrs.Attribute[Any], value: str) -> None:
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        shown = repr(redact_urls(value)) if isinstance(value, str) else type(value).__name__
        raise _fail(f"api_url must be an http(s) URL, got {shown} (or set {API_URL_ENV})")


def _check_api_key(_: object, __: attrs.Attribute[Any], value: Secret | None) -> None:
    if not value:
        raise _fail(f"an API key is needed: pass api_key=... or set {API_KEY_ENV}")


def _check_personality(_: object, __: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and (problem := length_problem(value, PERSONALITY_LENGTH)):
        raise _fail(f"personality {problem}")


def _check_start_script(_: object, __: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and (problem := length_problem(value, START_SCRIPT_LENGTH)):
        raise _fail(f"start_script {problem}")


def _to_secret(value: str | Secret | None) -> Secret | None:
    return Secret(value) if value else None


def _env_api_key() -> Secret | None:
    return _to_secret(os.environ.get(API_KEY_ENV))


def _env_api_url() -> str:
    return os.environ.get(API_URL_ENV) or DEFAULT_API_URL


def _check_name(where: str, value: object) -> None:
    if problem := length_problem(value, NAME_LENGTH):
        raise _fail(f"{where} {problem}")
    assert isinstance(value, str)
    if not _NAME.fullmatch(value):
        raise _fail(
            f"{where} {_shown(value)} is invalid: start with a letter or '_', then letters, "
            f"digits or '_' (^{NAME_PATTERN}$)"
        )


def _check_description(where: str, value: object) -> None:
    if problem := length_problem(value, DESCRIPTION_LENGTH):
        raise _fail(f"{where} {problem}")


def _check_keys(where: str, value: Mapping[Any, Any], allowed: tuple[str, ...]) -> None:
    if unknown := [k for k in value if k not in allowed]:
        raise _fail(
            f"{where} has unknown keys {sorted(map(str, unknown))}; allowed: {', '.join(allowed)}"
        )


def _check_parameter(where: str, param: Any) -> None:
    if not isinstance(param, Mapping):
        raise _fail(f"{where} must be a dict, got {type(param).__name__}")
    kind = param.get("type")
    if kind not in PARAMETER_KEYS:
        raise _fail(f"{where}.type is {_shown(kind)}; use one of {', '.join(PARAMETER_TYPES)}")
    _check_keys(where, param, PARAMETER_KEYS[kind])
    _check_name(f"{where}.name", param.get("name"))
    _check_description(f"{where}.description", param.get("description"))
    if "required" in param and not isinstance(param["required"], bool):
        raise _fail(f"{where}.required must be True or False, got {_shown(param['required'])}")
    if kind == "string" and "enum" in param:
        values = param["enum"]
        if not isinstance(values, list):
            raise _fail(f"{where}.enum must be a list of strings")
        if len(values) > MAX_ENUM_VALUES:
            raise _fail(f"{where}.enum has {len(values)} values; Runway takes {MAX_ENUM_VALUES}")
        for index, value in enumerate(values):
            if problem := length_problem(value, (0, MAX_ENUM_VALUE_LENGTH)):
                raise _fail(f"{where}.enum[{index}] {problem}")
    elif kind == "array":
        items = param.get("items")
        if not isinstance(items, Mapping):
            raise _fail(
                f"{where}.items must be a dict such as {{'type': 'string'}}, got {_shown(items)}"
            )
        _check_keys(f"{where}.items", items, ("type",))
        if items.get("type") not in ARRAY_ITEM_TYPES:
            raise _fail(
                f"{where}.items.type is {_shown(items.get('type'))}; "
                f"use one of {', '.join(ARRAY_ITEM_TYPES)}"
            )
    elif kind == "object":
        properties = param.get("properties")
        if not isinstance(properties, list):
            raise _fail(f"{where}.properties must be a list, got {_shown(properties)}")
        if len(properties) > MAX_OBJECT_PROPERTIES:
            raise _fail(
                f"{where}.properties has {len(properties)} entries; "
                f"Runway takes {MAX_OBJECT_PROPERTIES}"
            )


def _check_timeout(where: str, value: Any) -> None:
    low, high = TIMEOUT_SECONDS
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise _fail(
            f"{where} must be a number of seconds from {low} to {high}, got {_shown(value)}"
        )


def _check_tool(where: str, tool: Any) -> dict[str, Any]:
    if not isinstance(tool, Mapping):
        raise _fail(f"{where} must be a dict, got {type(tool).__name__}")
    kind = tool.get("type")
    if kind not in TOOL_KEYS:
        raise _fail(f"{where}.type must be 'client_event' or 'backend_rpc', got {_shown(kind)}")
    _check_name(f"{where}.name", tool.get("name"))
    where = f"{where} ({tool['name']!r})"
    _check_keys(where, tool, TOOL_KEYS[kind])
    _check_description(f"{where}.description", tool.get("description"))
    params = tool.get("parameters", [])
    if not isinstance(params, list):
        raise _fail(f"{where}.parameters must be a list, got {type(params).__name__}")
    if len(params) > MAX_PARAMETERS:
        raise _fail(f"{where}.parameters has {len(params)} entries; Runway takes {MAX_PARAMETERS}")
    for index, param in enumerate(params):
        _check_parameter(f"{where}.parameters[{index}]", param)
    if "timeoutSeconds" in tool:
        _check_timeout(f"{where}.timeoutSeconds", tool["timeoutSeconds"])
    return dict(tool)


def _to_tools(value: Iterable[Mapping[str, Any]] | None) -> tuple[dict[str, Any], ...]:
    if value is None:
        return ()
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise _fail("tools must be a list of tool definitions (dicts)")
    given = list(value)
    if len(given) > MAX_TOOLS:
        raise _fail(f"tools has {len(given)} tools; Runway takes at most {MAX_TOOLS}")
    tools = tuple(_check_tool(f"tools[{index}]", tool) for index, tool in enumerate(given))
    names = [t["name"] for t in tools]
    if len(set(names)) != len(names):
        raise _fail(f"tools: names must be unique within a session, got {names}")
    return tools


@attrs.frozen(kw_only=True)
class RunwayOptions:
    """Options of ``avatarkit.get("runway", ...)``; exactly one of avatar_id and preset_id."""

    avatar_id: str | None = attrs.field(default=None, validator=_check_avatar_id)
    """UUID of a custom avatar made in Runway."""
    preset_id: str | None = attrs.field(default=None, validator=_check_preset_id)
    """A Runway preset, e.g. ``influencer``."""
    max_duration: int | None = attrs.field(default=None, validator=_check_max_duration)
    """Session length asked of Runway, 10-1800 s (Runway ends sessions after ~300 s anyway)."""
    api_url: str = attrs.field(
        factory=_env_api_url,
        validator=_check_api_url,
        repr=lambda url: repr(redact_urls(str(url))),
    )
    """Runway's API, else ``RUNWAYML_BASE_URL``, else https://api.dev.runwayml.com."""
    api_key: Secret | None = attrs.field(
        factory=_env_api_key, converter=_to_secret, validator=_check_api_key, repr=False
    )
    """Runway API secret, else ``RUNWAYML_API_SECRET``."""
    personality: str | None = attrs.field(default=None, validator=_check_personality)
    """Overrides the avatar's personality for this session (1-10000 characters)."""
    start_script: str | None = attrs.field(default=None, validator=_check_start_script)
    """Overrides what the avatar says first (1-2000 characters)."""
    tools: tuple[dict[str, Any], ...] = attrs.field(default=None, converter=_to_tools)
    """``client_event`` / ``backend_rpc`` tool definitions, in the API's shape."""
    legacy_livekit_field: bool = False
    """Send the room as the deprecated top-level ``livekit`` key instead of ``integration``."""

    def __attrs_post_init__(self) -> None:
        if (self.avatar_id is None) == (self.preset_id is None):
            raise _fail(
                "give exactly one of avatar_id (a custom avatar's UUID) or preset_id "
                f"(one of {', '.join(KNOWN_PRESETS)})"
            )

    @property
    def avatar(self) -> dict[str, str]:
        """The ``avatar`` field of the create request."""
        if self.avatar_id is not None:
            return {"type": "custom", "avatarId": self.avatar_id}
        assert self.preset_id is not None
        return {"type": "runway-preset", "presetId": self.preset_id}
