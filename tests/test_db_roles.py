"""The application's database role (0006_roles.sql): it runs the whole engine, and it can
neither alter the audit log nor drop or alter tables. The suite connects as a superuser,
so these tests take the role with SET ROLE, or log in as a role they create for it."""

import uuid
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from httpx import ASGITransport, AsyncClient

from tests.fixtures.security import confirm_voter
from tests.fixtures.voting import flush, open_voting
from voting import db
from voting.app import create_app
from voting.ledger import reconcile

DENIED = (asyncpg.InsufficientPrivilegeError,)


async def as_app_role(conn, sql, *args):
    """Run one statement as wsis_app, in a savepoint so a refusal leaves the test going."""
    async with conn.transaction():
        await conn.execute("SET LOCAL ROLE wsis_app")
        return await conn.execute(sql, *args)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET reason='rewritten'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER ALL",
        "DROP TRIGGER audit_log_no_update_delete ON audit_log",
        "DROP TABLE audit_log",
        "DROP TABLE votes",
        "DELETE FROM votes",
        "TRUNCATE votes",
        "TRUNCATE nominations CASCADE",
        "ALTER TABLE votes ADD COLUMN sneaky int",
        "CREATE TABLE shadow (n int)",
        "INSERT INTO schema_migrations (version, name, checksum) VALUES (999, 'x', 'x')",
        "DELETE FROM schema_migrations",
        "DELETE FROM publications",
        "TRUNCATE publications CASCADE",
        "DELETE FROM publication_leaves",
        "DELETE FROM publication_levels",
        "UPDATE result_signoffs SET digest='forged'",
        "DELETE FROM result_signoffs",
        "TRUNCATE result_signoffs",
    ],
)
async def test_the_application_role_cannot(conn, statement):
    await conn.execute(
        "INSERT INTO audit_log (actor, action, reason) VALUES ('test', 'seed', 'kept')"
    )
    with pytest.raises(DENIED):
        await as_app_role(conn, statement)
    assert await conn.fetchval("SELECT reason FROM audit_log WHERE action='seed'") == "kept"
    assert await conn.fetchval("SELECT to_regclass('votes') IS NOT NULL")


async def test_the_application_role_can_do_its_work(conn):
    assert (
        await as_app_role(
            conn, "INSERT INTO audit_log (actor, action) VALUES ('app', 'did.something')"
        )
        == "INSERT 0 1"
    )
    rows = await ledger_rows(conn)
    async with conn.transaction():
        await conn.execute("SET LOCAL ROLE wsis_app")
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == 1
        await conn.execute("UPDATE editions SET updated_at = now()")  # a new revision
        # A verdict changes only with its audit row (decide_vote, 0011).
        decided = await conn.fetchrow(
            "SELECT * FROM decide_vote($1, 'RCPT-0001', 'void', 'user:c@example.org', 'bot')",
            rows["edition_id"],
        )
        assert (decided["previous"], decided["changed"]) == ("counted", True)
        await conn.execute("UPDATE outbox SET attempts = attempts + 1")
        # A rehearsal goes with its votes, voters and results; a real edition never does.
        assert await conn.fetchval("SELECT drop_rehearsal_edition($1)", rows["rehearsal_id"]) == 1
    assert await conn.fetchval("SELECT verdict FROM votes WHERE receipt='RCPT-0001'") == "voided"
    entry = await conn.fetchrow("SELECT * FROM audit_log WHERE action='fraud.void'")
    assert entry["subject"] == "receipt:RCPT-0001" and entry["edition"] == "real"
    assert entry["detail"] == {"from": "counted", "to": "voided", "nomination": "N1"}
    assert (
        await conn.fetchval("SELECT count(*) FROM votes WHERE edition_id=$1", rows["rehearsal_id"])
        == 0
    )
    # Every table a later migration made is readable (default privileges: SELECT only).
    assert (
        await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname='public'"
            " AND NOT has_table_privilege('wsis_app', format('%I.%I', schemaname, tablename),"
            " 'SELECT')"
        )
        == []
    )


