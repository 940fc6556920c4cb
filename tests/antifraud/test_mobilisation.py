"""Declared mobilisation (issue 17): validation, the nominator's and organizers' flows,
what an approved declaration changes in the fraud scan and on the committee's page, and
the record of refused sign-ins."""

import ipaddress
import re
from datetime import UTC, datetime, timedelta

import pytest
from httpx import ASGITransport, AsyncClient
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.fixtures.antifraud import KEY, add_vote, organic
from tests.fixtures.flows import csrf_from
from tests.fixtures.nominations import sign_in_quick
from tests.fixtures.voting import flush, open_voting, verify_voter
from voting import accounts
from voting.antifraud import declarations
from voting.antifraud.config import DEFAULTS
from voting.antifraud.declarations import DeclarationError, Declared, Net, validate
from voting.antifraud.detectors import scan

OPENS = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
CLOSES = datetime(2026, 5, 20, 16, 0, tzinfo=UTC)


def good(**overrides):
    body = {
        "domains": ["minict.gov.rw"],
        "networks": ["196.12.40.0/24", "2001:db8:40::/48"],
        "expected_votes": 400,
        "starts_at": "2026-05-02T09:00",  # Geneva wall time (UTC+2 in May)
        "ends_at": "2026-05-03T18:00:00+00:00",
    }
    body.update(overrides)
    return body


def problems(**overrides):
    with pytest.raises(DeclarationError) as caught:
        validate(good(**overrides), voting_opens=OPENS, voting_closes=CLOSES)
    assert caught.value.status == 422
    return caught.value.fields


# -- validation -------------------------------------------------------------------------


def test_a_good_declaration_is_normalised_and_stored_in_utc():
    d = validate(
        good(domains="MinICT.gov.rw, @ict.gov.rw", networks="196.12.40.7/24"),
        voting_opens=OPENS,
        voting_closes=CLOSES,
    )
    assert d.domains == ["minict.gov.rw", "ict.gov.rw"]
    assert d.networks == ["196.12.40.0/24"]
    assert d.starts_at == datetime(2026, 5, 2, 7, 0, tzinfo=UTC)
    assert d.ends_at == datetime(2026, 5, 3, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"networks": ["196.12.40.0/33"]}, "networks", "CIDR"),
        ({"networks": ["not-a-network"]}, "networks", "CIDR"),
        ({"networks": ["10.0.0.0/8"]}, "networks", "too wide"),
        ({"networks": ["2001:db8::/32"]}, "networks", "too wide"),
        ({"domains": ["gmail.com"]}, "domains", "public mail provider"),
        ({"domains": ["Outlook.com"]}, "domains", "public mail provider"),
        ({"domains": ["mailinator.com"]}, "domains", "throwaway"),
        ({"domains": ["not a domain"]}, "domains", "not a domain"),
        ({"domains": ["localhost"]}, "domains", "not a domain"),
        ({"domains": ["-bad-.org"]}, "domains", "not a domain"),
        ({"domains": [], "networks": []}, "domains", "at least one"),
        ({"domains": "x", "networks": 5}, "networks", "list"),
        ({"expected_votes": 0}, "expected_votes", "whole number"),
        ({"expected_votes": "many"}, "expected_votes", "whole number"),
        ({"expected_votes": True}, "expected_votes", "whole number"),
        ({"starts_at": "2026-04-30T09:00"}, "starts_at", "voting window"),
        ({"ends_at": "2026-05-21T09:00"}, "starts_at", "voting window"),
        ({"ends_at": "2026-05-02T08:00"}, "ends_at", "after the start"),
        ({"starts_at": "next tuesday"}, "starts_at", "date and time"),
        ({"starts_at": ""}, "starts_at", "date and time"),
        ({"starts_at": "2026-13-01T09:00"}, "starts_at", "date and time"),
        ({"ends_at": 20260503}, "ends_at", "date and time"),
        ({"note": "x" * 2001}, "note", "2000"),
    ],
)
def test_each_problem_is_refused_with_its_field(overrides, field, words):
    assert words in problems(**overrides)[field]


