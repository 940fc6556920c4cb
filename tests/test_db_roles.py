"""The application's database role (0006_roles.sql): it runs the whole engine, and it can
neither alter the audit log nor drop or alter tables. The suite connects as a superuser,
so these tests take the role with SET ROLE, or log in as a role they create for it."""

import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from httpx import ASGITransport, AsyncClient

from tests.security_support import confirm_voter
from tests.test_voting_http import flush, open_voting
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
    async with conn.transaction():
        await conn.execute("SET LOCAL ROLE wsis_app")
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == 1
        await conn.execute("UPDATE editions SET name = name")
        await conn.execute("UPDATE votes SET verdict = verdict")  # verdicts change
        await conn.execute("DELETE FROM outbox WHERE sent_at IS NOT NULL")
        # An edition still goes with its results (a rehearsal, a simulator's edition).
        edition_id = await conn.fetchval(
            "INSERT INTO editions (slug, name, timezone) VALUES ('gone', 'Gone', 'Europe/Zurich')"
            " RETURNING id"
        )
        await conn.execute(
            "INSERT INTO publications (edition_id, published_by, digest, merkle_root,"
            " leaf_count, signers, rules, results) VALUES ($1, 'x', 'd', 'r', 0, '{}',"
            " '{}', '{}')",
            edition_id,
        )
        await conn.execute("DELETE FROM editions WHERE id=$1", edition_id)
        assert await conn.fetchval("SELECT count(*) FROM publications") == 0
        # Every table a later migration made is covered by the default privileges.
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname='public'"
            " AND NOT has_table_privilege('wsis_app', format('%I.%I', schemaname, tablename),"
            " 'SELECT')"
        )
        assert tables == []


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
