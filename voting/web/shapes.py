"""The API's shapes as types: what a route takes and answers, declared once.

Each HTTP module that serves /api routes declares its request and answer shapes as
msgspec Structs and lists its routes in `API` (one `Operation` each: method, path, summary,
the types, the statuses). Handlers decode their bodies with those types
(`read_body`), and `voting/web/openapi.py` generates the document from the same types,
so what the document says a route takes is what the route checks.

msgspec rather than pydantic: it decodes and validates in one pass from the raw bytes
(no dict built first), is a small compiled dependency with no further ones, and emits
JSON Schema (`msgspec.json.schema_components`) for the same types.

What a type checks: the body is a JSON object, the fields are there with their JSON
types, no text holds a NUL character, the constraints written with `Meta`. What the
domain checks with its own words (a nomination's word counts, a campaign's dates, a
decision's reason: the same rules the HTML forms go through) is stated in the type's
schema with `Meta(extra_json_schema=...)` and enforced by the domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import msgspec
import orjson
from msgspec import UNSET, Meta, Struct, UnsetType
from starlette.requests import Request

from ..errors import NO_NUL
from ..i18n import N_, gettext
from .numbers import BIGINT_MAX
from .responses import ApiError

# Something besides spaces: a decision is recorded with its reason.
NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"
Id = Annotated[int, Meta(ge=1, le=BIGINT_MAX)]
Text = Annotated[str, Meta(pattern=NO_NUL)]
# A receipt as people type it: any case, with or without dashes, 0/1/8 for O/I/B
# (voting/tally/receipts.normalize_receipt).
Receipt = Annotated[str, Meta(pattern=r"^[A-Za-z2-7018]{4}(-?[A-Za-z2-7018]{4}){3}$")]
AnyObject = dict[str, Any]


def text(description: str = "", **schema: Any) -> Any:
    """A text without NUL, with a description and rules only the domain enforces (stated in
    the document through `schema`, worded per field by the domain's own check)."""
    return Annotated[
        str,
        Meta(pattern=NO_NUL, description=description or None, extra_json_schema=schema or None),
    ]


# -- the one error shape (voting/errors.py, web/responses.py) -------------------------------


class ErrorDetail(Struct):
    code: str
    message: str
    fields: dict[str, str] | UnsetType = UNSET


class Error(Struct):
    """Every refusal of the API: `error.code` is stable, `error.message` is in the reader's
    language, `error.fields` names each field that is wrong. Some refusals add members
    (a 409 of a vote: the earlier `receipt`; a 428: the `challenge`)."""

    error: ErrorDetail


# -- the declaration of a route --------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    description: str
    shape: Any = Error  # a type msgspec can describe


@dataclass(frozen=True)
class Operation:
    """One operation of the document. `path_params`, `query` and `headers` are Structs whose
    fields are the parameters (a field's name, or its `msgspec.field(name=...)`, is the
    parameter's name); `body` is the request body's type; `answers` maps each status to an
    `Answer`, or to a description alone for an `Error` answer."""

    method: str
    path: str
    summary: str
    answers: dict[int, Answer | str]
    body: Any = None
    path_params: Any = None
    query: Any = None
    headers: Any = None


class CsrfHeader(Struct):
    csrf: Annotated[
        str, Meta(pattern=NO_NUL, description="The session's CSRF token (GET /api/session)")
    ] = msgspec.field(name="X-CSRF-Token")


# -- decoding a request body ------------------------------------------------------------------

T = TypeVar("T", bound=Struct)

# Field codes of `error.fields` when a field has the wrong JSON type (stable, as "required").
_KINDS: dict[type, str] = {
    msgspec.inspect.StrType: "text",
    msgspec.inspect.BoolType: "boolean",
    msgspec.inspect.IntType: "integer",
    msgspec.inspect.ListType: "list",
    msgspec.inspect.DictType: "object",
    msgspec.inspect.LiteralType: "choice",
}


@dataclass(frozen=True)
class Words:
    """How a body type words the refusal of one of its fields, in its class variable
    `words`: the 422's message when that field alone is wrong (untranslated, worded at the
    answer), and under `error.fields` either a stable code (`code`) or a message (`field`)."""

    message: str
    code: str = ""
    field: str = ""


async def read_body(request: Request, shape: type[T]) -> T:
    """The request's JSON body as `shape`, or the API's 400/422 answer saying what is wrong."""
    return decode_body(await request.body(), shape)


def decode_body(raw: bytes, shape: type[T]) -> T:
    if not raw:
        raise ApiError(400, "empty_body", gettext("The request needs a JSON object body."))
    try:
        return msgspec.json.decode(raw, type=shape)
    except msgspec.ValidationError:
        pass  # worded below, from the body itself (the failure is rare, its cost no matter)
    except msgspec.DecodeError as exc:
        raise _bad_json(exc) from None
    try:
        # Untyped, a number past a double (1e400) is no JSON the engine reads: a 400.
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _bad_json(exc) from None
    raise refusal(data, shape)


def _bad_json(exc: Exception) -> ApiError:
    return ApiError(
        400, "bad_json", gettext("The body is not valid JSON: {detail}").format(detail=exc)
    )


def refusal(data: Any, shape: type[Struct]) -> ApiError:
    """The 422 for a body that is JSON but not `shape`: every wrong field at once, found by
    checking each field against its own type (msgspec stops at the first and says it in
    English prose, which is no API)."""
    if not isinstance(data, dict):
        return ApiError(422, "not_an_object", gettext("The body must be a JSON object."))
    fields = msgspec.structs.fields(shape)
    known = {f.encode_name for f in fields}
    if shape.__struct_config__.forbid_unknown_fields:
        unknown = {str(k)[:64]: gettext("Unknown field.") for k in data if k not in known}
        if unknown:
            return ApiError(422, "invalid", gettext("Some fields are not known."), fields=unknown)
    words: dict[str, Words] = getattr(shape, "words", {})
    problems: dict[str, str] = {}
    nul = False
    for f in fields:
        name = f.encode_name
        if name not in data:
            if f.required:
                problems[name] = "required"
            continue
        try:
            msgspec.convert(data[name], f.type)
        except msgspec.ValidationError:
            problems[name] = _kind(f.type)
            nul = nul or _holds_nul(data[name])
    if not problems:  # a rule across fields msgspec checks; none of the types here has one
        return ApiError(422, "invalid", gettext("Some fields need attention."))
    if nul:
        return ApiError(
            422,
            "invalid",
            gettext("Text may not contain the NUL character (\\u0000)."),
            fields=problems,
        )
    message = gettext(N_("Some fields need attention."))
    for name in problems:
        said = words.get(name)
        if said is not None:
            problems[name] = said.code or gettext(said.field)
            if len(problems) == 1:
                message = gettext(said.message).format(field=name)
    return ApiError(422, "invalid", message, fields=problems)


def _kind(annotation: Any) -> str:
    info = msgspec.inspect.type_info(annotation)
    if isinstance(info, msgspec.inspect.UnionType):
        info = next(t for t in info.types if not isinstance(t, msgspec.inspect.NoneType))
    return _KINDS.get(type(info), "invalid")


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False