def test_a_geneva_time_the_clocks_skip_is_refused():
    opens = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)
    with pytest.raises(DeclarationError) as caught:
        validate(good(starts_at="2026-03-29T02:30"), voting_opens=opens, voting_closes=CLOSES)
    assert "does not exist" in caught.value.fields["starts_at"]
    assert "2026-03-29 02:30" in caught.value.fields["starts_at"]
    # In the reader's language, with no English explanation inside.
    from voting.i18n import reset_language, use_language

    token = use_language("fr")
    try:
        with pytest.raises(DeclarationError) as french:
            validate(good(starts_at="2026-03-29T02:30"), voting_opens=opens, voting_closes=CLOSES)
    finally:
        reset_language(token)
    text = french.value.fields["starts_at"]
    assert "2026-03-29 02:30" in text and "clocks" not in text and "does not" not in text


def test_errors_are_translated():
    from voting.i18n import reset_language, use_language

    token = use_language("fr")
    try:
        fields = problems(domains=["gmail.com"])
    finally:
        reset_language(token)
    assert "gmail.com" in fields["domains"] and "public mail provider" not in fields["domains"]


# -- the matcher against the standard library ---------------------------------------------


def _reference(address: str, network: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    net = ipaddress.ip_network(network, strict=False)
    return ip.version == net.version and ip in net


v4 = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
v6 = st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n)))
mapped = v4.map(lambda a: f"::ffff:{a}")
addresses = st.one_of(v4, v6, mapped)
networks = st.one_of(
    st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)).map(
        lambda t: str(ipaddress.ip_network((t[0], t[1]), strict=False))
    ),
    st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 128)).map(
        lambda t: str(ipaddress.ip_network((ipaddress.IPv6Address(t[0]), t[1]), strict=False))
    ),
)


def _declared(network: str) -> Declared:
    return Declared(1, "N1", (), (Net.parse(network),), OPENS, CLOSES)


@given(addresses, networks)
def test_the_matcher_agrees_with_ipaddress_for_any_address(address, network):
    assert _declared(network).matches_address(address) == _reference(address, network)


@given(st.data(), networks)
def test_an_address_inside_a_network_matches(data, network):
    """Addresses drawn from inside the network: the agreement is not only on misses. (An
    IPv4-mapped IPv6 address is its IPv4 address, as for network_of: not drawn here.)"""
    net = ipaddress.ip_network(network)
    inside = net[data.draw(st.integers(0, min(net.num_addresses - 1, 2**64)))]
    assume(not (isinstance(inside, ipaddress.IPv6Address) and inside.ipv4_mapped))
    inside = str(inside)
    assert _declared(network).matches_address(inside)


@given(addresses, networks)
def test_a_vote_with_only_its_network_matches_when_the_network_lies_inside(address, network):
    from voting.antifraud.signals import network_of_reference

    vote_net = network_of_reference(address)
    expected = ipaddress.ip_network(vote_net).version == ipaddress.ip_network(
        network
    ).version and ipaddress.ip_network(vote_net).subnet_of(ipaddress.ip_network(network))
    assert _declared(network).matches_address(None, vote_net) == expected


def test_a_vote_matches_by_domain_within_the_dates_for_the_nomination():
    d = Declared(1, "N1", ("minict.gov.rw",), (), OPENS, CLOSES)
    vote = {"nomination": "N1", "cast_at": OPENS, "email_domain": "hq.minict.gov.rw"}
    assert d.matches(vote)
    assert not d.matches({**vote, "email_domain": "notminict.gov.rw"})
    assert not d.matches({**vote, "nomination": "N2"})
    assert not d.matches({**vote, "cast_at": CLOSES})  # the end is not included
    assert not d.matches({**vote, "cast_at": OPENS - timedelta(seconds=1)})


# -- the scan ---------------------------------------------------------------------------


