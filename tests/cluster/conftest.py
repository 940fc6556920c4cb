"""The voting tests again, on a real three-master Redis Cluster this session starts.

The cluster's nodes are redis-server processes on loopback ports under a temporary dir,
joined with `redis-cli --cluster create`. Overriding `redis_url` points every fixture that
opens Redis (the app's services, the ballot, the flusher) at the cluster through the
engine's own `redis+cluster://` URL.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.redis_servers import RedisClusterServers


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    directory = Path(tempfile.mkdtemp(prefix="wsis-cl-", dir="/tmp"))
    cluster = RedisClusterServers(directory)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url(redis_cluster: RedisClusterServers) -> str:
    return redis_cluster.url


@pytest.fixture
def redis_prefix() -> str:
    # The cluster lives for this session only: nothing to clean up after a test.
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings(settings):
    # 500 concurrent attempts on two busy cores (shared with other jobs) can wait longer
    # than the 1 s default for a turn and be refused with 503, which is the designed
    # answer to overload. These tests are about what the votes do on a cluster, not about
    # its speed here: wait longer.
    return settings.with_overrides(redis_pool_timeout=10.0)
