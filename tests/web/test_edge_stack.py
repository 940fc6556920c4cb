"""The vote's edge (web/edge.py, imported here under its old name, VoteFront) answers
exactly what the full middleware stack answers: the same status, body and headers for
good votes and for every kind of bad one, the same metrics and access lines, and the
vote script runs once per request."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from httpx import ASGITransport, AsyncClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.fixtures.metrics import access_lines, scrape, value
from tests.fixtures.services import TEST_SECRET
from tests.fixtures.voting import open_voting, redis_now, runtime_for, with_window
from voting import db, rehearsal
from voting.app import create_app
from voting.ballot import Ballot
from voting.services import open_redis
from voting.web.edge import Edge as VoteFront

# Made afresh for each answer; a request id sent by the client is compared.
VOLATILE_HEADERS = {"date", "x-request-id", "content-length"}
VOLATILE_FIELDS = {"receipt", "cast_at"}


@pytest.fixture
async def stack_app(settings, clock):
    """The same application without the front: every vote through the middleware stack."""
    application = create_app(settings, clock=clock)
    application.user_middleware = [m for m in application.user_middleware if m.cls is not VoteFront]
    async with application.router.lifespan_context(application):
        yield application


class Pair:
    """The application with the front and the one without, each with a voter of its own in
    the same rehearsal edition: the same requests in the same order get the same answers."""

    def __init__(self, apps, clients, csrfs, by_cat, slug):
        self.apps, self.clients, self.csrfs, self.by_cat, self.slug = (
            apps,
            clients,
            csrfs,
            by_cat,
            slug,
        )

    async def both(self, method, path, *, csrf=True, headers=None, **kw):
        """The two answers' shapes (status, normalized body, headers), front first."""
        shapes = []
        for client, token in zip(self.clients, self.csrfs, strict=True):
            h = {"X-CSRF-Token": token} if csrf else {}
            h.update(headers or {})
            response = await client.request(method, path, headers=h, **kw)
            shapes.append(shape(response, keep_id="x-request-id" in (headers or {})))
        return shapes

    async def close(self):
        for client in self.clients:
            await client.aclose()


def _normalized(body):
    if isinstance(body, dict):
        return {k: "*" if k in VOLATILE_FIELDS else _normalized(v) for k, v in body.items()}
    return body


def shape(response, *, keep_id=False):
    is_json = response.headers.get("content-type", "").startswith("application/json")
    body = _normalized(response.json()) if is_json else response.text
    assert int(response.headers["content-length"]) == len(response.content)
    hidden = VOLATILE_HEADERS - ({"x-request-id"} if keep_id else set())
    headers = [(k, v) for k, v in response.headers.multi_items() if k not in hidden]
    return response.status_code, body, headers


async def _voter(app, n, base_url="http://testserver"):
    token = rehearsal.voter_tokens(app.state.tokens, TEST_SECRET, "rehearsal-vf", 1, start=n)[0]
    client = AsyncClient(transport=ASGITransport(app=app), base_url=base_url)
    r = await client.post("/api/rehearsal/session", json={"token": token})
    assert r.status_code == 200, r.text
    return client, r.json()["csrf_token"]


async def make_pair(app, stack_app, conn, *, first=1, base_url="http://testserver"):
    svc = app.state.services
    if await conn.fetchval("SELECT count(*) FROM editions WHERE slug='rehearsal-vf'") == 0:
        await open_voting(app, conn)
        await rehearsal.create(
            conn, svc.r, svc.settings.redis_prefix, now=await redis_now(svc.r), slug="rehearsal-vf"
        )
    rows = await conn.fetch(
        "SELECT n.public_id, n.category FROM nominations n JOIN editions e ON e.id=n.edition_id"
        " WHERE e.slug='rehearsal-vf' ORDER BY n.category, n.public_id"
    )
    by_cat: dict[str, list[str]] = {}
    for r in rows:
        by_cat.setdefault(r["category"], []).append(r["public_id"])
    clients, csrfs = [], []
    for n, application in ((first, app), (first + 1, stack_app)):
        client, csrf = await _voter(application, n, base_url)
        clients.append(client)
        csrfs.append(csrf)
    return Pair((app, stack_app), clients, csrfs, by_cat, "rehearsal-vf")


