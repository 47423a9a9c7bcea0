"""A provider's JSON API over the core's :class:`~avatarkit.http.HttpClient`: one base URL,
its auth headers, the secrets to keep out of errors, and reading ids out of answers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .http import HttpClient, ProviderAPIError
from .secret import Secret, redact


class JsonAPI:
    """Calls ``base_url`` + path with ``headers`` (a :class:`Secret` value is revealed only
    on the wire and redacted from every error)."""

    def __init__(
        self, http: HttpClient, base_url: str, headers: Mapping[str, str | Secret]
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self._headers = headers
        self._secrets = [v for v in headers.values() if isinstance(v, Secret)]

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        creates: bool = False,
        secrets: Iterable[Secret] = (),
    ) -> Any:
        """Send one request and return the parsed answer. ``creates``: the request starts
        something billable, so it is resent only when surely not carried out."""
        headers = {k: v.reveal() if isinstance(v, Secret) else v for k, v in self._headers.items()}
        if body is not None:
            headers.setdefault("Content-Type", "application/json")
        response = await self.http.request(
            method,
            f"{self.base_url}{path}",
            headers=headers,
            json=body,
            secrets=[*self._secrets, *secrets],
            idempotent=not creates,
        )
        return response.body

    def read(self, answer: Any, key: str, *, secrets: Iterable[Secret] = ()) -> str:
        """``answer[key]`` as a non-empty string, else an error saying that something may have
        been created that cannot be ended (key may be a dotted path)."""
        value = answer
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str) and value:
            return value
        got = redact(str(answer), [*self._secrets, *secrets])[:200] or "(empty body)"
        raise ProviderAPIError(
            self.http.provider,
            200,
            f"the answer has no usable {key!r} (a session may have been created that "
            f"avatarkit cannot end); it began: {got}",
            retryable=False,
        )
