from datetime import UTC, datetime

import orjson
import pytest

from tests.fixtures.editions import edition_data, load_builtin, load_data
from voting import edition_store


async def test_healthz_answers_when_both_servers_answer(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "postgres": "ok", "redis": "ok"}


async def test_contest_without_an_edition_is_a_json_404(client):
    response = await client.get("/api/contest")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "no_edition"


async def test_contest_shows_phases_in_utc_and_geneva_time(client, conn, clock):
    await load_builtin(conn, "demo", clock.now())
    await load_builtin(conn, "wsis-2014", clock.now(), current=False)
    body = (await client.get("/api/contest")).json()
    assert body["slug"] == "demo"
    assert body["timezone"] == "Europe/Zurich"
    assert body["current_phase"] == "voting"
    assert [p["name"] for p in body["phases"]] == [
        "nominations",
        "review",
        "voting",
        "expert_review",
        "results",
    ]

    detail = (await client.get("/api/editions/wsis-2014")).json()
    voting = next(p for p in detail["phases"] if p["name"] == "voting")
    assert voting["closes_utc"] == "2014-04-18T21:00:00Z"
    assert voting["closes_local"] == "2014-04-18T23:00:00+02:00"
    assert detail["current_phase"] is None  # 2014 is long over

    listing = (await client.get("/api/editions")).json()
    assert sorted(e["slug"] for e in listing["editions"]) == ["demo", "wsis-2014"]


async def test_categories_are_the_editions_data(client, conn, clock):
    await load_builtin(conn, "wsis-2014", clock.now())
    body = (await client.get("/api/categories")).json()
    codes = [c["code"] for c in body["categories"]]
    assert len(codes) == 18 and codes[0] == "C1" and "C7-EHEALTH" in codes
    assert next(c for c in body["categories"] if c["code"] == "C7-EHEALTH")["facilitator"] == "WHO"


async def test_unknown_edition_and_route_are_json_4xx(client):
    response = await client.get("/api/editions/nope")
    assert response.status_code == 404 and response.json()["error"]["code"] == "no_such_edition"
    response = await client.get("/api/no/such/route")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    response = await client.post("/api/contest")
    assert response.status_code == 405 and "error" in response.json()


async def test_unknown_page_is_an_html_404(client):
    response = await client.get("/no/such/page")
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert "There is nothing at this address." in response.text


async def test_home_page_shows_the_deadline_in_geneva_time(client, conn):
    now = datetime(2014, 4, 10, 12, 0, tzinfo=UTC)
    await load_builtin(conn, "wsis-2014", now)
    # The test clock is elsewhere in time; the page shows the edition's calendar anyway.
    response = await client.get("/")
    assert response.status_code == 200
    assert "18 April 2014, 23:00 (CEST)" in response.text
    assert '<main id="main"' in response.text and 'lang="en"' in response.text


async def test_a_loaded_edition_is_locked_once_voting_opened(conn, clock):
    data = edition_data()
    await load_data(conn, data, clock.now())
    data["name"] = "Renamed"
    with pytest.raises(edition_store.EditionLocked, match="only the voting close may move"):
        await load_data(conn, data, clock.now())
    upcoming = edition_data(voting=("+1d", "+14d"), review=("-20d", "+1d"))
    upcoming["slug"] = "later"
    await load_data(conn, upcoming, clock.now(), current=False)
    upcoming["name"] = "Renamed before voting"
    await load_data(conn, upcoming, clock.now(), current=False)
    assert (await edition_store.get_edition(conn, "later")).name == "Renamed before voting"
    actions = await conn.fetch("SELECT action FROM audit_log ORDER BY id")
    assert [a["action"] for a in actions] == ["edition.load", "edition.load", "edition.replace"]


async def test_openapi_documents_exactly_the_api_routes(client, app):
    from starlette.routing import Route

    doc = (await client.get("/api/openapi.json")).json()
    served = {
        (route.path, method.lower())
        for route in app.routes
        if isinstance(route, Route) and route.path.startswith("/api/")
        for method in (route.methods or set()) - {"HEAD"}
    }
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert served == documented


def _resolved(doc, schema):
    """A schema with its `$ref` to a component followed (the types are components)."""
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