async def _approved(conn, edition_id, slug, nomination, **overrides):
    owner = await accounts.get_or_create(conn, "nominator@example.org")
    phase_rows = await conn.fetchrow(
        "SELECT opens_at, closes_at FROM phases WHERE edition_id=$1 AND name='voting'",
        edition_id,
    )
    body = good(
        starts_at=phase_rows["opens_at"].isoformat(),
        ends_at=phase_rows["closes_at"].isoformat(),
        **overrides,
    )
    declaration = validate(
        body, voting_opens=phase_rows["opens_at"], voting_closes=phase_rows["closes_at"]
    )
    made = await declarations.declare(
        conn,
        edition_id=edition_id,
        edition_slug=slug,
        nomination=nomination,
        user_id=owner.id,
        user_email=owner.email,
        declaration=declaration,
    )
    return await declarations.decide(
        conn,
        edition_id=edition_id,
        edition_slug=slug,
        declaration_id=made["id"],
        decision="approve",
        reason="the ministry confirmed by phone",
        organizer_email="organizer@example.org",
        base_url="http://testserver",
    )


def _hour_start():
    """The start of this hour (plus a minute): ten votes 5 s apart share the cluster
    detector's hourly window, whatever the time the test runs."""
    return datetime.now(UTC).replace(minute=1, second=0, microsecond=0)


# Minutes after a start at which people arrive: at random, as people do (no machine's beat).
IRREGULAR = [0, 2, 31, 40, 95, 96, 150, 233, 240, 300, 381, 399, 470, 560, 566]


async def _office(conn, edition_id, nomination, prefix, at):
    """Fifteen people from one /24 with one managed browser, at human moments, for one
    nomination, beside a category of people from everywhere: what the concentration
    detector finds (a campaign's office, or a farm)."""
    for i in range(15):
        await add_vote(
            conn,
            edition_id,
            f"{prefix}-{i}",
            "C1",
            nomination,
            at=at + timedelta(minutes=IRREGULAR[i]),
            ip=f"{prefix}.{i + 1}",
            agent="Mozilla/5.0 (Managed Office)",
            domain="gmail.com",
        )


async def test_declared_votes_are_not_quarantined_for_a_concentration_but_for_a_honeypot(
    mail_client, mail_app, smtp, conn
):
    edition, edition_id, noms = await open_voting(mail_app, conn)
    declared_for, other = noms["C1"][0], noms["C1"][1]
    await _approved(
        conn, edition_id, edition.slug, declared_for, domains=[], networks=["196.12.40.0/24"]
    )
    now = _hour_start()
    await organic(conn, edition_id, now - timedelta(hours=8), 60, {"C1": noms["C1"]})
    await _office(conn, edition_id, declared_for, "196.12.40", now)
    # The same pattern for a nomination that declared nothing.
    await _office(conn, edition_id, other, "196.12.41", now)
    # A voter of a declared domain casts a honeypot vote over HTTP.
    await _approved(conn, edition_id, edition.slug, noms["C2"][0], domains=["example.org"])
    await verify_voter(mail_client, mail_app, smtp, "staff@example.org")
    page = await mail_client.get("/vote/C2")
    mail_app.state.services.clock.advance(timedelta(seconds=20))
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
    assert r.status_code == 202
    await flush(mail_app)

    report = await scan(conn, edition_id, edition.slug, DEFAULTS, address_key=KEY)
    assert report.per_detector["concentration"] == 15, report  # only the undeclared office
    rows = await conn.fetch(
        "SELECT voter_id, nomination, category, verdict, verdict_reasons FROM votes"
        " WHERE edition_id=$1",
        edition_id,
    )

    def verdicts(who):
        return sorted((r["verdict"], list(r["verdict_reasons"])) for r in rows if who(r))

    assert verdicts(lambda r: r["voter_id"].startswith("196.12.40-")) == [("counted", [])] * 15
    assert (
        verdicts(lambda r: r["voter_id"].startswith("196.12.41-"))
        == [("quarantined", ["concentration"])] * 15
    )
    assert {v for v, _ in verdicts(lambda r: r["voter_id"].startswith("organic"))} == {"counted"}
    # Declared (example.org is the declared domain) but a honeypot: held all the same.
    [(verdict, reasons)] = verdicts(lambda r: r["category"] == "C2")
    assert verdict == "quarantined" and "honeypot" in reasons, reasons
    # The flag of the undeclared office stands; no flag was raised for the declared one.
    flags = await conn.fetch("SELECT nomination, evidence FROM fraud_flags")
    assert {f["nomination"] for f in flags} == {other}
    # A rescan changes nothing.
    assert (await scan(conn, edition_id, edition.slug, DEFAULTS, address_key=KEY)).quarantined == 0


