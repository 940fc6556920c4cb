"""Redis comes back empty while `voting serve` runs: no vote is stranded in it.

The private Redis of the test is wiped (FLUSHALL and SCRIPT FLUSH: the keys, the windows,
the flushers' consumer groups and the script cache all gone, as after a restart without
its files), `voting reconcile --repair` rebuilds the ballots from the ledger, and voting
goes on. Every vote accepted after the wipe must reach the ledger through the server's
own background flushers, which made their consumer groups before the wipe.
"""

import asyncio
import time

import httpx
import pytest

from tests.fixtures.rig import prepare, voters
from voting import db
from voting.ledger import repair
from voting.services import open_redis

pytestmark = pytest.mark.faults


async def _vote(http: httpx.AsyncClient, voter, nomination: str) -> httpx.Response:
    return await http.post(
        "/api/votes",
        json={"nomination": nomination},
        headers={"cookie": voter.cookie, "x-csrf-token": voter.csrf},
    )


async def _ledger_receipts(database_url: str, edition_id: int) -> set[str]:
    conn = await db.connect(database_url)
    try:
        rows = await conn.fetch("SELECT receipt FROM votes WHERE edition_id=$1", edition_id)
    finally:
        await conn.close()
    return {r["receipt"] for r in rows}


async def _wait_in_ledger(
    database_url: str, edition_id: int, receipts: set[str], within: float
) -> float:
    started = time.monotonic()
    while True:
        missing = receipts - await _ledger_receipts(database_url, edition_id)
        if not missing:
            return time.monotonic() - started
        if time.monotonic() - started > within:
            raise AssertionError(
                f"{len(missing)} of {len(receipts)} accepted votes not in the ledger after"
                f" {within} s: stranded in Redis"
            )
        await asyncio.sleep(0.1)


async def test_votes_after_a_redis_wipe_reach_the_ledger(database_url, aof_redis, serve):
    stage = await prepare(database_url, aof_redis.url)
    server = serve(
        workers=1,
        VOTING_DATABASE_URL=database_url,
        VOTING_REDIS_URL=aof_redis.url,
        VOTING_REDIS_PREFIX=stage.prefix,
    )
    category = sorted(stage.nominations)[0]
    nomination = stage.nominations[category][0]
    crowd = voters(20, stage.edition.slug)
    before, after = crowd[:10], crowd[10:]
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        first = {}
        for voter in before:
            response = await _vote(http, voter, nomination)
            assert response.status_code == 202, response.text
            first[voter.id] = response.json()["receipt"]
        # The server's flushers have read these streams (and made their groups) before
        # the wipe: that is what they must not go on remembering.
        await _wait_in_ledger(database_url, stage.edition_id, set(first.values()), 10)

        wiper = aof_redis.client()
        try:
            wiper.flushall()  # this test's own redis-server, never the shared one
            wiper.script_flush()
        finally:
            wiper.close()

        pool = await db.create_pool(database_url, min_size=1, max_size=2)
        redis = open_redis(aof_redis.url)
        try:
            async with pool.acquire() as conn:
                replayed = await repair(redis, conn, stage.prefix, stage.edition.slug)
        finally:
            await redis.aclose()
            await pool.close()
        assert replayed == len(before)

        second = set()
        for voter in after:
            response = await _vote(http, voter, nomination)
            assert response.status_code == 202, response.text
            second.add(response.json()["receipt"])
        # The repaired ballots still refuse a second vote, with the first receipt.
        again = await _vote(http, before[0], nomination)
        assert again.status_code == 409, again.text
        assert again.json()["error"]["receipt"] == first[before[0].id]

    drained_in = await _wait_in_ledger(database_url, stage.edition_id, second, 10)
    in_ledger = await _ledger_receipts(database_url, stage.edition_id)
    assert in_ledger == set(first.values()) | second
    print(f"\nFAULT Redis wiped: votes after the wipe in the ledger in {drained_in:.2f} s")
