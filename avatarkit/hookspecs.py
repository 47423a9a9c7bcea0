"""The hooks a plugin implements to add avatar providers to avatarkit.

A plugin is any module or object registered under the ``avatarkit`` entry-point group:

.. code-block:: toml

    [project.entry-points.avatarkit]
    myavatar = "myavatar_avatarkit.plugin"

and that module implements :func:`register_providers` with :data:`hookimpl`:

.. code-block:: python

    from avatarkit import ProviderSpec, hookimpl

    @hookimpl
    def register_providers(register):
        register(ProviderSpec(
            name="myavatar",
            summary="MyAvatar streaming avatars",
            provider="myavatar_avatarkit.provider:MyAvatarProvider",
            options="myavatar_avatarkit.options:MyAvatarOptions",
            double="myavatar_avatarkit.double:MyAvatarDouble",
        ))

``double`` is optional: a :class:`avatarkit.doubles.ProviderDouble` subclass that runs the
provider here with no account and no server (an emulator of its API, say). With one,
``avatarkit demo`` and ``avatarkit compare`` run the provider out of the box, and
``avatarkit emulate`` serves its API if the double implements ``serve()``.

Keep the plugin module light: it is imported to *list* providers, so it should not import
livekit-agents or the provider's implementation. Those are named by import path and loaded
only when :func:`avatarkit.get` (or a command that needs the double) asks for that provider.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .registry import ProviderSpec

PROJECT_NAME = "avatarkit"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marker for plugin functions that implement an avatarkit hook."""


@hookspec
def register_providers(register: Callable[[ProviderSpec], None]) -> None:
    """Register avatar providers by calling ``register(ProviderSpec(...))`` once per provider.

    Called once per process, the first time providers are listed or one is requested.
    A provider name may be registered only once across all installed plugins.
    """
