"""The HTTP client every provider shares: one session, retries, timeouts, clean errors."""

from __future__ import annotations

import asyncio
import email.utils
import json as jsonlib
import time
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp
import attrs
from livekit.agents import APIConnectionError, APIConnectOptions, APIStatusError, APITimeoutError
from yarl import URL

from .errors import AvatarkitError
from .log import logger
from .secret import Secret, redact

RETRYABLE_STATUS = frozenset({408, 409, 429})
MAX_RETRY_AFTER = 60.0
"""A server asking for a longer wait than this fails the call instead of holding start()."""


class ProviderAPIError(AvatarkitError, APIStatusError):
    """A provider's API answered with an error status. Never carries a credential."""

    def __init__(self, provider: str, status_code: int, message: str, *, retryable: bool) -> None:
        super().__init__(
            f"{provider} API error {status_code}: {message}",
            status_code=status_code,
            body=message,
            retryable=retryable,
        )
        self.provider = provider


class ProviderConnectionError(AvatarkitError, APIConnectionError):
    """A provider's API could not be reached (connection refused, dropped, reset)."""


class ProviderTimeoutError(ProviderConnectionError, APITimeoutError):
    """A provider's API did not answer a request within ``conn_options.timeout``."""


@attrs.frozen
class HttpResponse:
    status: int
    body: Any
    """Parsed JSON when the response is JSON, else the text ('' for an empty body)."""


def should_retry(status: int, headers: Mapping[str, str]) -> bool:
    """Whether a response status is worth retrying; ``x-should-retry`` has the last word."""
    override = headers.get("x-should-retry", "").strip().lower()
    if override in ("true", "false"):
        return override == "true"
    return status in RETRYABLE_STATUS or status >= 500


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The wait a server asked for: ``retry-after-ms``, else ``retry-after`` (seconds or date)."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    if (value := headers.get("retry-after")) is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            return max(0.0, when.timestamp() - (time.time() if now is None else now))
    return None


def _error_message(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("error", "message", "detail"):
            if isinstance(value := body.get(key), str):
                return value
        return jsonlib.dumps(body)[:500]
    return str(body)[:500] or "(empty body)"


class HttpClient:
    """Sends a provider's API requests with the core's retry and timeout policy.

    Uses the given ``aiohttp`` session, else the LiveKit job's, else one of its own that
    :meth:`aclose` closes. Each attempt is bounded as a whole by ``conn_options.timeout``;
    connection errors, timeouts, 408, 409, 429 and 5xx are retried up to
    ``conn_options.max_retry`` times, waiting what the server asks (``retry-after-ms``,
    ``retry-after``) or the ``conn_options`` interval.
    """

    def __init__(
        self,
        provider: str,
        conn_options: APIConnectOptions,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.provider = provider
        self.conn_options = conn_options
        self._session = session
        self._owned: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is not None:
            return self._session
        if self._owned is None or self._owned.closed:
            from livekit.agents.utils import http_context

            try:
                return http_context.http_session()
            except RuntimeError:  # outside a job: own one
                self._owned = aiohttp.ClientSession()
        return self._owned

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        secrets: Iterable[Secret] = (),
        retry: bool = True,
        idempotent: bool = True,
    ) -> HttpResponse:
        """Send one request (retried per policy); raise a ``Provider*Error`` on failure.

        A request that is not ``idempotent`` (one that creates something) is retried only
        when it surely did not reach the server, or the server answered with a retryable
        status: after a timeout or a dropped connection it may have been carried out, and
        sending it again would create a second, orphaned, billing thing.
        """
        secrets = list(secrets)
        attempts = self.conn_options.max_retry + 1 if retry else 1
        for attempt in range(attempts):
            delay: float | None = None
            try:
                async with self.session().request(
                    method,
                    url,
                    headers=headers,
                    json=json,
                    timeout=aiohttp.ClientTimeout(total=self.conn_options.timeout),
                ) as resp:
                    body = _parse_body(await resp.text(), resp.content_type)
                    if resp.status < 400:
                        return HttpResponse(resp.status, body)
                    retryable = should_retry(resp.status, resp.headers)
                    delay = retry_after(resp.headers)
                    message = redact(_error_message(body), secrets)
                    error: Exception = ProviderAPIError(
                        self.provider, resp.status, message, retryable=retryable
                    )
            except asyncio.TimeoutError:
                retryable = idempotent
                error = ProviderTimeoutError(
                    f"{self.provider} API: {method} {_path(url)} timed out after "
                    f"{self.conn_options.timeout:g}s"
                    + ("" if idempotent else " (not retried: it may have been carried out)")
                )
            except aiohttp.ClientError as exc:
                # a refused connection never reached the server: safe to send again
                retryable = idempotent or isinstance(exc, aiohttp.ClientConnectorError)
                error = ProviderConnectionError(
                    redact(
                        f"{self.provider} API: {method} {_path(url)} failed: "
                        f"{type(exc).__name__}: {exc}",
                        secrets,
                    )
                )

            if delay is not None and delay > MAX_RETRY_AFTER:
                retryable = False
            if not retryable or attempt == attempts - 1:
                raise error
            if delay is None:
                # livekit's convention: a quick first retry, then the configured interval
                delay = 0.1 if attempt == 0 else self.conn_options.retry_interval
            logger.warning(
                "%s; retrying in %.2fs (retry %d of %d)",
                error,
                delay,
                attempt + 1,
                attempts - 1,
                extra={"provider": self.provider},
            )
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        if self._owned is not None:
            await self._owned.close()
            self._owned = None


def _path(url: str) -> str:
    # Only the path: a base URL may carry credentials in its query or userinfo.
    try:
        return URL(url).path
    except ValueError:
        return "?"


def _parse_body(text: str, content_type: str) -> Any:
    if text and "json" in content_type:
        try:
            return jsonlib.loads(text)
        except ValueError:
            pass
    return text
