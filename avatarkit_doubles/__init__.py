"""The shared engine of the providers' doubles: a provider describes its API
(:class:`ApiDescription`) and gets an emulated service with sessions, end calls, fault
switches and an avatar worker that joins the room (:class:`ApiDouble`), plus the
:class:`~avatarkit.doubles.ProviderDouble` that ``avatarkit demo``, ``compare`` and ``emulate``
use (:class:`DescribedDouble`).

Only :mod:`.description` is imported here; the engine loads livekit when used.
"""

from __future__ import annotations

from .description import ApiDescription, DoubleSession, Route

__all__ = ["ApiDescription", "DoubleSession", "Route"]
