"""kill -9 one worker of a two-worker `voting serve` in the middle of steady voting."""

import asyncio
import os
import signal
import time

import pytest

from tests.fixtures.rig import (
    check_ledger,
    report,
    voting_under_load,
    wait_drained,
)

pytestmark = pytest.mark.faults


async def test_a_worker_killed_mid_surge_is_replaced_and_loses_nothing(
    database_url, aof_redis, serve
):
    stage, server, client, task, stop = await voting_under_load(
        database_url, aof_redis.url, serve, keepalive=False, VOTING_FLUSH_CLAIM_IDLE_MS="1000"
    )
    victim, survivor = server.worker_pids()
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    # uvicorn's supervisor notices the dead worker and starts another in its place.
    while len(set(server.worker_pids()) - {survivor, victim}) < 1:
        assert time.monotonic() - killed_at < 20, server.log()
        await asyncio.sleep(0.05)
    replaced_in = time.monotonic() - killed_at
    await asyncio.sleep(1.5)
    stop.set()
    await task
    await client.settle()
    assert not client.doubtful
    assert len(server.worker_pids()) == 2
    drained_in = await wait_drained(aof_redis.url, stage)
    figures = await check_ledger(database_url, aof_redis.url, stage, client)
    report(
        "worker kill -9",
        failed_requests=client.failures_between(killed_at),
        lost_answers=client.outcomes["lost_answer"],
        refused_503=client.outcomes["refused_503"],
        replacement_worker_s=replaced_in,
        ledger_caught_up_s=drained_in,
        **figures,
    )
    assert figures["acknowledged"] > 100
