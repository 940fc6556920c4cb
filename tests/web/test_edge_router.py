"""The vote's edge (web/edge.py) answers exactly what the router would: same status, same
body, same headers, for good votes and for every kind of bad one."""

import pytest
from httpx import ASGITransport, AsyncClient

from tests.fixtures.services import TEST_SECRET
from tests.fixtures.voting import open_rehearsal
from voting import rehearsal
from voting.app import create_app
from voting.web.edge import Edge

VOLATILE = {"date", "x-request-id"}


async def _without(settings, clock, *classes):
    application = create_app(settings, clock=clock)
    application.user_middleware = [m for m in application.user_middleware if m.cls not in classes]
    return application


@pytest.fixture
async def fast_app(settings, clock):
    """The application as it serves: every vote answered by the edge."""
    application = await _without(settings, clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def routed_app(settings, clock):
    """Without the edge: votes go through the stack and the router."""
    application = await _without(settings, clock, Edge)
    async with application.router.lifespan_context(application):
        yield application


async def _voter(app, conn, slug, n):
    token = rehearsal.voter_tokens(app.state.tokens, TEST_SECRET, slug, 1, start=n)[0]
    client = AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver")
    r = await client.post("/api/rehearsal/session", json={"token": token})
    assert r.status_code == 200, r.text
    return client, r.json()["csrf_token"]


def _shape(response):
    body = (
        response.json()
        if response.headers.get("content-type", "").startswith("application/json")
        else response.text
    )
    if response.status_code == 202:  # a fresh receipt and instant each time
        body = sorted(body)
    headers = {k: v for k, v in response.headers.items() if k not in VOLATILE}
    return response.status_code, body, headers


async def _chunks(n, size):
    for _ in range(n):
        yield b"x" * size


async def test_the_fast_path_answers_as_the_router_does(fast_app, routed_app, conn):
    app = fast_app
    assert any(m.cls is Edge for m in app.user_middleware)
    made, by_cat = await open_rehearsal(app, conn, "rehearsal-fp")
    shapes = {}
    for name, application, n in (("fast", app, 1), ("routed", routed_app, 2)):
        client, csrf = await _voter(application, conn, made.slug, n)
        h = {"X-CSRF-Token": csrf}
        anonymous = AsyncClient(transport=ASGITransport(app=application), base_url="http://t")
        try:
            shapes[name] = [
                _shape(
                    await client.post("/api/votes", json={"nomination": by_cat["C1"][0]}, headers=h)
                ),
                _shape(
                    await client.post("/api/votes", json={"nomination": by_cat["C1"][1]}, headers=h)
                ),
                _shape(await client.post("/api/votes", json={"nomination": by_cat["C2"][0]})),
                _shape(await client.post("/api/votes", content=b"{nope", headers=h)),
                _shape(await client.post("/api/votes", json={"nomination": "NOPE"}, headers=h)),
                _shape(
                    await client.post(
                        "/api/votes",
                        json={"nomination": by_cat["C2"][0], "category": "C3"},
                        headers=h,
                    )
                ),
                _shape(await client.post("/api/votes", content=b"x" * 70_000, headers=h)),
                # No Content-Length: the size is found while the body streams in.
                _shape(await client.post("/api/votes", content=_chunks(10, 8000), headers=h)),
                _shape(await client.post("/api/votes", content=_chunks(3, 2), headers=h)),
                _shape(await anonymous.post("/api/votes", json={"nomination": by_cat["C1"][0]})),
                _shape(await client.get("/api/votes")),
                _shape(await client.post("/api/votes/", json={})),
            ]
        finally:
            await client.aclose()
            await anonymous.aclose()
    assert [s[0] for s in shapes["fast"]] == [
        202,
        409,
        403,
        400,
        404,
        422,
        413,
        413,
        400,
        401,
        405,
        307,
    ]
    # The duplicate names the receipt of each app's own first vote: compare its shape.
    for shape in shapes.values():
        shape[1] = (shape[1][0], sorted(shape[1][1]["error"]), shape[1][2])
    assert shapes["fast"] == shapes["routed"]
