"""The Runway emulator: a double of Runway's realtime-sessions API (:mod:`.api`, light:
aiohttp and attrs) and, in :mod:`.emulator`, the avatar workers that make it behave like
Runway in a LiveKit room."""

from __future__ import annotations

from .api import RecordedRequest, RunwayAPIServer
from .faults import ROUTES, FaultInjector, HTTPFault, SessionFault
from .sessions import (
    InvalidTransition,
    LiveKitIntegration,
    Session,
    SessionRegistry,
    SessionStatus,
    StateChange,
)
from .validation import (
    API_VERSION,
    MAX_DURATION_LIMIT,
    MODEL,
    RUNWAY_PRESETS,
    CreateBodyValidator,
    ValidationIssue,
    is_public_host,
)

__all__ = [
    "API_VERSION",
    "MAX_DURATION_LIMIT",
    "MODEL",
    "ROUTES",
    "RUNWAY_PRESETS",
    "CreateBodyValidator",
    "FaultInjector",
    "HTTPFault",
    "InvalidTransition",
    "LiveKitIntegration",
    "RecordedRequest",
    "RunwayAPIServer",
    "Session",
    "SessionFault",
    "SessionRegistry",
    "SessionStatus",
    "StateChange",
    "ValidationIssue",
    "is_public_host",
]