async def test_the_front_answers_every_vote_as_the_stack_does(app, stack_app, conn):
    assert any(m.cls is VoteFront for m in app.user_middleware)
    pair = await make_pair(app, stack_app, conn)
    c1, c2, c3 = pair.by_cat["C1"], pair.by_cat["C2"], pair.by_cat["C3"]
    cases = [
        ("accepted", dict(json={"nomination": c1[0]})),
        ("with its category", dict(json={"nomination": c2[0], "category": "C2"})),
        ("traced", dict(json={"nomination": c3[0]}, headers={"X-Request-ID": "trace-42"})),
        ("already voted", dict(json={"nomination": c1[1]})),
        ("already voted, traced", dict(json={"nomination": c1[1]}, headers={"X-Request-ID": "t"})),
        ("forged request id", dict(json={"nomination": c1[1]}, headers={"X-Request-ID": "a b"})),
        ("wrong category", dict(json={"nomination": c1[0], "category": "C3"})),
        ("category not a text", dict(json={"nomination": c1[0], "category": 3})),
        ("unknown nomination", dict(json={"nomination": "N99999999"})),
        ("nomination not a text", dict(json={"nomination": 12})),
        ("nomination too long", dict(json={"nomination": "N" * 65})),
        ("no nomination", dict(json={})),
        ("not an object", dict(json=["x"])),
        ("bad JSON", dict(content=b"{nope")),
        ("empty body", dict(content=b"")),
        ("NUL", dict(content=b'{"nomination": "\\u0000"}')),
        ("no CSRF token", dict(json={"nomination": c1[0]}, csrf=False)),
        ("wrong CSRF token", dict(json={"nomination": c1[0]}, headers={"X-CSRF-Token": "x"})),
        ("non-ASCII CSRF", dict(json={"nomination": c1[0]}, headers={"X-CSRF-Token": b"\xe9"})),
        ("a query", dict(json={"nomination": c1[0]}, params={"x": "1"})),
        ("too large", dict(content=b"x" * 70_000)),
        ("headers too large", dict(json={"nomination": c1[0]}, headers={"x-pad": "a" * 20_000})),
        ("forged session", dict(json={"nomination": c1[0]}, headers={"Cookie": "wsis_session=x"})),
    ]
    try:
        statuses = []
        for attempt in range(2):
            for name, kw in cases:
                front, stack = await pair.both("POST", "/api/votes", **kw)
                assert front == stack, (attempt, name)
                statuses.append(front[0])
        assert statuses[:6] == [202, 202, 202, 409, 409, 409]
        # Sent again: every accepted vote is now a duplicate; the refusals stay as they were.
        statuses = statuses[len(cases) :]
        assert statuses[:6] == [409] * 6
        assert statuses[6:19] == [422, 422, 404, 422, 422, 422, 422, 400, 400, 422, 403, 403, 403]
        assert statuses[19:] == [409, 413, 431, 401]
    finally:
        await pair.close()


async def test_the_french_refusal_and_the_https_headers(app, stack_app, conn):
    pair = await make_pair(app, stack_app, conn, first=11, base_url="https://testserver")
    try:
        accepted = await pair.both("POST", "/api/votes", json={"nomination": pair.by_cat["C1"][0]})
        assert accepted[0] == accepted[1] and accepted[0][0] == 202
        assert ("strict-transport-security", "max-age=31536000; includeSubDomains") in accepted[0][
            2
        ]
        for client in pair.clients:
            client.cookies.set("lang", "fr")
        refused = await pair.both("POST", "/api/votes", json={"nomination": pair.by_cat["C1"][1]})
        assert refused[0] == refused[1]
        assert refused[0][0] == 409 and "déjà" in refused[0][1]["error"]["message"]
    finally:
        await pair.close()


async def test_closed_window_and_redis_away_are_answered_by_the_stack(app, stack_app, conn):
    pair = await make_pair(app, stack_app, conn, first=21)
    svc = app.state.services
    rt = runtime_for(app)
    edition = await rt.catalog.rehearsal(pair.slug)
    t = await redis_now(svc.r)
    try:
        await rt.ballot.sync_window(with_window(edition.edition, t - timedelta(days=2), t))
        closed = await pair.both("POST", "/api/votes", json={"nomination": pair.by_cat["C1"][0]})
        assert closed[0] == closed[1] and closed[0][0] == 403
        assert closed[0][1]["error"]["code"] == "voting_closed"
        dead = open_redis("redis://127.0.0.1:1/0", max_connections=2, timeout=0.5)
        runtimes = [runtime_for(a) for a in pair.apps]
        good = [r.ballot for r in runtimes]
        for r in runtimes:
            r.ballot = Ballot(dead, svc.settings.redis_prefix, address_key=r.ballot.address_key)
        try:
            away = await pair.both("POST", "/api/votes", json={"nomination": pair.by_cat["C2"][0]})
        finally:
            for r, ballot in zip(runtimes, good, strict=True):
                r.ballot = ballot
            await dead.aclose()
        assert away[0] == away[1] and away[0][0] == 503
        assert "NOT recorded" in away[0][1]["error"]["message"]
    finally:
        await pair.close()


