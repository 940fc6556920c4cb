import asyncio

import asyncpg
import pytest

from tests.fixtures.locks import WithoutAdvisoryLocks
from voting import db


async def _tables(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
    return {r["tablename"] for r in rows}


async def test_migrate_applies_every_file_once_and_twice_is_a_noop(empty_database_url):
    conn = await db.connect(empty_database_url)
    try:
        first = await db.migrate(conn)
        assert first == [f"{m.version:04d}_{m.name}" for m in db.discover()]
        assert {"editions", "phases", "categories", "audit_log"} <= await _tables(conn)
        second = await db.migrate(conn)
        assert second == []
        count = await conn.fetchval("SELECT count(*) FROM schema_migrations")
        assert count == len(first)
    finally:
        await conn.close()


async def test_two_concurrent_migrations_leave_one_copy(empty_database_url):
    conns = [await db.connect(empty_database_url) for _ in range(2)]
    try:
        results = await asyncio.gather(*(db.migrate(c) for c in conns))
        # One applied everything, the other waited on the lock and found nothing to do.
        assert sorted(len(r) for r in results) == [0, len(db.discover())]
        versions = await conns[0].fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in versions] == [m.version for m in db.discover()]
    finally:
        for c in conns:
            await c.close()


async def test_without_the_lock_two_concurrent_migrations_collide(empty_database_url):
    """The control of the test above: the same two migrators with the advisory lock
    dropped both find no schema_migrations table and both create it; one fails. So the
    lock is what the test above proves."""
    conns = [await db.connect(empty_database_url) for _ in range(2)]
    try:
        unlocked = [WithoutAdvisoryLocks(c) for c in conns]
        results = await asyncio.gather(*(db.migrate(c) for c in unlocked), return_exceptions=True)
        assert [u.dropped for u in unlocked] == [2, 2]  # the lock and the unlock
        assert any(isinstance(r, asyncpg.PostgresError) for r in results), results
    finally:
        for c in conns:
            await c.close()


async def test_a_changed_migration_is_refused(empty_database_url, tmp_path):
    (tmp_path / "0001_one.sql").write_text("CREATE TABLE one (id int);")
    conn = await db.connect(empty_database_url)
    try:
        assert await db.migrate(conn, tmp_path) == ["0001_one"]
        (tmp_path / "0001_one.sql").write_text("CREATE TABLE one (id bigint);")
        with pytest.raises(db.MigrationError, match="changed after it was applied"):
            await db.migrate(conn, tmp_path)
    finally:
        await conn.close()


async def test_a_failing_migration_leaves_nothing_half_applied(empty_database_url, tmp_path):
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE ok (id int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (id int); SELECT no_such_fn();")
    conn = await db.connect(empty_database_url)
    try:
        with pytest.raises(asyncpg.PostgresError):
            await db.migrate(conn, tmp_path)
        tables = await _tables(conn)
        assert "ok" in tables and "half" not in tables
        assert await conn.fetchval("SELECT max(version) FROM schema_migrations") == 1
    finally:
        await conn.close()


def test_badly_named_migration_file_is_refused(tmp_path):
    (tmp_path / "1_x.sql").write_text("SELECT 1;")
    with pytest.raises(db.MigrationError, match=r"NNNN_name\.sql"):
        db.discover(tmp_path)


async def test_audit_log_refuses_update_and_delete(conn):
    await conn.execute("INSERT INTO audit_log (actor, action) VALUES ('test', 'x')")
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await conn.execute("UPDATE audit_log SET actor='someone else'")
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await conn.execute("DELETE FROM audit_log")
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await conn.execute("TRUNCATE audit_log")
    assert await conn.fetchval("SELECT actor FROM audit_log") == "test"
