"""Options of ``avatarkit.get("anam", ...)``: those of ``livekit.plugins.anam.AvatarSession``,
with its defaults and variables, validated at ``get()``."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

import attrs

from avatarkit import fields
from avatarkit.errors import ConfigurationError
from avatarkit.secret import Secret

DEFAULT_API_URL = "https://api.anam.ai"
# Avatar ids are UUIDs (anam.ai/docs/api-reference/avatars/get-avatar: "id string<uuid>").
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
# Anam keeps adding cara-* models, so any of that form passes (the same page lists these;
# cara-4-* = cara-4-latest, and director-notes asks for cara-4).
_MODELS = ("cara-2", "cara-3", "cara-4", "cara-4-latest")
# Director Notes is a beta that "may change" (anam.ai/docs/personas/director-notes): only a
# near miss of a known preset is refused.
_PRESETS = ("happy", "warm", "playful", "supportive", "sad", "angry", "distressed")


def _fail(message: str) -> ConfigurationError:
    return ConfigurationError(f"anam: {message}")


def _fields(value: Any, option: str, kind: str, keys: tuple[str, ...]) -> list[Any]:
    """``keys`` of a dict, or of the official plugin's dataclass (or any object with them)."""
    if isinstance(value, Mapping):
        for key in set(value) - set(keys):
            raise _fail(f"{option} has no field {key!r}: its fields are {', '.join(keys)}")
        return [value.get(key) for key in keys]
    if not all(hasattr(value, key) for key in keys):
        raise _fail(f"{option} must be a {kind} or a dict, got {type(value).__name__}")
    return [getattr(value, key) for key in keys]


def _text(value: Any, option: str, known: tuple[str, ...] = (), form: str = "") -> Any:
    """A non-empty string; a near miss of a ``known`` one is refused as a typo and, with a
    ``form``, so is anything outside ``known`` and ``form``."""
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"{option} must be a non-empty string, got {value!r}")
    close = difflib.get_close_matches(value.lower(), known, n=1, cutoff=0.75)
    if value not in known and not (form and re.fullmatch(form, value)) and (close or form):
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise _fail(f"{option}={value!r} is unknown: {hint}known ones: {', '.join(known)}")
    return value


def _persona(value: Any) -> dict[str, Any]:
    """``persona_config`` as the ephemeral ``personaConfig`` the official plugin sends (with
    no Anam LLM: the agent speaks), unset fields left out as it leaves them out."""
    keys = ("name", "avatarId", "avatarModel", "directorNotes")
    name, avatar, model, notes = _fields(value, "persona_config", "PersonaConfig", keys)
    if not isinstance(avatar, str) or not _UUID.fullmatch(avatar):
        raise _fail(f"persona_config.avatarId must be an avatar's UUID, got {avatar!r}")
    name = _text(name, "persona_config.name")
    persona = {"type": "ephemeral", "name": name, "avatarId": avatar, "llmId": "CUSTOMER_CLIENT_V1"}
    if model not in (None, ""):  # an empty model is no model, for the official plugin too
        persona["avatarModel"] = _text(model, "persona_config.avatarModel", _MODELS, "cara-.+")
    if notes is not None and (given := _notes(notes, "persona_config.directorNotes")):
        persona["directorNotes"] = given
    return persona


def _notes(value: Any, where: str) -> dict[str, Any]:
    # Anam answers a 400 to what this refuses (the official plugin's DirectorNotes docstring).
    parts = ("expressivity", "presetStyle", "customStylePrompt")
    level, preset, prompt = values = _fields(value, where, "DirectorNotes", parts)
    if level is not None and not (type(level) in (int, float) and 0 <= level <= 1):
        raise _fail(f"{where}.expressivity must be a number from 0 to 1, got {level!r}")
    if preset is not None and prompt is not None:
        raise _fail(f"{where}: set presetStyle or customStylePrompt, not both")
    for part, text, known in (("presetStyle", preset, _PRESETS), ("customStylePrompt", prompt, ())):
        if text is not None:
            _text(text, f"{where}.{part}", known)
    return {part: v for part, v in zip(parts, values, strict=True) if v is not None}


def _session(value: Any) -> dict[str, Any] | None:
    """``session_options`` as the ``sessionOptions`` the official plugin sends (None: none)."""
    if value is None:
        return None
    keys = ("video_width", "video_height", "show_ai_avatar_disclosure")
    width, height, disclose = _fields(value, "session_options", "SessionOptions", keys)
    for key, size in zip(keys[:2], (width, height), strict=True):
        if size is not None and (type(size) is not int or size < 1):
            raise _fail(f"session_options.{key} must be a whole number of pixels, got {size!r}")
    if (width is None) != (height is None):  # Anam refuses half a pair (the plugin raises)
        raise _fail("session_options: set video_width and video_height together, or neither")
    if disclose is not None and not isinstance(disclose, bool):
        raise _fail(f"session_options.show_ai_avatar_disclosure must be a bool, got {disclose!r}")
    wire = {"videoWidth": width, "videoHeight": height, "showAIAvatarDisclosure": disclose}
    return {key: v for key, v in wire.items() if v is not None} or None


@attrs.frozen(kw_only=True)
class AnamOptions:
    """``persona_config`` (a ``livekit.plugins.anam.PersonaConfig``, or a dict of its fields)
    and ``session_options`` (a ``SessionOptions``, or a dict), kept as sent to Anam."""

    persona_config: dict[str, Any] = attrs.field(converter=_persona)
    session_options: dict[str, Any] | None = attrs.field(default=None, converter=_session)
    api_url: str = fields.api_url("anam", env="ANAM_API_URL", default=DEFAULT_API_URL)
    api_key: Secret = fields.api_key("anam", env="ANAM_API_KEY")
