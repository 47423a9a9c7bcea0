"""A standalone double of Runway's realtime-sessions API, for tests and the Runway emulator.

Only aiohttp, attrs and the standard library are used, so it can run anywhere tests do.
"""

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
