"""kill -9 of Redis (append-only file, fsync always) mid-surge, then a restart.

While Redis is down every vote is refused with 503 and Retry-After, never accepted and
lost. It comes back from its append-only file with an empty script cache (NOSCRIPT: the
client reloads the script) and every vote it acknowledged.
"""

import asyncio
import time

import httpx
import pytest

from tests.fixtures.redis_servers import free_port
from tests.fixtures.rig import (
    check_ledger,
    prepare,
    report,
    voters,
    voting_under_load,
    wait_accepting,
    wait_drained,
)
from voting import db

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


# -- what a 503 says became of the vote ------------------------------------------------------


async def _vote(http, voter, nomination):
    return await http.post(
        "/api/votes",
        json={"nomination": nomination},
        headers={"cookie": voter.cookie, "x-csrf-token": voter.csrf},
    )


async def _mine(http, voter):
    r = await http.get("/api/votes/mine", headers={"cookie": voter.cookie})
    assert r.status_code == 200, r.text
    return r.json()["votes"]


async def test_a_vote_while_redis_is_down_is_unavailable_and_nothing_recorded(
    database_url, aof_redis, serve
):
    stage = await prepare(database_url, aof_redis.url)
    server = serve(
        workers=1,
        VOTING_DATABASE_URL=database_url,
        VOTING_REDIS_URL=aof_redis.url,
        VOTING_REDIS_PREFIX=stage.prefix,
    )
    category = sorted(stage.nominations)[0]
    nomination = stage.nominations[category][0]
    first, second = voters(2, stage.edition.slug)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        assert (await _vote(http, first, nomination)).status_code == 202
        aof_redis.kill()  # down before the request: the vote never reaches Redis
        r = await _vote(http, second, nomination)
        assert r.status_code == 503 and r.headers["retry-after"], r.text
        error = r.json()["error"]
        assert error["code"] == "unavailable", error
        assert "NOT recorded" in error["message"]
        await asyncio.to_thread(aof_redis.start)
        assert await _mine(http, second) == []  # nothing recorded, as it said
        again = await _vote(http, second, nomination)
        assert again.status_code == 202, again.text
    await wait_drained(aof_redis.url, stage)
    conn = await db.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT receipt FROM votes WHERE edition_id=$1 AND voter_id=$2",
            stage.edition_id,
            second.id,
        )
    finally:
        await conn.close()
    assert [r["receipt"] for r in rows] == [again.json()["receipt"]]


class AnswerEater:
    """A TCP proxy between `voting serve` and a real Redis. Armed, it lets the next vote
    script (EVALSHA) through to Redis, lets Redis run it and answer, then drops the
    answer and the connection: what a Redis that dies right after running the script,
    or a network that fails on the way back, does to the vote."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.armed = False
        self.eaten = 0
        self._server = None
        self._transports: set = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> "AnswerEater":
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        self._server.close()
        for transport in self._transports:
            transport.abort()
        await self._server.wait_closed()

    async def _client(self, reader, writer) -> None:
        self._transports.add(writer.transport)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        self._transports.add(up_writer.transport)
        doomed = asyncio.Event()

        async def outward() -> None:
            while data := await reader.read(65536):
                if self.armed and b"EVALSHA" in data:
                    self.armed = False
                    doomed.set()
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def inward() -> None:
            while data := await up_reader.read(65536):
                if doomed.is_set():
                    # Redis ran the script and answered: the answer goes nowhere.
                    self.eaten += 1
                    writer.transport.abort()
                    up_writer.close()
                    return
                writer.write(data)
                await writer.drain()
            writer.close()

        tasks = [asyncio.create_task(outward()), asyncio.create_task(inward())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            writer.transport.abort()
            up_writer.transport.abort()


async def test_a_vote_whose_answer_is_lost_is_outcome_unknown_and_its_retry_shows_the_receipt(
    database_url, aof_redis, serve
):
    proxy = await AnswerEater(aof_redis.port).start()
    try:
        stage = await prepare(database_url, aof_redis.url)
        server = serve(
            workers=1,
            VOTING_DATABASE_URL=database_url,
            VOTING_REDIS_URL=proxy.url,
            VOTING_REDIS_PREFIX=stage.prefix,
        )
        category = sorted(stage.nominations)[0]
        nomination = stage.nominations[category][0]
        warm, voter = voters(2, stage.edition.slug)
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            # A first vote loads the script into Redis: the eaten answer is then the
            # script's own, not a NOSCRIPT (which would mean it did not run).
            assert (await _vote(http, warm, nomination)).status_code == 202
            proxy.armed = True
            r = await _vote(http, voter, nomination)
            assert proxy.eaten == 1, "the answer was not dropped"
            assert r.status_code == 503 and r.headers["retry-after"], r.text
            error = r.json()["error"]
            assert error["code"] == "outcome_unknown", error
            assert "may or may not" in error["message"] and "safe" in error["message"]
            # It was recorded: the retry says so, with the receipt.
            again = await _vote(http, voter, nomination)
            assert again.status_code == 409, again.text
            receipt = again.json()["error"]["receipt"]
            assert [v["receipt"] for v in await _mine(http, voter)] == [receipt]
            metrics = (await http.get("/metrics")).text
        assert 'reason="outcome_unknown"' in metrics
        await wait_drained(aof_redis.url, stage)
        conn = await db.connect(database_url)
        try:
            rows = await conn.fetch(
                "SELECT receipt FROM votes WHERE edition_id=$1", stage.edition_id
            )
        finally:
            await conn.close()
        assert receipt in {r["receipt"] for r in rows} and len(rows) == 2
    finally:
        await proxy.stop()
