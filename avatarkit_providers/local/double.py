"""The local provider's double: itself, sized for the command line (it needs no account)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from avatarkit.doubles import Offline, ProviderDouble


class LocalDouble(ProviderDouble):
    """The local provider as it is, ``size`` pixels square at 30 fps unless told otherwise.
    It has no remote API, so there is nothing to ``serve``."""

    label = "local"

    @contextlib.asynccontextmanager
    async def offline(self, given: Mapping[str, Any], *, size: int) -> AsyncIterator[Offline]:
        yield Offline(self.label, {"width": size, "height": size, "fps": 30, **given})
