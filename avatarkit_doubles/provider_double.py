"""A :class:`~avatarkit.doubles.ProviderDouble` built from an :class:`ApiDescription`: what a
provider's ``double.py`` subclasses, so its double is a description and a few names."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from avatarkit.doubles import Offline, ProviderDouble, Served

from .description import ApiDescription


class DescribedDouble(ProviderDouble):
    """Runs the provider against an :class:`~avatarkit_doubles.engine.ApiDouble` of
    :attr:`description`, unless the user gives their own ``api_key``."""

    description: ClassVar[ApiDescription]
    url_env: ClassVar[str | None]
    """The variable the official plugin reads its API URL from (None: it has none)."""
    key_env: ClassVar[str]
    defaults: ClassVar[Mapping[str, Any]] = {}
    """Options the provider needs to run on the double (e.g. a stock avatar id)."""

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"{self.description.name} (emulated)"

    @contextlib.asynccontextmanager
    async def offline(self, given: Mapping[str, Any], *, size: int) -> AsyncIterator[Offline]:
        if "api_key" in given:  # the user's account: the real service
            yield Offline(self.description.name, {**self.defaults, **given})
            return
        from avatarkit_providers.local.video import FaceVideoGenerator

        from .engine import ApiDouble

        def video() -> FaceVideoGenerator:
            return FaceVideoGenerator(width=size, height=size, fps=30, label=self.label)

        async with ApiDouble(self.description, video=video) as double:
            options = {**self.defaults, "api_key": double.api_key, **given, "api_url": double.url}
            yield Offline(self.label, options, double=double)

    @contextlib.asynccontextmanager
    async def serve(self, *, port: int, runtime_cap: float) -> AsyncIterator[Served]:
        from .engine import ApiDouble

        async with ApiDouble(self.description, port=port, runtime_cap=runtime_cap) as double:
            env = {self.key_env: double.api_key}
            if self.url_env:
                env[self.url_env] = double.url
            title = f"{self.description.name} API double (emulated, no account)"
            yield Served(title, double.url, env)
