"""Scripted faults for the Runway API double: HTTP-level and session-level."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import attrs

__all__ = ["ROUTES", "FaultInjector", "HTTPFault", "SessionFault"]

#: Route names faults can target: create (POST), get (GET by id), delete (DELETE by id).
ROUTES: tuple[str, ...] = ("create", "get", "delete")


def _check_status(_: Any, __: Any, value: int | None) -> None:
    if value is not None and not 100 <= value <= 599:
        raise ValueError(f"not an HTTP status: {value}")


def _str_dict(values: Mapping[str, str]) -> dict[str, str]:
    return dict(values)


@attrs.frozen
class HTTPFault:
    """How the server misbehaves for one request.

    - ``status``: answer with this status (``body`` as JSON if a dict/list, raw if str/bytes,
      else ``{"error": <reason phrase>}``) instead of handling the request.
    - ``retry_after`` (seconds, or an HTTP date string), ``retry_after_ms``,
      ``should_retry`` (sent as ``x-should-retry: true|false``) and ``headers`` are added
      to whatever response is sent.
    - ``delay``: seconds to wait before answering, to exercise client timeouts.
    - ``drop``: close the connection without any response.
    - ``process_first``: with ``status``/``drop``, handle the request for real first (the
      session is created or cancelled) and only then answer with the fault, as when a
      response is lost on its way back.

    A fault with neither ``status`` nor ``drop`` handles the request normally and only
    adds its delay and headers.
    """

    status: int | None = attrs.field(default=None, validator=_check_status)
    body: Any = None
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_str_dict)
    retry_after: float | str | None = None
    retry_after_ms: float | None = None
    should_retry: bool | None = None
    delay: float = 0.0
    drop: bool = False
    process_first: bool = False

    def __attrs_post_init__(self) -> None:
        if self.drop and self.status is not None:
            raise ValueError("a dropped connection has no status")
        if self.delay < 0:
            raise ValueError("delay must be >= 0")

    @property
    def replaces_response(self) -> bool:
        """Whether the fault answers instead of the normal handler."""
        return self.drop or self.status is not None

    def response_headers(self) -> dict[str, str]:
        """Headers this fault adds to the response."""
        headers = dict(self.headers)
        if self.retry_after is not None:
            value = self.retry_after
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            headers["Retry-After"] = str(value)
        if self.retry_after_ms is not None:
            headers["retry-after-ms"] = str(self.retry_after_ms)
        if self.should_retry is not None:
            headers["x-should-retry"] = "true" if self.should_retry else "false"
        return headers

    def default_body(self) -> dict[str, Any]:
        """The JSON error body used when ``body`` is not given."""
        assert self.status is not None
        try:
            phrase = HTTPStatus(self.status).phrase
        except ValueError:
            phrase = "Error"
        return {"error": phrase}


@attrs.frozen
class SessionFault:
    """How provisioning of one created session misbehaves.

    - ``provisioning_delay``: seconds in NOT_READY before the outcome (overrides the
      server's default).
    - ``queued_for``: seconds spent first in NOT_READY with ``queued: true``.
    - ``failure_code`` (+ ``failure`` text): provisioning ends FAILED instead of READY.
    - ``never_ready``: the session stays NOT_READY until cancelled or driven by a control
      method.
    """

    provisioning_delay: float | None = None
    queued_for: float | None = None
    failure_code: str | None = None
    failure: str = "The session could not be provisioned."
    never_ready: bool = False


@attrs.define
class _Rule:
    route: str | None
    remaining: int | None
    fault: HTTPFault


@attrs.define
class _SessionRule:
    remaining: int | None
    fault: SessionFault


def _check_times(times: int | None) -> None:
    if times is not None and times < 1:
        raise ValueError("times must be >= 1 or None (every time)")


class FaultInjector:
    """Queue of scripted faults, consumed first-in first-out by matching requests.

    ``times=None`` keeps a fault active until :meth:`clear`.
    """

    def __init__(self) -> None:
        self._rules: list[_Rule] = []
        self._session_rules: list[_SessionRule] = []

    def next(
        self,
        *,
        route: str | None = None,
        times: int | None = 1,
        status: int | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        retry_after: float | str | None = None,
        retry_after_ms: float | None = None,
        should_retry: bool | None = None,
        delay: float = 0.0,
        drop: bool = False,
        process_first: bool = False,
    ) -> HTTPFault:
        """Make the next ``times`` requests to ``route`` (any route if None) misbehave.

        See :class:`HTTPFault` for the arguments.
        """
        if route is not None and route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; expected one of {ROUTES}")
        _check_times(times)
        fault = HTTPFault(
            status=status,
            body=body,
            headers=headers or {},
            retry_after=retry_after,
            retry_after_ms=retry_after_ms,
            should_retry=should_retry,
            delay=delay,
            drop=drop,
            process_first=process_first,
        )
        self._rules.append(_Rule(route, times, fault))
        return fault

    def next_session(
        self,
        *,
        times: int | None = 1,
        provisioning_delay: float | None = None,
        queued_for: float | None = None,
        failure_code: str | None = None,
        failure: str | None = None,
        never_ready: bool = False,
    ) -> SessionFault:
        """Make the next ``times`` created sessions provision abnormally (:class:`SessionFault`)."""
        _check_times(times)
        fault = SessionFault(
            provisioning_delay=provisioning_delay,
            queued_for=queued_for,
            failure_code=failure_code,
            failure=failure if failure is not None else SessionFault().failure,
            never_ready=never_ready,
        )
        self._session_rules.append(_SessionRule(times, fault))
        return fault

    def clear(self) -> None:
        """Drop every pending fault."""
        self._rules.clear()
        self._session_rules.clear()

    @property
    def pending(self) -> int:
        """Number of scripted faults (HTTP and session) not yet used up."""
        return len(self._rules) + len(self._session_rules)

    def take_http(self, route: str) -> HTTPFault | None:
        """Consume the fault for one request to ``route``, if any (called by the server)."""
        for rule in self._rules:
            if rule.route is None or rule.route == route:
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._rules.remove(rule)
                return rule.fault
        return None

    def take_session(self) -> SessionFault | None:
        """Consume the fault for one newly created session, if any (called by the server)."""
        if not self._session_rules:
            return None
        rule = self._session_rules[0]
        if rule.remaining is not None:
            rule.remaining -= 1
            if rule.remaining == 0:
                self._session_rules.pop(0)
        return rule.fault
