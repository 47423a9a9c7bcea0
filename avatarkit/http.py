"""The HTTP client every provider shares: one session, retries, timeouts, clean errors.

Retries. Connection errors, timeouts, 408, 409, 429 and 5xx are retried up to
``conn_options.max_retry`` times, and ``x-should-retry: true|false`` has the last word (as
in Runway's own SDKs). A request that is not idempotent (one that creates something, such as
Runway's ``POST /v1/realtime_sessions``, which has no idempotency key) is resent only when
the request surely was not carried out, since a resend after one that was starts a second,
orphaned, billing session:

- resent: a refused connection (it never reached the server); 408 (the server gave up
  reading it), 409 and 429 (refused before any work); 503 with ``Retry-After`` (the service
  asks to come back: it did not take the request); any status with ``x-should-retry: true``;
- not resent: a timeout or a dropped connection, and 500, 502, 504 and any other 5xx
  (a gateway's 502/504 often arrives after the server behind it created the session; a 500
  may come after the work was done), unless the server says ``x-should-retry: true``.

Waits: ``retry-after-ms``, else ``retry-after``, else the ``conn_options`` interval. Inside
:func:`deadline` (the core's bound on ending a session) every attempt and every wait fits in
what is left of it: a server asking for a longer wait makes the call fail at once.

Redirects are never followed: a 3xx is an error naming where it pointed. Following one would
re-post a body holding the avatar's LiveKit token to another host (307/308), or turn a create
into a GET whose answer looks like a created session (301/302/303).

Error bodies are read up to :data:`MAX_BODY` bytes, redacted (every credential of the call,
every URL's userinfo and query), then cut to :data:`MAX_MESSAGE` characters.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import email.utils
import json as jsonlib
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import aiohttp
import attrs
from livekit.agents import APIConnectionError, APIConnectOptions, APIStatusError, APITimeoutError
from yarl import URL

from .errors import AvatarkitError
from .log import logger
from .secret import Secret, redact

RETRYABLE_STATUS = frozenset({408, 409, 429})
"""Statuses retried besides 5xx; each also says the request was not carried out, so a create
may be resent after it."""
MAX_RETRY_AFTER = 60.0
"""A server asking for a longer wait than this fails the call instead of holding start()."""
MAX_BODY = 1 << 20
"""Bytes of a response body read at most; a longer answer is an error."""
MAX_MESSAGE = 500
"""Characters of a server's error message kept in an exception."""

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "avatarkit_http_deadline", default=None
)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Bound every request made inside (in this task, and tasks it starts) to ``seconds``
    from now, all retries and waits included."""
    now = time.monotonic()
    current = _deadline.get()
    token = _deadline.set(now + seconds if current is None else min(current, now + seconds))
    try:
        yield
    finally:
        _deadline.reset(token)


class ProviderAPIError(AvatarkitError, APIStatusError):
    """A provider's API answered with an error status. Never carries a credential."""

    may_have_been_carried_out = False
    """A request that creates something failed in a way that does not tell whether the
    server carried it out (a timeout, a dropped connection, a 500/502/504)."""

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

    may_have_been_carried_out = False
    """As :attr:`ProviderAPIError.may_have_been_carried_out`."""


class ProviderTimeoutError(ProviderConnectionError, APITimeoutError):
    """A provider's API did not answer a request within ``conn_options.timeout``."""


@attrs.frozen
class HttpResponse:
    status: int
    body: Any
    """Parsed JSON when the response is JSON, else the text ('' for an empty body)."""


def _retry_override(headers: Mapping[str, str]) -> bool | None:
    """What ``x-should-retry: true|false`` says, if the server sent it."""
    return {"true": True, "false": False}.get(headers.get("x-should-retry", "").strip().lower())


def should_retry(status: int, headers: Mapping[str, str]) -> bool:
    """Whether a response status is worth retrying; ``x-should-retry`` has the last word."""
    override = _retry_override(headers)
    if override is not None:
        return override
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


def may_resend(status: int, headers: Mapping[str, str]) -> bool:
    """Whether a request that is not idempotent may be sent again after this answer: only
    when it says the request was not carried out (see the module's docstring)."""
    override = _retry_override(headers)
    if override is not None:
        return override
    if status == 503:
        return retry_after(headers) is not None
    return status in RETRYABLE_STATUS


def _error_message(body: Any, secrets: Iterable[Secret] = ()) -> str:
    """The server's message, redacted first, then cut (a credential straddling the cut
    would otherwise leak in part)."""
    text: str | None = None
    if isinstance(body, dict):
        for key in ("error", "message", "detail"):
            if isinstance(value := body.get(key), str):
                text = value
                break
        else:
            text = jsonlib.dumps(body)
    else:
        text = str(body)
    text = redact(text, secrets)
    if len(text) > MAX_MESSAGE:
        text = text[:MAX_MESSAGE] + "..."
    return text or "(empty body)"


