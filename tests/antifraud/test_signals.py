"""The inline fraud checks, each on its own, against real Redis and PostgreSQL."""

import ipaddress
import re
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from tests.fixtures.flows import csrf_from
from tests.fixtures.voting import (
    flush,
    open_voting,
    redis_now,
    runtime_for,
    verify_voter,
    voter,
    voting_edition,
)
from voting.antifraud.config import DEFAULTS
from voting.antifraud.signals import (
    check_form,
    network_of,
    network_of_reference,
    new_form_token,
)
from voting.antifraud.verification import is_disposable
from voting.ballot import Limits
from voting.security import Tokens, pseudonym


def tight(**overrides) -> Limits:
    return Limits.from_thresholds(replace(DEFAULTS, **overrides))


async def cast_many(ballot, slug, n, **kw):
    outcomes = []
    for i in range(n):
        outcomes.append(await ballot.cast(slug, voter(i), "C1", "N1", **kw))
    return outcomes


async def test_rate_limit_per_address(ballot, conn, redis_client):
    edition, _ = await voting_edition(conn, ballot, await redis_now(redis_client))
    limits = tight(ip_limit=32, ip_period_s=3600, ip_burst=32)
    outcomes = await cast_many(ballot, edition.slug, 120, ip="198.51.100.7", limits=limits)
    accepted = [o for o in outcomes if o.status == "accepted"]
    limited = [o for o in outcomes if o.status == "limited"]
    # 32 per hour per address, enforced per shard (2 per shard over 16 shards).
    assert 16 <= len(accepted) <= 40 and len(limited) == 120 - len(accepted)
    assert all(o.limited == "address" and o.retry_after_s > 0 for o in limited)
    # Another address is not affected; refused votes left no trace.
    other = await ballot.cast(
        edition.slug, voter(500), "C1", "N1", ip="198.51.100.8", limits=limits
    )
    assert other.status == "accepted"
    assert sum((await ballot.live_counts(edition.slug)).values()) == len(accepted) + 1


async def test_rate_limit_per_network_and_per_domain(ballot, conn, redis_client):
    edition, _ = await voting_edition(conn, ballot, await redis_now(redis_client))
    limits = tight(net_limit=16, net_period_s=3600, net_burst=16)
    outcomes = []
    for i in range(80):
        outcomes.append(
            await ballot.cast(
                edition.slug,
                voter(i),
                "C1",
                "N1",
                ip=f"203.0.113.{i}",
                network=network_of(f"203.0.113.{i}"),
                limits=limits,
            )
        )
    assert {o.limited for o in outcomes if o.status == "limited"} == {"network"}
    assert sum(o.status == "accepted" for o in outcomes) <= 40

    limits = tight(domain_limit=16, domain_period_s=3600, domain_burst=16)
    by_domain = [
        await ballot.cast(
            edition.slug, voter(1000 + i), "C2", "N2", domain="farm.example", limits=limits
        )
        for i in range(80)
    ]
    assert any(o.status == "limited" and o.limited == "domain" for o in by_domain)
    # A large provider is exempt from the per-domain limit.
    webmail = [
        await ballot.cast(
            edition.slug, voter(2000 + i), "C2", "N2", domain="gmail.com", limits=limits
        )
        for i in range(80)
    ]
    assert all(o.status == "accepted" for o in webmail)


def test_networks_are_slash_24_and_slash_48():
    assert network_of("192.0.2.77") == "192.0.2.0/24"
    assert network_of("2001:db8:abcd:12::1") == "2001:db8:abcd::/48"
    assert network_of("::ffff:192.0.2.5") == "192.0.2.0/24"
    assert network_of("not an ip") == ""
    assert network_of("") == ""
    assert network_of("fe80::1%eth0") == "fe80::/48"
    assert network_of("::") == "::/48"


_texts = st.text(alphabet="0123456789abcdefABCDEF:.%x ", max_size=45)