@pytest.fixture
async def app_login(conn, database_url):
    """A LOGIN role in wsis_app, as production would give the engine; dropped afterwards."""
    name = f"wsis_t_{uuid.uuid4().hex[:10]}"
    await conn.execute(f'CREATE ROLE "{name}" LOGIN IN ROLE wsis_app')
    parts = urlsplit(database_url)
    host = parts.netloc.rpartition("@")[2]
    yield urlunsplit(parts._replace(netloc=f"{name}@{host}"))
    await conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename=$1", name
    )
    await conn.execute(f'DROP ROLE IF EXISTS "{name}"')


async def test_the_engine_runs_as_the_application_role(app_login, settings, clock, conn):
    # `voting serve` migrates first: as the application role that is a no-op when the
    # schema is up to date, not an error.
    as_app = await db.connect(app_login)
    try:
        assert await as_app.fetchval("SELECT current_user") != "postgres"
        assert await db.migrate(as_app) == []
    finally:
        await as_app.close()
    app = create_app(settings.with_overrides(database_url=app_login), clock=clock)
    async with app.router.lifespan_context(app):
        edition, edition_id, noms = await open_voting(app, conn)
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as c:
            await confirm_voter(c, app, edition.slug, "least.privilege@example.org")
            csrf = (await c.get("/api/session")).json()["csrf_token"]
            r = await c.post(
                "/api/votes", json={"nomination": noms["C1"][0]}, headers={"x-csrf-token": csrf}
            )
            assert r.status_code == 202, r.text
        stats = await flush(app)  # COPY into a temporary table, INSERT ... ON CONFLICT
        assert stats.inserted == 1
        svc = app.state.services
        assert (await reconcile(svc.r, conn, svc.settings.redis_prefix, edition.slug)).ok
    assert await conn.fetchval("SELECT count(*) FROM votes WHERE edition_id=$1", edition_id) == 1


# -- Least privilege (0011_least_privilege.sql) ---------------------------------------------

