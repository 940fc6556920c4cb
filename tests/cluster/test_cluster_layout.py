"""What only a cluster can show: the shards spread over the masters, and the client's
bound on commands in flight answers a surge with 503, never MaxConnectionsError."""

import asyncio

import pytest
import redis.exceptions

from tests.fixtures.voting import redis_now, voting_edition
from voting.ballot import Ballot
from voting.redis_cluster import BoundedRedisCluster
from voting.security import pseudonym
from voting.services import open_redis

pytestmark = pytest.mark.cluster


async def test_the_app_talks_to_the_cluster_and_the_shards_spread_over_every_master(
    app, conn, redis_cluster, redis_prefix
):
    svc = app.state.services
    assert isinstance(svc.r, BoundedRedisCluster)
    ballot = Ballot(svc.r, redis_prefix)
    edition, _ = await voting_edition(conn, ballot, await redis_now(svc.r))
    for n in range(64):
        outcome = await ballot.cast(edition.slug, pseudonym("k", f"v{n}@example.org"), "C1", "N1")
        assert outcome.status == "accepted"
    per_node = []
    for node in redis_cluster.nodes:
        client = node.client()
        try:
            per_node.append(len(client.keys(f"{redis_prefix}:*:s")))
        finally:
            client.close()
    # 16 shard tags hash to slots owned by all three masters.
    assert all(count > 0 for count in per_node), per_node
    assert sum(per_node) == len(
        {ballot.keys(edition.slug).shard_of(pseudonym("k", f"v{n}@example.org")) for n in range(64)}
    )
    assert sum((await ballot.live_counts(edition.slug)).values()) == 64


async def test_more_commands_than_the_bound_wait_then_fail_as_unavailable(redis_cluster):
    client = open_redis(redis_cluster.url, max_connections=2, timeout=0.2)
    pausers = [node.client() for node in redis_cluster.nodes]
    try:
        await client.ping()
        for p in pausers:
            p.execute_command("CLIENT", "PAUSE", "800", "ALL")
        results = await asyncio.wait_for(
            asyncio.gather(*(client.get(f"k{i}") for i in range(12)), return_exceptions=True),
            10,
        )
    finally:
        for p in pausers:
            p.execute_command("CLIENT", "UNPAUSE")
            p.close()
        await client.aclose()
    refused = [r for r in results if isinstance(r, Exception)]
    # Two got a turn and waited for the pause to end; the rest gave up after 0.2 s with the
    # error the single-node pool raises (the vote handler's 503), never MaxConnectionsError.
    assert len(refused) == 10, results
    assert all(
        type(r) is redis.exceptions.ConnectionError and "No connection available" in str(r)
        for r in refused
    )
