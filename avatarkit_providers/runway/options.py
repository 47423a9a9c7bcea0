"""The Runway provider's options, validated when ``avatarkit.get("runway", ...)`` is called."""

from __future__ import annotations

import difflib
import math
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from avatarkit.errors import ConfigurationError
from avatarkit.secret import Secret, redact_urls

DEFAULT_API_URL = "https://api.dev.runwayml.com"
API_KEY_ENV = "RUNWAYML_API_SECRET"
API_URL_ENV = "RUNWAYML_BASE_URL"
MAX_DURATION = 1800
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
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_TOOL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOOL_KEYS = {
    "client_event": {"type", "name", "description", "parameters"},
    "backend_rpc": {"type", "name", "description", "parameters", "timeoutSeconds"},
}
_PARAM_TYPES = {"string", "integer", "number", "boolean", "array", "object"}
_PARAM_KEYS = {"name", "type", "description", "required", "enum", "items", "properties"}


def _fail(message: str) -> ConfigurationError:
    return ConfigurationError(f"runway: {message}")


def _check_avatar_id(_: object, __: attrs.Attribute[Any], value: str | None) -> None:
    if value is None:
        return
    try:
        uuid.UUID(str(value))
    except ValueError:
        raise _fail(
            f"avatar_id must be the UUID of a custom avatar from Runway's dashboard, got {value!r}"
        ) from None


def _check_preset_id(_: object, __: attrs.Attribute[Any], value: str | None) -> None:
    if value is None or value in KNOWN_PRESETS:
        return
    close = difflib.get_close_matches(str(value), KNOWN_PRESETS, n=1, cutoff=0.75)
    # Runway adds presets over time, so an unknown slug passes unless it looks like a typo.
    if close or not isinstance(value, str) or not _SLUG.match(value):
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise _fail(
            f"unknown preset_id {value!r}: {hint}presets known today: {', '.join(KNOWN_PRESETS)}"
        )


def _check_max_duration(_: object, __: attrs.Attribute[Any], value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DURATION:
        raise _fail(
            f"max_duration must be a whole number of seconds from 1 to {MAX_DURATION} "
            f"(Runway's limit), got {value!r}"
        )


def _check_api_url(_: object, __: attrs.Attribute[Any], value: str) -> None:
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        shown = repr(redact_urls(value)) if isinstance(value, str) else type(value).__name__
        raise _fail(f"api_url must be an http(s) URL, got {shown} (or set {API_URL_ENV})")


def _check_api_key(_: object, __: attrs.Attribute[Any], value: Secret | None) -> None:
    if not value:
        raise _fail(f"an API key is needed: pass api_key=... or set {API_KEY_ENV}")


def _check_text(_: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise _fail(f"{attribute.name} must be a non-empty string, got {value!r}")


def _to_secret(value: str | Secret | None) -> Secret | None:
    return Secret(value) if value else None


def _env_api_key() -> Secret | None:
    return _to_secret(os.environ.get(API_KEY_ENV))


def _env_api_url() -> str:
    return os.environ.get(API_URL_ENV) or DEFAULT_API_URL


def _check_parameter(tool: str, param: Any) -> None:
    if not isinstance(param, Mapping):
        raise _fail(f"tool {tool!r}: each parameter must be a dict, got {param!r}")
    if unknown := set(param) - _PARAM_KEYS:
        raise _fail(f"tool {tool!r}: parameter has unknown keys {sorted(unknown)}")
    for key in ("name", "description"):
        if not isinstance(param.get(key), str) or not param[key]:
            raise _fail(f"tool {tool!r}: every parameter needs a non-empty {key!r}")
    if param.get("type") not in _PARAM_TYPES:
        raise _fail(
            f"tool {tool!r}: parameter {param['name']!r} has type {param.get('type')!r}; "
            f"use one of {sorted(_PARAM_TYPES)}"
        )


def _to_tools(value: Iterable[Mapping[str, Any]] | None) -> tuple[dict[str, Any], ...]:
    if value is None:
        return ()
    if isinstance(value, (str, bytes, Mapping)):
        raise _fail("tools must be a list of tool definitions (dicts)")
    tools = []
    for tool in value:
        if not isinstance(tool, Mapping):
            raise _fail(f"each tool must be a dict, got {tool!r}")
        kind = tool.get("type")
        if kind not in _TOOL_KEYS:
            raise _fail(f"tool type must be 'client_event' or 'backend_rpc', got {kind!r}")
        name = tool.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            raise _fail(
                f"tool name {name!r} is invalid: start with a letter or '_', "
                "then letters, digits or '_'"
            )
        if unknown := set(tool) - _TOOL_KEYS[kind]:
            raise _fail(f"tool {name!r} ({kind}) has unknown keys {sorted(unknown)}")
        if not isinstance(tool.get("description"), str) or not tool["description"].strip():
            raise _fail(f"tool {name!r} needs a non-empty description")
        params = tool.get("parameters", [])
        if not isinstance(params, list):
            raise _fail(f"tool {name!r}: parameters must be a list")
        for param in params:
            _check_parameter(name, param)
        timeout = tool.get("timeoutSeconds")
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise _fail(
                f"tool {name!r}: timeoutSeconds must be a positive, finite number, got {timeout!r}"
            )
        tools.append(dict(tool))
    names = [t["name"] for t in tools]
    if len(set(names)) != len(names):
        raise _fail(f"tool names must be unique, got {names}")
    return tuple(tools)


@attrs.frozen(kw_only=True)
class RunwayOptions:
    """Options of ``avatarkit.get("runway", ...)``; exactly one of avatar_id and preset_id."""

    avatar_id: str | None = attrs.field(default=None, validator=_check_avatar_id)
    """UUID of a custom avatar made in Runway."""
    preset_id: str | None = attrs.field(default=None, validator=_check_preset_id)
    """A Runway preset, e.g. ``influencer``."""
    max_duration: int | None = attrs.field(default=None, validator=_check_max_duration)
    """Session length asked of Runway, 1-1800 s (Runway ends sessions after ~300 s anyway)."""
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
    personality: str | None = attrs.field(default=None, validator=_check_text)
    """Overrides the avatar's personality for this session."""
    start_script: str | None = attrs.field(default=None, validator=_check_text)
    """Overrides what the avatar says first."""
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
