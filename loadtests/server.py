"""A `voting serve` of the load tools' own, in its own process group, on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_command(port: int, workers: int) -> list[str]:
    """`voting serve` on 127.0.0.1:port with this interpreter, quiet, without demo data."""
    return [
        sys.executable,
        "-m",
        "voting.cli",
        "serve",
        "--no-demo",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]


def with_database(url: str, name: str) -> str:
    """The same server URL, another database (host and Unix-socket URLs alike)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def pure_command(port: int, workers: int) -> list[str]:
    """The bench's true baseline (loadtests/pure_app.py) on 127.0.0.1:port."""
    return [
        sys.executable,
        "-m",
        "loadtests.pure_app",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


class LocalServer:
    """Starts `voting serve --workers N` with the given environment; stops it on exit.
    `pure=True`: the pure Starlette baseline (loadtests/pure_app.py) instead."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        workers: int = 1,
        log: Path | None = None,
        pure: bool = False,
    ) -> None:
        self.env = env
        self.pure = pure
        self.name = "pure Starlette" if pure else "voting serve"
        self.health = "/" if pure else "/healthz"
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    def __enter__(self) -> LocalServer:
        self._log_file = open(self.log, "wb") if self.log else None
        out = self._log_file or subprocess.DEVNULL
        self.process = subprocess.Popen(
            (pure_command if self.pure else serve_command)(self.port, self.workers),
            env={**os.environ, **self.env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}"
                    + (f"; see {self.log}" if self.log else "")
                )
            try:
                if httpx.get(f"{self.url}{self.health}", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer {self.health} within 60 s")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu_seconds(self) -> float:
        """CPU time (user and system) used so far by the server and its worker processes."""
        import psutil

        try:
            root = psutil.Process(self.pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0.0
        total = 0.0
        for process in processes:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def stop(self) -> float:
        """SIGTERM, wait for the graceful stop; returns how long it took."""
        if self.process is None or self.process.poll() is not None:
            return 0.0
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            # Ours, in its own session: end the whole group (uvicorn's workers too).
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        return time.monotonic() - started

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._log_file is not None:
            self._log_file.close()