ALL = "all columns"
# What wsis_app may do, table by table: SELECT everywhere; INSERT, UPDATE and DELETE only
# as listed (a set is those columns only); TRUNCATE, REFERENCES and TRIGGER nowhere. A
# table missing here fails test_every_table_is_in_the_matrix: a new table needs a line.
MATRIX: dict[str, dict[str, object]] = {
    "editions": {"UPDATE": {"updated_at"}},
    "phases": {},
    "categories": {},
    "users": {"INSERT": {"email"}, "UPDATE": {"session_generation"}},
    "audit_log": {"INSERT": ALL},
    "used_links": {"INSERT": ALL},
    "outbox": {"INSERT": ALL, "UPDATE": {"attempts", "last_error", "next_attempt_at", "sent_at"}},
    "issued_public_ids": {"INSERT": ALL},
    "nominations": {
        "INSERT": ALL,
        "UPDATE": {
            "category",
            "title",
            "title_key",
            "organization",
            "organization_key",
            "stakeholder_type",
            "country",
            "website",
            "start_date",
            "contact_email",
            "summary",
            "description",
            "partners",
            "languages",
            "earlier_winner",
            "search_text",
            "updated_at",
            "status",
            "submitted_at",
            "decision_reason",
            "decided_by",
            "decided_at",
            "earlier_winner_marked",
            "translations",  # 0016: the nominator's title and summary in other languages
        },
    },
    # 0020: never a full address or agent (`ip`, `user_agent`): minimised at the door.
    "voters": {
        "INSERT": {
            "edition_id",
            "voter_id",
            "domain",
            "verified_at",
            "network",
            "ip_hash",
            "ip_prefix",
            "agent",
        }
    },
    "votes": {
        "INSERT": {
            "edition_id",
            "voter_id",
            "category",
            "nomination",
            "receipt",
            "cast_at",
            "stream_id",
            "held_at_cast",
            "form_age_ms",
            "flushed_at",
            "verdict",
            "verdict_reasons",
            "verdict_at",
            "email_domain",
            "network",
            "form_nonce",
            "ip_hash",
            "ip_prefix",
            "agent",
        }
    },
    "ledger_alarms": {"INSERT": ALL},
    "expert_assignments": {"INSERT": ALL, "DELETE": ALL},
    "expert_conflicts": {"INSERT": ALL},
    "expert_reviews": {"INSERT": ALL, "UPDATE": {"comment", "updated_at"}},
    "expert_scores": {"INSERT": ALL, "UPDATE": {"score"}},
    "result_signoffs": {"INSERT": ALL},
    # 0019: never recorded_at, the database's own instant the purge counts from.
    "publications": {
        "INSERT": {
            "id",
            "edition_id",
            "published_at",
            "published_by",
            "digest",
            "merkle_root",
            "leaf_count",
            "signers",
            "rules",
            "results",
        }
    },
    "publication_leaves": {"INSERT": ALL},
    "publication_levels": {"INSERT": ALL},
    "fraud_flags": {"INSERT": ALL, "UPDATE": {"evidence"}},
    "fraud_flag_votes": {"INSERT": ALL},
    "vote_review_requests": {"INSERT": ALL, "UPDATE": {"answered_at", "answered_by", "answer"}},
    "schema_migrations": {},
    # 0012: a nominator's declaration, the organizers' decision on it; refused sign-ins.
    "mobilisations": {
        "INSERT": ALL,
        "UPDATE": {"status", "decided_by", "decided_at", "decision_reason"},
    },
    "signin_refusals": {"INSERT": ALL},
    # 0018: the incremental fraud scan's marks, moved by every scan.
    "fraud_scan_marks": {"INSERT": ALL, "UPDATE": {"fingerprint", "scanned_at"}},
}
DEFINER_FUNCTIONS = (
    "decide_vote(integer, text, text, text, text)",
    "decide_flag_votes(integer, bigint, text, text, text)",
    "quarantine_flag_votes(bigint, text[], text[])",
    "extend_voting_close(integer, timestamptz)",
    "drop_rehearsal_edition(integer)",
    # 0013: the retention policy's purge (erases fraud signals, deletes delivered mail).
    "purge_signals(integer)",
    "purge_outbox(integer)",
    # 0014: the organizers extend the expert review and invite experts and committee.
    "extend_expert_review_close(integer, timestamptz)",
    "grant_staff_role(text, text)",
    # 0020: rows stored before minimisation get their hash and agent's summary, once.
    "minimise_vote_signals(integer, text[], text[], text[], text[])",
    "minimise_voter_signals(integer, text[], text[], text[])",
)


async def test_every_table_is_in_the_matrix(conn):
    tables = {
        r["tablename"]
        for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
    }
    assert tables == set(MATRIX)


@pytest.mark.parametrize("table", sorted(MATRIX))
async def test_the_application_role_has_exactly_its_grants_on(conn, table):
    columns = [
        r["attname"]
        for r in await conn.fetch(
            "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0"
            " AND NOT attisdropped",
            table,
        )
    ]
    expected = MATRIX[table]
    for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"):
        allowed = ALL if privilege == "SELECT" else expected.get(privilege)
        whole = await conn.fetchval(
            "SELECT has_table_privilege('wsis_app', $1, $2)", table, privilege
        )
        assert whole == (allowed == ALL), (table, privilege)
        if privilege in ("SELECT", "INSERT", "UPDATE", "REFERENCES"):
            for column in columns:
                may = await conn.fetchval(
                    "SELECT has_column_privilege('wsis_app', $1, $2, $3)", table, column, privilege
                )
                assert may == (allowed == ALL or column in (allowed or ())), (
                    table,
                    column,
                    privilege,
                )


async def test_the_verdict_functions_are_the_application_roles_alone(conn):
    for function in DEFINER_FUNCTIONS:
        assert await conn.fetchval(
            "SELECT has_function_privilege('wsis_app', $1, 'EXECUTE')", function
        ), function
        # Not PUBLIC's: no other role of the server may call them.
        row = await conn.fetchrow(
            "SELECT p.prosecdef, p.proconfig,"
            " EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0) AS public"
            " FROM pg_proc p WHERE p.oid = $1::regprocedure",
            function,
        )
        assert row["prosecdef"] and not row["public"], function
        assert any(c.startswith("search_path=") for c in row["proconfig"]), function


