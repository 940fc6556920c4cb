"""Security headers on every kind of answer, HSTS only over TLS (directly or behind a
proxy the settings trust), and the client address a trusted proxy reports."""

import pytest
from httpx import ASGITransport, AsyncClient

from tests.fixtures.apps import serving
from tests.fixtures.security import confirm_voter
from tests.fixtures.voting import flush, open_voting
from voting.antifraud.minimise import address_hash, address_key


def http(app, base_url="http://testserver"):
    return AsyncClient(transport=ASGITransport(app=app), base_url=base_url)


@pytest.mark.parametrize(
    "path", ["/", "/api/contest", "/api/votes", "/nothing-here", "/static/style.css"]
)
async def test_every_answer_carries_the_security_headers(client, app, conn, path):
    await open_voting(app, conn)
    r = await (client.post(path) if path == "/api/votes" else client.get(path))
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] in {"same-origin", "no-referrer", "strict-origin"}
    assert "strict-transport-security" not in r.headers  # plain http: HSTS means nothing


async def test_hsts_over_tls(app):
    async with http(app, "https://testserver") as tls:
        r = await tls.get("/livez")
    assert r.headers["strict-transport-security"].startswith("max-age=")


async def test_hsts_behind_a_trusted_proxy_only(settings, clock):
    behind_proxy = {"x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.7"}
    async with serving(settings, clock, trust_proxy_headers=True) as app, http(app) as c:
        r = await c.get("/livez", headers=behind_proxy)
        assert r.headers["strict-transport-security"].startswith("max-age=")
    # Proxy headers not trusted at all (the default), or not from this peer: plain http.
    async with serving(settings, clock) as app, http(app) as c:
        assert (
            "strict-transport-security" not in (await c.get("/livez", headers=behind_proxy)).headers
        )
    async with (
        serving(settings, clock, trust_proxy_headers=True, forwarded_allow_ips="10.1.2.3") as app,
        http(app) as c,
    ):
        assert (
            "strict-transport-security" not in (await c.get("/livez", headers=behind_proxy)).headers
        )


async def test_the_recorded_address_is_the_one_the_proxy_saw_not_one_the_client_wrote(
    settings, clock, conn
):
    async with serving(settings, clock, trust_proxy_headers=True) as app, http(app) as c:
        edition, edition_id, noms = await open_voting(app, conn)
        await confirm_voter(c, app, edition.slug, "behind.proxy@example.org")
        csrf = (await c.get("/api/session")).json()["csrf_token"]
        # The client wrote 6.6.6.6; our proxy (127.0.0.1, trusted) appended the real peer.
        r = await c.post(
            "/api/votes",
            json={"nomination": noms["C1"][0]},
            headers={"x-csrf-token": csrf, "x-forwarded-for": "6.6.6.6, 203.0.113.7"},
        )
        assert r.status_code == 202, r.text
        await flush(app)
    # Kept as its keyed hash and /24 (antifraud/minimise.py), never the address itself.
    row = await conn.fetchrow(
        "SELECT ip, ip_hash, ip_prefix FROM votes WHERE edition_id=$1", edition_id
    )
    assert row["ip"] is None and row["ip_prefix"] == "203.0.113.0/24"
    assert row["ip_hash"] == address_hash(address_key(settings.secret_key), "203.0.113.7")


async def test_the_session_cookie_is_httponly_and_samesite(client, app):
    r = await client.get("/api/session")
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