async def test_openapi_tells_the_two_503s_of_a_vote_apart(client):
    doc = (await client.get("/api/openapi.json")).json()
    answer = doc["paths"]["/api/votes"]["post"]["responses"]["503"]
    schema = _resolved(doc, answer["content"]["application/json"]["schema"])
    error = _resolved(doc, schema["properties"]["error"])
    codes = error["properties"]["code"]["enum"]
    assert sorted(codes) == ["outcome_unknown", "unavailable"]
    assert "nothing was recorded" in answer["description"]
    assert "may have been recorded" in answer["description"]


async def test_a_405_says_which_methods_the_address_takes(client):
    # RFC 9110: a 405 carries Allow; the API's JSON answer and the page's alike.
    api = await client.post("/api/contest")
    assert api.status_code == 405 and api.json()["error"]["code"] == "http_error"
    assert {m.strip() for m in api.headers["allow"].split(",")} >= {"GET"}
    page = await client.delete("/vote")
    assert page.status_code == 405 and page.headers["content-type"].startswith("text/html")
    assert "GET" in page.headers["allow"]


async def test_the_document_says_what_the_engine_refuses_and_where_its_values_lead(client):
    doc = (await client.get("/api/openapi.json")).json()
    paths = doc["paths"]
    vote = paths["/api/votes"]["post"]
    body = _resolved(doc, vote["requestBody"]["content"]["application/json"]["schema"])
    # {"nomination": ""} is declared invalid (the engine answers 422), as is a NUL.
    assert body["properties"]["nomination"]["minLength"] == 1
    assert body["properties"]["nomination"]["pattern"] == "^[^\\x00]*$"
    # Rate limits answer 429 where they apply.
    assert "429" in vote["responses"] and "429" in paths["/api/voters/signin"]["post"]["responses"]
    # Every input text refuses NUL in the document as the engine does.
    nomination_input = doc["components"]["schemas"]["NominationInput"]
    assert nomination_input["additionalProperties"] is False
    assert nomination_input["properties"]["summary"]["pattern"] == "^[^\\x00]*$"
    # Links point at operations that exist, with the parameters those take.
    links = 0
    for path, operations in paths.items():
        for operation in operations.values():
            for answer in operation["responses"].values():
                for link in answer.get("links", {}).values():
                    links += 1
                    target_path, method = link["operationRef"][len("#/paths/") :].rsplit("/", 1)
                    target_path = target_path.replace("~1", "/").replace("~0", "~")
                    target = paths[target_path][method]
                    names = {p["name"] for p in target.get("parameters", [])}
                    assert set(link.get("parameters", {})) <= names, (path, link)
    assert links >= 15
    created = paths["/api/nominations"]["post"]["responses"]["201"]["links"]
    assert created["ReadIt"]["parameters"] == {"public_id": "$response.body#/nomination/public_id"}


async def test_security_headers_are_on_every_response(client):
    response = await client.get("/healthz")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "same-origin"


async def test_oversized_body_is_refused_early(client):
    response = await client.post("/signin", content=b"x" * (70 * 1024))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


async def test_the_typed_answers_are_the_editions_account_byte_for_byte(client, conn, clock):
    """The answers are built as their declared types (web/api.py) and say exactly what the
    domain's account of an edition says (`Edition.to_dict`, also the CLI's), in its order,
    with its instants written as before (UTC with Z, local time with its offset)."""
    await load_builtin(conn, "demo", clock.now())
    await load_builtin(conn, "wsis-2014", clock.now(), current=False)
    now = clock.now()
    demo = await edition_store.get_edition(conn, "demo")
    old = await edition_store.get_edition(conn, "wsis-2014")
    contest = await client.get("/api/contest")
    assert contest.headers["content-type"] == "application/json"
    assert contest.content == orjson.dumps(demo.to_dict(now))
    detail = await client.get("/api/editions/wsis-2014")
    assert detail.content == orjson.dumps(old.to_dict(now))
    listing = (await client.get("/api/editions")).json()["editions"]
    assert sorted(listing, key=lambda e: e["slug"]) == [
        orjson.loads(orjson.dumps(e.to_dict(now))) for e in (demo, old)
    ]
    categories = await client.get("/api/categories")
    expected = {
        "edition": "demo",
        "categories": [
            {k: v for k, v in c.to_dict().items() if k != "position"} for c in demo.categories
        ],
    }
    assert categories.content == orjson.dumps(expected)
