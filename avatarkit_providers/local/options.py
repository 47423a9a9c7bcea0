"""The local provider's options, validated when ``avatarkit.get("local", ...)`` is called."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import attrs

from avatarkit.errors import ConfigurationError

COLOR_NAMES = ("background", "skin", "eye", "mouth", "hair", "shirt")


def _fail(message: str) -> ConfigurationError:
    return ConfigurationError(f"local: {message}")


def _check_size(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 64 <= value <= 2048:
        raise _fail(f"{attribute.name} must be a whole number of pixels in 64..2048, got {value!r}")
    if value % 2:
        raise _fail(f"{attribute.name} must be even (video encoders need it), got {value}")


def _check_fps(_: object, __: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= 60:
        raise _fail(f"fps must be a finite number in 1..60, got {value!r}")


def _check_seed(_: object, __: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"seed must be a whole number, got {value!r}")


def _check_portrait(_: object, __: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and not os.path.isfile(value):
        raise _fail(f"portrait {value!r} is not a file; give the path of a PNG or JPEG image")


def _check_colors(_: object, __: attrs.Attribute[Any], value: Mapping[str, Any]) -> None:
    if unknown := set(value) - set(COLOR_NAMES):
        raise _fail(f"unknown colours {sorted(unknown)}; choose from {', '.join(COLOR_NAMES)}")
    for name, rgb in value.items():
        if (
            not isinstance(rgb, (tuple, list))
            or len(rgb) != 3
            or not all(
                isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in rgb
            )
        ):
            raise _fail(f"colour {name!r} must be (R, G, B) with integers in 0..255, got {rgb!r}")


@attrs.frozen(kw_only=True)
class LocalOptions:
    """Options of ``avatarkit.get("local", ...)``."""

    width: int = attrs.field(default=512, validator=_check_size)
    """Video width in pixels (even, 64..2048)."""
    height: int = attrs.field(default=512, validator=_check_size)
    """Video height in pixels (even, 64..2048)."""
    fps: float = attrs.field(default=30.0, validator=_check_fps)
    """Video frame rate."""
    portrait: str | None = attrs.field(default=None, validator=_check_portrait)
    """A PNG or JPEG portrait to animate instead of the built-in face."""
    colors: Mapping[str, tuple[int, int, int]] = attrs.field(factory=dict, validator=_check_colors)
    """Colours of the built-in face: background, skin, eye, mouth, hair, shirt."""
    seed: int = attrs.field(default=0, validator=_check_seed)
    """Seed of blinks and idle motion (the same seed draws the same face)."""
