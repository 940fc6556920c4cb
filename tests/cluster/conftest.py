"""Tests of the cluster itself, on a real three-master Redis Cluster this session starts.

The backend fixture (tests/fixtures/services.py) decides which Redis `redis_url`, and so
every fixture that opens Redis, talks to: here always the cluster. The tests that must
hold on both backends are not copied here; their modules are marked `backends` and run
on each.
"""

import pytest

from tests.fixtures.redis_servers import RedisClusterServers
from tests.fixtures.services import CLUSTER


@pytest.fixture(scope="session")
def redis_backend() -> str:
    return CLUSTER


@pytest.fixture(scope="session")
def redis_url(redis_cluster: RedisClusterServers) -> str:
    # Here, not only through `redis_backend`: a whole-suite run has cached the session's
    # `redis_url` for the single Redis before it reaches this folder, and a session
    # fixture is not made again because a fixture it depends on is overridden below it.
    return redis_cluster.url
