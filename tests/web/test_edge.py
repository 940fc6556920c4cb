"""The edge (web/edge.py) applies every policy the middleware stack applies: each side
lists the policies of web/policy.py it applies, and both lists are the whole of
`policy.POLICIES`. Then the headers of a few answers, the edge's and the stack's side by
side: the same security headers, request id, HSTS over TLS."""

from __future__ import annotations

import pytest
from httpx import ASGITransport, AsyncClient
from starlette.middleware.errors import ServerErrorMiddleware

from loadtests.asgi_bench import vote_scope
from tests.fixtures.services import TEST_SECRET
from tests.fixtures.voting import open_rehearsal
from voting import rehearsal
from voting.app import create_app
from voting.ballots.casting import Casting
from voting.web import csrf, policy
from voting.web.edge import Edge
from voting.web.middleware import SECURITY_HEADERS
from voting.web.proxy import ProxyHeaders


def test_the_edge_applies_every_policy_the_stack_applies(settings, clock):
    app = create_app(settings, clock=clock)
    classes = [m.cls for m in app.user_middleware]
    assert classes[0] is Edge  # outermost (the proxy-header middleware goes before it)
    stack: list[str] = list(csrf.APPLIES)  # checked by the handlers that change something
    for cls in classes[1:]:
        stack.extend(getattr(cls, "APPLIES", ()))
    assert sorted(stack) == sorted(policy.POLICIES)  # each once
    assert sorted(Edge.APPLIES) == sorted(policy.POLICIES)
    behind_proxy = create_app(settings.with_overrides(trust_proxy_headers=True), clock=clock)
    # Behind a proxy its middleware comes right after the edge, which applies it itself.
    assert [m.cls for m in behind_proxy.user_middleware] == [Edge, ProxyHeaders, *classes[1:]]


def test_the_edge_is_outside_starlettes_own_error_middleware(settings, clock):
    """A vote crosses no layer but the edge: it wraps the stack Starlette builds,
    ServerErrorMiddleware first, which every other request still meets."""
    for trusted in (False, True):
        app = create_app(settings.with_overrides(trust_proxy_headers=trusted), clock=clock)
        built = app.build_middleware_stack()
        assert isinstance(built, Edge) and isinstance(built.app, ServerErrorMiddleware)
        assert (built.proxy is not None) is trusted
        inner = built.app.app
        while hasattr(inner, "app"):
            assert not isinstance(inner, Edge)
            inner = inner.app
    assert app.user_middleware[0].cls is Edge  # the declared list is intact


async def test_a_fault_on_the_votes_path_is_answered_in_json_and_logged(
    app, conn, monkeypatch, caplog
):
    """With no error middleware outside it, the edge answers a fault of its own: a 500
    in the engine's JSON shape with the policy headers, saying what can be known."""
    made, by_category = await open_rehearsal(app, conn, "rehearsal-500")
    nomination = by_category["C1"][0]
    token = rehearsal.voter_tokens(app.state.tokens, TEST_SECRET, made.slug, 1, start=90)[0]

    async def broken(*args, **kwargs):
        raise RuntimeError("a bug of ours")

    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as c:
        r = await c.post("/api/rehearsal/session", json={"token": token})
        h = {"X-CSRF-Token": r.json()["csrf_token"], "X-Request-ID": "fault-1"}
        monkeypatch.setattr(Casting, "cast", broken)
        with caplog.at_level("ERROR", logger="voting.web.edge"):
            r = await c.post("/api/votes", json={"nomination": nomination}, headers=h)
        assert r.status_code == 500
        assert r.headers["content-type"] == "application/json"
        assert r.json()["error"]["code"] == "internal_error"
        assert "may or may not have been recorded" in r.json()["error"]["message"]
        assert r.headers["x-request-id"] == "fault-1" and SECURITY <= set(r.headers)
        assert any("a bug of ours" in (rec.exc_text or "") for rec in caplog.records)
        monkeypatch.undo()
        r = await c.post("/api/votes", json={"nomination": nomination}, headers=h)
        assert r.status_code == 202, r.text  # the next vote goes through


