"""voting/web/shapes.py: a request body decoded with its type, or the API's 400/422 that
says what is wrong; and the OpenAPI document generated from the routes' types."""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

import msgspec
import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from msgspec import UNSET, Meta, Struct, UnsetType

from voting.i18n import reset_language, use_language
from voting.web.numbers import BIGINT_MAX, whole_number
from voting.web.openapi import declared_routes, openapi_document
from voting.web.responses import ApiError
from voting.web.shapes import (
    NO_NUL,
    Text,
    Words,
    decode_body,
    decode_query,
    query_refusal,
    read_query,
)
from voting.web.voting import SignIn


class Sample(Struct, forbid_unknown_fields=True):
    name: Text
    count: Annotated[int, Meta(ge=1, le=10)]
    choice: Literal["a", "b"] = "a"
    flag: bool | UnsetType = UNSET
    tags: list[Text] | UnsetType = UNSET

    words: ClassVar[dict[str, Words]] = {
        "name": Words("Give a name.", code="required"),
    }


class Lenient(Struct):
    note: Annotated[str, Meta(pattern=NO_NUL)] | UnsetType = UNSET


def refused(raw: bytes, shape: type[Struct] = Sample) -> ApiError:
    with pytest.raises(ApiError) as caught:
        decode_body(raw, shape)
    return caught.value


def test_a_body_of_the_type_is_decoded() -> None:
    got = decode_body(b'{"name": "x", "count": 3, "tags": ["t"]}', Sample)
    assert got == Sample(name="x", count=3, tags=["t"])
    assert got.flag is UNSET and got.choice == "a"


def test_a_malformed_body_is_a_400_and_not_an_object_a_422() -> None:
    assert (refused(b"").status, refused(b"").code) == (400, "empty_body")
    assert (refused(b"{nope").status, refused(b"{nope").code) == (400, "bad_json")
    assert (refused(b"[1]").status, refused(b"[1]").code) == (422, "not_an_object")
    # A number past a double is no JSON the engine reads, whatever the field's type.
    assert refused(b'{"name": 1e400, "count": 1}').code == "bad_json"
    assert refused(b'{"name": "x", "count": 1e400}').code == "bad_json"


def test_every_wrong_field_is_named_at_once_with_a_stable_code() -> None:
    problem = refused(b'{"count": "3", "choice": "c", "flag": 1, "tags": "t"}')
    assert (problem.status, problem.code) == (422, "invalid")
    assert problem.fields == {
        "name": "required",
        "count": "integer",
        "choice": "choice",
        "flag": "boolean",
        "tags": "list",
    }
    # A value of the right JSON type that breaks a constraint is named too.
    assert refused(b'{"name": "x", "count": 11}').fields == {"count": "integer"}


def test_a_field_alone_wrong_takes_the_types_own_words() -> None:
    problem = refused(b'{"count": 2}')
    assert problem.message == "Give a name." and problem.fields == {"name": "required"}


def test_an_unknown_field_is_refused_where_the_type_forbids_it_and_ignored_elsewhere() -> None:
    problem = refused(b'{"name": "x", "count": 1, "budget": 5}')
    assert problem.fields == {"budget": "Unknown field."}
    assert decode_body(b'{"other": "\\u0000"}', Lenient) == Lenient()


