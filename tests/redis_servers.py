"""Redis servers a test starts itself: they live in loadtests/redis_servers.py, where
`voting bench --redis-cluster` starts its cluster with the same code."""

from loadtests.redis_servers import (
    REDIS_CLI,
    REDIS_SERVER,
    RedisClusterServers,
    RedisServer,
    aof_server,
    cluster_port,
    free_port,
)

__all__ = [
    "REDIS_CLI",
    "REDIS_SERVER",
    "RedisClusterServers",
    "RedisServer",
    "aof_server",
    "cluster_port",
    "free_port",
]
