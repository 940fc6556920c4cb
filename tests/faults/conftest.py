"""Fixtures of the fault tests: servers this test starts, and kills, itself."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from loadtests.server import LocalServer
from tests.fixtures.redis_servers import RedisServer, aof_server
from tests.fixtures.rig import SECRET, fault_server


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # Unix sockets (embedded PostgreSQL and Redis) live under it: keep the path short.
    path = Path(tempfile.mkdtemp(prefix="wsis-f-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def aof_redis(short_dir: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own, every write fsynced to its append-only file."""
    server = aof_server(short_dir / "redis").start()
    yield server
    server.kill()


@pytest.fixture
def serve(short_dir: Path) -> Iterator[Callable[..., LocalServer]]:
    """Start `voting serve` with these settings; every one started is gone after the test."""
    started: list[LocalServer] = []

    def start(workers: int = 2, **env: str) -> LocalServer:
        settings = {
            "VOTING_ENV": "development",
            "VOTING_DATA_DIR": str(short_dir / "data"),
            "VOTING_SECRET_KEY": SECRET,
            **env,
        }
        server = fault_server(
            settings, workers=workers, log_path=short_dir / f"serve{len(started)}.log"
        )
        started.append(server)
        return server.start()

    yield start
    # SIGKILL: a fault test may have left the server half-killed on purpose.
    for server in started:
        server.kill()
