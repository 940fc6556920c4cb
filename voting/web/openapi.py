"""The OpenAPI 3.1 document at /api/openapi.json.

Each HTTP module that serves /api routes declares `OPENAPI_PATHS`; this module merges
them. A test checks that every /api route is documented and every documented path is
served, so the document stays in step with the routes.
"""

from __future__ import annotations

import importlib
import json
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
    "voting.web.privacy_pages",
]

# No text the engine takes may hold a NUL character (PostgreSQL's text cannot): the
# middleware refuses it in the address (400), the handlers in the fields they read (422).
NO_NUL = r"^[^\x00]*$"
# A receipt as people type it: any case, with or without dashes, 0/1/8 for O/I/B
# (voting/tally/receipts.normalize_receipt).
RECEIPT_SCHEMA = {"type": "string", "pattern": r"^[A-Za-z2-7018]{4}(-?[A-Za-z2-7018]{4}){3}$"}

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


# OpenAPI links: where a value one answer gives is what another operation takes. They
# document the API's flows, and schemathesis' stateful run follows them (a nomination
# created, then read, changed, submitted; a vote, then its receipt ...).
# (operation, statuses, link name, target operation, parameters, request body)
_NOMINATION = "$response.body#/nomination/public_id"
_FIRST_LISTED = "$response.body#/nominations/0/public_id"
LINKS: list[tuple[str, tuple[str, ...], str, str, dict[str, str], Any]] = [
    *[
        (source, statuses, name, target, {"public_id": expression}, None)
        for source, statuses, expression in [
            ("POST /api/nominations", ("201", "200"), _NOMINATION),
            ("PUT /api/nominations/{public_id}", ("200",), _NOMINATION),
            ("GET /api/me/nominations", ("200",), _FIRST_LISTED),
        ]
        for name, target in [
            ("ReadIt", "GET /api/nominations/{public_id}"),
            ("ChangeIt", "PUT /api/nominations/{public_id}"),
            ("SubmitIt", "POST /api/nominations/{public_id}/submit"),
        ]
    ],
    (
        "GET /api/nominations",
        ("200",),
        "ReadTheFirst",
        "GET /api/nominations/{public_id}",
        {"public_id": _FIRST_LISTED},
        None,
    ),
    (
        "GET /api/nominations",
        ("200",),
        "VoteForTheFirst",
        "POST /api/votes",
        {},
        {"nomination": _FIRST_LISTED, "category": "$response.body#/nominations/0/category"},
    ),
    (
        "POST /api/votes",
        ("202",),
        "ItsReceipt",
        "GET /api/receipts/{code}",
        {"code": "$response.body#/receipt"},
        None,
    ),
    (
        "POST /api/votes",
        ("409",),
        "TheEarlierReceipt",
        "GET /api/receipts/{code}",
        {"code": "$response.body#/error/receipt"},
        None,
    ),
    (
        "POST /api/votes",
        ("202",),
        "DecideOnIt",
        "POST /api/fraud/votes/{receipt}",
        {"receipt": "$response.body#/receipt"},
        None,
    ),
    ("POST /api/votes", ("202",), "TheVotersVotes", "GET /api/votes/mine", {}, None),
    (
        "GET /api/votes/mine",
        ("200",),
        "TheFirstReceipt",
        "GET /api/receipts/{code}",
        {"code": "$response.body#/votes/0/receipt"},
        None,
    ),
    (
        "GET /api/editions",
        ("200",),
        "TheFirstEdition",
        "GET /api/editions/{slug}",
        {"slug": "$response.body#/editions/0/slug"},
        None,
    ),
    (
        "GET /api/categories",
        ("200",),
        "ItsFraudReview",
        "GET /api/fraud/{code}",
        {"code": "$response.body#/categories/0/code"},
        None,
    ),
    (
        "GET /api/fraud/{code}",
        ("200",),
        "DecideOnTheFirstFlag",
        "POST /api/fraud/flags/{flag_id}",
        {"flag_id": "$response.body#/flags/0/id"},
        None,
    ),
]


def _operation_ref(label: str) -> str:
    method, path = label.split(" ", 1)
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method.lower()


def _add_links(paths: dict[str, Any]) -> None:
    for source, statuses, name, target, parameters, body in LINKS:
        method, path = source.split(" ", 1)
        target_method, target_path = target.split(" ", 1)
        assert target_method.lower() in paths[target_path], target  # a link to nowhere
        link: dict[str, Any] = {"operationRef": _operation_ref(target)}
        if parameters:
            link["parameters"] = parameters
        if body is not None:
            link["requestBody"] = body
        responses = paths[path][method.lower()]["responses"]
        for status in statuses:
            responses[status].setdefault("links", {})[name] = link


def _without_nul(schema: Any, components: dict[str, Any], seen: set[str]) -> None:
    """Say in the schema what the engine does: a text without its own pattern may not
    hold a NUL character. Walks the schemas of inputs (parameters, request bodies) only."""
    if not isinstance(schema, dict):
        return
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        name = ref.rsplit("/", 1)[1]
        if name not in seen:
            seen.add(name)
            _without_nul(components[name], components, seen)
        return
    types = schema.get("type")
    is_text = types == "string" or (isinstance(types, list) and "string" in types)
    if is_text and "pattern" not in schema and "enum" not in schema and "format" not in schema:
        schema["pattern"] = NO_NUL
    for key in ("properties",):
        for sub in schema.get(key, {}).values():
            _without_nul(sub, components, seen)
    for key in ("items", "additionalProperties"):
        _without_nul(schema.get(key), components, seen)


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    components: dict[str, Any] = {"schemas": dict(COMPONENTS["schemas"])}
    for name in SOURCES:
        module = importlib.import_module(name)
        for path, operations in module.OPENAPI_PATHS.items():
            paths.setdefault(path, {}).update(operations)
        components["schemas"].update(getattr(module, "OPENAPI_SCHEMAS", {}))
    # No dict shared between two places any more (the modules reuse theirs: one answer
    # for several operations): links and patterns are added to one place at a time.
    paths = json.loads(json.dumps(paths))
    components = json.loads(json.dumps(components))
    _add_links(paths)
    seen: set[str] = set()
    for operations in paths.values():
        for operation in operations.values():
            _add_answers_every_operation_can_give(operation)
            for parameter in operation.get("parameters", []):
                _without_nul(parameter.get("schema"), components["schemas"], seen)
            for media in operation.get("requestBody", {}).get("content", {}).values():
                _without_nul(media.get("schema"), components["schemas"], seen)
    return {
        "openapi": "3.1.0",
        "info": {"title": "WSIS Prizes voting engine", "version": __version__},
        "paths": paths,
        "components": components,
    }