async def test_a_declaration_only_spares_the_concentration_it_explains(conn, app):
    """Votes of the declared nomination from outside the declared network, or outside the
    declared dates, are held as before; a finding keeps its other votes and says how many
    were declared."""
    edition, edition_id, noms = await open_voting(app, conn)
    target = noms["C1"][0]
    now = _hour_start()
    await _approved(
        conn,
        edition_id,
        edition.slug,
        target,
        domains=[],
        networks=["196.12.40.0/28"],  # .0 to .15: a third of the office below
    )
    await organic(conn, edition_id, now - timedelta(hours=8), 60, {"C1": noms["C1"]})
    for i in range(15):
        await add_vote(
            conn,
            edition_id,
            f"v{i}",
            "C1",
            target,
            at=now + timedelta(minutes=IRREGULAR[i]),
            ip=f"196.12.40.{i * 3 + 1}",
            agent="Mozilla/5.0 (Managed Office)",
            domain="gmail.com",
        )
    report = await scan(conn, edition_id, edition.slug, DEFAULTS, address_key=KEY)
    held = {
        r["voter_id"]
        for r in await conn.fetch("SELECT voter_id FROM votes WHERE verdict='quarantined'")
    }
    assert held == {f"v{i}" for i in range(15) if i * 3 + 1 > 15}
    assert report.per_detector["concentration"] == len(held)
    evidence = await conn.fetchval(
        "SELECT evidence FROM fraud_flags WHERE detector='concentration'"
    )
    assert evidence["declared_votes"] == 15 - len(held)


# -- HTTP: the nominator, the organizers --------------------------------------------------


async def _signed_in(app, conn, email, roles=()):
    for role in roles:
        await accounts.grant(conn, email, role)
    client = AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver")
    await sign_in_quick(client, app, email)
    token = (await client.get("/api/session")).json()["csrf_token"]
    return client, token


async def _owned(app, conn):
    edition, edition_id, noms = await open_voting(app, conn)
    target = noms["C1"][0]
    owner = await accounts.get_or_create(conn, "owner@minict.gov.rw")
    await conn.execute("UPDATE nominations SET owner_id=$1 WHERE public_id=$2", owner.id, target)
    phase = edition.phase("voting")
    body = good(starts_at=phase.opens_at.isoformat(), ends_at=phase.closes_at.isoformat())
    return edition, edition_id, noms, target, body


