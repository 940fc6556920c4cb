"""The cluster batcher (voting/redis_cluster_batch.py): one pipeline to each node at a time,
each caller its own reply or error, NOSCRIPT per node, MOVED and ASK followed, and a kill
-9 of a master mid-batch loses no acknowledged vote and records no vote it said was not
recorded. Duplicates and the cutoff through it: tests/test_ballot.py on the cluster
(its `[cluster]` half, the redis_backend fixture) and the test below."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.exceptions
from redis.asyncio.cluster import RedisCluster

from tests.fixtures.batches import TICK_NAMES, four_ticks, second_items
from tests.fixtures.redis_servers import RedisClusterServers, RedisServer
from tests.fixtures.voting import redis_now, voter, voting_edition
from voting import db
from voting.ballot import Ballot
from voting.ledger import Flusher
from voting.redis_batch import AnswerLost
from voting.redis_cluster_batch import ClusterBatchedScript
from voting.services import open_redis

pytestmark = pytest.mark.cluster

ECHO = """
if ARGV[1] == 'fail' then return redis.error_reply('asked to fail: ' .. KEYS[1]) end
redis.call('INCR', KEYS[1])
return {KEYS[1], ARGV[1], #ARGV}
"""


@pytest.fixture
async def cluster_client(redis_url: str) -> AsyncIterator[Any]:
    client = open_redis(redis_url, max_connections=16)
    yield client
    await client.aclose()


def _node_of(cluster: RedisClusterServers, slot: int) -> tuple[RedisServer, str]:
    """The node serving `slot`, and its cluster id."""
    for node in cluster.nodes:
        with node.client() as c:
            for start, end, master, *_ in c.execute_command("CLUSTER SLOTS"):
                if start <= slot <= end:
                    owner = next(n for n in cluster.nodes if n.port == int(master[1]))
                    with owner.client() as o:
                        return owner, o.execute_command("CLUSTER MYID").decode()
    raise AssertionError(f"slot {slot} is not covered")


def _node_id(node: RedisServer) -> str:
    with node.client() as c:
        return str(c.execute_command("CLUSTER MYID").decode())


async def test_a_tick_s_calls_go_in_one_pipeline_per_node_with_their_own_replies(
    cluster_client, redis_prefix
):
    script = ClusterBatchedScript(cluster_client, ECHO)
    keys = [f"{redis_prefix}:{{t{i % 30}}}:k{i}" for i in range(300)]
    replies = await asyncio.gather(
        *(script(keys=[k], args=[str(i), "x"]) for i, k in enumerate(keys))
    )
    assert replies == [[k.encode(), str(i).encode(), 2] for i, k in enumerate(keys)]
    # 30 hash tags spread over the three masters: one pipeline to each.
    assert script.stats.nodes == 3 and script.stats.batches == 3 and script.stats.calls == 300
    # The same answers as redis-py's own Script object, one call at a time.
    plain = cluster_client.register_script(ECHO)
    assert await plain(keys=[keys[7]], args=["7", "x"]) == replies[7]
    assert int(await cluster_client.get(keys[7])) == 2
    # The cap still cuts a node's pipeline.
    capped = ClusterBatchedScript(cluster_client, ECHO, max_batch=10)
    await asyncio.gather(
        *(capped(keys=[f"{redis_prefix}:{{one}}:c"], args=["1"]) for _ in range(25))
    )
    assert capped.stats.batches == 3 and capped.stats.nodes == 1
    assert int(await cluster_client.get(f"{redis_prefix}:{{one}}:c")) == 25


async def test_calls_made_while_a_nodes_pipeline_is_out_go_together_in_the_next(
    cluster_client, redis_prefix
):
    """One pipeline to a node at a time: the calls of the ticks that come while it is out
    (held here) wait, and leave in one pipeline after it, each with its own reply; a
    call waits no longer than a command waits for its turn."""
    script = ClusterBatchedScript(cluster_client, ECHO)
    key = f"{redis_prefix}:{{flight}}:k"
    assert (await script(keys=[key], args=["warm"]))[1] == b"warm"  # the slot map
    flights = next(iter(script._flights.values()))
    assert flights.limit == 1 and flights.patience == cluster_client.turns.timeout
    script.stats = type(script.stats)()
    gate = asyncio.Event()
    real = script._run

    async def held(*args, **kwargs):
        await gate.wait()
        await real(*args, **kwargs)

    script._run = held  # type: ignore[method-assign]
    first = asyncio.ensure_future(script(keys=[key], args=["first"]))
    await asyncio.sleep(0)
    later = await four_ticks(lambda name: script(keys=[key], args=[name]))
    for _ in range(50):  # (each tick's calls reach the node's queue through a task)
        if len(flights.waiting) == 20:
            break
        await asyncio.sleep(0)
    assert len(flights.waiting) == 20 and flights.out == 1
    gate.set()
    replies = await asyncio.gather(first, *later)
    assert second_items(replies) == [b"first", *(n.encode() for n in TICK_NAMES)]
    assert script.stats.batches == 2 and script.stats.calls == 21
    assert int(await cluster_client.get(key)) == 22


async def test_the_slots_kept_are_redis_pys_and_stay_bounded(cluster_client, redis_prefix):
    script = ClusterBatchedScript(cluster_client, ECHO)
    keys = [f"{redis_prefix}:{{t{i % 50}}}:w" for i in range(200)] + ["plain", "{}x", "a{b}"]
    for key in keys * 2:
        assert script._slot(key) == cluster_client.keyslot(key), key
    assert len(script._slots) == 53
    for i in range(5000):  # keys of another shape never grow it past its bound
        script._slot(f"other{i}")
    assert len(script._slots) <= 4096
    assert script._slot("other4999") == cluster_client.keyslot("other4999")


async def test_a_script_error_reaches_only_its_own_caller(cluster_client, redis_prefix):
    script = ClusterBatchedScript(cluster_client, ECHO)
    results = await asyncio.gather(
        script(keys=[f"{redis_prefix}:{{a}}:ok"], args=["a"]),
        script(keys=[f"{redis_prefix}:{{a}}:bad"], args=["fail"]),
        script(keys=[f"{redis_prefix}:{{b}}:ok"], args=["b"]),
        return_exceptions=True,
    )
    assert results[0][1] == b"a" and results[2][1] == b"b"
    assert isinstance(results[1], redis.exceptions.ResponseError)
    assert "asked to fail" in str(results[1])


async def test_an_empty_script_cache_on_one_node_is_reloaded_there_only(
    cluster_client, redis_cluster, redis_prefix
):
    script = ClusterBatchedScript(cluster_client, ECHO)
    keys = [f"{redis_prefix}:{{n{i}}}:k" for i in range(30)]
    await asyncio.gather(*(script(keys=[k], args=["1"]) for k in keys))
    reloads = script.stats.reloads  # a new cluster may have needed a load per node
    node, _ = _node_of(redis_cluster, cluster_client.keyslot(keys[0]))
    with node.client() as c:
        c.script_flush()  # what a restart or a failover of that master leaves behind
    await asyncio.gather(*(script(keys=[k], args=["2"]) for k in keys))
    assert script.stats.reloads == reloads + 1
    # Each call ran exactly once, on whichever node.
    assert [int(await cluster_client.get(k)) for k in keys] == [2] * 30


async def test_a_moved_slot_is_followed_and_each_call_runs_once(
    cluster_client, redis_cluster, redis_prefix
):
    script = ClusterBatchedScript(cluster_client, ECHO)
    key = f"{redis_prefix}:{{moved}}:k"
    slot = cluster_client.keyslot(key)
    assert (await script(keys=[key], args=["1"]))[1] == b"1"  # the client knows the owner
    await cluster_client.delete(key)  # an empty slot moves without MIGRATE
    source, source_id = _node_of(redis_cluster, slot)
    target = next(n for n in redis_cluster.nodes if n is not source)

    def move(to: RedisServer) -> None:
        to_id = _node_id(to)
        for node in sorted(redis_cluster.nodes, key=lambda n: n is not to):
            with node.client() as c:
                c.execute_command("CLUSTER SETSLOT", slot, "NODE", to_id)

    move(target)
    try:
        replies = await asyncio.gather(*(script(keys=[key], args=[str(i)]) for i in range(20)))
        assert [r[1] for r in replies] == [str(i).encode() for i in range(20)]
        assert script.stats.redirections >= 1
        with target.client() as c:
            assert int(c.get(key)) == 20  # all ran on the new owner, once each
        # The client learnt the new owner: no redirection the next time.
        before = script.stats.redirections
        await script(keys=[key], args=["x"])
        assert script.stats.redirections == before
    finally:
        with target.client() as c:
            c.delete(key)
        move(source)
    assert source_id == _node_id(source)


async def test_an_asked_slot_runs_the_script_on_the_importing_node(
    cluster_client, redis_cluster, redis_prefix
):
    script = ClusterBatchedScript(cluster_client, ECHO)
    key = f"{redis_prefix}:{{asked}}:k"
    slot = cluster_client.keyslot(key)
    await script(keys=[f"{redis_prefix}:{{asked}}:warm"], args=["1"])
    await cluster_client.delete(f"{redis_prefix}:{{asked}}:warm")
    source, source_id = _node_of(redis_cluster, slot)
    target = next(n for n in redis_cluster.nodes if n is not source)
    target_id = _node_id(target)
    with target.client() as c:
        c.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", source_id)
    with source.client() as c:
        c.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target_id)
    try:
        # A key the source does not hold, in a migrating slot: ASK to the target.
        replies = await asyncio.gather(*(script(keys=[key], args=[str(i)]) for i in range(5)))
        assert [r[1] for r in replies] == [str(i).encode() for i in range(5)]
        assert script.stats.redirections >= 1
        with target.client() as c:
            pipe = c.pipeline(transaction=False)
            pipe.execute_command("ASKING")
            pipe.get(key)
            assert int(pipe.execute()[1]) == 5
            pipe.execute_command("ASKING")
            pipe.delete(key)
            pipe.execute()
    finally:
        for node in (source, target):
            with node.client() as c:
                c.execute_command("CLUSTER SETSLOT", slot, "STABLE")


async def test_duplicates_in_one_tick_yield_one_vote_per_category(
    cluster_client, conn, redis_prefix
):
    ballot = Ballot(cluster_client, redis_prefix)
    assert isinstance(ballot._cast, ClusterBatchedScript)
    edition, _ = await voting_edition(conn, ballot, await redis_now(cluster_client))
    attempts = [(voter(n % 40), ("C1", "C2")[n % 2], f"N{n % 3}") for n in range(400)]
    outcomes = await asyncio.gather(
        *(ballot.cast(edition.slug, v, c, nom) for v, c, nom in attempts)
    )
    accepted = {
        (v, c) for (v, c, _), o in zip(attempts, outcomes, strict=True) if o.status == "accepted"
    }
    # 40 voters, each voting in the category of its parity: one vote each.
    assert len(accepted) == 40
    assert sum(o.status == "accepted" for o in outcomes) == 40
    assert {o.status for o in outcomes} == {"accepted", "duplicate"}
    assert ballot._cast.stats.batches <= 3 * 2


def test_the_one_private_name_the_batcher_uses_is_still_there():
    # A newer redis-py without it: refreshes after a failed node would stop (see
    # ClusterBatchedScript._refresh); this says so at once.
    assert callable(getattr(RedisCluster, "_request_refresh", None))


# -- kill -9 of a master mid-batch -------------------------------------------------------


@pytest.fixture
def aof_cluster() -> Iterator[RedisClusterServers]:
    directory = Path(tempfile.mkdtemp(prefix="wsis-clk-", dir="/tmp"))
    cluster = RedisClusterServers(
        directory, persistence=("--appendonly", "yes", "--appendfsync", "always")
    )
    try:
        yield cluster.start()
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


async def test_a_master_killed_mid_batch_loses_no_acknowledged_vote(
    aof_cluster, conn, database_url
):
    prefix = "kill"
    client = open_redis(aof_cluster.url, max_connections=32, timeout=2, socket_timeout=2)
    pool = await db.create_pool(database_url, min_size=1, max_size=4)
    try:
        ballot = Ballot(client, prefix)
        edition, edition_id = await voting_edition(conn, ballot, await redis_now(client))
        acked: dict[tuple[str, str], str] = {}
        not_recorded: set[tuple[str, str]] = set()
        in_doubt: set[tuple[str, str]] = set()

        async def one(n: int) -> None:
            key = (voter(n), ("C1", "C2", "C3")[n % 3])
            try:
                outcome = await ballot.cast(edition.slug, key[0], key[1], "N1")
            except AnswerLost:
                in_doubt.add(key)
            except redis.exceptions.ConnectionError:
                not_recorded.add(key)
            else:
                assert outcome.status == "accepted", outcome
                acked[key] = outcome.receipt

        victim = aof_cluster.nodes[1]
        n = 0
        for wave in range(12):
            tasks = [asyncio.ensure_future(one(n + i)) for i in range(300)]
            n += 300
            if wave == 4:
                await asyncio.sleep(0.002)  # the wave's pipelines are on the wire
                victim.kill()
            await asyncio.gather(*tasks)
        assert acked and (not_recorded or in_doubt), "the kill changed nothing"
        await asyncio.to_thread(victim.start)
        deadline = time.monotonic() + 30
        while not all(RedisClusterServers._ok(node) for node in aof_cluster.nodes):
            assert time.monotonic() < deadline, "the cluster did not come back"
            await asyncio.sleep(0.1)
        # Every vote the ballot acknowledged, then drained into the ledger.
        flusher = Flusher(client, pool, prefix, consumer="final", claim_idle_ms=0)
        for _ in range(100):
            try:
                if not (await flusher.flush_once()).read:
                    break
            except redis.exceptions.RedisError:  # the client relearning the restarted node
                await asyncio.sleep(0.2)
        rows = await conn.fetch(
            "SELECT voter_id, category, receipt FROM votes WHERE edition_id=$1", edition_id
        )
        ledger = {(r["voter_id"], r["category"]): r["receipt"] for r in rows}
        missing = {k: v for k, v in acked.items() if ledger.get(k) != v}
        assert not missing, f"acknowledged but not in the ledger: {list(missing.items())[:5]}"
        # "Not recorded" was true: none of those is in the ledger.
        assert not (not_recorded & set(ledger))
        assert set(ledger) <= set(acked) | in_doubt
        print(
            f"acknowledged {len(acked)}, not recorded {len(not_recorded)}, in doubt"
            f" {len(in_doubt)} ({len(in_doubt & set(ledger))} of them recorded)"
        )
    finally:
        await client.aclose()
        await pool.close()
