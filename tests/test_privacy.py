"""The retention policy (voting/privacy.py, 0013_privacy.sql): its rules, the purge, and
proof that the published result and every receipt's proof survive it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.fixtures.antifraud import KEY
from tests.fixtures.editions import edition_data
from voting import cli, db, mail, privacy
from voting.antifraud.minimise import address_hash, agent_summary, kept_prefix
from voting.contest import EditionFileError, parse_edition
from voting.privacy_rules import PrivacyRules
from voting.tally import publication as pub
from voting.tally.verify import check_export, check_proof

NOW = datetime(2026, 1, 10, 12, tzinfo=UTC)
SIGNALS = privacy.VOTE_SIGNALS
# What the published result, the export and every receipt's proof are made of.
KEPT = ("voter_id", "category", "nomination", "receipt", "cast_at", "verdict", "verdict_reasons")


# --- the rules -----------------------------------------------------------------------


def test_the_policy_defaults_and_an_editions_overrides() -> None:
    plain = parse_edition(edition_data(), now=NOW)
    assert plain.rules.to_json()["privacy"] == {}
    assert plain.rules.privacy == PrivacyRules(24, 30)
    data = edition_data()
    data["rules"] = {"privacy": {"outbox_hours": 2, "signals_days_after_publication": 60}}
    policy = parse_edition(data, now=NOW).rules.privacy
    assert policy == PrivacyRules(2, 60)
    assert policy.signals_erased_at(None) is None  # unpublished: the evidence stays
    assert policy.signals_erased_at(NOW) == NOW + timedelta(days=60)


@pytest.mark.parametrize(
    ("privacy_rules", "field", "problem"),
    [
        ({"outbox_hours": 0}, "rules.privacy.outbox_hours", "between 1 and"),
        ({"outbox_hours": True}, "rules.privacy.outbox_hours", "whole number"),
        ({"outbox_hours": 1.5}, "rules.privacy.outbox_hours", "whole number"),
        ({"signals_days_after_publication": -1}, "rules.privacy.signals", "between 0 and"),
        ({"forever": 1}, "rules.privacy.forever", "unknown rule"),
        ("30 days", "rules.privacy", "must be"),
    ],
)
def test_bad_privacy_rules_are_refused_by_name(privacy_rules: Any, field: str, problem: str):
    data = edition_data()
    data["rules"] = {"privacy": privacy_rules}
    with pytest.raises(EditionFileError) as info:
        parse_edition(data, now=NOW)
    assert field in str(info.value) and problem in str(info.value)


# --- the purge against the database ---------------------------------------------------


async def make_edition(conn: asyncpg.Connection, slug: str, days: int, current: bool) -> int:
    return await conn.fetchval(
        "INSERT INTO editions (slug, name, timezone, rules, is_current)"
        " VALUES ($1, $1, 'Europe/Zurich', $2, $3) RETURNING id",
        slug,
        {"privacy": {"signals_days_after_publication": days, "outbox_hours": 6}},
        current,
    )


# A client as the engine stores it since 0020 (minimised at the door), and as a row
# stored before 0020 held it (`legacy`: the full address and agent).
ADDRESS = "192.0.2.7"
AGENT = "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/121.0"


async def add_vote(
    conn: asyncpg.Connection,
    edition_id: int,
    voter: str,
    category: str,
    signals: bool | str,
) -> None:
    legacy = signals == "legacy"
    new = bool(signals) and not legacy
    minimised = (address_hash(KEY, ADDRESS), kept_prefix(ADDRESS), agent_summary(AGENT))
    await conn.execute(
        "INSERT INTO voters (edition_id, voter_id, domain, ip, user_agent, ip_hash, ip_prefix,"
        " agent, network) VALUES ($1, $2, 'example.org', $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT DO NOTHING",
        edition_id,
        voter,
        *((ADDRESS, AGENT) if legacy else (None, None)),
        *(minimised if new else (None,) * 3),
        "192.0.2.0/24" if signals else None,
    )
    await conn.execute(
        "INSERT INTO votes (edition_id, voter_id, category, nomination, receipt, cast_at,"
        " stream_id, ip, user_agent, ip_hash, ip_prefix, agent, network, email_domain,"
        " form_age_ms, form_nonce)"
        " VALUES ($1, $2, $3, 'N' || $3, $4, now() - interval '3 days', '1-0',"
        " $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        edition_id,
        voter,
        category,
        f"R-{edition_id}-{voter}-{category}",
        *((ADDRESS, AGENT) if legacy else (None, None)),
        *(minimised if new else (None,) * 3),
        *(("192.0.2.0/24", "example.org", 4200, "nonce") if signals else (None,) * 4),
    )


def minimised(row: dict[str, Any]) -> dict[str, Any]:
    """What the purge makes of a row stored before 0020: what the door stores today."""
    out = dict(row)
    if row["ip"] is not None:
        out["ip_hash"] = row["ip_hash"] or address_hash(KEY, row["ip"]) or None
        out["ip_prefix"] = row["ip_prefix"] or kept_prefix(row["ip"]) or None
    if row["user_agent"] is not None:
        out["agent"] = row["agent"] or agent_summary(row["user_agent"]) or None
    out["ip"] = out["user_agent"] = None
    return out


async def votes_state(conn: asyncpg.Connection) -> dict[str, dict[str, Any]]:
    rows = await conn.fetch("SELECT * FROM votes")
    return {r["receipt"]: dict(r) for r in rows}


EVENT = st.one_of(
    st.tuples(
        st.just("vote"),
        st.integers(0, 2),
        st.sampled_from(["a", "b", "c", "d"]),
        st.sampled_from(["C1", "C2"]),
        # No signals, minimised at the door, or stored before minimisation (0020).
        st.sampled_from([False, True, "legacy"]),
    ),
    st.tuples(st.just("flag"), st.integers(0, 2), st.sampled_from(["a", "b", "c", "d"])),
    # A publication some hours ago (the purge's clock is the database's now()).
    st.tuples(
        st.just("publish"),
        st.integers(0, 2),
        st.one_of(st.sampled_from([0, 1, 23, 24, 25, 71, 72, 73]), st.integers(0, 24 * 8)),
    ),
    # A mail sent (or not yet) some hours ago.
    st.tuples(st.just("mail"), st.one_of(st.none(), st.integers(0, 12))),
    st.tuples(st.just("purge"), st.sampled_from([1, 2, 1000])),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@example(  # the edges: published exactly the period ago, mails exactly the hours ago
    days=[1, 0, 3],
    events=[
        ("vote", 0, "a", "C1", True),
        ("vote", 0, "b", "C1", True),
        ("flag", 0, "b"),
        ("publish", 0, 24),
        ("vote", 1, "a", "C2", True),
        ("publish", 1, 0),
        ("vote", 2, "a", "C1", True),
        ("vote", 2, "b", "C1", "legacy"),
        ("vote", 1, "c", "C1", "legacy"),
        ("publish", 2, 71),
        ("mail", 6),
        ("mail", 5),
        ("mail", None),
        ("purge", 1),
    ],
)
@given(
    days=st.lists(st.sampled_from([0, 1, 3]), min_size=3, max_size=3),
    events=st.lists(EVENT, max_size=40),
)
async def test_any_history_purge_erases_what_is_due_and_nothing_the_result_needs(
    conn: asyncpg.Connection, days: list[int], events: list[tuple]
) -> None:
    tx = conn.transaction()
    await tx.start()  # rolled back below: every example starts from an empty ledger
    try:
        await run_history(conn, days, [*events, ("purge", 1000)])
    finally:
        await tx.rollback()


async def run_history(conn: asyncpg.Connection, days: list[int], events: list[tuple]) -> None:
    editions = [await make_edition(conn, f"p{i}", d, i == 0) for i, d in enumerate(days)]
    published: dict[int, int] = {}  # edition -> hours ago
    mails: dict[int, int | None] = {}
    for event in events:
        kind = event[0]
        if kind == "vote":
            _, e, voter, category, signals = event
            if not await conn.fetchval(
                "SELECT 1 FROM votes WHERE edition_id=$1 AND voter_id=$2 AND category=$3",
                editions[e],
                voter,
                category,
            ):
                await add_vote(conn, editions[e], voter, category, signals)
        elif kind == "flag":
            _, e, voter = event
            await conn.execute(
                "UPDATE votes SET verdict='quarantined', verdict_at=now(),"
                " verdict_reasons=array_append(verdict_reasons, 'burst')"
                " WHERE edition_id=$1 AND voter_id=$2 AND verdict='counted'",
                editions[e],
                voter,
            )
        elif kind == "publish":
            _, e, hours = event
            if e not in published:
                published[e] = hours
                await conn.execute(
                    # recorded_at: as if the row had arrived then (the owner may say so).
                    "INSERT INTO publications (edition_id, published_at, recorded_at,"
                    " published_by, digest, merkle_root, leaf_count, signers, rules, results)"
                    " VALUES ($1, now() - make_interval(hours => $2),"
                    " now() - make_interval(hours => $2), 't', 'd', 'r', 0, '{}', '{}', '{}')",
                    editions[e],
                    hours,
                )
        elif kind == "mail":
            mail_id = await conn.fetchval(
                "INSERT INTO outbox (to_addr, subject, body, sent_at) VALUES"
                " ('v@example.org', 's', 'b',"
                " CASE WHEN $1::int IS NULL THEN NULL"
                " ELSE now() - make_interval(hours => $1::int) END) RETURNING id",
                event[1],
            )
            mails[mail_id] = event[1]
        else:
            before = await votes_state(conn)
            report = await purge_as_app(conn, batch=event[1])
            after = await votes_state(conn)
            await check_after_purge(conn, editions, days, published, mails, before, after)
            assert report.vote_signals == sum(
                any(before[r][c] is not None for c in SIGNALS)
                and not any(after[r][c] is not None for c in SIGNALS)
                for r in before
            )


async def purge_as_app(conn: asyncpg.Connection, batch: int) -> privacy.PurgeReport:
    """The purge as the application role (the SECURITY DEFINER functions do the work)."""
    await conn.execute("SET ROLE wsis_app")
    try:
        return await privacy.purge_on(conn, address_key=KEY, batch=batch, actor="test")
    finally:
        await conn.execute("RESET ROLE")


async def check_after_purge(
    conn: asyncpg.Connection,
    editions: list[int],
    days: list[int],
    published: dict[int, int],
    mails: dict[int, int | None],
    before: dict[str, dict[str, Any]],
    after: dict[str, dict[str, Any]],
) -> None:
    assert set(after) == set(before)  # no vote removed or added
    for receipt, row in after.items():
        e = editions.index(row["edition_id"])
        due = e in published and published[e] >= days[e] * 24
        for column in KEPT:
            assert row[column] == before[receipt][column], (receipt, column)
        if due:
            assert all(row[c] is None for c in SIGNALS), receipt  # nothing due survives
        else:
            # Nor early: only a row stored before 0020 changes, into its minimised form.
            expected = minimised(before[receipt])
            assert all(row[c] == expected[c] for c in SIGNALS), receipt
    voters = await conn.fetch("SELECT * FROM voters")
    for voter in voters:
        e = editions.index(voter["edition_id"])
        assert voter["ip"] is None and voter["user_agent"] is None  # never a full one left
        if e in published and published[e] >= days[e] * 24:
            assert all(voter[c] is None for c in privacy.VOTER_SIGNALS if c != "domain")
            assert voter["domain"] == ""
        else:
            assert voter["domain"] == "example.org"
    left = {r["id"] for r in await conn.fetch("SELECT id FROM outbox")}
    for mail_id, hours in mails.items():
        assert (mail_id in left) == (hours is None or hours < 6), (mail_id, hours)


async def test_the_purge_is_audited_with_counts_only_and_runs_once_at_a_time(
    conn: asyncpg.Connection, database_url: str
) -> None:
    edition = await make_edition(conn, "audited", 0, True)
    await add_vote(conn, edition, "secret-voter", "C1", True)
    await conn.execute(
        "INSERT INTO publications (edition_id, published_by, digest, merkle_root, leaf_count,"
        " signers, rules, results) VALUES ($1, 't', 'd', 'r', 0, '{}', '{}', '{}')",
        edition,
    )
    await conn.execute(
        "INSERT INTO outbox (to_addr, subject, body, sent_at)"
        " VALUES ('someone@example.org', 's', 'b', now() - interval '7 hours')"
    )
    # Given up on (the sender's last attempt failed) seven hours ago: due as well; one
    # still being retried, or given up on too recently, is not.
    await conn.execute(
        "INSERT INTO outbox (to_addr, subject, body, attempts, created_at) VALUES"
        " ('bounced@example.org', 's', 'b', $1, now() - interval '7 hours'),"
        " ('retrying@example.org', 's', 'b', $2, now() - interval '7 hours'),"
        " ('recent@example.org', 's', 'b', $1, now() - interval '5 hours')",
        mail.MAX_ATTEMPTS,
        mail.MAX_ATTEMPTS - 1,
    )
    pool = await db.create_pool(database_url)
    try:
        due = privacy.PurgeReport(1, 1, 2)
        assert await privacy.purge(pool, address_key=KEY, dry_run=True) == due
        # Another process holds the lock: this one skips its round.
        await conn.execute("SELECT pg_advisory_lock($1, 0)", privacy.PRIVACY_LOCK)
        assert (await privacy.purge(pool, address_key=KEY)).skipped
        await conn.execute("SELECT pg_advisory_unlock($1, 0)", privacy.PRIVACY_LOCK)
        assert await privacy.purge(pool, address_key=KEY) == due
        assert await privacy.purge(pool, address_key=KEY) == privacy.PurgeReport()  # nothing
    finally:
        await pool.close()
    audit = await conn.fetch("SELECT * FROM audit_log WHERE action='privacy.purge'")
    assert len(audit) == 1  # an empty round writes nothing
    assert audit[0]["detail"] == {
        "vote_signals": 1,
        "voter_signals": 1,
        "outbox_mails": 2,
        "minimised_votes": 0,
        "minimised_voters": 0,
    }
    left = {r["to_addr"] for r in await conn.fetch("SELECT to_addr FROM outbox")}
    assert left == {"retrying@example.org", "recent@example.org"}
    text = json.dumps([dict(a) for a in audit], default=str)
    assert "192.0.2" not in text and "someone@" not in text and "Firefox" not in text
    assert "bounced@" not in text


async def test_signals_may_only_be_erased_never_rewritten(conn: asyncpg.Connection) -> None:
    edition = await make_edition(conn, "trigger", 0, True)
    await add_vote(conn, edition, "v", "C1", True)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="may only be erased"):
        await conn.execute("UPDATE votes SET ip = '198.51.100.1'")
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="immutable"):
        await conn.execute("UPDATE votes SET ip = NULL, nomination = 'N2'")
    assert await conn.execute("UPDATE votes SET ip = NULL") == "UPDATE 1"
    # Unpublished: the application's purge finds nothing due.
    await conn.execute("SET ROLE wsis_app")
    try:
        assert tuple(await conn.fetchrow("SELECT * FROM purge_signals(100)")) == (0, 0)
    finally:
        await conn.execute("RESET ROLE")
    assert await conn.fetchval("SELECT network FROM votes") == "192.0.2.0/24"


# --- the published result survives ---------------------------------------------------


async def test_after_a_purge_verify_and_every_receipts_proof_still_pass(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    from tests.fixtures.results import publish, scored_edition, sign

    s = await scored_edition(conn, "results")
    # Votes carrying every signal, cast like the others before the close.
    nomination = s["noms"]["C3"][0]
    for i in range(5):
        await conn.execute(
            "INSERT INTO votes (edition_id, voter_id, category, nomination, receipt, cast_at,"
            " stream_id, ip, network, user_agent, email_domain, form_age_ms, form_nonce)"
            " VALUES ($1, $2, 'C3', $3, $4, now() - interval '25 days', '1-0', '192.0.2.9',"
            " '192.0.2.0/24', 'Mozilla/5.0', 'example.org', 5000, 'n')",
            s["edition_id"],
            f"signal-{i}",
            nomination,
            f"SIGNALRECEIPT{i}",
        )
    await conn.execute(
        "UPDATE editions SET rules = jsonb_set(rules, '{privacy}',"
        " '{\"signals_days_after_publication\": 0}') WHERE id=$1",
        s["edition_id"],
    )
    await sign(conn, s, 0)
    await sign(conn, s, 1)
    publication, _ = await publish(conn, s)
    slug = s["edition"].slug

    async def export() -> bytes:
        return b"".join([c async for c in pub.export_chunks(conn, publication, slug)])

    from voting.tally.results import compute

    before = await export()
    digest = (await compute(conn, s["edition"], s["edition_id"])).digest()
    receipts = [r["receipt"] for r in await conn.fetch("SELECT receipt FROM votes")]
    await conn.execute("SET ROLE wsis_app")
    try:
        report = await privacy.purge_on(conn, address_key=KEY, actor="test")
    finally:
        await conn.execute("RESET ROLE")
    assert report.vote_signals == 5
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM votes WHERE ip IS NOT NULL OR network IS NOT NULL"
            " OR user_agent IS NOT NULL OR email_domain IS NOT NULL OR form_age_ms IS NOT NULL"
            " OR form_nonce IS NOT NULL OR ip_hash IS NOT NULL OR ip_prefix IS NOT NULL"
            " OR agent IS NOT NULL"
        )
        == 0
    )

    after = await export()
    assert after == before
    # The results recomputed from the ledger are the ones signed and published.
    assert (await compute(conn, s["edition"], s["edition_id"])).digest() == digest
    path = tmp_path / "export.json"
    path.write_bytes(after)
    assert check_export(json.loads(after), publication.merkle_root) == []
    assert cli.main(["verify", str(path), "--root", publication.merkle_root]) == 0
    proofs = 0
    for receipt in receipts:
        proof = await pub.inclusion_proof(conn, publication, slug, receipt)
        if proof is None:  # held or voided: not in the published tree, before or after
            continue
        assert check_proof(proof, publication.merkle_root) == [], receipt
        proof_path = tmp_path / "proof.json"
        proof_path.write_text(json.dumps(proof))
        assert cli.main(["verify", str(proof_path), "--root", publication.merkle_root]) == 0
        proofs += 1
    assert proofs == json.loads(after)["leaf_count"] and proofs >= 5 + 18


# --- the privacy page and a voter's own data ------------------------------------------

PRIVACY_WORD = {
    "en": "Privacy",
    "fr": "Confidentialité",
    "es": "Privacidad",
    "ru": "Конфиденциальность",
    "zh": "隐私",
    "ar": "الخصوصية",
}


async def test_the_privacy_page_states_the_policy_in_six_languages(app, client, conn) -> None:
    from tests.fixtures.voting import open_voting

    await open_voting(app, conn)
    for lang, word in PRIVACY_WORD.items():
        r = await client.get(f"/privacy?lang={lang}")
        assert r.status_code == 200
        assert f"<h1>{word}</h1>" in r.text and 'href="/my-data"' in r.text
        assert "24" in r.text and "30" in r.text  # the default hours and days
    # The footer of every page links to it.
    assert 'href="/privacy"' in (await client.get("/")).text


async def test_a_voter_sees_and_downloads_their_own_data(app, client, conn) -> None:
    from tests.fixtures.security import confirm_voter
    from tests.fixtures.voting import flush, open_voting, reading

    assert (await client.get("/my-data")).status_code == 401
    refused = await client.get("/api/me/data")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "not_signed_in"

    edition, edition_id, noms = await open_voting(app, conn)
    await confirm_voter(client, app, edition.slug, "Data.Subject@example.org")
    session = (await client.get("/api/session")).json()
    ballot = (await client.get("/api/ballot/C1")).json()
    reading(app)
    voted = await client.post(
        "/api/votes",
        json={"nomination": noms["C1"][0], "form_token": ballot["form_token"]},
        headers={"x-csrf-token": session["csrf_token"], "user-agent": "Mozilla/5.0 Test"},
    )
    assert voted.status_code == 202, voted.text
    receipt = voted.json()["receipt"]

    # Answered but not flushed yet: listed as being recorded.
    early = (await client.get("/api/me/data")).json()
    assert [(v["receipt"], v["recorded"]) for v in early["votes"]] == [(receipt, False)]

    await flush(app)
    r = await client.get("/api/me/data")
    assert r.status_code == 200
    assert r.headers["content-disposition"].startswith("attachment;")
    data = r.json()
    assert "Data.Subject" not in r.text and "data.subject" not in r.text  # never the address
    [vote] = data["votes"]
    assert (vote["receipt"], vote["category"], vote["nomination"]) == (receipt, "C1", noms["C1"][0])
    assert vote["recorded"] and vote["verdict"] == "counted" and not vote["signals_erased"]
    assert vote["signals"]["email_domain"] == "example.org"
    assert vote["signals_erased_at"] is None  # unpublished: kept as evidence
    assert data["retention"]["signals_days_after_publication"] == 30
    assert data["voter"]["email_domain"] == "example.org"
    # Minimised at the door: the client's /24 and its address's hash (said to be there),
    # the agent's summary; never the address or the whole agent.
    assert vote["signals"]["ip_prefix"] == "127.0.0.0/24" and vote["signals"]["ip"] is None
    assert vote["signals"]["ip_hash"] == "(stored)" and vote["signals"]["user_agent"] is None
    assert vote["signals"]["agent"] == agent_summary("Mozilla/5.0 Test")
    assert data["voter"]["ip_prefix"] == "127.0.0.0/24" and data["voter"]["ip"] is None
    assert "127.0.0.1" not in r.text

    page = await client.get("/my-data?lang=fr")
    assert page.status_code == 200 and receipt in page.text and "Mes données" in page.text
    assert 'href="/api/me/data"' in page.text

    # After publication and the purge: the page says the signals are gone.
    await conn.execute(
        "UPDATE editions SET rules = jsonb_set(rules, '{privacy}',"
        " '{\"signals_days_after_publication\": 0}') WHERE id=$1",
        edition_id,
    )
    await conn.execute(
        "INSERT INTO publications (edition_id, published_by, digest, merkle_root, leaf_count,"
        " signers, rules, results) VALUES ($1, 't', 'd', 'r', 0, '{}', '{}', '{}')",
        edition_id,
    )
    await privacy.purge(app.state.services.db, address_key=KEY)
    after = (await client.get("/api/me/data")).json()
    [vote] = after["votes"]
    assert vote["signals_erased"] and vote["receipt"] == receipt
    assert all(v is None for v in vote["signals"].values())
    assert after["voter"]["ip"] is None and after["voter"]["email_domain"] is None


# --- the logs -------------------------------------------------------------------------

CLIENT_IP = "203.0.113.77"


async def test_the_logs_of_a_whole_journey_hold_no_address_and_no_full_ip(
    app, conn, caplog
) -> None:
    """Sign-ins (a voter's and a nominator's, mail sent without SMTP: the development
    log path), a vote, the flush, the data page, a refused sign-in and the purge, with
    the engine's loggers at the default level (INFO) and the access log on: the text of
    every record holds neither the address nor the client's full IP."""
    import logging
    import re
    from html import unescape

    from httpx import ASGITransport, AsyncClient

    from tests.fixtures.flows import csrf_from
    from tests.fixtures.voting import flush, open_voting, reading

    _, _, noms = await open_voting(app, conn)
    svc = app.state.services
    voter_email = "Private.Person+wsis@example.org"
    staff_email = "nominator.secret@example.net"
    transport = ASGITransport(app=app, client=(CLIENT_IP, 40000))
    caplog.set_level(logging.INFO)
    logging.getLogger("voting.access").setLevel(logging.INFO)
    try:
        async with AsyncClient(transport=transport, base_url="http://testserver") as c:
            assert (await c.post("/api/voters/signin", json={"email": voter_email})).status_code
            await mail.send_pending(svc.db, svc.settings)
            body = await conn.fetchval("SELECT body FROM outbox ORDER BY id DESC LIMIT 1")
            link = re.search(r"/vote/confirm\?token=\S+", body).group(0)  # type: ignore[union-attr]
            page = await c.get(link)
            token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            done = await c.post(
                "/vote/confirm", data={"token": unescape(token), "csrf_token": csrf_from(page.text)}
            )
            assert done.status_code == 303
            csrf = (await c.get("/api/session")).json()["csrf_token"]
            ballot = (await c.get("/api/ballot/C1")).json()
            reading(app)
            voted = await c.post(
                "/api/votes",
                json={"nomination": noms["C1"][0], "form_token": ballot["form_token"]},
                headers={"x-csrf-token": csrf},
            )
            assert voted.status_code == 202, voted.text
            await flush(app)
            assert (await c.get("/my-data")).status_code == 200
            signin = await c.get("/signin")
            for _ in range(4):  # the fourth is past the mailbox's hourly limit: refused
                await c.post(
                    "/signin", data={"email": staff_email, "csrf_token": csrf_from(signin.text)}
                )
            await mail.send_pending(svc.db, svc.settings)
            await privacy.purge(svc.db, address_key=KEY)
    finally:
        logging.getLogger("voting.access").setLevel(logging.WARNING)
    text = "\n".join(
        f"{r.getMessage()} {r.__dict__}"
        for r in caplog.records
        # The engine's records (httpx's are the test client's own, not the engine's).
        if r.levelno >= logging.INFO and not r.name.startswith("httpx")
    )
    assert "mail (no SMTP configured) to=…@example.org" in text  # the journey was logged
    assert "GET /my-data 200" in text
    assert "203.0.113.0/24" in text
    for secret in (CLIENT_IP, "Private.Person", "private.person", "nominator.secret"):
        assert secret not in text, secret


