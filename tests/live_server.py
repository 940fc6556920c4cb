"""A real `voting serve` in a subprocess, on a free port, with a database and a Redis key
prefix of its own: what the browser tests and the multi-worker metrics test talk to."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import redis.asyncio as aioredis

from tests.conftest import TEST_SECRET, _with_database

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    database_url: str
    redis_url: str
    redis_prefix: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start(
    database_url: str,
    redis_url: str,
    redis_prefix: str,
    data_dir: Path,
    *,
    workers: int = 1,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> LiveServer:
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "serve.log"
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("VOTING_", "PROMETHEUS_"))},
        "VOTING_ENV": "development",
        "VOTING_DATABASE_URL": database_url,
        "VOTING_REDIS_URL": redis_url,
        "VOTING_REDIS_PREFIX": redis_prefix,
        "VOTING_SECRET_KEY": TEST_SECRET,
        "VOTING_DATA_DIR": str(data_dir),
        "VOTING_BASE_URL": f"http://127.0.0.1:{port}",
        **(env or {}),
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "voting.cli",
                "serve",
                "--no-demo",
                "--port",
                str(port),
                "--workers",
                str(workers),
                *args,
            ],
            cwd=REPO,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LiveServer(
        f"http://127.0.0.1:{port}",
        database_url,
        redis_url,
        redis_prefix,
        data_dir,
        process,
        log_path,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"voting serve exited early:\n{server.log()}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{server.url}/livez", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return server
        time.sleep(0.2)
    stop(server)
    raise RuntimeError(f"voting serve did not answer within {timeout}s:\n{server.log()}")


def stop(server: LiveServer) -> None:
    """SIGTERM to the process group we started (serve and its workers), then wait."""
    if server.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=25)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=10)


async def own_database(pg_admin_url: str, template_db: str) -> str:
    name = f"wsis_live_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(pg_admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    finally:
        await admin.close()
    return _with_database(pg_admin_url, name)


async def drop_database(pg_admin_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    assert name.startswith("wsis_live_"), f"not a database this module made: {name!r}"
    admin = await asyncpg.connect(pg_admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def drop_prefix(redis_url: str, prefix: str) -> None:
    client = aioredis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@contextlib.contextmanager
def running(*args: object, **kwargs: object) -> Iterator[LiveServer]:
    server = start(*args, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        stop(server)
