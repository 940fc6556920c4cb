"""Numbers from the outside: past bigint, negative, in another script's digits, with
spaces or exponents. Every one is a 422 (a query parameter) or a 404 (an id in the path),
with a JSON error for the API and an error page for a page; never a 500, never read as
some other number (Python's int() takes " 1" and "١" as 1)."""

from __future__ import annotations

import pytest

from tests.fixtures.security import everyone
from voting.web.nominations import PAGE_SIZE
from voting.web.numbers import BIGINT_MAX, whole_number

BAD = [
    str(2**63),
    str(10**30),
    "-1",
    "1e3",
    " 1",
    "1 ",
    "\u0661",  # ARABIC-INDIC DIGIT ONE: int() reads it as 1
    "\uff11",  # FULLWIDTH DIGIT ONE
    "1_0",
    "+1",
    "0x10",
    "1.0",
    "",
    "9" * 5000,  # int() refuses it (more digits than it converts), with a ValueError
]


@pytest.mark.parametrize("text", BAD)
def test_only_plain_ascii_digits_within_bigint_are_numbers(text):
    assert whole_number(text) is None
    assert whole_number(text.encode("utf-8")) is None


def test_the_bounds_are_the_callers_and_never_past_bigint():
    assert whole_number("0") == 0 and whole_number("007") == 7
    assert whole_number(str(BIGINT_MAX)) == BIGINT_MAX
    assert whole_number(str(BIGINT_MAX + 1), high=10**40) is None
    assert whole_number("5", low=1, high=4) is None and whole_number("0", low=1) is None
    assert whole_number(b"42") == 42 and whole_number(None) is None


@pytest.fixture
async def world(app, conn):
    found = await everyone(app, conn, "numbers@example.org")
    yield found
    await found.client.aclose()


@pytest.mark.parametrize("name", ["offset", "limit"])
async def test_api_query_numbers(world, name):
    for text in BAD:
        r = await world.client.get("/api/nominations", params={name: text})
        assert r.status_code == 422, (name, text, r.status_code)
        error = r.json()["error"]
        assert error["code"] == "invalid_query" and name in error["fields"], (name, text)
    # The largest offset PostgreSQL takes is a page past the end, not an error.
    r = await world.client.get("/api/nominations", params={"offset": str(BIGINT_MAX)})
    assert r.status_code == 200 and r.json()["nominations"] == []


@pytest.mark.parametrize("path", ["/categories", "/categories/C1"])
async def test_page_query_numbers(world, path):
    for name in ("page", "offset", "limit"):
        for text in BAD:
            r = await world.client.get(path, params={name: text})
            assert r.status_code == 422, (path, name, text, r.status_code)
            assert r.headers["content-type"].startswith("text/html"), (path, name, text)
    # The last page whose offset fits bigint is empty, not an error.
    r = await world.client.get(path, params={"page": str(BIGINT_MAX // PAGE_SIZE)})
    assert r.status_code == 200
    r = await world.client.get(path, params={"page": str(BIGINT_MAX // PAGE_SIZE + 1)})
    assert r.status_code == 422


async def test_ids_in_the_path(world):
    c, csrf = world.client, world.csrf
    for text in [*BAD[:-2], str(BIGINT_MAX), "0"]:  # (empty: another route; 5000 digits: 414)
        segment = text.replace(" ", "%20").replace("+", "%2B")
        r = await c.post(
            f"/api/fraud/flags/{segment}",
            json={"action": "release", "reason": "checked"},
            headers={"x-csrf-token": csrf},
        )
        assert r.status_code == 404 and r.headers["content-type"] == "application/json", text
        # (the largest id is a well-formed one, looked up and not found)
        assert r.json()["error"]["code"] in {"not_found", "decision_refused"}, (text, r.text)
        r = await c.post(
            f"/api/mobilisations/{segment}/decision",
            json={"decision": "approve", "reason": "checked"},
            headers={"x-csrf-token": csrf},
        )
        assert r.status_code == 404 and r.headers["content-type"] == "application/json", text
        form = {"csrf_token": csrf, "action": "release", "reason": "checked", "answer": "ok"}
        for page in (f"/committee/fraud/flags/{segment}", f"/committee/reviews/{segment}"):
            r = await c.post(page, data=form)
            if text == str(BIGINT_MAX):  # well-formed: looked up, not there (no 500)
                assert r.status_code in {404, 409}, (page, r.status_code)
                continue
            assert r.status_code == 404, (page, r.status_code)
            assert r.headers["content-type"].startswith("text/html"), page


@pytest.mark.parametrize(
    ("declared", "status"),
    [
        (b"10", None),  # fine: the handler runs
        (b"1" * 30, 413),  # a number, too large for anything
        (b" 1", 400),
        ("\u0661".encode(), 400),
        (b"1e3", 400),
        (b"+1", 400),
        (b"1_0", 400),
    ],
)
async def test_content_length_is_ascii_digits(declared, status):
    from voting.web.middleware import BodySizeLimit

    answered = []

    async def app(scope, receive, send):
        answered.append(None)

    async def send(message):
        if message["type"] == "http.response.start":
            answered.append(message["status"])

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "headers": [(b"content-length", declared)]}
    await BodySizeLimit(app, 100)(scope, receive, send)
    assert answered == [status]