@given(
    st.one_of(
        st.ip_addresses().map(str),
        st.ip_addresses(v=6).map(lambda a: a.exploded),
        st.ip_addresses(v=4).map(lambda a: f"::ffff:{a}"),
        st.ip_addresses(v=4).map(lambda a: str(ipaddress.IPv6Address(f"::ffff:{a}"))),
        _texts,
    )
)
def test_fast_network_of_says_what_ipaddress_says(ip):
    # The vote path's parser against the standard library's, on any text at all.
    assert network_of(ip) == network_of_reference(ip)


def test_form_tokens_expose_fast_foreign_and_forged_submissions():
    tokens = Tokens("s" * 40)
    me, other = voter(1), voter(2)
    token = new_form_token(tokens, me, "C1", now=1000.0)
    ok = check_form(tokens, token, me, now=1005.0, min_seconds=2, max_age_s=7200)
    assert ok.reasons == () and ok.age_ms == 5000 and ok.nonce
    fast = check_form(tokens, token, me, now=1000.8, min_seconds=2, max_age_s=7200)
    assert fast.reasons == ("form_too_fast",)
    assert check_form(tokens, token, other, now=1005.0, min_seconds=2, max_age_s=7200).reasons == (
        "form_other_voter",
    )
    assert check_form(
        tokens, token + "x", me, now=1005.0, min_seconds=2, max_age_s=7200
    ).reasons == ("form_invalid",)
    assert check_form(tokens, None, me, now=1005.0, min_seconds=2, max_age_s=7200).reasons == (
        "form_missing",
    )
    assert (
        "honeypot"
        in check_form(
            tokens, token, me, now=1005.0, min_seconds=2, max_age_s=7200, honeypot="http://spam"
        ).reasons
    )


async def test_a_replayed_form_token_is_quarantined_in_the_ledger(ballot, conn, redis_client, app):
    edition, edition_id = await voting_edition(conn, ballot, await redis_now(redis_client))
    first = await ballot.cast(edition.slug, voter(1), "C1", "N1", form_nonce="abc")
    second = await ballot.cast(edition.slug, voter(1), "C2", "N2", form_nonce="abc")
    assert first.reasons == () and second.reasons == ("form_replayed",)
    svc = app.state.services
    from voting import db
    from voting.ledger import Flusher

    pool = await db.create_pool(svc.settings.database_url, min_size=1, max_size=2)
    try:
        await Flusher(redis_client, pool, ballot.prefix).flush_once()
    finally:
        await pool.close()
    rows = {
        r["category"]: r
        for r in await conn.fetch(
            "SELECT category, verdict, verdict_reasons FROM votes WHERE edition_id=$1", edition_id
        )
    }
    assert rows["C1"]["verdict"] == "counted"
    assert rows["C2"]["verdict"] == "quarantined"
    assert rows["C2"]["verdict_reasons"] == ["form_replayed"]


