"""Anam's double: its engine-session API as the provider uses it, on the shared engine."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from avatarkit_doubles import ApiDescription, DoubleSession, Route
from avatarkit_doubles.provider_double import DescribedDouble

_UUID = r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"
# Anam's stock "Mia", from its LiveKit quick start (docs.anam.ai/third-party-integrations/livekit).
STOCK_AVATAR = "edf6fdcb-acab-44b8-b974-ded72665ee26"


def _validate(body: Mapping[str, Any]) -> str | None:
    persona = body.get("personaConfig")
    if not isinstance(persona, dict):
        return "personaConfig is required"
    if persona.get("type") != "ephemeral" or not persona.get("llmId"):
        return "an ephemeral personaConfig needs type 'ephemeral' and an llmId"
    if not isinstance(persona.get("name"), str) or not persona["name"]:
        return "personaConfig.name is required"
    if not isinstance(persona.get("avatarId"), str) or not re.fullmatch(_UUID, persona["avatarId"]):
        return "personaConfig.avatarId must be a UUID"
    # the director-notes rules the official plugin documents as 400s
    notes = persona.get("directorNotes", {})
    if "presetStyle" in notes and "customStylePrompt" in notes:
        return "directorNotes: presetStyle and customStylePrompt are mutually exclusive"
    level = notes.get("expressivity", 0)
    if not isinstance(level, (int, float)) or not 0 <= level <= 1:
        return "directorNotes.expressivity must be between 0 and 1"
    options = body.get("sessionOptions", {})
    if ("videoWidth" in options) != ("videoHeight" in options):
        return "sessionOptions: videoWidth and videoHeight go together"
    environment = body.get("environment")
    if not isinstance(environment, dict) or not environment.get("livekitToken"):
        return "environment.livekitUrl and environment.livekitToken are required"
    return None


def _session(session: DoubleSession) -> dict[str, Any]:
    # GET /v1/sessions/{id}: endTime stays null while the session runs
    return {"id": session.id, "endTime": None if session.active else "ended"}


ANAM = ApiDescription(
    name="anam",
    auth_header="Authorization",
    auth_prefix="Bearer ",
    api_prefix="",
    routes=(
        Route("POST", "/v1/engine/session", "create", answer=lambda s: {"sessionId": s.id}),
        Route("GET", "/v1/sessions/{id}", "status", answer=_session),
    ),
    validate=_validate,
    join=lambda body: (
        body["environment"]["livekitUrl"],
        body["environment"]["livekitToken"],
    ),
)


class AnamDouble(DescribedDouble):
    description = ANAM
    url_env = "ANAM_API_URL"
    key_env = "ANAM_API_KEY"
    defaults = {"persona_config": {"name": "Mia", "avatarId": STOCK_AVATAR}}
