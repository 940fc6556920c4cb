"""CSRF on every form and every API write: enumerated from the app's own routes, so a
new form that forgets its token fails here."""

import pytest

from tests.fixtures.security import UNSAFE, endpoints, everyone, fill

# Unsafe routes that rightly take no CSRF token, and why. Anything else must refuse.
EXEMPT = {
    # Mails a sign-in link to the address given and opens no session, so a first visit
    # has no token to send: a same-origin check (Sec-Fetch-Site, Origin) and a JSON-only
    # body refuse cross-site requests instead (test_cross_site_voter_sign_in_is_refused).
    ("POST", "/api/voters/signin"),
    # Trades a signed rehearsal-voter token for a session; the token is the credential,
    # and only rehearsal editions (never the real vote) accept it.
    ("POST", "/api/rehearsal/session"),
}


async def test_every_unsafe_route_refuses_a_request_without_its_csrf_token(app, conn):
    world = await everyone(app, conn)
    checked = []
    try:
        for endpoint in endpoints(app):
            if endpoint.method not in UNSAFE or (endpoint.method, endpoint.path) in EXEMPT:
                continue
            url = fill(endpoint.path, world.values)
            # As privileged as a caller can be, with every field a form might want, but
            # without the token: the only thing left to refuse it for is the token.
            if endpoint.path.startswith("/api/"):
                response = await world.client.request(endpoint.method, url, json={})
            else:
                response = await world.client.request(
                    endpoint.method, url, data={"x": "1"}, headers={"accept": "application/json"}
                )
            assert response.status_code == 403, (endpoint, response.status_code, response.text)
            assert response.json()["error"]["code"] == "csrf", (endpoint, response.text)
            checked.append(endpoint)
    finally:
        await world.client.aclose()
    assert len(checked) >= 20  # the enumeration found the app's forms


async def test_a_wrong_token_is_refused_like_a_missing_one(app, conn):
    world = await everyone(app, conn)
    try:
        r = await world.client.post(
            "/api/votes",
            json={"nomination": world.values["public_id"]},
            headers={"x-csrf-token": world.csrf[:-2] + "xx"},
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "csrf"
        # Another session's token is no better than a made-up one.
        other = await everyone(app, conn, email="second@example.org")
        r = await world.client.post(
            "/api/votes",
            json={"nomination": world.values["public_id"]},
            headers={"x-csrf-token": other.csrf},
        )
        await other.client.aclose()
        assert r.status_code == 403 and r.json()["error"]["code"] == "csrf"
        # And the right one works: the refusals above were about the token only.
        r = await world.client.post(
            "/api/votes",
            json={"nomination": world.values["public_id"]},
            headers={"x-csrf-token": world.csrf},
        )
        assert r.status_code == 202, r.text
    finally:
        await world.client.aclose()


@pytest.mark.parametrize("path", ["/signin", "/vote/signin"])
async def test_sign_in_forms_need_the_token_too(client, app, conn, path):
    await everyone(app, conn)
    r = await client.post(
        path, data={"email": "x@example.org"}, headers={"accept": "application/json"}
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf"


async def test_cross_site_voter_sign_in_is_refused(client, app, conn):
    from tests.fixtures.voting import open_voting

    await open_voting(app, conn)
    body = b'{"email": "victim@example.org"}'

    async def ask(email: str, content_type: str = "application/json", **headers: str):
        return await client.post(
            "/api/voters/signin",
            content=f'{{"email": "{email}"}}'.encode(),
            headers={"content-type": content_type, **headers},
        )

    # What a page elsewhere can make a browser send without asking: a text/plain POST.
    evil = {"origin": "https://evil.example", "sec-fetch-site": "cross-site"}
    r = await client.post(
        "/api/voters/signin", content=body, headers={"content-type": "text/plain", **evil}
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "cross_site"
    # Browsers without Fetch Metadata still send Origin.
    for origin in ("https://evil.example", "http://testserver.evil.example", "null"):
        r = await ask("victim@example.org", origin=origin)
        assert r.status_code == 403 and r.json()["error"]["code"] == "cross_site", origin
    for site in ("cross-site", "same-site"):
        r = await ask("victim@example.org", **{"sec-fetch-site": site})
        assert r.status_code == 403 and r.json()["error"]["code"] == "cross_site", site
    # A body not declared as JSON is refused even without any cross-site sign.
    for content_type in ("text/plain", "application/x-www-form-urlencoded", ""):
        r = await ask("victim@example.org", content_type)
        assert r.status_code == 415, content_type
        assert r.json()["error"]["code"] == "unsupported_media_type"
    assert await conn.fetchval("SELECT count(*) FROM outbox") == 0

    # This site's own pages, typed addresses and non-browser clients pass.
    assert (await ask("a1@example.org", **{"sec-fetch-site": "same-origin"})).status_code == 202
    assert (await ask("a2@example.org", **{"sec-fetch-site": "none"})).status_code == 202
    assert (await ask("a3@example.org", origin="http://testserver")).status_code == 202
    assert (await ask("a4@example.org", origin="http://TestServer:80")).status_code == 202
    assert (await ask("a5@example.org", "application/json; charset=utf-8")).status_code == 202
    # A page that holds the session's CSRF token is this site's, whatever else it says.
    token = (await client.get("/api/session")).json()["csrf_token"]
    r = await ask("a6@example.org", **evil, **{"x-csrf-token": token})
    assert r.status_code == 202
    r = await ask("a7@example.org", **evil, **{"x-csrf-token": token + "x"})
    assert r.status_code == 403
    assert await conn.fetchval("SELECT count(*) FROM outbox") == 6


async def test_the_configured_base_url_is_a_good_origin_behind_a_proxy(settings, clock, conn):
    from httpx import ASGITransport, AsyncClient

    from tests.fixtures.voting import open_voting
    from voting.app import create_app

    app = create_app(settings.with_overrides(base_url="https://vote.example.org"), clock=clock)
    async with app.router.lifespan_context(app):
        await open_voting(app, conn)
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://10.0.0.5:8000") as http:
            for origin, status in (
                ("https://vote.example.org", 202),
                ("http://vote.example.org", 403),
            ):
                r = await http.post(
                    "/api/voters/signin",
                    json={"email": "p@example.org"},
                    headers={"origin": origin},
                )
                assert r.status_code == status, (origin, r.text)
