"""Options of ``avatarkit.get("lemonslice", ...)``: ``livekit.plugins.lemonslice.AvatarSession``'s,
with its defaults and variable, validated at ``get()``."""

from __future__ import annotations

from typing import Any

import attrs

from avatarkit import fields
from avatarkit.errors import ConfigurationError
from avatarkit.secret import Secret

DEFAULT_API_URL = "https://lemonslice.com/api/liveai/sessions"
# The rates the plugin documents for audio_sample_rate (LemonSliceAPI.start_agent_session).
SAMPLE_RATES = (16000, 22050, 24000, 44100, 48000)
SOURCES = ("agent_id", "agent_image_url", "agent_image")


def _fail(message: str) -> ConfigurationError:
    return ConfigurationError(f"lemonslice: {message}")


def _image(_: object, __: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        from PIL import Image

        if not isinstance(value, Image.Image):
            raise _fail(f"agent_image must be a PIL.Image.Image, got {type(value).__name__}")


def _idle_timeout(_: object, __: attrs.Attribute[Any], value: Any) -> None:
    # The API takes any integer; a negative one means no idle timeout (create-session docs).
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise _fail(f"idle_timeout must be a whole number of seconds (-1: none), got {value!r}")


def _sample_rate(_: object, __: attrs.Attribute[Any], value: Any) -> None:
    if type(value) is not int or value not in SAMPLE_RATES:
        rates = ", ".join(map(str, SAMPLE_RATES))
        raise _fail(f"audio_sample_rate must be one of {rates} (Hz), got {value!r}")


@attrs.frozen(kw_only=True)
class LemonSliceOptions:
    """The avatar is exactly one of ``agent_id``, ``agent_image_url`` or ``agent_image``."""

    agent_id: str | None = fields.text("lemonslice")
    agent_image_url: str | None = fields.text(
        "lemonslice", pattern=r"https?://[^\s/]+\S*", hint=" (a public http(s) URL of the image)"
    )
    agent_image: Any = attrs.field(default=None, validator=_image, repr=False)
    agent_prompt: str | None = fields.text("lemonslice")
    agent_idle_prompt: str | None = fields.text("lemonslice")
    idle_timeout: int | None = attrs.field(default=None, validator=_idle_timeout)
    audio_sample_rate: int = attrs.field(default=24000, validator=_sample_rate)
    model: str | None = fields.text("lemonslice")
    api_url: str = fields.api_url("lemonslice", env=None, default=DEFAULT_API_URL)
    api_key: Secret = fields.api_key("lemonslice", env="LEMONSLICE_API_KEY")

    def __attrs_post_init__(self) -> None:
        given = [name for name in SOURCES if getattr(self, name) is not None]
        if len(given) != 1:
            raise _fail(
                "pass exactly one of agent_id, agent_image_url or agent_image, got "
                + (" and ".join(given) or "none")
            )

    def avatar(self) -> dict[str, Any]:
        """The avatar's fields of the create request: those given, in the plugin's order."""
        names = ("agent_id", "agent_image_url", "agent_prompt", "agent_idle_prompt",
                 "idle_timeout", "audio_sample_rate", "model")  # fmt: skip
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}
