"""Options of ``avatarkit.get("inference", ...)``: those of
``livekit.agents.inference.AvatarSession``, with its defaults and variables, checked at get()."""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping
from typing import Any

import attrs

from avatarkit import fields
from avatarkit.errors import ConfigurationError
from avatarkit.secret import Secret

DEFAULT_URL = "https://agent-gateway.livekit.cloud/v1"
STAGING_URL = "https://agent-gateway.staging.livekit.cloud/v1"
PROVIDERS = ("lemonslice",)  # the gateway's avatar providers the plugin knows (LemonSliceOptions)
# LemonSliceOptions keys sent as first-class request fields; the others go in extra_kwargs.
PAYLOAD_FIELDS = {"image_url": "image_url", "prompt": "prompt", "idle_prompt": "idle_prompt",
                  "idle_timeout": "idle_timeout_s"}  # fmt: skip


def _fail(message: str) -> ConfigurationError:
    return ConfigurationError(f"inference: {message}")


def _check_model(_: object, __: object, model: Any) -> None:
    form = "'<provider>' or '<provider>/<avatar_id>', e.g. 'lemonslice/<agent_id>'"
    if not isinstance(model, str) or not model.strip() or not model.isprintable():
        raise _fail(f"model must be a string {form}, got {model!r}")
    if (provider := model.partition("/")[0].strip()) not in PROVIDERS:
        close = difflib.get_close_matches(provider, PROVIDERS, n=1, cutoff=0.6)
        guess = f"did you mean {close[0]!r}? " if close else ""
        raise _fail(f"model provider {provider!r} is unknown: {guess}use one of {PROVIDERS}")


def _check_extra(options: Any, _: object, extra: Any) -> None:
    if extra is None:
        return
    if not isinstance(extra, dict) or not all(isinstance(k, str) for k in extra):
        raise _fail(f"extra_kwargs must be a dict with string keys, got {extra!r}")
    for key in ("image_url", "prompt", "idle_prompt"):
        if key in extra and (not isinstance(extra[key], str) or not extra[key].strip()):
            raise _fail(f"extra_kwargs[{key!r}] must be a non-empty string, got {extra[key]!r}")
    # LemonSlice fetches the image itself: a public http(s) URL (docs.livekit.io, LemonSlice)
    if "image_url" in extra and not re.match(r"https?://[^/\s]+", extra["image_url"]):
        raise _fail(f"extra_kwargs['image_url'] must be an http(s) URL, got {extra['image_url']!r}")
    if "image_url" in extra and options.avatar_id:  # as the plugin (and the gateway) refuse
        raise _fail("pass either an avatar id in model ('<provider>/<avatar_id>') or "
                    "extra_kwargs['image_url'], not both")  # fmt: skip
    timeout = extra.get("idle_timeout", 1)  # seconds; the gateway clamps it (bounds unpublished)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        raise _fail(f"extra_kwargs['idle_timeout'] must be a whole number of seconds >= 1, "
                    f"got {timeout!r}")  # fmt: skip
    try:
        json.dumps(extra, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise _fail(f"extra_kwargs must hold JSON values only: {exc}") from None


def _copy(extra: Any) -> Any:
    return dict(extra) if isinstance(extra, Mapping) else extra  # a copy, as the plugin takes


def _default_url() -> str:
    # the plugin's order: LIVEKIT_INFERENCE_URL, else the staging gateway for a staging project
    staging = ".staging.livekit.cloud" in os.environ.get("LIVEKIT_URL", "")
    return os.environ.get("LIVEKIT_INFERENCE_URL") or (STAGING_URL if staging else DEFAULT_URL)


@attrs.frozen
class _Gateway:  # fields.api_url's form, checks and repr, for a base_url with the plugin's default
    base_url: str = fields.api_url("inference", env="LIVEKIT_INFERENCE_URL", default=DEFAULT_URL)


def _url(url: Any) -> str:
    return _Gateway(url).base_url  # without its trailing /, or a ConfigurationError


@attrs.frozen(kw_only=True)
class InferenceOptions:
    """``model`` (``"lemonslice"`` or ``"lemonslice/<agent_id>"``), ``extra_kwargs`` (the
    provider's options), the gateway's ``base_url`` and the LiveKit key pair that signs for it."""

    model: str = attrs.field(validator=_check_model)
    extra_kwargs: dict[str, Any] | None = attrs.field(
        default=None, converter=_copy, validator=_check_extra
    )
    base_url: str = attrs.field(
        factory=_default_url, converter=_url, repr=attrs.fields(_Gateway).base_url.repr
    )
    api_key: Secret = fields.api_key("inference", env="LIVEKIT_INFERENCE_API_KEY", required=False)
    api_secret: Secret = fields.api_key(
        "inference", env="LIVEKIT_INFERENCE_API_SECRET", required=False
    )

    def __attrs_post_init__(self) -> None:
        # then, as the plugin, the project's own pair: the gateway mints the avatar's room
        # token with the key it authenticated, so it must be the room's project
        for name, env in (("api_key", "API_KEY"), ("api_secret", "API_SECRET")):
            if getattr(self, name) is None and os.environ.get(f"LIVEKIT_{env}"):
                object.__setattr__(self, name, Secret(os.environ[f"LIVEKIT_{env}"]))
                attrs.validate(self)
            if getattr(self, name) is None:
                raise _fail(f"{name} is needed: pass {name}=... or set LIVEKIT_INFERENCE_{env} "
                            f"or LIVEKIT_{env}")  # fmt: skip

    @property
    def provider(self) -> str:
        return self.model.partition("/")[0].strip()

    @property
    def avatar_id(self) -> str | None:
        return self.model.partition("/")[2].strip() or None

    def payload(self) -> dict[str, Any]:
        """The avatar's fields of the create request, as the official plugin maps them."""
        extra = dict(self.extra_kwargs or {})
        body = {PAYLOAD_FIELDS[k]: extra.pop(k) for k in list(extra) if k in PAYLOAD_FIELDS}
        ids = {"avatar_id": self.avatar_id} if self.avatar_id else {}
        return {**ids, **body, **({"extra_kwargs": extra} if extra else {})}
