"""The ``avatarkit`` command and its tooling: demo, compare, doctor, emulate.

Installed with the ``cli`` extra (``pip install 'avatarkit-livekit[cli]'``). The runtime
(:mod:`avatarkit`) never imports this package.
"""

from __future__ import annotations

import sys

INSTALL = "pip install 'avatarkit-livekit[cli]'"


def main() -> None:
    """The ``avatarkit`` console script."""
    import avatarkit

    if getattr(avatarkit, "__distribution__", None) != "avatarkit-livekit":
        sys.exit(
            f"error: the 'avatarkit' imported from {avatarkit.__file__} is PyPI's 'avatarkit' "
            "(SpatialReal's SDK), not avatarkit-livekit (LiveKit avatars), whose command this "
            "is. Run: pip uninstall avatarkit avatarkit-livekit && pip install "
            "'avatarkit-livekit[cli]'"
        )
    try:
        from .app import app
    except ModuleNotFoundError as exc:
        sys.exit(f"error: the avatarkit command needs {exc.name!r}: {INSTALL}")
    app()
