"""The OpenAPI 3.1 document at /api/openapi.json.

Each HTTP module that serves /api routes declares `OPENAPI_PATHS`; this module merges
them. A test checks that every /api route is documented and every documented path is
served, so the document stays in step with the routes.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Any

from .. import __version__

# Modules whose OPENAPI_PATHS make up the document.
SOURCES = [
    "voting.web.api",
    "voting.web.voting",
    "voting.web.fraud",
    "voting.web.mobilisations",
    "voting.web.nominations",
    "voting.web.results",
    "voting.web.rehearsal",
]

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        }
    },
}

COMPONENTS: dict[str, Any] = {
    "schemas": {
        "Error": ERROR,
        "Phase": {
            "type": "object",
            "required": ["name", "opens_utc", "closes_utc", "opens_local", "closes_local"],
            "properties": {
                "name": {"type": "string"},
                "opens_utc": {"type": "string", "format": "date-time"},
                "closes_utc": {"type": "string", "format": "date-time"},
                "opens_local": {"type": "string", "format": "date-time"},
                "closes_local": {"type": "string", "format": "date-time"},
                "utc_offset_opens": {"type": "string"},
                "utc_offset_closes": {"type": "string"},
            },
        },
        "Category": {
            "type": "object",
            "required": ["code", "name"],
            "properties": {
                "code": {"type": "string"},
                "name": {"type": "string"},
                "facilitator": {"type": "string"},
            },
        },
        "Edition": {
            "type": "object",
            "required": ["slug", "name", "timezone", "phases", "categories"],
            "properties": {
                "slug": {"type": "string"},
                "name": {"type": "string"},
                "timezone": {"type": "string"},
                "current_phase": {"type": ["string", "null"]},
                "phases": {"type": "array", "items": {"$ref": "#/components/schemas/Phase"}},
                "categories": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/Category"},
                },
                "rules": {"type": "object"},
            },
        },
    }
}


def json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error_response(description: str) -> dict[str, Any]:
    return json_response(description, {"$ref": "#/components/schemas/Error"})


def _add_answers_every_operation_can_give(operation: dict[str, Any]) -> None:
    """The answers that come from the layers around every handler, not from the handler:
    the size and NUL checks (web/middleware.py), malformed JSON (web/deps.py) and a
    PostgreSQL or Redis outage (web/outages.py). Documented once here for every operation
    (schemathesis holds the API to its document)."""
    responses = operation.setdefault("responses", {})
    common = {
        "400": "Malformed: a NUL character in the address, or a body that is not JSON",
        "431": "The request headers are too large",
        "503": "A server the engine needs is briefly unavailable; nothing was changed",
    }
    if "requestBody" in operation:
        common["413"] = "The request body is too large"
    for status, description in common.items():
        responses.setdefault(status, error_response(description))


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    components: dict[str, Any] = {"schemas": dict(COMPONENTS["schemas"])}
    for name in SOURCES:
        module = importlib.import_module(name)
        for path, operations in module.OPENAPI_PATHS.items():
            paths.setdefault(path, {}).update(operations)
        components["schemas"].update(getattr(module, "OPENAPI_SCHEMAS", {}))
    for operations in paths.values():
        for operation in operations.values():
            _add_answers_every_operation_can_give(operation)
    return {
        "openapi": "3.1.0",
        "info": {"title": "WSIS Prizes voting engine", "version": __version__},
        "paths": paths,
        "components": components,
    }
