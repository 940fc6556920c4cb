"""Real PostgreSQL and Redis for every test, each test in its own database and key prefix.

VOTING_TEST_DATABASE_URL / VOTING_TEST_REDIS_URL point at servers to use (CI points them
at the machine's own). Without them the suite starts the embedded servers once, in a
temporary data dir, exactly as `voting serve` would.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from httpx import ASGITransport, AsyncClient

from voting import db
from voting.clock import FrozenClock
from voting.embedded import EmbeddedServers
from voting.settings import Settings

TEST_SECRET = "test-secret-key-that-is-long-enough-for-itsdangerous"


def _with_database(url: str, name: str) -> str:
    """The same server URL, another database (works for host and Unix-socket URLs)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def _embedded() -> Iterator[EmbeddedServers | None]:
    if os.environ.get("VOTING_TEST_DATABASE_URL") and os.environ.get("VOTING_TEST_REDIS_URL"):
        yield None
        return
    # Short path: the Redis socket lives inside it.
    data_dir = Path(tempfile.mkdtemp(prefix="wsis-t-", dir="/tmp"))
    servers = EmbeddedServers(data_dir)
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture(scope="session")
def pg_admin_url(_embedded: EmbeddedServers | None) -> str:
    url = os.environ.get("VOTING_TEST_DATABASE_URL")
    if url:
        return url
    assert _embedded is not None
    return _embedded.start_postgres()


@pytest.fixture(scope="session")
def redis_url(_embedded: EmbeddedServers | None) -> str:
    url = os.environ.get("VOTING_TEST_REDIS_URL")
    if url:
        return url
    assert _embedded is not None
    return _embedded.start_redis()


@pytest.fixture(scope="session")
async def template_db(pg_admin_url: str) -> AsyncIterator[str]:
    """A migrated database every test database is copied from (CREATE DATABASE TEMPLATE)."""
    name = f"wsis_tmpl_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    conn = await db.connect(_with_database(pg_admin_url, name))
    try:
        await db.migrate(conn)
    finally:
        await conn.close()
    try:
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def empty_database_url(pg_admin_url: str) -> AsyncIterator[str]:
    """A fresh database with no schema at all (for the migration tests)."""
    name = f"wsis_t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(pg_admin_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def database_url(pg_admin_url: str, template_db: str) -> AsyncIterator[str]:
    name = f"wsis_t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_admin_url)
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    try:
        yield _with_database(pg_admin_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await db.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield prefix
    client = aioredis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """The engine's own kind of client: a blocking pool that waits under a surge."""
    from voting.services import open_redis

    client = open_redis(redis_url, max_connections=16)
    yield client
    await client.aclose()


@pytest.fixture
def ballot(redis_client: aioredis.Redis, redis_prefix: str) -> object:
    from voting.ballot import Ballot

    return Ballot(redis_client, redis_prefix)


# The engine under test logs in as this role, a member of wsis_app with no other power,
# as production's wsis_web does: the whole suite then runs on the application's real
# grants (0011_least_privilege.sql). Setup, checks and migrations use the superuser.
APP_LOGIN = "wsis_test_web"


@pytest.fixture(scope="session")
async def app_login_role(pg_admin_url: str, template_db: str) -> str:
    """Create the test service login once (roles are the server's, not one database's)."""
    admin = await db.connect(pg_admin_url)
    try:
        await db.ensure_login_role(admin, APP_LOGIN)
    finally:
        await admin.close()
    return APP_LOGIN


@pytest.fixture
def app_database_url(database_url: str, app_login_role: str) -> str:
    """The test database, logged in as the application's role."""
    return db.url_with_user(database_url, app_login_role)


@pytest.fixture
def settings(app_database_url: str, redis_url: str, redis_prefix: str, tmp_path: Path) -> Settings:
    return Settings(
        env="test",
        data_dir=tmp_path,
        database_url=app_database_url,
        redis_url=redis_url,
        secret_key=TEST_SECRET,
        redis_prefix=redis_prefix,
        background_tasks=False,
        base_url="http://testserver",
    )


@pytest.fixture
def clock() -> FrozenClock:
    from datetime import UTC, datetime

    return FrozenClock(datetime(2026, 3, 20, 12, 0, tzinfo=UTC))


@pytest.fixture
async def app(settings: Settings, clock: FrozenClock) -> AsyncIterator[object]:
    from voting.app import create_app

    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: object) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=app)  # type: ignore[arg-type]
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def smtp() -> Iterator[object]:
    """A real SMTP server on loopback; use `settings_with_smtp` to send to it."""
    from tests.fixtures.mailbox import SmtpServer

    with SmtpServer() as server:
        yield server


@pytest.fixture
async def mail_app(settings: Settings, clock: FrozenClock, smtp: object) -> AsyncIterator[object]:
    """The app wired to the loopback SMTP server (deliver with `voting.mail.send_pending`)."""
    from voting.app import create_app

    application = create_app(settings.with_overrides(smtp_url=smtp.url), clock=clock)  # type: ignore[attr-defined]
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def mail_client(mail_app: object) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=mail_app)  # type: ignore[arg-type]
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