async def test_a_nominator_declares_by_api_and_errors_are_4xx_translated(app, conn):
    _, _, _, target, body = await _owned(app, conn)
    owner, token = await _signed_in(app, conn, "owner@minict.gov.rw")
    other, other_token = await _signed_in(app, conn, "someone.else@example.org")
    try:
        url = f"/api/nominations/{target}/mobilisations"
        # No CSRF token: refused before anything.
        assert (await owner.post(url, json=body)).status_code == 403
        r = await owner.post(
            url, json={**body, "networks": ["10.0.0.0/8"]}, headers={"X-CSRF-Token": token}
        )
        assert r.status_code == 422 and "too wide" in r.json()["error"]["fields"]["networks"]
        r = await owner.post(
            url,
            json={**body, "domains": ["gmail.com"]},
            headers={"X-CSRF-Token": token, "Accept-Language": "es"},
        )
        assert r.status_code == 422
        assert "gmail.com" in r.json()["error"]["fields"]["domains"]
        assert "public mail provider" not in r.json()["error"]["fields"]["domains"]
        r = await owner.post(url, json=body, headers={"X-CSRF-Token": token})
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["status"] == "pending" and made["networks"][0] == "196.12.40.0/24"
        listed = (await owner.get(url)).json()["declarations"]
        assert [d["id"] for d in listed] == [made["id"]]
        # Another nominator can neither declare on it nor read its declarations.
        r = await other.post(url, json=body, headers={"X-CSRF-Token": other_token})
        assert r.status_code == 404
        assert (await other.get(url)).status_code == 404
        # And the owner's page for it says it is waiting.
        page = await owner.get(f"/nominations/{target}/mobilisation")
        assert page.status_code == 200 and "minict.gov.rw" in page.text
        assert (await other.get(f"/nominations/{target}/mobilisation")).status_code == 404
    finally:
        await owner.aclose()
        await other.aclose()
    assert await conn.fetchval("SELECT count(*) FROM mobilisations") == 1
    assert (
        await conn.fetchval("SELECT count(*) FROM audit_log WHERE action='mobilisation.declare'")
        == 1
    )


async def test_the_nominators_form_checks_csrf_and_shows_errors(app, conn):
    _, _, _, target, _ = await _owned(app, conn)
    owner, _ = await _signed_in(app, conn, "owner@minict.gov.rw")
    try:
        page = await owner.get(f"/nominations/{target}/mobilisation")
        form = {
            "domains": "minict.gov.rw gmail.com",
            "networks": "196.12.40.0/24",
            "expected_votes": "300",
            "starts_at": re.search(
                r'name="starts_at" type="datetime-local" value="([^"]+)"', page.text
            ).group(1),
            "ends_at": re.search(
                r'name="ends_at" type="datetime-local" value="([^"]+)"', page.text
            ).group(1),
        }
        url = f"/nominations/{target}/mobilisation"
        assert (await owner.post(url, data=form)).status_code == 403
        r = await owner.post(url, data={**form, "csrf_token": csrf_from(page.text)})
        assert r.status_code == 422 and "public mail provider" in r.text
        assert 'aria-invalid="true"' in r.text
        form["domains"] = "minict.gov.rw"
        r = await owner.post(url, data={**form, "csrf_token": csrf_from(page.text)})
        assert r.status_code == 303
        nomination_page = await owner.get(f"/nominations/{target}")
        assert f"/nominations/{target}/mobilisation" in nomination_page.text
    finally:
        await owner.aclose()
    assert await conn.fetchval("SELECT count(*) FROM mobilisations") == 1


