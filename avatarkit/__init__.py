"""avatarkit: provider-neutral avatar sessions for LiveKit Agents.

.. code-block:: python

    avatar = avatarkit.get("runway", preset_id="influencer")
    await avatar.start(session, room=ctx.room)

Importing this package is cheap: livekit-agents and provider code load only when
:func:`get` (or an attribute that needs them) is used.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .errors import AvatarClosedError, AvatarkitError, ConfigurationError, UnknownProviderError
from .hookspecs import hookimpl
from .provider import (
    AvatarProvider,
    CreateRequest,
    EndRequest,
    RemoteSession,
    RemoteStatus,
    SessionLimits,
    StreamRequest,
)
from .registry import (
    ProviderInfo,
    ProviderSpec,
    get,
    plugin_manager,
    provider_info,
    providers,
    refresh,
)
from .secret import Secret

if TYPE_CHECKING:
    from .events import AvatarkitMetrics, AvatarStateChanged
    from .http import HttpClient, ProviderAPIError, ProviderConnectionError, ProviderTimeoutError
    from .session import AvatarkitSession

__version__ = "0.1.0"
__distribution__ = "avatarkit-livekit"
"""The distribution this ``avatarkit`` comes from (PyPI's ``avatarkit`` is another project)."""

# PyPI's `avatarkit` (SpatialReal's SDK) installs a top-level `avatarkit` package too; installed
# beside ours, the two overwrite each other's files. Its modules in our folder say so.
if os.path.exists(os.path.join(os.path.dirname(__file__), "avatar_session.py")):
    raise ImportError(
        f"two packages named 'avatarkit' are installed into {os.path.dirname(__file__)}: "
        "avatarkit-livekit (LiveKit avatars, this one) and PyPI's 'avatarkit' (SpatialReal's "
        "SDK), whose files overwrite each other. Run: pip uninstall avatarkit avatarkit-livekit "
        "&& pip install avatarkit-livekit"
    )

__all__ = [
    "AvatarClosedError",
    "AvatarProvider",
    "AvatarStateChanged",
    "AvatarkitError",
    "AvatarkitMetrics",
    "AvatarkitSession",
    "ConfigurationError",
    "CreateRequest",
    "EndRequest",
    "HttpClient",
    "ProviderAPIError",
    "ProviderConnectionError",
    "ProviderInfo",
    "ProviderSpec",
    "ProviderTimeoutError",
    "RemoteSession",
    "RemoteStatus",
    "Secret",
    "SessionLimits",
    "StreamRequest",
    "UnknownProviderError",
    "__distribution__",
    "__version__",
    "get",
    "hookimpl",
    "plugin_manager",
    "provider_info",
    "providers",
    "refresh",
]

_LAZY = {
    "AvatarStateChanged": ".events",
    "AvatarkitMetrics": ".events",
    "AvatarkitSession": ".session",
    "HttpClient": ".http",
    "ProviderAPIError": ".http",
    "ProviderConnectionError": ".http",
    "ProviderTimeoutError": ".http",
}


def __getattr__(name: str) -> Any:
    # These import livekit-agents (~2 s), so only when first used.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'avatarkit' has no attribute {name!r}")
