"""Redis Cluster for the hot path: a `redis+cluster://host:port` URL and a bounded client.

redis-py's async RedisCluster keeps a pool per node that raises `MaxConnectionsError` at
its limit instead of waiting, and it has no blocking pool. Under a surge that would turn
into errors at random; here a semaphore bounds the commands (and pipelines) in flight per
process, a request waits up to the pool timeout for a turn, and then gets the same
`ConnectionError("No connection available.")` the single-node BlockingConnectionPool
raises, which the vote handler answers with 503 and Retry-After.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.exceptions
from redis.asyncio.cluster import ClusterPipeline, RedisCluster

# The schemes that mean "a Redis Cluster; this address is one of its nodes".
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def plain_url(url: str) -> str:
    """The node URL redis-py understands: redis+cluster://h:p -> redis://h:p."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme=CLUSTER_SCHEMES[parts.scheme]))


class _Turns:
    """At most `limit` operations in flight; a waiter gives up after `timeout` seconds."""

    def __init__(self, limit: int, timeout: float | None) -> None:
        self._sem = asyncio.Semaphore(limit)
        self._timeout = timeout

    @property
    def timeout(self) -> float | None:
        return self._timeout

    async def __aenter__(self) -> None:
        try:
            await asyncio.wait_for(self._sem.acquire(), self._timeout)
        except TimeoutError:
            raise redis.exceptions.ConnectionError("No connection available.") from None

    async def __aexit__(self, *exc: object) -> None:
        self._sem.release()


class BoundedPipeline(ClusterPipeline):
    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> Any:
        async with self.cluster_client.turns:  # type: ignore[attr-defined]
            return await super().execute(raise_on_error, allow_redirections)


class BoundedRedisCluster(RedisCluster):
    """RedisCluster whose commands wait their turn instead of failing at the pool limit."""

    turns: _Turns

    def set_bounds(self, limit: int, timeout: float | None) -> None:
        self.turns = _Turns(limit, timeout)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.turns:
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        if shard_hint:
            raise redis.exceptions.RedisClusterException("shard_hint is deprecated in cluster mode")
        return BoundedPipeline(self, transaction)


def open_cluster(
    url: str, *, max_connections: int, timeout: float | None, socket_timeout: float | None
) -> BoundedRedisCluster:
    client = BoundedRedisCluster.from_url(
        plain_url(url),
        # Per node: the semaphore keeps the process below this, with room for the
        # cluster client's own topology refreshes.
        max_connections=max_connections + 8,
        socket_timeout=socket_timeout,
        health_check_interval=30,
    )
    client.set_bounds(max_connections, timeout)
    return client