async def test_future_tables_get_select_only(conn):
    """Default privileges: a later migration's table is readable and nothing more until
    that migration grants what the code needs."""
    await conn.execute("CREATE TABLE later_table (n int)")
    assert await conn.fetchval("SELECT has_table_privilege('wsis_app', 'later_table', 'SELECT')")
    for privilege in ("INSERT", "UPDATE", "DELETE", "TRUNCATE"):
        assert not await conn.fetchval(
            "SELECT has_table_privilege('wsis_app', 'later_table', $1)", privilege
        ), privilege


async def ledger_rows(conn) -> dict[str, int]:
    """A real and a rehearsal edition, each with a voter and a counted vote, an alarm, a
    used link, a fraud flag on the real vote and a sent mail (as the superuser)."""
    ids = {}
    for slug, rehearsal in (("real", False), ("rehearsal", True)):
        edition_id = await conn.fetchval(
            "INSERT INTO editions (slug, name, timezone, is_rehearsal)"
            " VALUES ($1, $1, 'Europe/Zurich', $2) RETURNING id",
            slug,
            rehearsal,
        )
        ids[f"{slug}_id" if rehearsal else "edition_id"] = edition_id
        await conn.execute(
            "INSERT INTO voters (edition_id, voter_id, domain) VALUES ($1, 'v1', 'example.org')",
            edition_id,
        )
        await conn.execute(
            "INSERT INTO votes (edition_id, voter_id, category, nomination, receipt, cast_at,"
            " stream_id) VALUES ($1, 'v1', 'C1', 'N1', $2, now(), '1-0')",
            edition_id,
            "RCPT-0001" if not rehearsal else "RCPT-0002",
        )
    edition_id = ids["edition_id"]
    now = await conn.fetchval("SELECT now()")
    for name, opens, closes in (
        ("voting", -30, -20),
        ("expert_review", -20, -10),  # closed ten days ago: the scores are frozen
        ("results", -10, 30),
    ):
        await conn.execute(
            "INSERT INTO phases (edition_id, name, opens_at, closes_at) VALUES ($1, $2, $3, $4)",
            edition_id,
            name,
            now + timedelta(days=opens),
            now + timedelta(days=closes),
        )
    await conn.execute("INSERT INTO users (email, roles) VALUES ('nominator@example.org', '{}')")
    await conn.execute("INSERT INTO used_links (token_hash, purpose) VALUES ('h', 'voter')")
    await conn.execute(
        "INSERT INTO ledger_alarms (edition, stream_key, entry_id, kind)"
        " VALUES ('real', 's', '1-0', 'deleted-before-flush')"
    )
    flag_id = await conn.fetchval(
        "INSERT INTO fraud_flags (edition_id, detector, finding) VALUES ($1, 'burst', 'f')"
        " RETURNING id",
        edition_id,
    )
    ids["flag_id"] = flag_id
    await conn.execute(
        "INSERT INTO fraud_flag_votes (flag_id, edition_id, voter_id, category)"
        " VALUES ($1, $2, 'v1', 'C1')",
        flag_id,
        edition_id,
    )
    await conn.execute(
        "INSERT INTO outbox (to_addr, subject, body, sent_at) VALUES ('a@b.c', 's', 'b', now())"
    )
    return ids


