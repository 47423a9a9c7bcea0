"""The create request with ``agent_image``: a multipart upload of its JSON and a PNG, as the
official plugin sends it. The core's HTTP client sends JSON only, so this sends it once over
the core's aiohttp session (a create is not resent anyway: it may have been carried out)."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from avatarkit.http import (
    HttpClient,
    ProviderAPIError,
    ProviderConnectionError,
    ProviderTimeoutError,
)
from avatarkit.secret import Secret, redact

from .options import LemonSliceOptions


async def post_image(
    http: HttpClient, options: LemonSliceOptions, body: Mapping[str, Any], secret: Secret
) -> Any:
    """POST ``body`` (form field ``payload``) and ``options.agent_image`` as ``image.png``."""
    url, key = options.api_url, options.api_key
    png = io.BytesIO()
    options.agent_image.save(png, format="PNG")
    form = aiohttp.FormData()
    form.add_field("payload", json.dumps(body), content_type="application/json")
    form.add_field("image", png.getvalue(), filename="image.png", content_type="image/png")
    timeout = http.conn_options.timeout
    try:
        async with http.session().post(
            url,
            data=form,
            headers={"X-API-Key": key.reveal()},
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            status, text = response.status, await response.text()
    except asyncio.TimeoutError:
        raise ProviderTimeoutError(
            f"lemonslice API: the image upload timed out after {timeout:g}s (not retried: it "
            "may have been carried out)"
        ) from None
    except aiohttp.ClientError as exc:
        message = f"lemonslice API: the image upload failed: {type(exc).__name__}: {exc}"
        raise ProviderConnectionError(redact(message, [key, secret])) from None
    if status >= 300:
        message = redact(text, [key, secret])[:500] or "(empty body)"
        raise ProviderAPIError(http.provider, status, message, retryable=False)
    try:
        return json.loads(text)
    except ValueError:
        return text