async def test_http_votes_carry_their_verdicts(mail_client, mail_app, smtp, conn):
    _, edition_id, noms = await open_voting(mail_app, conn)
    csrf = await verify_voter(mail_client, mail_app, smtp, "careful@example.org")
    clock = mail_app.state.services.clock
    from datetime import timedelta

    # A person: loads the page, reads, then confirms.
    page = await mail_client.get("/vote/C1")
    clock.advance(timedelta(seconds=20))
    form_token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)
    r = await mail_client.post(
        "/vote/C1",
        data={
            "nomination": noms["C1"][0],
            "csrf_token": csrf_from(page.text),
            "form_token": form_token,
            "website": "",
        },
    )
    assert r.status_code == 202
    # A script: fills the hidden field.
    page = await mail_client.get("/vote/C2")
    clock.advance(timedelta(seconds=20))
    form_token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)
    r = await mail_client.post(
        "/vote/C2",
        data={
            "nomination": noms["C2"][0],
            "csrf_token": csrf_from(page.text),
            "form_token": form_token,
            "website": "http://buy-votes.example",
        },
    )
    assert r.status_code == 202  # told nothing: a bot learns nothing from the answer
    # An API client without a form token.
    r = await mail_client.post(
        "/api/votes", json={"nomination": noms["C3"][0]}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 202
    await flush(mail_app)
    rows = {
        r["category"]: r
        for r in await conn.fetch(
            "SELECT category, verdict, verdict_reasons, form_age_ms, network, email_domain"
            " FROM votes WHERE edition_id=$1",
            edition_id,
        )
    }
    assert rows["C1"]["verdict"] == "counted" and rows["C1"]["form_age_ms"] == 20000
    assert rows["C1"]["email_domain"] == "example.org" and rows["C1"]["network"]
    assert rows["C2"]["verdict"] == "quarantined" and rows["C2"]["verdict_reasons"] == [
        "honeypot",
        "agent_script",
        "no_accept_language",
    ]
    # Quarantined with every reason its score counted, not the first one alone.
    assert rows["C3"]["verdict"] == "quarantined"
    assert rows["C3"]["verdict_reasons"] == ["form_missing", "agent_script", "no_accept_language"]


def _same_shard_addresses(n: int) -> list[str]:
    """Addresses whose voters share one shard: the per-shard limit then sees them all."""
    from tests.fixtures.services import TEST_SECRET
    from voting.ballot import Keys
    from voting.emails import parse_email

    keys = Keys("x", "e")
    found: dict[int, list[str]] = {}
    i = 0
    while True:
        email = f"neighbour{i}@example.org"
        shard = keys.shard_of(pseudonym(TEST_SECRET, parse_email(email).mailbox))
        found.setdefault(shard, []).append(email)
        if len(found[shard]) == n:
            return found[shard]
        i += 1


async def test_a_rate_limited_vote_is_asked_a_challenge_first(mail_app, smtp, conn):
    """Past an inline limit a vote steps up (a crowd behind one NAT); the 429 past the
    stepped-up limit is in tests/antifraud/test_challenge.py."""
    from httpx import ASGITransport, AsyncClient

    _, _, noms = await open_voting(mail_app, conn)
    rt = runtime_for(mail_app)
    snap = await rt.catalog.current()
    from dataclasses import replace

    # One new voter per address per hour (per shard: see Limits).
    rt.catalog._snapshot = replace(snap, limits=tight(ip_limit=16, ip_period_s=3600, ip_burst=16))
    answers = []
    for email in _same_shard_addresses(2):
        async with AsyncClient(
            transport=ASGITransport(app=mail_app), base_url="http://testserver"
        ) as c:
            csrf = await verify_voter(c, mail_app, smtp, email)
            first = await c.post(
                "/api/votes", json={"nomination": noms["C1"][0]}, headers={"X-CSRF-Token": csrf}
            )
            answers.append(first)
            if first.status_code == 202:
                # A voter's further votes are not charged: one per category bounds them.
                more = await c.post(
                    "/api/votes", json={"nomination": noms["C2"][0]}, headers={"X-CSRF-Token": csrf}
                )
                assert more.status_code == 202
    assert answers[0].status_code == 202
    asked = answers[1]
    assert asked.status_code == 428, asked.text
    assert asked.json()["error"]["code"] == "challenge_required"
    assert asked.json()["error"]["challenge"]["signature"]


def test_disposable_domains_come_from_the_maintained_list():
    assert is_disposable("mailinator.com")
    assert is_disposable("sub.mailinator.com")
    assert not is_disposable("gmail.com")
    assert not is_disposable("itu.int")


async def test_verification_refuses_throwaway_domains_and_too_many_links(client, app, conn):
    await open_voting(app, conn)
    page = await client.get("/vote")
    r = await client.post(
        "/vote/signin", data={"email": "someone@mailinator.com", "csrf_token": csrf_from(page.text)}
    )
    assert r.status_code == 422 and "throwaway" in r.text
    r = await client.post("/api/voters/signin", json={"email": "x@mailinator.com"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "disposable_domain"
    codes = [
        (
            await client.post("/api/voters/signin", json={"email": "Same.Box+a@gmail.com"})
        ).status_code
        for _ in range(5)
    ]
    assert codes[:3] == [202, 202, 202] and codes[3:] == [429, 429]
    # The same network asking for many different addresses hits the network limit: past
    # it, a challenge is asked for (tests/antifraud/test_challenge.py solves it).
    codes = [
        (
            await client.post("/api/voters/signin", json={"email": f"person{i}@example.org"})
        ).status_code
        for i in range(40)
    ]
    assert 428 in codes and codes.count(202) <= 31 and 429 not in codes
