"""What apps and providers test avatarkit code with.

The in-memory LiveKit server is its own package, :mod:`memory_livekit` (it knows nothing of
avatarkit); it is re-exported here for convenience.
"""

from __future__ import annotations

from memory_livekit import *  # noqa: F403
from memory_livekit import __all__ as __all__