def test_a_nul_character_is_a_422_that_says_so() -> None:
    problem = refused(b'{"name": "a\\u0000", "count": 1}')
    assert problem.status == 422 and "NUL" in problem.message
    assert problem.fields == {"name": "text"}
    assert refused(b'{"name": "x", "count": 1, "tags": ["\\u0000"]}').fields == {"tags": "list"}


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-20, 20) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
FIELDS = st.sampled_from(["name", "count", "choice", "flag", "tags", "other"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(FIELDS, JSON_VALUES) | JSON_VALUES)
def test_decoding_agrees_with_the_type_and_refuses_only_with_a_4xx(data) -> None:
    """Whatever JSON comes: the type's value when msgspec takes it, else a 422 naming only
    fields the body has or the type declares; never another exception."""
    raw = orjson.dumps(data)
    try:
        expected = msgspec.convert(data, Sample)
    except msgspec.ValidationError:
        expected = None
    if expected is not None:
        assert decode_body(raw, Sample) == expected
        return
    problem = refused(raw)
    assert problem.status == 422
    if isinstance(data, dict):
        assert problem.fields
        declared = {f.encode_name for f in msgspec.structs.fields(Sample)}
        assert set(problem.fields) <= declared | set(data)
    else:
        assert problem.code == "not_an_object"


def test_each_operation_declares_exactly_the_parameters_of_its_path() -> None:
    for route in declared_routes():
        placeholders = set(re.findall(r"{(\w+)}", route.path))
        fields = (
            {f.encode_name for f in msgspec.structs.fields(route.path_params)}
            if route.path_params
            else set()
        )
        assert placeholders == fields, route.path


def test_the_document_is_generated_from_the_types() -> None:
    doc = openapi_document()
    signin = doc["paths"]["/api/voters/signin"]["post"]
    assert signin["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SignIn"
    }
    schema = doc["components"]["schemas"]["SignIn"]
    assert schema["required"] == ["email"]
    assert schema["properties"]["altcha"]["pattern"] == NO_NUL
    # A text with a format says only its format (no email holds a NUL) ...
    assert schema["properties"]["email"] == {"type": "string", "format": "email"}
    # ... and the type still refuses a NUL in it, with the answer that says so.
    problem = refused(b'{"email": "a\\u0000@example.org"}', SignIn)
    assert problem.status == 422 and "NUL" in problem.message
    # Every $ref points at a component the document has.
    refs = re.findall(r'"\$ref":"#/components/schemas/([^"]+)"', orjson.dumps(doc).decode())
    assert refs and set(refs) <= set(doc["components"]["schemas"])
    # A header parameter is named as the header, not as the Python field.
    names = {p["name"] for p in doc["paths"]["/api/votes"]["post"]["parameters"]}
    assert names == {"X-CSRF-Token"}


# -- query parameters -------------------------------------------------------------------------


class Query(Struct):
    word: Annotated[str, Meta(max_length=5, pattern=NO_NUL)] | UnsetType = UNSET
    size: Annotated[int, Meta(ge=1, le=20)] | UnsetType = UNSET
    start: Annotated[int, Meta(ge=0, le=BIGINT_MAX, description="from 0")] | UnsetType = UNSET
    shift: Annotated[int, Meta(ge=-3, le=3)] | UnsetType = UNSET
    mode: Literal["a", "b"] | UnsetType = UNSET


def test_a_query_is_decoded_with_its_type_numbers_from_their_digits() -> None:
    found, problems = read_query({"word": "abc", "size": "007", "start": "0", "other": "x"}, Query)
    assert problems == {} and found == Query(word="abc", size=7, start=0)
    assert decode_query({"shift": "-3", "mode": "b"}, Query) == Query(shift=-3, mode="b")
    assert decode_query({}, Query) == Query()


def test_each_wrong_parameter_is_named_with_what_it_needs_and_the_rest_kept() -> None:
    found, problems = read_query(
        {"word": "toolong", "size": "1e3", "start": "-1", "shift": "4", "mode": "c"}, Query
    )
    assert found == Query()
    assert problems == {
        "word": "Use at most 5 characters.",
        "size": "Give a whole number from 1 to 20.",
        "start": "Give a whole number, 0 or more.",
        "shift": "Give a whole number from -3 to 3.",
        "mode": "Choose one of: a, b.",
    }
    found, problems = read_query({"word": "a\x00", "size": "3"}, Query)
    assert found == Query(size=3) and "NUL" in problems["word"]
    with pytest.raises(ApiError) as caught:
        decode_query({"size": "0", "word": "ok"}, Query)
    refusal = caught.value
    assert (refusal.status, refusal.code, set(refusal.fields)) == (422, "invalid_query", {"size"})
    assert refusal.fields_worded


def test_the_query_refusal_is_worded_in_the_requests_language() -> None:
    token = use_language("fr")
    try:
        _, problems = read_query({"size": "21", "word": "toolong"}, Query)
        message = query_refusal(problems).message
    finally:
        reset_language(token)
    assert problems == {
        "size": "Indiquez un nombre entier de 1 à 20.",
        "word": "Utilisez au plus 5 caractères.",
    }
    assert message == "Certains paramètres de recherche ne sont pas valides."


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["word", "size", "start", "shift", "mode", "other"]),
        st.text(max_size=8)
        | st.integers(-50, 10**20).map(str)
        | st.sampled_from(["1e1", "2.0", "-0", "+1", " 1", "1_0", "\u0661", "\uff11", "0x1"]),
    )
)
@example({"size": "\u0661", "start": "\uff11\uff10", "shift": "-\u0661"})
@example({"size": "1e1", "start": "2.0", "shift": "-0"})
def test_a_query_number_is_read_the_one_way_numbers_are_read(params) -> None:
    """Whatever the query: each number is taken exactly when `whole_number` (the engine's
    one reading of numbers, within the type's bounds) takes it, each text exactly when the
    type takes it, and the problems name only the wrong parameters; never an exception."""
    found, problems = read_query(params, Query)
    bounds = {"size": (1, 20), "start": (0, BIGINT_MAX)}
    for name, (low, high) in bounds.items():
        if name in params:
            value = whole_number(params[name], low=low, high=high)
            assert (name in problems) == (value is None), (name, params[name])
            assert getattr(found, name) == (UNSET if value is None else value)
    if "shift" in params:
        raw = params["shift"]
        magnitude = whole_number(raw.removeprefix("-"), high=3)
        assert ("shift" in problems) == (magnitude is None), raw
    if "word" in params:
        assert ("word" in problems) == (len(params["word"]) > 5 or "\x00" in params["word"])
    if "mode" in params:
        assert ("mode" in problems) == (params["mode"] not in {"a", "b"})
    assert "other" not in problems


def test_every_declared_query_is_optional_and_the_document_states_its_bounds() -> None:
    """The document and the check come from one type: at each integer parameter's
    documented bounds the value is taken, one past them it is refused."""
    doc = openapi_document()
    for route in declared_routes():
        if route.query is None:
            continue
        assert decode_query({}, route.query) == route.query()
        parameters = doc["paths"][route.path][route.method.lower()]["parameters"]
        for parameter in (p for p in parameters if p["in"] == "query"):
            name, schema = parameter["name"], parameter["schema"]
            assert not parameter.get("required"), (route.path, name)
            if schema.get("type") != "integer":
                continue
            for fine in (schema["minimum"], schema["maximum"]):
                assert read_query({name: str(fine)}, route.query)[1] == {}, (route.path, name)
            for wrong in (schema["minimum"] - 1, schema["maximum"] + 1):
                assert name in read_query({name: str(wrong)}, route.query)[1], (route.path, name)
