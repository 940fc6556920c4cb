"""What a running engine holds: settings, clock, pools. One instance per process."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from . import db
from .clock import Clock, SystemClock
from .redis_cluster import is_cluster_url, open_cluster
from .settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    pool: asyncpg.Pool | None = None
    redis: aioredis.Redis | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def db(self) -> asyncpg.Pool:
        if self.pool is None:
            raise RuntimeError("the database pool is not open")
        return self.pool

    @property
    def r(self) -> aioredis.Redis:
        if self.redis is None:
            raise RuntimeError("the Redis client is not open")
        return self.redis

    def key(self, *parts: str) -> str:
        """A Redis key under this engine's prefix."""
        return ":".join((self.settings.redis_prefix, *parts))

    async def open(self) -> None:
        s = self.settings
        if not s.database_url or not s.redis_url:
            raise RuntimeError("database and Redis URLs must be resolved before opening")
        if self.pool is None:
            try:
                self.pool = await db.create_pool(
                    s.database_url, min_size=s.db_pool_min, max_size=s.db_pool_max
                )
            except (OSError, asyncpg.PostgresError) as exc:
                # A worker (re)started while PostgreSQL is away must still start: uvicorn's
                # supervisor stops the whole server when a worker fails at start-up. The
                # pool then connects on first use; until then those requests get 503.
                log.warning("PostgreSQL unavailable at start (%s); connecting on first use", exc)
                self.pool = await db.create_pool(s.database_url, min_size=0, max_size=s.db_pool_max)
        if self.redis is None:
            self.redis = open_redis(
                s.redis_url,
                max_connections=s.redis_pool_max,
                timeout=s.redis_pool_timeout,
                socket_timeout=s.redis_timeout,
            )

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
            self.redis = None
        if self.pool is not None:
            try:
                # close() waits for every connection to come back; a stuck one must not
                # keep a worker from stopping.
                await asyncio.wait_for(self.pool.close(), 10)
            except TimeoutError:
                self.pool.terminate()
            self.pool = None


def open_redis(
    url: str,
    *,
    max_connections: int = 64,
    timeout: float | None = 1.0,
    socket_timeout: float | None = 5.0,
) -> aioredis.Redis:
    """A client for one Redis (redis://, rediss://, unix://) or a Redis Cluster
    (redis+cluster://host:port, rediss+cluster://..., any one node of it).

    `timeout` is how long a command waits for a free connection when all are busy; then
    it raises ConnectionError, which the vote handler answers with 503 and Retry-After.
    `socket_timeout` bounds a command on a Redis that stopped answering, so a request
    never hangs.
    """
    if is_cluster_url(url):
        return open_cluster(  # type: ignore[return-value]
            url, max_connections=max_connections, timeout=timeout, socket_timeout=socket_timeout
        )
    # BlockingConnectionPool waits for a free connection under a surge; the default pool
    # raises at its limit instead (DESIGN.md, traps).
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=socket_timeout,
        health_check_interval=30,
    )
    return aioredis.Redis(connection_pool=pool)