async def test_a_refused_vote_runs_the_script_once_and_a_lost_window_is_restored(
    app, stack_app, conn
):
    pair = await make_pair(app, stack_app, conn, first=31)
    svc = app.state.services
    rt = runtime_for(app)
    client = pair.clients[0]
    h = {"X-CSRF-Token": pair.csrfs[0]}
    c1 = pair.by_cat["C1"]
    try:
        assert (
            await client.post("/api/votes", json={"nomination": c1[0]}, headers=h)
        ).status_code == 202
        calls = rt.ballot._cast.stats.calls
        r = await client.post("/api/votes", json={"nomination": c1[1]}, headers=h)
        assert r.status_code == 409
        assert rt.ballot._cast.stats.calls == calls + 1  # the front's cast, taken by the stack
        # Redis lost the windows: the front's cast says so, the stack restores them from
        # PostgreSQL and casts once more, and the vote is recorded once.
        keys = rt.ballot.keys(pair.slug)
        await svc.r.delete(*[keys.window(s) for s in range(rt.ballot.shards)])
        calls = rt.ballot._cast.stats.calls
        r = await client.post("/api/votes", json={"nomination": pair.by_cat["C2"][0]}, headers=h)
        assert r.status_code == 202, r.text
        assert rt.ballot._cast.stats.calls == calls + 2
        mine = (await client.get("/api/votes/mine")).json()["votes"]
        assert sorted(v["category"] for v in mine) == ["C1", "C2"]
    finally:
        await pair.close()


async def test_metrics_and_access_lines_are_those_of_the_stack(app, stack_app, conn):
    pair = await make_pair(app, stack_app, conn, first=41)
    scraper = AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver")
    deltas = []
    try:
        with access_lines() as stream:
            for client, csrf in zip(pair.clients, pair.csrfs, strict=True):
                before = await scrape(scraper)
                r = await client.post(
                    "/api/votes",
                    json={"nomination": pair.by_cat["C3"][0]},
                    headers={"X-CSRF-Token": csrf, "X-Request-ID": "vote-7"},
                )
                assert r.status_code == 202
                after = await scrape(scraper)
                deltas.append(
                    {
                        key: after[key] - before.get(key, 0.0)
                        for key in after
                        # Counts only: how long each took is its own business.
                        if key[0].startswith(("wsis_votes", "wsis_http_request"))
                        and key[0].endswith(("_total", "_count"))
                        and ("route", "/metrics") not in key[1]
                        and after[key] != before.get(key, 0.0)
                    }
                )
    finally:
        await scraper.aclose()
        await pair.close()
    assert deltas[0] == deltas[1] and set(deltas[0].values()) == {1}
    counted = value(
        deltas[0], "wsis_http_requests_total", method="POST", route="/api/votes", status="202"
    )
    assert counted == 1
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    votes = [x for x in lines if x["path"] == "/api/votes"]
    assert len(votes) == 2
    for line in votes:
        line.pop("time"), line.pop("duration_ms")
    assert votes[0] == votes[1]
    assert votes[0]["request_id"] == "vote-7" and votes[0]["status"] == 202


@st.composite
def vote_bodies(draw, nominations):
    """A body as a client might send it: mostly good votes, sometimes anything."""
    kind = draw(st.sampled_from(["good", "good", "json", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=40))
    body = {}
    if kind == "good" or draw(st.booleans()):
        body["nomination"] = draw(
            st.sampled_from(nominations)
            if kind == "good"
            else st.one_of(st.text(max_size=70), st.integers(), st.none())
        )
    if draw(st.booleans()):
        body["category"] = draw(st.one_of(st.sampled_from(["C1", "C2", "C3", "C9"]), st.integers()))
    if draw(st.booleans()):
        body["form_token"] = draw(st.one_of(st.text(max_size=20), st.integers(), st.none()))
    if kind == "json" and draw(st.booleans()):
        return json.dumps(
            draw(st.one_of(st.lists(st.integers()), st.integers(), st.text()))
        ).encode()
    return json.dumps(body).encode()


def test_any_sequence_of_bodies_gets_the_same_answers(settings, clock, database_url):
    """Hypothesis has no async tests: this one drives an event loop of its own, with its
    own two applications on the test's database and key space."""
    loop = asyncio.new_event_loop()

    async def open_rig():
        # The setup as the superuser; the applications log in as the application's role.
        conn = await db.connect(database_url)
        apps = [create_app(settings, clock=clock) for _ in range(2)]
        apps[1].user_middleware = [m for m in apps[1].user_middleware if m.cls is not VoteFront]
        lifespans = [a.router.lifespan_context(a) for a in apps]
        for lifespan in lifespans:
            await lifespan.__aenter__()
        return conn, lifespans, await make_pair(apps[0], apps[1], conn, first=51)

    conn, lifespans, pair = loop.run_until_complete(open_rig())
    nominations = [n for c in sorted(pair.by_cat) for n in pair.by_cat[c]]
    seen: list[int] = []

    @hypothesis_settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(vote_bodies(nominations), min_size=1, max_size=6))
    def check(bodies):
        for body in bodies:
            front, stack = loop.run_until_complete(
                pair.both(
                    "POST", "/api/votes", content=body, headers={"content-type": "application/json"}
                )
            )
            assert front == stack, body
            seen.append(front[0])

    async def close_rig():
        await pair.close()
        for lifespan in lifespans:
            await lifespan.__aexit__(None, None, None)
        await conn.close()

    try:
        check()
    finally:
        loop.run_until_complete(close_rig())
        loop.close()
    assert 202 in seen and 409 in seen and len(set(seen)) >= 4