REFUSED = [
    # A vote never moves, changes its receipt, or gets a verdict off the record.
    "UPDATE votes SET nomination = 'N2'",
    "UPDATE votes SET receipt = 'RCPT-9999'",
    "UPDATE votes SET voter_id = 'v2', category = 'C2', cast_at = now()",
    "UPDATE votes SET verdict = 'voided'",
    "UPDATE votes SET verdict_reasons = '{}', verdict_at = now()",
    "SELECT 1 FROM votes FOR UPDATE",
    # No role escalation, no account takeover.
    "UPDATE users SET roles = '{organizer,committee}'",
    "INSERT INTO users (email, roles) VALUES ('me@example.org', '{organizer}')",
    "UPDATE users SET email = 'attacker@example.org'",
    # The calendar is the owner's: no reopening a frozen expert review.
    "UPDATE phases SET closes_at = now() + interval '30 days' WHERE name = 'expert_review'",
    "DELETE FROM phases",
    "INSERT INTO phases (edition_id, name, opens_at, closes_at)"
    " SELECT id, 'review', now(), now() + interval '1 day' FROM editions WHERE slug = 'real'",
    "UPDATE editions SET rules = '{}'",
    "UPDATE editions SET is_current = true",
    "DELETE FROM editions",
    # Nothing the code never deletes is deleted.
    "DELETE FROM used_links",
    "DELETE FROM ledger_alarms",
    "DELETE FROM fraud_flags",
    "DELETE FROM fraud_flag_votes",
    "DELETE FROM voters",
    "DELETE FROM votes",
    "DELETE FROM outbox",
    "DELETE FROM users",
    "DELETE FROM nominations",
    "TRUNCATE used_links",
    "TRUNCATE voters CASCADE",
    # A flag's decision goes through decide_flag_votes(), on the record.
    "UPDATE fraud_flags SET status = 'released', decided_by = 'x'",
    "UPDATE ledger_alarms SET kind = 'resolved'",
    "UPDATE used_links SET purpose = 'other'",
    "UPDATE voters SET domain = 'elsewhere.org'",
    # 0020: no full address or agent is written again, by the flusher or a sign-in.
    "INSERT INTO votes (edition_id, voter_id, category, nomination, receipt, cast_at,"
    " stream_id, ip) SELECT id, 'v9', 'C1', 'N1', 'RCPT-0009', now(), '9-0', '192.0.2.1'"
    " FROM editions WHERE slug = 'real'",
    "INSERT INTO voters (edition_id, voter_id, domain, user_agent)"
    " SELECT id, 'v9', 'example.org', 'Mozilla/5.0' FROM editions WHERE slug = 'real'",
]


@pytest.mark.parametrize("statement", REFUSED)
async def test_the_application_role_is_refused(conn, statement):
    await ledger_rows(conn)
    before = await snapshot(conn)
    with pytest.raises(DENIED):
        await as_app_role(conn, statement)
    assert await snapshot(conn) == before


async def snapshot(conn) -> list[object]:
    return [
        await conn.fetch(f"SELECT * FROM {table} ORDER BY 1, 2")
        for table in (
            "votes",
            "voters",
            "users",
            "phases",
            "editions",
            "used_links",
            "ledger_alarms",
            "fraud_flags",
            "fraud_flag_votes",
            "outbox",
            "audit_log",
        )
    ]


async def test_a_frozen_expert_review_cannot_be_reopened_by_extending_voting(conn):
    rows = await ledger_rows(conn)
    review = "SELECT opens_at, closes_at FROM phases WHERE name='expert_review'"
    before = await conn.fetchrow(review)
    far = before["closes_at"] + timedelta(days=30)
    with pytest.raises(asyncpg.CheckViolationError, match="swallow"):
        await as_app_role(conn, "SELECT extend_voting_close($1, $2)", rows["edition_id"], far)
    voting_close = await conn.fetchval("SELECT closes_at FROM phases WHERE name='voting'")
    with pytest.raises(asyncpg.CheckViolationError, match="only moves later"):
        await as_app_role(
            conn,
            "SELECT extend_voting_close($1, $2)",
            rows["edition_id"],
            voting_close - timedelta(days=1),
        )
    assert await conn.fetchrow(review) == before
    # A later close within the rules moves the review's opening, never its close.
    later = voting_close + timedelta(days=2)
    await as_app_role(conn, "SELECT extend_voting_close($1, $2)", rows["edition_id"], later)
    after = await conn.fetchrow(review)
    assert after["opens_at"] == later and after["closes_at"] == before["closes_at"]


async def test_a_real_edition_is_never_dropped(conn):
    rows = await ledger_rows(conn)
    with pytest.raises(DENIED, match="not a rehearsal"):
        await as_app_role(conn, "SELECT drop_rehearsal_edition($1)", rows["edition_id"])
    assert await conn.fetchval("SELECT count(*) FROM votes") == 2


