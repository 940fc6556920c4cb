"""CSRF on every form and every API write: enumerated from the app's own routes, so a
new form that forgets its token fails here."""

import pytest

from tests.security_support import UNSAFE, endpoints, everyone, fill

# Unsafe routes that rightly take no CSRF token, and why. Anything else must refuse.
EXEMPT = {
    # Mails a sign-in link to the address given and opens no session: a cross-site page
    # could only make a browser ask for a link to an address the attacker already has.
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