async def test_organizers_approve_on_the_record_and_the_nominator_is_mailed(app, conn):
    _, _, _, target, body = await _owned(app, conn)
    owner, token = await _signed_in(app, conn, "owner@minict.gov.rw")
    organizer, org_token = await _signed_in(app, conn, "org@example.org", ["organizer"])
    try:
        made = (
            await owner.post(
                f"/api/nominations/{target}/mobilisations",
                json=body,
                headers={"X-CSRF-Token": token},
            )
        ).json()
        decision = f"/organizer/mobilisations/{made['id']}"
        api = f"/api/mobilisations/{made['id']}/decision"
        # A nominator cannot decide, not even on its own declaration.
        r = await owner.post(
            api, json={"decision": "approve", "reason": "me"}, headers={"X-CSRF-Token": token}
        )
        assert r.status_code == 403
        r = await owner.post(decision, data={"csrf_token": token, "decision": "approve"})
        assert r.status_code == 403
        assert (await owner.get("/organizer/mobilisations")).status_code == 403
        queue = await organizer.get("/organizer/mobilisations")
        assert queue.status_code == 200 and target in queue.text and "196.12.40.0/24" in queue.text
        # The organizer's form needs the CSRF token and a reason.
        r = await organizer.post(decision, data={"decision": "approve", "reason": "ok"})
        assert r.status_code == 403
        r = await organizer.post(
            decision, data={"csrf_token": csrf_from(queue.text), "decision": "approve"}
        )
        assert r.status_code == 422 and "reason" in r.text
        # The decision made comes back chosen on that declaration (errors keep the input).
        assert f'id="approve-{made["id"]}" name="decision" value="approve" checked' in r.text
        r = await organizer.post(
            decision,
            data={"csrf_token": csrf_from(queue.text), "reason": "Checked by phone"},
        )
        assert r.status_code == 422 and "Checked by phone</textarea>" in r.text
        r = await organizer.post(
            decision,
            data={
                "csrf_token": csrf_from(queue.text),
                "decision": "approve",
                "reason": "Confirmed with the ministry",
            },
        )
        assert r.status_code == 303
        # Decided once: a second decision is a conflict.
        r = await organizer.post(
            api,
            json={"decision": "reject", "reason": "changed my mind"},
            headers={"X-CSRF-Token": org_token},
        )
        assert r.status_code == 409
    finally:
        await owner.aclose()
        await organizer.aclose()
    row = await conn.fetchrow("SELECT status, decided_by, decision_reason FROM mobilisations")
    assert row["status"] == "approved" and row["decided_by"] == "user:org@example.org"
    audit = await conn.fetchrow(
        "SELECT actor, reason, detail FROM audit_log WHERE action='mobilisation.approve'"
    )
    assert audit["actor"] == "user:org@example.org"
    assert audit["reason"] == "Confirmed with the ministry"
    assert audit["detail"]["declaration"] == made["id"]
    mail = await conn.fetchrow(
        "SELECT subject, body FROM outbox WHERE to_addr='owner@minict.gov.rw'"
        " AND subject LIKE '%campaign%'"
    )
    assert "approved" in mail["subject"] and "Confirmed with the ministry" in mail["body"]


async def test_a_rejection_is_recorded_and_mailed(app, conn):
    _, _, _, target, body = await _owned(app, conn)
    owner, token = await _signed_in(app, conn, "owner@minict.gov.rw")
    organizer, org_token = await _signed_in(app, conn, "org@example.org", ["organizer"])
    try:
        made = (
            await owner.post(
                f"/api/nominations/{target}/mobilisations",
                json=body,
                headers={"X-CSRF-Token": token},
            )
        ).json()
        api = f"/api/mobilisations/{made['id']}/decision"
        r = await organizer.post(
            api, json={"decision": "maybe", "reason": "x"}, headers={"X-CSRF-Token": org_token}
        )
        assert r.status_code == 422 and "decision" in r.json()["error"]["fields"]
        r = await organizer.post(
            api,
            json={"decision": "reject", "reason": "The network is a national ISP's."},
            headers={"X-CSRF-Token": org_token},
        )
        assert r.status_code == 200 and r.json()["status"] == "rejected"
    finally:
        await owner.aclose()
        await organizer.aclose()
    assert (
        await conn.fetchval("SELECT reason FROM audit_log WHERE action='mobilisation.reject'")
        == "The network is a national ISP's."
    )
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE to_addr='owner@minict.gov.rw'"
            " AND subject LIKE '%not approved%'"
        )
        == 1
    )


# -- the committee's view -----------------------------------------------------------------