async def test_verdicts_change_only_on_the_record(conn):
    rows = await ledger_rows(conn)
    edition_id, flag_id = rows["edition_id"], rows["flag_id"]

    async def audit_rows() -> int:
        return await conn.fetchval("SELECT count(*) FROM audit_log")

    # A detector's quarantine: the vote moves and one audit row says why.
    moved = await as_app_role(conn, "SELECT quarantine_flag_votes($1, '{v1}', '{C1}')", flag_id)
    assert moved == "SELECT 1"
    vote = await conn.fetchrow(
        "SELECT verdict, verdict_reasons FROM votes WHERE receipt='RCPT-0001'"
    )
    assert (vote["verdict"], vote["verdict_reasons"]) == ("quarantined", ["burst"])
    assert await conn.fetchval("SELECT action FROM audit_log") == "fraud.quarantine"
    # A vote the flag does not hold is not moved by it.
    await as_app_role(conn, "SELECT quarantine_flag_votes($1, '{v9}', '{C1}')", flag_id)
    assert await audit_rows() == 1
    # A decision with no reason is refused; one that does not apply changes nothing.
    with pytest.raises(asyncpg.InvalidParameterValueError):
        await as_app_role(
            conn, "SELECT * FROM decide_vote($1, 'RCPT-0001', 'void', 'user:x', ' ')", edition_id
        )
    with pytest.raises(asyncpg.InvalidParameterValueError):
        await as_app_role(
            conn, "SELECT * FROM decide_vote($1, 'RCPT-0001', 'count', 'user:x', 'r')", edition_id
        )
    # The whole flag released: the vote counts again, the flag is decided, on the record.
    async with conn.transaction():
        await conn.execute("SET LOCAL ROLE wsis_app")
        assert (
            await conn.fetchval(
                "SELECT decide_flag_votes($1, $2, 'release', 'user:c@example.org', 'fine')",
                edition_id,
                flag_id,
            )
            == 1
        )
        assert (
            await conn.fetchval(
                "SELECT decide_flag_votes($1, 999999, 'release', 'user:c', 'r')", edition_id
            )
            is None
        )
        again = await conn.fetchrow(
            "SELECT * FROM decide_vote($1, 'RCPT-0001', 'release', 'user:c', 'again')",
            edition_id,
        )
        assert (again["previous"], again["changed"]) == ("released", False)
        missing = await conn.fetchrow(
            "SELECT * FROM decide_vote($1, 'NO-SUCH', 'void', 'user:c', 'r')", edition_id
        )
        assert missing["previous"] is None
    assert await conn.fetchval("SELECT verdict FROM votes WHERE receipt='RCPT-0001'") == "released"
    flag = await conn.fetchrow("SELECT status, decided_by FROM fraud_flags")
    assert (flag["status"], flag["decided_by"]) == ("released", "user:c@example.org")
    assert await audit_rows() == 2


@pytest.mark.parametrize(
    "change",
    [
        "nomination = 'N2'",
        "receipt = 'RCPT-9999'",
        "voter_id = 'v2'",
        "category = 'C2'",
        "cast_at = now() - interval '1 day'",
        "edition_id = edition_id + 0, stream_id = '2-0'",
        "ip = '192.0.2.1'",
        # 0013: a signal may be erased (NULL), never rewritten, and never with another column.
        "ip = NULL, nomination = 'N2'",
        "user_agent = 'forged'",
        "verdict = 'voided', nomination = 'N2'",
        # 0020: a hash, prefix or summary is never written on a vote but once, with the
        # full address or agent it minimises erased in the same statement.
        "ip_hash = 'forged'",
        "ip_prefix = '198.51.100.0/24'",
        "agent = 'Chrome/1'",
    ],
)
async def test_a_vote_is_immutable_even_for_the_owner(conn, change):
    """Only a vote's verdict ever changes: the trigger refuses anything else to every role,
    the table's owner included (as the audit log's do)."""
    await ledger_rows(conn)
    before = await snapshot(conn)
    with pytest.raises(DENIED, match="a vote is immutable"):
        await conn.execute(f"UPDATE votes SET {change}")
    assert await snapshot(conn) == before
    # The verdict itself still may change (the owner's functions do it).
    assert await conn.execute("UPDATE votes SET verdict = 'voided'") == "UPDATE 2"


