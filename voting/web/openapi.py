"""The OpenAPI 3.1 document at /api/openapi.json, generated from the API's types.

Each HTTP module that serves /api routes lists them in `API` (voting/web/shapes.py's
`Operation`: method, path, summary, the request and answer types, the statuses); this
module turns the types into JSON Schema (`msgspec.json.schema_components`) and the routes
into operations. A test checks that every /api route is documented and every documented
path is served, so the document stays in step with the routes.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Any

import msgspec

from .. import __version__
from .shapes import NO_NUL, Answer, Error, Operation

# Modules whose API routes make up the document.
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

REF = "#/components/schemas/{name}"


def declared_routes() -> list[Operation]:
    return [route for name in SOURCES for route in importlib.import_module(name).API]


def _add_answers_every_operation_can_give(operation: dict[str, Any]) -> None:
    """The answers that come from the layers around every handler, not from the handler:
    the size and NUL checks (web/middleware.py), malformed JSON (web/shapes.py) and a
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
        responses.setdefault(status, {"description": description, "content": _ERROR_CONTENT})


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


def _parameters(shape: Any, where: str, components: dict[str, Any]) -> list[dict[str, Any]]:
    """A Struct's fields as the operation's parameters `where` (path, query, header)."""
    if shape is None:
        return []
    _, found = msgspec.json.schema_components([shape], ref_template=REF)
    own = found.pop(shape.__name__)
    components.update(found)
    required = set(own.get("required", []))
    parameters = []
    for name, schema in own["properties"].items():
        schema = dict(schema)
        schema.pop("default", None)
        parameter: dict[str, Any] = {"name": name, "in": where}
        if where == "path" or name in required:
            parameter["required"] = True
        if "description" in schema:
            parameter["description"] = schema.pop("description")
        parameter["schema"] = schema
        parameters.append(parameter)
    return parameters


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


_ERROR_CONTENT = _content({"$ref": REF.format(name="Error")})


def _format_alone(schema: Any) -> None:
    """A text with a format (email, uri, date) says only its format, as it always did: no
    value of those formats holds a NUL, so the type's NUL pattern adds nothing for a
    reader, and a pattern beside a format makes generators (schemathesis) filter."""
    if isinstance(schema, dict):
        if "format" in schema and schema.get("pattern") == NO_NUL:
            del schema["pattern"]
        for value in schema.values():
            _format_alone(value)
    elif isinstance(schema, list):
        for value in schema:
            _format_alone(value)


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    routes = declared_routes()
    answers = [
        answer if isinstance(answer, Answer) else Answer(answer)
        for route in routes
        for answer in route.answers.values()
    ]
    types = [Error, *(r.body for r in routes if r.body is not None), *(a.shape for a in answers)]
    unique = list(dict.fromkeys(types))
    refs, schemas = msgspec.json.schema_components(unique, ref_template=REF)
    schema_of = dict(zip(unique, refs, strict=True))
    components: dict[str, Any] = dict(schemas)
    paths: dict[str, Any] = {}
    for route in routes:
        operation: dict[str, Any] = {"summary": route.summary}
        parameters = [
            *_parameters(route.path_params, "path", components),
            *_parameters(route.query, "query", components),
            *_parameters(route.headers, "header", components),
        ]
        if parameters:
            operation["parameters"] = parameters
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": _content(schema_of[route.body]),
            }
        operation["responses"] = {
            str(status): (
                {"description": answer, "content": _ERROR_CONTENT}
                if isinstance(answer, str)
                else {
                    "description": answer.description,
                    "content": _content(schema_of[answer.shape]),
                }
            )
            for status, answer in route.answers.items()
        }
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    # A fresh copy of each shared piece: links are added to one answer at a time.
    paths = msgspec.json.decode(msgspec.json.encode(paths))
    _add_links(paths)
    for operations in paths.values():
        for operation in operations.values():
            _add_answers_every_operation_can_give(operation)
    _format_alone(components)
    for schema in components.values():
        # The class name msgspec puts as every schema's title says nothing the key does not.
        schema.pop("title", None)
        if schema.get("required") == []:
            del schema["required"]
    return {
        "openapi": "3.1.0",
        "info": {"title": "WSIS Prizes voting engine", "version": __version__},
        "paths": paths,
        "components": {"schemas": components},
    }
