import hashlib
from urllib.parse import urlsplit

import pytest

from tests.fixtures.flows import csrf_from, sign_in
from voting import accounts
from voting.antifraud.minimise import address_key
from voting.antifraud.verification import (
    MailLimits,
    VerificationLimiter,
    VerificationRefused,
    mailbox_key,
)
from voting.emails import parse_email
from voting.security import keyed_digest


async def test_sign_in_through_a_real_smtp_message(mail_client, mail_app, smtp, conn):
    await sign_in(mail_client, mail_app, smtp, "Minister@Example.ORG")
    user = await accounts.get_or_create(conn, "minister@example.org")
    assert user.roles == frozenset()
    page = await mail_client.get("/")
    assert "Sign out" in page.text


async def test_a_link_works_once_and_says_so_afterwards(mail_client, mail_app, smtp):
    await sign_in(mail_client, mail_app, smtp, "a@example.org")
    link = smtp.mailbox.last_link("a@example.org", "/signin/confirm")
    parts = urlsplit(link)
    again = await mail_client.get(f"{parts.path}?{parts.query}")
    assert again.status_code == 400
    assert "already been used" in again.text
    assert "/signin" in again.text


async def test_a_forged_link_is_refused(client):
    response = await client.get("/signin/confirm?token=not-a-real-token")
    assert response.status_code == 400 and "not valid" in response.text


async def test_an_expired_link_is_refused(client, app, clock):
    from datetime import timedelta

    from voting.security import USER_LINK

    token = app.state.tokens.dumps_link(USER_LINK, {"email": "late@example.org"})
    clock.advance(timedelta(minutes=59))
    assert (await client.get(f"/signin/confirm?token={token}")).status_code == 200
    clock.advance(timedelta(minutes=2))
    response = await client.get(f"/signin/confirm?token={token}")
    assert response.status_code == 400 and "expired" in response.text


async def test_a_voter_link_cannot_sign_in_a_user(client, app):
    from voting.security import VOTER_LINK

    token = app.state.tokens.dumps_link(VOTER_LINK, {"email": "x@example.org"})
    response = await client.get(f"/signin/confirm?token={token}")
    assert response.status_code == 400 and "not valid" in response.text


async def test_signin_form_without_csrf_is_refused(client):
    response = await client.post("/signin", data={"email": "a@example.org"})
    assert response.status_code == 403
    assert "did not come from this site" in response.text


async def test_bad_email_is_shown_on_the_form(client):
    page = await client.get("/signin")
    response = await client.post(
        "/signin", data={"email": "not an address", "csrf_token": csrf_from(page.text)}
    )
    assert response.status_code == 422
    assert 'aria-invalid="true"' in response.text and 'role="alert"' in response.text


async def test_next_cannot_redirect_off_site(mail_client, mail_app, smtp):
    page = await mail_client.get("/signin")
    await mail_client.post(
        "/signin",
        data={
            "email": "b@example.org",
            "csrf_token": csrf_from(page.text),
            "next": "//evil.example/",
        },
    )
    from voting.web.auth import safe_next

    assert safe_next("//evil.example/") == "/dashboard"
    assert safe_next("https://evil.example/") == "/dashboard"
    assert safe_next("/categories") == "/categories"


async def _ask(client, email, **headers):
    page = await client.get("/signin", headers=headers)
    return await client.post(
        "/signin",
        data={"email": email, "csrf_token": csrf_from(page.text), "next": "/"},
        headers=headers,
    )


async def test_sign_in_links_are_limited_per_mailbox(client, conn):
    codes = [(await _ask(client, "Same.Box+a@gmail.com")).status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    refused = await _ask(client, "samebox@gmail.com")  # the same mailbox, spelled otherwise
    assert refused.status_code == 429
    wait = int(refused.headers["retry-after"])
    assert 0 < wait <= 3600
    assert f"try again in {wait} seconds" in refused.text and 'role="alert"' in refused.text
    assert 'name="email"' in refused.text  # still the sign-in page, to try another address
    assert await conn.fetchval("SELECT count(*) FROM outbox") == 3
    # Said in the person's language.
    french = await _ask(client, "samebox@gmail.com", **{"accept-language": "fr"})
    assert french.status_code == 429 and "réessayez dans" in french.text
    # Another mailbox is not held up by this one.
    assert (await _ask(client, "other@example.org")).status_code == 200


async def test_sign_in_links_are_limited_per_network(app, conn):
    from httpx import ASGITransport, AsyncClient

    def from_ip(ip):
        transport = ASGITransport(app=app, client=(ip, 40000))
        return AsyncClient(transport=transport, base_url="http://testserver")

    async with from_ip("203.0.113.5") as one, from_ip("203.0.113.77") as neighbour:
        codes = [(await _ask(one, f"person{i}@example.org")).status_code for i in range(30)]
        assert codes == [200] * 30
        # The same /24, another address and another mailbox: over the network's hour.
        refused = await _ask(neighbour, "fresh@example.org")
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert "from your network" in refused.text
    async with from_ip("198.51.100.9") as elsewhere:
        assert (await _ask(elsewhere, "fresh@example.org")).status_code == 200
    assert await conn.fetchval("SELECT count(*) FROM outbox") == 31


def test_the_email_question_is_asked_once_and_carries_the_other_fields():
    from voting.web.email_typo import email_question

    form = [("csrf_token", "t"), ("email", " ann@gmial.com "), ("role", "expert"), ("x", "1")]
    question = email_question(form)
    assert question is not None
    assert (question.typed, question.suggestion) == ("ann@gmial.com", "ann@gmail.com")
    assert question.carry == (("role", "expert"), ("x", "1"))
    # Answered either way: not asked again.
    assert email_question([*form, ("as_typed", "ANN@gmial.com")]) is None
    assert email_question([("email", "ann@gmail.com"), ("as_typed", "ann@gmail.com")]) is None
    assert email_question([("email", "ann@example.org")]) is None


async def test_the_mailbox_limit_names_a_mailbox_by_its_keyed_hash_only(redis_client, redis_prefix):
    """The per-mailbox limit's Redis key holds an HMAC of the mailbox under a subkey of
    its own (verification.mailbox_key), not a plain hash: without VOTING_SECRET_KEY a
    list of likely addresses cannot be matched against the keys."""
    secret = "a-secret-key-for-this-test-only-0123456789"
    address = parse_email("Same.Box+a@gmail.com")
    limits = MailLimits(per_address_per_hour=2, per_network_per_hour=100)
    limiter = VerificationLimiter(redis_client, redis_prefix, secret=secret)
    await limiter.take_address(address, limits)

    async def keys() -> set[str]:
        found = redis_client.scan_iter(match=f"{redis_prefix}:*", count=1000)
        return {k.decode() async for k in found}

    digest = keyed_digest(mailbox_key(secret), address.mailbox)
    assert await keys() == {f"{redis_prefix}:vl:a:{digest}"}
    plain = hashlib.sha256(address.mailbox.encode()).hexdigest()
    assert not any(plain[:16] in k or address.mailbox in k for k in await keys())
    assert mailbox_key(secret) not in (address_key(secret), secret.encode())
    # The same mailbox in another spelling is the same count; the limit still holds.
    await limiter.take_address(parse_email("samebox@gmail.com"), limits)
    with pytest.raises(VerificationRefused) as refused:
        await limiter.take_address(address, limits)
    assert refused.value.status == 429
    # Under another secret the same mailbox is another key: nothing links the two.
    other = VerificationLimiter(redis_client, redis_prefix, secret=secret + "-other")
    await other.take_address(address, limits)
    assert len(await keys()) == 2
