"""The one `voting serve` harness: load tools, tests and fault tests start the server here.

A `LocalServer` is `voting serve --workers N` (or the pure Starlette baseline) in a
process group of its own, on a free loopback port, with its output in a log file. It is
up when every worker has started (on Linux, counted under /proc, whichever ASGI server
runs them) and the health path answers 200. `stop()` is the graceful end (SIGTERM, as a
service manager sends it); `kill()` is a test's teardown after it killed pieces itself
(SIGKILL to every process).
"""

from __future__ import annotations

import contextlib
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

from voting.asgi_server import serves_in_main_process
from voting.settings import asgi_server

REPO = Path(__file__).resolve().parents[1]
PROC = Path("/proc")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_command(
    port: int,
    workers: int,
    *,
    demo: bool = False,
    log_level: str | None = "warning",
    args: tuple[str, ...] = (),
    server: str | None = None,
) -> list[str]:
    """`voting serve` on 127.0.0.1:port with this interpreter, without demo data unless
    asked, quiet unless `log_level` is None (the server's own default), on `server` (the
    ASGI server; None: VOTING_SERVER or the default)."""
    return [
        sys.executable,
        "-m",
        "voting.cli",
        "serve",
        *([] if demo else ["--no-demo"]),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        *(["--log-level", log_level] if log_level else []),
        *(["--server", server] if server else []),
        *args,
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


def _children(pid: int) -> list[int]:
    try:
        text = (PROC / str(pid) / "task" / str(pid) / "children").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [int(p) for p in text.split()]


def _exe(pid: int) -> str:
    try:
        return os.readlink(PROC / str(pid) / "exe")
    except OSError:
        return ""


def _cmdline(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _helper(cmdline: str) -> bool:
    """multiprocessing's own processes (resource tracker, fork server), not workers."""
    return "resource_tracker" in cmdline or "forkserver" in cmdline


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for its parent (Linux /proc)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.split(") ", 1)[1][:1] != "Z" if ") " in stat else False


def clean_environment(env: dict[str, str]) -> dict[str, str]:
    """This process's environment without its own VOTING_/PROMETHEUS_ settings, then `env`:
    a test's server is configured by what the test passes and nothing it inherited."""
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith(("VOTING_", "PROMETHEUS_"))
    }
    return {**inherited, **env}


class LocalServer:
    """Starts `voting serve --workers N` with the given environment; stops it on exit.
    `pure=True`: the pure Starlette baseline (loadtests/pure_app.py) instead.

    `inherit=True` (the load tools) passes this process's whole environment plus `env`;
    `inherit=False` (the tests) drops the caller's VOTING_ and PROMETHEUS_ variables first.
    """

    def __init__(
        self,
        env: dict[str, str],
        *,
        workers: int = 1,
        log: Path | None = None,
        pure: bool = False,
        demo: bool = False,
        log_level: str | None = "warning",
        args: tuple[str, ...] = (),
        health: str | None = None,
        inherit: bool = True,
        timeout: float = 60.0,
        server: str | None = None,
    ) -> None:
        self.env = env
        self.pure = pure
        self.name = "pure Starlette" if pure else "voting serve"
        self.health = health or ("/" if pure else "/healthz")
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self.timeout = timeout
        self.inherit = inherit
        # The pure baseline is uvicorn's (loadtests/pure_app.py); `voting serve`'s is
        # settled at start, from `server`, else the environment it is given.
        self.server = "uvicorn" if pure else server
        self.command = (
            pure_command(self.port, workers)
            if pure
            else serve_command(
                self.port, workers, demo=demo, log_level=log_level, args=args, server=server
            )
        )
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    def start(self) -> LocalServer:
        self._log_file = open(self.log_path, "ab") if self.log_path else None
        out = self._log_file or subprocess.DEVNULL
        env = {**os.environ, **self.env} if self.inherit else clean_environment(self.env)
        # Which ASGI server runs the workers, as `voting serve` will choose it.
        self.server = self.server or asgi_server(env)
        self.process = subprocess.Popen(
            self.command,
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._close_log()
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log()}"
                )
            # With several workers, wait for all of them: a test that kills one, or a
            # bench that loads them all, must not meet a worker still importing.
            if self.pure or len(self.worker_pids()) >= self.workers or not PROC.is_dir():
                try:
                    if httpx.get(f"{self.url}{self.health}", timeout=1).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(
            f"{self.name} did not answer {self.health} within {self.timeout:.0f} s:\n{self.log()}"
        )

    def __enter__(self) -> LocalServer:
        return self.start()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self, limit: int | None = 6000) -> str:
        """The server's output so far (its last `limit` characters; None: all of it)."""
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(errors="replace")
        return text if limit is None else text[-limit:]

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: the server's Python children (forked or
        spawned, under granian's or uvicorn's supervisor), not multiprocessing's helpers
        nor the embedded PostgreSQL and Redis; the server itself when it has no
        supervisor (uvicorn with one worker)."""
        if self.process is None:
            return []
        if serves_in_main_process(self.server or "", self.workers):
            return [self.process.pid]
        python = _exe(self.process.pid)
        if not python:  # the server has just exited: nothing to compare its children with
            return []
        return [
            p for p in _children(self.process.pid) if _exe(p) == python and not _helper(_cmdline(p))
        ]

    def all_pids(self) -> list[int]:
        """The server and every process under it (workers, embedded servers it started)."""
        if self.process is None:
            return []
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(_children(pid))
        return found

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

    def stop(self, timeout: float = 60.0) -> float:
        """SIGTERM, wait for the graceful stop; returns how long it took. What is still
        there after `timeout` is killed."""
        if self.process is None or self.process.poll() is not None:
            self._close_log()
            return 0.0
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close_log()
        return time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL to every process of the server (children first), then to its group."""
        if self.process is None:
            return
        for pid in reversed(self.all_pids()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        # Ours, in its own session: whatever the walk missed (a child re-parented early).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __exit__(self, *exc: object) -> None:
        self.stop()
