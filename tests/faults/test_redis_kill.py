"""kill -9 of Redis (append-only file, fsync always) mid-surge, then a restart.

While Redis is down every vote is refused with 503 and Retry-After, never accepted and
lost. It comes back from its append-only file with an empty script cache (NOSCRIPT: the
client reloads the script) and every vote it acknowledged.
"""

import asyncio
import time

import pytest

from tests.faults.rig import (
    check_ledger,
    report,
    voting_under_load,
    wait_accepting,
    wait_drained,
)

pytestmark = pytest.mark.faults


async def test_redis_killed_and_restarted_loses_no_acknowledged_vote(
    database_url, aof_redis, serve
):
    stage, _server, client, task, stop = await voting_under_load(database_url, aof_redis.url, serve)
    before = client.outcomes["accepted"]
    killed_at = time.monotonic()
    aof_redis.kill()
    await asyncio.sleep(1.0)
    refused_while_down = client.failures_between(killed_at)
    accepted_while_down = client.outcomes["accepted"] - before
    restarted_at = time.monotonic()
    await asyncio.to_thread(aof_redis.start)
    back_in = await wait_accepting(client, restarted_at)
    await asyncio.sleep(1.0)
    stop.set()
    await task
    await client.settle()
    assert not client.doubtful
    drained_in = await wait_drained(aof_redis.url, stage)
    figures = await check_ledger(database_url, aof_redis.url, stage, client)
    report(
        "Redis kill -9 and restart",
        down_s=restarted_at - killed_at,
        refused_while_down=refused_while_down,
        accepted_while_down=accepted_while_down,
        refused_in_all=client.failures_between(killed_at),
        lost_answers=client.outcomes["lost_answer"],
        refused_503_said_maybe_recorded=client.outcomes["refused_503_answer_lost"],
        votes_accepted_again_s_after_restart=back_in,
        ledger_caught_up_s=drained_in,
        **figures,
    )
    assert client.outcomes["refused_503"] > 0, "the outage was not seen"