class HttpClient:
    """Sends a provider's API requests with the core's retry and timeout policy.

    Uses the given ``aiohttp`` session, else the LiveKit job's, else one of its own that
    :meth:`aclose` closes. Each attempt is bounded as a whole by ``conn_options.timeout``;
    connection errors, timeouts, 408, 409, 429 and 5xx are retried up to
    ``conn_options.max_retry`` times, waiting what the server asks (``retry-after-ms``,
    ``retry-after``) or the ``conn_options`` interval; creates only when surely not carried
    out. Redirects are errors. The module's docstring has the rules.
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

        A request that is not ``idempotent`` (one that creates something) is resent only
        when it surely was not carried out: a refused connection, or an answer saying so
        (:func:`may_resend`). After a timeout, a dropped connection or a 500/502/504 it may
        have been, and a resend would create a second, orphaned, billing thing.
        """
        secrets = list(secrets)
        attempts = self.conn_options.max_retry + 1 if retry else 1
        end = _deadline.get()
        for attempt in range(attempts):
            delay: float | None = None
            timeout = self.conn_options.timeout
            if end is not None:
                timeout = min(timeout, max(end - time.monotonic(), 0.0))
            try:
                if timeout <= 0:
                    raise asyncio.TimeoutError
                async with self.session().request(
                    method,
                    url,
                    headers=headers,
                    json=json,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=timeout),
                ) as resp:
                    text = await _read_text(resp)
                    if 300 <= resp.status < 400:
                        raise ProviderAPIError(
                            self.provider,
                            resp.status,
                            f"{method} {_path(url)} was redirected to "
                            f"{_location(url, resp.headers.get('Location'))}; avatarkit does "
                            "not follow redirects for provider API calls (they would carry "
                            "credentials elsewhere): use the final URL as the API's base URL",
                            retryable=False,
                        )
                    body = _parse_body(text, resp.content_type)
                    if resp.status < 400:
                        return HttpResponse(resp.status, body)
                    retryable = should_retry(resp.status, resp.headers)
                    ambiguous = not idempotent and not may_resend(resp.status, resp.headers)
                    ambiguous = ambiguous and resp.status >= 500
                    if not idempotent and retryable and not may_resend(resp.status, resp.headers):
                        retryable = False
                        note = " (not resent: the request may have been carried out)"
                    else:
                        note = ""
                    delay = retry_after(resp.headers)
                    message = _error_message(body, secrets) + note
                    status_error = ProviderAPIError(
                        self.provider, resp.status, message, retryable=retryable
                    )
                    status_error.may_have_been_carried_out = ambiguous
                    error: Exception = status_error
            except asyncio.TimeoutError:
                retryable = idempotent
                timed_out = ProviderTimeoutError(
                    f"{self.provider} API: {method} {_path(url)} timed out after "
                    f"{timeout:g}s"
                    + ("" if idempotent else " (not retried: it may have been carried out)")
                )
                timed_out.may_have_been_carried_out = not idempotent
                error = timed_out
            except aiohttp.ClientError as exc:
                # a refused connection never reached the server: safe to send again
                retryable = idempotent or isinstance(exc, aiohttp.ClientConnectorError)
                dropped = ProviderConnectionError(
                    redact(
                        f"{self.provider} API: {method} {_path(url)} failed: "
                        f"{type(exc).__name__}: {exc}",
                        secrets,
                    )
                )
                dropped.may_have_been_carried_out = not retryable
                error = dropped

            if delay is not None and delay > MAX_RETRY_AFTER:
                retryable = False
            if retryable and delay is None:
                # livekit's convention: a quick first retry, then the configured interval
                delay = 0.1 if attempt == 0 else self.conn_options.retry_interval
            if retryable and end is not None and time.monotonic() + (delay or 0.0) >= end:
                logger.warning(
                    "%s; giving up: a retry would not fit in the time left",
                    error,
                    extra={"provider": self.provider},
                )
                retryable = False
            if not retryable or attempt == attempts - 1:
                raise error
            assert delay is not None
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


def _location(url: str, location: str | None) -> str:
    """Where a redirect pointed, without its userinfo, query or fragment."""
    if not location:
        return "nowhere (no Location header)"
    try:
        target = URL(url).join(URL(location))
        return str(target.with_user(None).with_password(None).with_query(None).with_fragment(None))
    except ValueError:
        return "an unreadable Location"


async def _read_text(resp: aiohttp.ClientResponse) -> str:
    """The body as text, refusing one over :data:`MAX_BODY` bytes."""
    data = bytearray()
    while chunk := await resp.content.read(MAX_BODY + 1 - len(data)):
        data += chunk
        if len(data) > MAX_BODY:
            resp.close()  # drop the connection rather than read the rest
            raise aiohttp.ClientPayloadError(
                f"the {resp.status} answer's body is over {MAX_BODY} bytes; not read further"
            )
    return data.decode(resp.charset or "utf-8", errors="replace")


def _parse_body(text: str, content_type: str) -> Any:
    if text and "json" in content_type:
        try:
            return jsonlib.loads(text)
        except ValueError:
            pass
    return text