# --- a nominator withdraws before voting opens ----------------------------------------


async def test_a_nominator_withdraws_before_voting_opens_and_the_contact_is_erased(
    client, app, conn, clock
) -> None:
    from tests.fixtures.editions import load_data
    from tests.fixtures.nominations import complete, csrf, open_edition, sign_in_quick

    edition = await load_data(conn, open_edition(), clock.now())
    await sign_in_quick(client, app, "withdrawer@example.org")
    token = await csrf(client)
    made = await client.post(
        "/api/nominations", json={**complete(), "submit": True}, headers={"x-csrf-token": token}
    )
    assert made.status_code == 201, made.text
    public_id = made.json()["nomination"]["public_id"]
    second = await client.post(
        "/api/nominations",
        json={"category": "C3", "title": "A draft"},
        headers={"x-csrf-token": token},
    )
    draft_id = second.json()["nomination"]["public_id"]

    # The dashboard offers it; the API and the page both withdraw, twice is harmless.
    assert f'action="/nominations/{public_id}/withdraw"' in (await client.get("/dashboard")).text
    refused = await client.post(f"/api/nominations/{public_id}/withdraw")
    assert refused.status_code == 403  # no CSRF token
    done = await client.post(
        f"/api/nominations/{public_id}/withdraw", headers={"x-csrf-token": token}
    )
    assert done.status_code == 200 and done.json()["nomination"]["status"] == "withdrawn"
    again = await client.post(
        f"/api/nominations/{public_id}/withdraw", headers={"x-csrf-token": token}
    )
    assert again.status_code == 200
    page = await client.post(f"/nominations/{draft_id}/withdraw", data={"csrf_token": token})
    assert page.status_code == 303 and page.headers["location"] == "/dashboard?done=withdrawn"
    rows = await conn.fetch(
        "SELECT public_id, status, contact_email FROM nominations ORDER BY public_id"
    )
    assert {r["public_id"]: (r["status"], r["contact_email"]) for r in rows} == {
        public_id: ("withdrawn", None),
        draft_id: ("withdrawn", None),
    }
    audit = await conn.fetch(
        "SELECT subject, detail FROM audit_log WHERE action='nomination.withdraw' ORDER BY id"
    )
    assert [(a["subject"], a["detail"]["from"]) for a in audit] == [
        (f"nomination:{public_id}", "submitted"),
        (f"nomination:{draft_id}", "draft"),
    ]
    # Withdrawn, the same project may be submitted again (it is not a duplicate).
    redo = await client.post(
        "/api/nominations", json={**complete(), "submit": True}, headers={"x-csrf-token": token}
    )
    assert redo.status_code == 201, redo.text
    redo_id = redo.json()["nomination"]["public_id"]
    # The nominator's own data: the account, each nomination's contact (erased when
    # withdrawn), as a page and as the download.
    mine = await client.get("/api/me/data")
    assert mine.status_code == 200 and mine.headers["content-disposition"].endswith(
        'filename="wsis-my-data-account.json"'
    )
    account = mine.json()["account"]
    assert account["email"] == "withdrawer@example.org" and "votes" not in mine.json()
    contacts = {n["public_id"]: n["contact_email"] for n in account["nominations"]}
    assert contacts == {public_id: None, draft_id: None, redo_id: "prizes@example.org"}
    page = await client.get("/my-data")
    assert page.status_code == 200 and "Your account and nominations" in page.text
    assert "prizes@example.org" in page.text
    # Another's nomination looks missing; once voting opens, nothing is withdrawn.
    await sign_in_quick(client, app, "someone.else@example.org")
    other = await client.post(
        f"/api/nominations/{redo_id}/withdraw", headers={"x-csrf-token": await csrf(client)}
    )
    assert other.status_code == 404
    await sign_in_quick(client, app, "withdrawer@example.org")
    clock.set(edition.phase("voting").opens_at)
    late = await client.post(
        f"/api/nominations/{redo_id}/withdraw", headers={"x-csrf-token": await csrf(client)}
    )
    assert late.status_code == 409 and late.json()["error"]["code"] == "voting_open"
    assert "Geneva time" in late.json()["error"]["message"]
    assert "/withdraw" not in (await client.get("/dashboard")).text  # no button any more
    assert await conn.fetchval("SELECT status FROM nominations WHERE public_id=$1", redo_id) == (
        "submitted"
    )


