"""The interface of a provider's *double*: a stand-in that lets the provider run here with no
account and no server (``avatarkit demo``, ``avatarkit compare``) and, for a provider with a
remote API, serves an emulation of that API (``avatarkit emulate``).

A plugin names its double in :class:`~avatarkit.ProviderSpec` (``double="pkg.mod:MyDouble"``);
the command line loads it with :meth:`avatarkit.ProviderInfo.load_double` and never names a
provider itself. Light on purpose: importing this module imports no livekit.

.. code-block:: python

    class MyAvatarDouble(ProviderDouble):
        label = "myavatar (emulated)"

        @contextlib.asynccontextmanager
        async def offline(self, given, *, size):
            if "api_key" in given:  # the user's account: the real service
                yield Offline("myavatar", dict(given))
                return
            async with MyAvatarEmulator() as emulator:
                yield Offline(self.label, {"api_key": emulator.api_key, **given,
                                           "api_url": emulator.url})
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar, Protocol

import attrs

from .errors import ConfigurationError

__all__ = ["Observable", "Offline", "ProviderDouble", "Served", "SessionRecord"]


@attrs.frozen
class Offline:
    """What :meth:`ProviderDouble.offline` yields: how to run the provider here."""

    label: str
    """What to call the avatar in output: the double's :attr:`~ProviderDouble.label`, or the
    provider's own name when the user's options reach the real service."""
    options: dict[str, Any] = attrs.field(repr=False)
    """Options for ``avatarkit.get()`` (may hold the user's credentials: never print them)."""
    double: Any = attrs.field(default=None, repr=False)
    """The running stand-in (an :class:`Observable`), for the conformance kit; None on the
    real service and for providers with no remote API."""


@attrs.frozen
class Served:
    """What :meth:`ProviderDouble.serve` yields: where the emulated API listens and how to
    point an unchanged agent at it."""

    title: str
    """One line saying what is served, e.g. ``"Runway emulator (emulated, no Runway
    account)"``."""
    url: str
    """The emulated API's base URL."""
    env: Mapping[str, str]
    """Environment variables an agent sets to use it, e.g. ``{"RUNWAYML_BASE_URL": url,
    "RUNWAYML_API_SECRET": <the emulator's own key>}``. Printed: no real secrets here."""


@attrs.frozen
class SessionRecord:
    """One remote session as a double saw it."""

    id: str
    active: bool
    """Still provisioning or running (on the real service: billing)."""
    end_calls: int
    """Requests to end it that reached the double, over the API or the room."""
    token: str | None = attrs.field(repr=False)
    """The LiveKit token its avatar was given (a test server's credential)."""


class Observable(Protocol):
    """What a running double (:attr:`Offline.double`) shows the conformance kit."""

    def session_records(self) -> list[SessionRecord]:
        """Every remote session created so far, in order."""

    def fail_next_create(self, status: int) -> None:
        """Answer the next create request with ``status``."""

    def next_worker(self, *, never_join: bool = False, leave_after: float | None = None) -> None:
        """Make the next session's avatar never join, or leave ``leave_after`` s after joining."""


class ProviderDouble(abc.ABC):
    """A provider's stand-in. Subclass it, set :attr:`label`, implement :meth:`offline`, and
    :meth:`serve` if the provider has a remote API to emulate. Instantiated with no
    arguments by :meth:`avatarkit.ProviderInfo.load_double`."""

    label: ClassVar[str]
    """How output names the provider when it runs on its double, e.g. ``"runway (emulated)"``:
    an emulated service is never passed off as the real one."""

    @abc.abstractmethod
    def offline(
        self, given: Mapping[str, Any], *, size: int
    ) -> AbstractAsyncContextManager[Offline]:
        """An async context manager that, while entered, lets the provider run in this process
        with no account and no LiveKit server of its own (e.g. with an emulator running).

        ``given`` are the user's options (they win over the double's defaults; credentials
        among them may mean "use the real service"); ``size`` is the wanted video width and
        height in pixels, for providers that draw their own video."""

    def serve(self, *, port: int, runtime_cap: float) -> AbstractAsyncContextManager[Served]:
        """An async context manager serving an emulation of the provider's remote API on
        ``127.0.0.1:port`` while entered, whose avatars join a real LiveKit server and leave
        after ``runtime_cap`` seconds. Providers with no remote API keep this default, which
        raises :class:`~avatarkit.ConfigurationError`."""
        raise ConfigurationError(
            f"{self.label} has no remote API to emulate; it runs in your agent as it is"
        )

    @classmethod
    def can_serve(cls) -> bool:
        """Whether :meth:`serve` is implemented (``avatarkit emulate`` accepts the provider)."""
        return cls.serve is not ProviderDouble.serve
