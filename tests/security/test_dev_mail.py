"""The development mailbox (/dev/mail) holds working sign-in links: it answers only a
client on this machine's loopback, whatever address the server listens on."""

import pytest
from httpx import ASGITransport, AsyncClient

from voting import mail
from voting.web.pages import is_loopback


def from_ip(app, ip: str) -> AsyncClient:
    return AsyncClient(transport=ASGITransport(app=app, client=(ip, 50000)), base_url="http://t")


@pytest.fixture
async def a_mail(conn):
    await mail.enqueue(conn, "someone@example.org", "Your sign-in link", "http://t/signin/x")


@pytest.mark.parametrize(
    ("ip", "status"),
    [
        ("127.0.0.1", 200),
        ("127.8.9.10", 200),
        ("::1", 200),
        ("::ffff:127.0.0.1", 200),
        ("192.0.2.10", 404),
        ("10.0.0.1", 404),
        ("2001:db8::1", 404),
        ("0.0.0.0", 404),  # noqa: S104 (a client address here, not a bind)
        ("not-an-address", 404),
    ],
)
async def test_the_mailbox_answers_loopback_only(app, a_mail, ip, status):
    async with from_ip(app, ip) as http:
        r = await http.get("/dev/mail")
    assert r.status_code == status, (ip, r.status_code)
    assert ("someone@example.org" in r.text) is (status == 200)


async def test_behind_a_trusted_proxy_the_proxied_client_is_asked(settings, clock, a_mail):
    from voting.app import create_app

    proxied = settings.with_overrides(trust_proxy_headers=True, forwarded_allow_ips="127.0.0.1")
    app = create_app(proxied, clock=clock)
    async with app.router.lifespan_context(app), from_ip(app, "127.0.0.1") as proxy:
        outside = await proxy.get("/dev/mail", headers={"x-forwarded-for": "203.0.113.9"})
        assert outside.status_code == 404
        local = await proxy.get("/dev/mail", headers={"x-forwarded-for": "127.0.0.1"})
        assert local.status_code == 200 and "someone@example.org" in local.text


def test_what_counts_as_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("127.255.0.1")
    assert not any(map(is_loopback, ["", "128.0.0.1", "::2", "::ffff:10.0.0.1", "localhost"]))
