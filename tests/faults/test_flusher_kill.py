"""kill -9 of a flusher between its PostgreSQL commit and its Redis acknowledgement."""

import asyncio
import os
import sys
import time

import pytest
import redis.exceptions as redis_errors

from tests.fixtures.rig import (
    SECRET,
    check_ledger,
    report,
    voting_under_load,
    wait_drained,
)
from voting.ledger import GROUP
from voting.services import open_redis

pytestmark = pytest.mark.faults


async def pending_of(redis_url, stage, consumer):
    redis = open_redis(redis_url)
    try:
        total = 0
        for stream in [f"{stage.prefix}:{{{stage.edition.slug}.{s}}}:s" for s in range(16)]:
            if not await redis.exists(stream):
                continue
            try:
                entries = await redis.xpending_range(stream, GROUP, "-", "+", 100_000)
            except redis_errors.ResponseError:  # NOGROUP: no flusher has read it yet
                continue
            total += sum(entry["consumer"].decode() == consumer for entry in entries)
        return total
    finally:
        await redis.aclose()


async def test_a_flusher_killed_between_commit_and_ack_is_taken_over(
    database_url, conn, aof_redis, serve, short_dir
):
    # The server only takes votes here; flushers are processes of their own (`voting flush`).
    stage, _server, client, task, stop = await voting_under_load(
        database_url, aof_redis.url, serve, workers=1, seconds=1.0, VOTING_BACKGROUND_TASKS="false"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOTING_")}
    doomed = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.faults.crashing_flusher",
        database_url,
        aof_redis.url,
        stage.prefix,
        env=env,
    )
    died = await asyncio.wait_for(doomed.wait(), 30)
    assert died == -9, "the flusher should have died by SIGKILL before its XACK"
    crashed_at = time.monotonic()
    stranded = await pending_of(aof_redis.url, stage, "doomed")
    assert stranded > 0, "the crash left nothing pending: it did not hit the window"
    committed = await conn.fetchval("SELECT count(*) FROM votes")
    # Streams drain side by side (Flusher.parallel): besides the batch it committed, the
    # flusher may die holding another stream's batch read but not yet committed. Both stay
    # pending under its name, and both are taken over below.
    assert 0 < committed <= stranded, "the stranded entries include the ones it committed"
    # A healthy flusher, as `voting flush` runs in production, takes the stranded entries
    # over once they are older than VOTING_FLUSH_CLAIM_IDLE_MS.
    healthy = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "voting.cli",
        "flush",
        env={
            **env,
            "VOTING_DATABASE_URL": database_url,
            "VOTING_REDIS_URL": aof_redis.url,
            "VOTING_REDIS_PREFIX": stage.prefix,
            "VOTING_SECRET_KEY": SECRET,
            "VOTING_DATA_DIR": str(short_dir / "data"),
            "VOTING_FLUSH_CLAIM_IDLE_MS": "1000",
        },
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        while await pending_of(aof_redis.url, stage, "doomed"):
            assert time.monotonic() - crashed_at < 20, "nobody took the stranded entries over"
            await asyncio.sleep(0.05)
        taken_over_in = time.monotonic() - crashed_at
        await asyncio.sleep(0.5)
        stop.set()
        await task
        await client.settle()
        drained_in = await wait_drained(aof_redis.url, stage)
    finally:
        healthy.terminate()
        await asyncio.wait_for(healthy.wait(), 10)
    figures = await check_ledger(database_url, aof_redis.url, stage, client)
    report(
        "flusher kill -9 between commit and ack",
        refused_votes=client.failures_between(crashed_at),
        stranded_entries=stranded,
        taken_over_s=taken_over_in,
        claim_idle_s=1.0,
        ledger_caught_up_s=drained_in,
        **figures,
    )
