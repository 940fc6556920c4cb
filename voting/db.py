"""PostgreSQL: the connection pool and the migrations.

Migrations are plain SQL files `voting/migrations/NNNN_name.sql` (inside the package so
they ship with any install), applied in order, each exactly once and inside its own
transaction, recorded with a checksum in `schema_migrations`. A session-level advisory
lock makes concurrent `migrate` runs (several workers starting at once) safe: the second
waits, then finds nothing left to do.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# An arbitrary constant: the key of the advisory lock all migrators agree on.
_MIGRATION_LOCK_KEY = 0x5753_4953  # "WSIS"
_FILE_PATTERN = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_PATTERN.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version number")
    return found


async def migrate(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; return the names applied (empty when up to date)."""
    migrations = discover(directory)
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_KEY)
    try:
        # Only when missing: the application's role (0006_roles.sql) may not create
        # tables, and `voting serve` running as it must find an up-to-date schema fine.
        if not await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
            await conn.execute(
                """
                CREATE TABLE schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    checksum text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """
            )
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        done = {r["version"]: r for r in rows}
        for migration in migrations:
            row = done.get(migration.version)
            if row is not None:
                if row["checksum"] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} was changed "
                        "after it was applied; add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            applied_now.append(f"{migration.version:04d}_{migration.name}")
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_KEY)
    return applied_now


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb columns come back as Python objects, not strings.
    import orjson

    await conn.set_type_codec(
        "jsonb",
        encoder=lambda value: orjson.dumps(value).decode(),
        decoder=orjson.loads,
        schema="pg_catalog",
    )


async def connect(url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(url)
    await _init_connection(conn)
    return conn


async def create_pool(url: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        url, min_size=min_size, max_size=max_size, init=_init_connection, command_timeout=60
    )
    assert pool is not None
    return pool


# The embedded default's service login (README.md, "Database roles"): a member of
# wsis_app, so `voting serve`'s workers and flushers have the application's rights only.
SERVICE_ROLE = "wsis_web"
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def url_with_user(url: str, user: str) -> str:
    """The same server and database, logged in as `user` (no password: the embedded
    server trusts its Unix socket, which only this machine's data dir owner reaches)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


async def ensure_login_role(conn: asyncpg.Connection, name: str = SERVICE_ROLE) -> None:
    """Create (once) a LOGIN role in wsis_app, with no other power; run as the owner after
    `migrate`. Idempotent, and safe when two starts race."""
    if not _ROLE_NAME.match(name):
        raise ValueError(f"not a plain role name: {name!r}")
    # Identifiers cannot be parameters; the name is checked above.
    try:
        await conn.execute(f'CREATE ROLE "{name}" LOGIN IN ROLE wsis_app')
    except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
        pass
    powers = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
    await conn.execute(f'ALTER ROLE "{name}" {powers}')
    if not await conn.fetchval("SELECT pg_has_role($1, 'wsis_app', 'MEMBER')", name):
        await conn.execute(f'GRANT wsis_app TO "{name}"')