async def test_the_committee_sees_declared_share_and_refused_signins(app, conn):
    edition, edition_id, noms = await open_voting(app, conn)
    target = noms["C1"][0]
    await _approved(conn, edition_id, edition.slug, target, domains=["minict.gov.rw"])
    now = datetime.now(UTC)
    for i in range(4):
        await add_vote(
            conn,
            edition_id,
            f"d{i}",
            "C1",
            target,
            at=now,
            ip=f"203.0.113.{i}",
            domain="minict.gov.rw",
        )
    for i in range(6):
        await add_vote(conn, edition_id, f"o{i}", "C1", target, at=now, ip=f"192.0.2.{i}")
    # Sign-ins turned away: the voters' limit (3 links an hour per mailbox) over HTTP.
    voter = AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver")
    try:
        codes = [
            (
                await voter.post(
                    "/api/voters/signin",
                    json={"email": "Keen.Voter@Refused.Example"},
                    headers={"Sec-Fetch-Site": "same-origin"},
                )
            ).status_code
            for _ in range(4)
        ]
    finally:
        await voter.aclose()
    assert codes == [202, 202, 202, 429]
    rows = [dict(r) for r in await conn.fetch("SELECT * FROM signin_refusals")]
    assert len(rows) == 1
    assert rows[0]["network"] == "127.0.0.0/24" and rows[0]["domain"] == "refused.example"
    assert rows[0]["reason"] == "too_many_links" and rows[0]["edition_id"] == edition_id
    assert not any("keen" in str(v).lower() or "127.0.0.1" in str(v) for v in rows[0].values())
    # A challenged one, as the vote path will record it.
    from voting.antifraud.refusals import CHALLENGED, record_refusal

    await record_refusal(conn, "2001:db8:7:1::5", "x@bots.example", CHALLENGED)

    chair, _ = await _signed_in(app, conn, "chair@example.org", ["committee"])
    try:
        api = (await chair.get("/api/fraud/C1")).json()
        page = await chair.get("/committee/fraud/C1")
    finally:
        await chair.aclose()
    assert api["declared"][target]["votes"] == 10
    assert api["declared"][target]["declared_votes"] == 4
    assert api["declared"][target]["share"] == 0.4
    networks = {r["key"]: r for r in api["signin_refusals"]["networks"]}
    assert networks["127.0.0.0/24"]["refused"] == 1
    assert networks["2001:db8:7::/48"]["challenged"] == 1
    domains = {r["key"]: r for r in api["signin_refusals"]["domains"]}
    assert domains["refused.example"]["refused"] == 1 and domains["bots.example"]["challenged"] == 1
    assert page.status_code == 200
    assert "Declared support" in page.text and "40.0 %" in page.text
    assert "refused.example" in page.text and "2001:db8:7::/48" in page.text


async def test_a_refused_staff_signin_is_recorded_without_the_address(client, app, conn):
    _, edition_id, _ = await open_voting(app, conn)
    page = await client.get("/signin")
    statuses = []
    for _ in range(4):
        r = await client.post(
            "/signin", data={"email": "boss@agency.example", "csrf_token": csrf_from(page.text)}
        )
        statuses.append(r.status_code)
    assert statuses == [200, 200, 200, 429]
    row = await conn.fetchrow("SELECT * FROM signin_refusals")
    assert (row["audience"], row["domain"], row["network"]) == (
        "staff",
        "agency.example",
        "127.0.0.0/24",
    )
    assert row["edition_id"] == edition_id


# -- the application role's rights on the new tables ---------------------------------------


async def _as_app(conn, sql, *args):
    async with conn.transaction():
        await conn.execute("SET LOCAL ROLE wsis_app")
        return await conn.execute(sql, *args)


async def test_the_application_role_may_declare_and_decide_but_not_rewrite_or_delete(app, conn):
    import asyncpg

    edition, edition_id, noms = await open_voting(app, conn)
    made = await _approved(conn, edition_id, edition.slug, noms["C1"][0])
    await _as_app(
        conn,
        "UPDATE mobilisations SET status='rejected', decision_reason='x' WHERE id=$1",
        made["id"],
    )
    await _as_app(
        conn, "INSERT INTO signin_refusals (network, domain, reason) VALUES ('', '', 'x')"
    )
    for statement in (
        "UPDATE mobilisations SET networks='{0.0.0.0/0}'",
        "UPDATE mobilisations SET nomination='N0'",
        "DELETE FROM mobilisations",
        "TRUNCATE mobilisations",
        "UPDATE signin_refusals SET domain='x'",
        "DELETE FROM signin_refusals",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await _as_app(conn, statement)
    assert await conn.fetchval("SELECT networks::text[] FROM mobilisations") == [
        "196.12.40.0/24",
        "2001:db8:40::/48",
    ]