def test_every_listed_policy_is_a_function_of_the_policy_module():
    named = {
        "request_id": policy.request_id,
        "observe": policy.observe,
        "language": policy.language,
        "security_headers": policy.security_headers,
        "header_limit": policy.header_limit,
        "body_limit": policy.body_limit,
        "session": policy.SessionCodec,
        "csrf": policy.csrf_ok,
    }
    assert set(named) == set(policy.POLICIES)
    assert all(callable(f) for f in named.values())


@pytest.fixture
async def routed_app(settings, clock):
    application = create_app(settings, clock=clock)
    application.user_middleware = [m for m in application.user_middleware if m.cls is not Edge]
    async with application.router.lifespan_context(application):
        yield application


SECURITY = {name.decode() for name, _ in SECURITY_HEADERS}


def _policy_headers(response):
    """The headers the policies write, whatever the answer."""
    return {
        k: v
        for k, v in response.headers.items()
        if k in SECURITY or k in {"x-request-id", "strict-transport-security", "vary"}
    }


@pytest.mark.parametrize("base_url", ["http://testserver", "https://testserver"])
async def test_the_votes_answers_carry_the_headers_of_any_api_answer(
    app, routed_app, conn, base_url
):
    made, by_category = await open_rehearsal(app, conn, "rehearsal-hp")
    tokens = rehearsal.voter_tokens(app.state.tokens, TEST_SECRET, made.slug, 2, start=70)
    seen = {}
    for n, application in enumerate((app, routed_app)):
        async with AsyncClient(transport=ASGITransport(app=application), base_url=base_url) as c:
            r = await c.post("/api/rehearsal/session", json={"token": tokens[n]})
            h = {"X-CSRF-Token": r.json()["csrf_token"], "X-Request-ID": "parity-1"}
            vote = {"nomination": by_category["C1"][0]}
            seen[n] = {
                "accepted": await c.post("/api/votes", json=vote, headers=h),
                "duplicate": await c.post("/api/votes", json=vote, headers=h),
                "csrf": await c.post("/api/votes", json=vote, headers={"X-Request-ID": "p"}),
                "session": await c.get("/api/session", headers=h),
                "livez": await c.get("/livez", headers=h),
            }
    edge, stack = seen[0], seen[1]
    assert [r.status_code for r in edge.values()] == [202, 409, 403, 200, 200]
    for name in edge:
        assert _policy_headers(edge[name]) == _policy_headers(stack[name]), name
    tls = base_url.startswith("https")
    for name, response in edge.items():
        headers = _policy_headers(response)
        assert SECURITY <= set(headers), name
        assert ("strict-transport-security" in headers) is tls, name
    # The vote's answers and another API route's, from the edge: the same policy headers.
    for name in ("accepted", "duplicate"):
        assert _policy_headers(edge[name]) == _policy_headers(edge["session"]), name
    assert edge["accepted"].headers["x-request-id"] == "parity-1"
    assert edge["csrf"].headers["x-request-id"] == "p"


async def _vote_status(application, lengths: list[bytes]) -> int:
    """The status of a vote sent with these Content-Length headers, straight over ASGI
    (an HTTP client would refuse to send most of them)."""
    scope = vote_scope(
        [(b"host", b"testserver"), (b"content-type", b"application/json")]
        + [(b"content-length", value) for value in lengths]
    )
    statuses = []

    async def receive():
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await application(scope, receive, send)
    return statuses[0]


async def test_the_edge_reads_the_declared_length_as_the_stack_does(app, routed_app):
    """The edge takes Content-Length from its own pass over the headers: the first one
    decides, as body_limit reads it for the stack."""
    limit = app.state.services.settings.max_body_bytes
    for lengths, expected in [
        ([b"12x"], 400),
        ([b"-1"], 400),
        ([b"%d" % (limit + 1)], 413),
        ([b"9" * 40], 413),  # past bigint
        ([b"12x", b"2"], 400),  # the first decides
        ([b"%d" % (limit + 1), b"2"], 413),
        ([b"2", b"12x"], 401),  # the first is fine: on to the session (none here)
    ]:
        assert await _vote_status(app, lengths) == expected, lengths
        assert await _vote_status(routed_app, lengths) == expected, lengths