async def test_serve_purges_by_itself(conn: asyncpg.Connection, database_url: str) -> None:
    """The background task `serve` runs: a round at start, then every interval."""
    import asyncio

    edition = await make_edition(conn, "background", 0, True)
    await add_vote(conn, edition, "v", "C1", True)
    await conn.execute(
        "INSERT INTO publications (edition_id, published_by, digest, merkle_root, leaf_count,"
        " signers, rules, results) VALUES ($1, 't', 'd', 'r', 0, '{}', '{}', '{}')",
        edition,
    )
    pool = await db.create_pool(database_url)
    task = asyncio.create_task(privacy.purge_task(pool, KEY, interval=0.05))
    try:
        for _ in range(200):
            if await conn.fetchval("SELECT ip_hash IS NULL FROM votes"):
                break
            await asyncio.sleep(0.05)
        await add_vote(conn, edition, "w", "C1", True)  # a later round takes it too
        for _ in range(200):
            if await conn.fetchval("SELECT bool_and(ip_hash IS NULL) FROM votes"):
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await pool.close()
    assert await conn.fetchval("SELECT count(*) FROM votes WHERE ip_hash IS NOT NULL") == 0
    assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE action='privacy.purge'") == 2


async def test_the_application_cannot_make_signals_due_by_back_dating_a_publication(
    conn: asyncpg.Connection,
) -> None:
    """The purge counts from when the publication really arrived (0019), which the
    application role cannot write: a publication it dates years ago erases nothing."""
    edition = await make_edition(conn, "backdated", 30, True)
    await add_vote(conn, edition, "evidence-voter", "C1", True)
    await conn.execute("SET ROLE wsis_app")
    try:
        await conn.execute(
            "INSERT INTO publications (edition_id, published_at, published_by, digest,"
            " merkle_root, leaf_count, signers, rules, results)"
            " VALUES ($1, '2000-01-01', 't', 'd', 'r', 0, '{}', '{}', '{}')",
            edition,
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "UPDATE publications SET recorded_at = '2000-01-01' WHERE edition_id=$1",
                edition,
            )
    finally:
        await conn.execute("RESET ROLE")
    report = await purge_as_app(conn, batch=100)
    assert report.vote_signals == 0 and report.voter_signals == 0
    assert await conn.fetchval("SELECT ip_hash IS NOT NULL FROM votes WHERE edition_id=$1", edition)