async def test_the_application_role_may_do_what_the_code_does(conn):
    """A real statement for each narrow grant (the suite's app fixture, logged in as
    wsis_test_web, runs the code itself on these grants)."""
    rows = await ledger_rows(conn)
    for statement in (
        "INSERT INTO users (email) VALUES ('new@example.org') ON CONFLICT (email) DO NOTHING",
        "UPDATE users SET session_generation = session_generation + 1",
        "UPDATE outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL,"
        " next_attempt_at = now()",
        "SELECT id FROM outbox FOR UPDATE SKIP LOCKED",
        "SELECT id FROM editions FOR UPDATE",
        "UPDATE fraud_flags SET evidence = '{\"n\": 2}'",
        "INSERT INTO used_links (token_hash, purpose) VALUES ('h2', 'voter')",
        "INSERT INTO ledger_alarms (edition, stream_key, entry_id, kind)"
        " VALUES ('real', 's', '2-0', 'deleted-before-flush') ON CONFLICT DO NOTHING",
    ):
        await as_app_role(conn, statement)
    assert [r["session_generation"] for r in await conn.fetch("SELECT * FROM users")] == [1, 1]
    assert await conn.fetchval("SELECT count(*) FROM used_links") == 2
    assert rows["edition_id"]


async def test_the_expert_review_is_extended_only_later_and_never_after_publication(conn):
    rows = await ledger_rows(conn)
    phase = "SELECT opens_at, closes_at FROM phases WHERE edition_id=$1 AND name=$2"
    review = await conn.fetchrow(phase, rows["edition_id"], "expert_review")
    results = await conn.fetchrow(phase, rows["edition_id"], "results")
    call = "SELECT extend_expert_review_close($1, $2)"
    with pytest.raises(asyncpg.CheckViolationError, match="only moves later"):
        await as_app_role(conn, call, rows["edition_id"], review["closes_at"] - timedelta(hours=1))
    with pytest.raises(asyncpg.CheckViolationError, match="swallow"):
        await as_app_role(conn, call, rows["edition_id"], results["closes_at"])
    assert await conn.fetchrow(phase, rows["edition_id"], "expert_review") == review
    # The closed (frozen) review opens again until the new close; the results phase
    # opens at the new close.
    new_close = results["opens_at"] + timedelta(days=12)
    await as_app_role(conn, call, rows["edition_id"], new_close)
    assert (await conn.fetchrow(phase, rows["edition_id"], "expert_review"))[
        "closes_at"
    ] == new_close
    assert (await conn.fetchrow(phase, rows["edition_id"], "results"))["opens_at"] == new_close
    await conn.execute(
        "INSERT INTO publications (edition_id, digest, rules, results, merkle_root, leaf_count,"
        " signers, published_by) VALUES ($1, 'd', '{}', '{}', 'r', 0, '{}', 'test')",
        rows["edition_id"],
    )
    with pytest.raises(asyncpg.CheckViolationError, match="published"):
        await as_app_role(conn, call, rows["edition_id"], new_close + timedelta(days=1))


async def test_the_application_grants_only_the_expert_and_committee_roles(conn):
    await ledger_rows(conn)
    call = "SELECT grant_staff_role($1, $2)"
    for role in ("organizer", "voter", None):
        with pytest.raises(asyncpg.CheckViolationError, match="only the expert and committee"):
            await as_app_role(conn, call, "someone@example.org", role)
    with pytest.raises(asyncpg.CheckViolationError, match="normalized"):
        await as_app_role(conn, call, "Someone@Example.org", "expert")
    await as_app_role(conn, call, "nominator@example.org", "expert")
    await as_app_role(conn, call, "nominator@example.org", "committee")
    await as_app_role(conn, call, "nominator@example.org", "committee")  # no change
    row = await conn.fetchrow(
        "SELECT roles, session_generation FROM users WHERE email='nominator@example.org'"
    )
    # Each new role ended the account's sessions once; a role it had already did not.
    assert list(row["roles"]) == ["committee", "expert"] and row["session_generation"] == 2
