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

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, TypeVar

import msgspec
import orjson
from msgspec import UNSET, Meta, Struct, UnsetType
from starlette.requests import Request

from ..errors import NO_NUL
from ..i18n import N_, gettext
from .numbers import BIGINT_MAX, number_problem, whole_number
from .responses import ApiError

# Something besides spaces: a decision is recorded with its reason.
NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"
Id = Annotated[int, Meta(ge=1, le=BIGINT_MAX)]
Text = Annotated[str, Meta(pattern=NO_NUL)]
# A receipt as people type it: any case, with or without dashes, 0/1/8 for O/I/B
# (voting/tally/receipts.normalize_receipt).
Receipt = Annotated[str, Meta(pattern=r"^[A-Za-z2-7018]{4}(-?[A-Za-z2-7018]{4}){3}$")]
AnyObject = dict[str, Any]
# An instant as the domain writes it into an answer (ISO 8601 with its offset, or Z): the
# answer keeps the domain's text, the document calls it a date-time.
Instant = Annotated[str, Meta(extra_json_schema={"format": "date-time"})]


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
        # JSON, but not `shape`: every wrong field worded from the body itself.
        raise refusal(_untyped(raw), shape) from None
    except msgspec.DecodeError as exc:
        raise _bad_json(exc) from None


def _untyped(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # A number past a double (1e400) is valid to msgspec's typed reader, no JSON the
        # engine reads untyped: a 400, as for any other bad JSON.
        raise _bad_json(exc) from None


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


# -- decoding query parameters ----------------------------------------------------------------


@dataclass(frozen=True)
class _Parameter:
    name: str
    type: Any
    info: msgspec.inspect.Type


@cache
def _parameters(shape: type[Struct]) -> tuple[_Parameter, ...]:
    found = []
    for f in msgspec.structs.fields(shape):
        # A query parameter may always be left out: the page or the API has a default.
        assert not f.required, f"{shape.__name__}.{f.name}: query parameters are optional"
        info = msgspec.inspect.type_info(f.type)
        while isinstance(info, msgspec.inspect.Metadata):  # a description, an example
            info = info.type
        found.append(_Parameter(f.encode_name, f.type, info))
    return tuple(found)


def read_query(params: Mapping[str, str], shape: type[T]) -> tuple[T, dict[str, str]]:
    """The query parameters as `shape` (with `strict=False`: "5" is the number 5), each
    wrong one left at its default, and what each wrong one needs, for the person (in the
    request's language). A caller with rules of its own adds their problems to these and
    answers once (`query_refusal`)."""
    data: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for parameter in _parameters(shape):
        raw = params.get(parameter.name)
        if raw is None:
            continue
        value: Any = raw
        info = parameter.info
        if isinstance(info, msgspec.inspect.IntType):
            # A number is read the one way the engine reads numbers (numbers.whole_number:
            # ASCII digits, within bigint): msgspec's lax reading alone would also take
            # "1e3", "1.0" and "-0", and refuse "007". A sign only where the type allows
            # a negative number.
            negative = raw.startswith("-") and (info.ge is None or info.ge < 0)
            magnitude = whole_number(raw[1:] if negative else raw)
            if magnitude is None:
                problems[parameter.name] = _needs(info, raw)
                continue
            value = -magnitude if negative else magnitude
        try:
            msgspec.convert(value, parameter.type, strict=False)
        except msgspec.ValidationError:
            problems[parameter.name] = _needs(parameter.info, raw)
            continue
        data[parameter.name] = value
    # Each value was checked against its own type and no query type has a rule across
    # fields, so what is left converts.
    return msgspec.convert(data, shape, strict=False), problems


def decode_query(params: Mapping[str, str], shape: type[T]) -> T:
    """The query parameters as `shape`, or the API's 422 naming each wrong one."""
    found, problems = read_query(params, shape)
    if problems:
        raise query_refusal(problems)
    return found


def query_refusal(problems: dict[str, str]) -> ApiError:
    """The one answer to wrong query parameters: 422 `invalid_query`, with what each needs
    under `error.fields` (a page shows the same on its error page)."""
    return ApiError(
        422,
        "invalid_query",
        gettext("Some search parameters are not valid."),
        fields=problems,
        fields_worded=True,
    )


def _needs(info: msgspec.inspect.Type, raw: str) -> str:
    """What a parameter of this type needs, worded from the type's own bounds (the ones
    the document states)."""
    if isinstance(info, msgspec.inspect.IntType):
        low = info.ge if info.ge is not None else -BIGINT_MAX - 1
        high = info.le if info.le is not None else BIGINT_MAX
        return number_problem(low, high)
    if "\x00" in raw:
        return gettext("Text may not contain the NUL character (\\u0000).")
    if isinstance(info, msgspec.inspect.StrType):
        if info.max_length is not None and len(raw) > info.max_length:
            return gettext("Use at most {max} characters.").format(max=info.max_length)
        if info.min_length is not None and len(raw) < info.min_length:
            return gettext("Use at least {min} characters.").format(min=info.min_length)
    if isinstance(info, msgspec.inspect.LiteralType):
        choices = ", ".join(str(v) for v in info.values)
        return gettext("Choose one of: {choices}.").format(choices=choices)
    return gettext("Some search parameters are not valid.")
