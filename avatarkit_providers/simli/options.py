"""Options of ``avatarkit.get("simli", ...)``: those of ``livekit.plugins.simli.AvatarSession``
(``simli_config``, ``api_url``), with its defaults, validated at ``get()``."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import attrs

from avatarkit import ConfigurationError, Secret, fields

DEFAULT_API_URL = "https://api.simli.ai"
# Faces are UUIDs (older ones like "tmp9i8bbq7c"); the plugin joins face and emotion with "/".
_FACE = re.compile(r"[A-Za-z0-9_-]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")  # docs.simli.com/emotions


@dataclasses.dataclass
class SimliConfig:
    """``livekit.plugins.simli.SimliConfig``, field for field: ``simli_config`` takes either."""

    api_key: str | Secret = dataclasses.field(repr=False)
    face_id: str
    emotion_id: str = "92f24a0c-f046-45df-8df0-af7449c04571"  # the official plugin's default
    max_session_length: int = 600  # seconds: Simli ends the session then, even mid-sentence
    max_idle_time: int = 30  # seconds without speech before Simli ends the session

    def create_json(self) -> dict[str, Any]:
        """The body of ``POST /compose/token``, as the official plugin builds it."""
        return {"faceId": f"{self.face_id}/{self.emotion_id}", "handleSilence": True,
                "maxSessionLength": self.max_session_length,
                "maxIdleTime": self.max_idle_time}  # fmt: skip


def _copy(value: Any) -> SimliConfig:
    """A checked copy of the app's config (either class), so later changes to the app's
    object do not reach a running session, with the key held in a Secret."""

    def fail(message: str) -> ConfigurationError:
        return ConfigurationError(f"simli: simli_config{message}")

    names = [field.name for field in dataclasses.fields(SimliConfig)]
    if not all(hasattr(value, name) for name in names):
        got = "" if value is None else f", got {type(value).__name__}"
        raise fail(f"=SimliConfig(api_key=..., face_id=...) is needed{got}")
    key, *rest = (getattr(value, name) for name in names)
    key = key.reveal() if isinstance(key, Secret) else key
    if not isinstance(key, str) or not key:  # not shown: a wrong type may hold a key
        got = "nothing" if key in ("", None) else type(key).__name__
        raise fail(f".api_key must be your Simli API key, got {got}")
    if key != key.strip() or not key.isprintable():
        raise fail(".api_key has spaces or control characters around it")
    config = SimliConfig(Secret(key), *rest)
    for name, form, what in (
        ("face_id", _FACE, "a Simli face id (letters, digits, - and _)"),
        ("emotion_id", _UUID, "an emotion UUID (see docs.simli.com/emotions)"),
    ):
        if not isinstance(value := getattr(config, name), str) or not form.fullmatch(value):
            raise fail(f".{name}={value!r} is not {what}")
    for name in ("max_session_length", "max_idle_time"):  # whole seconds, no published ceiling
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise fail(f".{name} must be a whole number of seconds >= 1, got {value!r}")
    return config


@attrs.frozen(kw_only=True)
class SimliOptions:
    """``simli_config`` (required, checked and copied here) and ``api_url``."""

    simli_config: SimliConfig = attrs.field(default=None, converter=_copy)
    """Required: Simli's API key, face, emotion and session limits."""
    api_url: str = fields.api_url("simli", env=None, default=DEFAULT_API_URL)
    """Simli's API."""
