"""Load generators for the benchmark, each in its own processes: wrk (C, preferred) or,
where wrk is not installed, locust's FastHttpUser in several processes."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent


@dataclass
class Result:
    rps: float
    requests: int
    errors: int  # non-2xx answers and socket errors
    p50_ms: float
    p95_ms: float
    p99_ms: float
    raw: str = ""
    # The generator's own CPU time (all its processes and threads) and the wall time of
    # the run: their ratio is how many cores it kept busy, to tell when it, and not the
    # server, set the pace.
    cpu_s: float = 0.0
    wall_s: float = 0.0

    @property
    def busy(self) -> float:
        """Cores the generator kept busy on average."""
        return self.cpu_s / self.wall_s if self.wall_s else 0.0


def run_measured(
    cmd: list[str], env: dict[str, str] | None = None
) -> tuple[int, str, str, float, float]:
    """Run `cmd` to its end: (exit code, stdout, stderr, CPU seconds of it and the
    children it waited for, wall seconds). The CPU time comes from wait4's resource usage
    of that one child, so nothing else this process runs is counted."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            process.kill()
            process.wait()
            raise
        wall = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        process.returncode = code
        out.seek(0)
        err.seek(0)
        return (
            code,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            usage.ru_utime + usage.ru_stime,
            wall,
        )


# Each vote round gets its own block of (voter, category) indices, split between the
# generator's threads or processes: `span` indices per round.


@dataclass(frozen=True)
class VoteFiles:
    voters: Path
    ballots: Path
    pairs: int  # distinct (voter, category) pairs: fresh votes available


class Wrk:
    name = "wrk"

    def __init__(self, threads: int = 2) -> None:
        self.threads = threads
        self.cores = threads  # one event loop per thread: it can keep this many busy

    def _run(self, cmd: list[str]) -> Result:
        code, out, err, cpu, wall = run_measured(cmd)
        if code != 0:
            raise subprocess.CalledProcessError(code, cmd, out, err)
        rps = float(_find(r"Requests/sec:\s+([\d.]+)", out) or 0)
        requests = int(_find(r"(\d+) requests in", out) or 0)
        errors = int(_find(r"Non-2xx or 3xx responses:\s+(\d+)", out) or 0)
        sock = re.search(
            r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
        )
        if sock:
            errors += sum(int(g) for g in sock.groups())
        lat = re.search(r"LAT p50=([\d.]+) p95=([\d.]+) p99=([\d.]+)", out)
        p50, p95, p99 = (float(g) for g in lat.groups()) if lat else (0.0, 0.0, 0.0)
        if not lat:
            p50 = _wrk_percentile(out, "50%")
            p99 = _wrk_percentile(out, "99%")
            p95 = 0.0
        return Result(rps, requests, errors, p50, p95, p99, out, cpu, wall)

    def bare(self, url: str, *, seconds: float, connections: int, path: str = "/livez") -> Result:
        return self._run(
            [
                "wrk",
                f"-t{self.threads}",
                f"-c{connections}",
                f"-d{_seconds(seconds)}",
                "--latency",
                f"{url}{path}",
            ]
        )

    def votes(
        self,
        url: str,
        files: VoteFiles,
        *,
        seconds: float,
        connections: int,
        start: int,
        span: int,
        rate: float | None = None,
    ) -> Result:
        script = "wrk_votes.lua"
        extra: list[str] = []
        if rate:
            script = "wrk_votes_paced.lua"
            # Each connection waits connections/rate seconds between its requests.
            extra = [str(max(1, round(connections / rate * 1000)))]
        return self._run(
            [
                "wrk",
                f"-t{self.threads}",
                f"-c{connections}",
                f"-d{_seconds(seconds)}",
                "-s",
                str(HERE / script),
                url,
                "--",
                str(files.voters),
                str(files.ballots),
                str(start),
                str(span // self.threads),
                *extra,
            ]
        )


class Locust:
    name = "locust FastHttpUser"

    def __init__(self, processes: int = 2) -> None:
        self.processes = processes
        self.cores = processes

    def _run(
        self, user: str, url: str, *, seconds: float, users: int, env: dict[str, str]
    ) -> Result:
        with tempfile.TemporaryDirectory(prefix="wsis-bench-locust-") as tmp:
            prefix = str(Path(tmp) / "run")
            cmd = [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(HERE / "bench_locust.py"),
                "--headless",
                "--host",
                url,
                "-u",
                str(users),
                "-r",
                str(users),
                "-t",
                _seconds(seconds),
                "--csv",
                prefix,
                "--only-summary",
                "--loglevel",
                "WARNING",
                "--exit-code-on-error",
                "0",
                user,
            ]
            if self.processes > 1:
                cmd[-1:-1] = ["--processes", str(self.processes)]
            _, _, stderr, cpu, wall = run_measured(cmd, env={**os.environ, **env})
            stats = Path(f"{prefix}_stats.csv")
            if not stats.exists():
                raise RuntimeError(f"locust wrote no statistics:\n{stderr[-2000:]}")
            with stats.open(encoding="utf-8") as f:
                rows = {row["Name"]: row for row in csv.DictReader(f)}
        row = rows["Aggregated"]
        return Result(
            rps=float(row["Requests/s"]),
            requests=int(row["Request Count"]),
            errors=int(row["Failure Count"]),
            p50_ms=float(row["50%"] or 0),
            p95_ms=float(row["95%"] or 0),
            p99_ms=float(row["99%"] or 0),
            raw=stderr,
            cpu_s=cpu,
            wall_s=wall,
        )

    def bare(self, url: str, *, seconds: float, connections: int, path: str = "/livez") -> Result:
        return self._run(
            "BareUser",
            url,
            seconds=seconds,
            users=connections,
            env={"BENCH_BARE_PATH": path},
        )

    def votes(
        self,
        url: str,
        files: VoteFiles,
        *,
        seconds: float,
        connections: int,
        start: int,
        span: int,
        rate: float | None = None,
    ) -> Result:
        env = {
            "BENCH_VOTERS": str(files.voters),
            "BENCH_BALLOTS": str(files.ballots),
            "BENCH_START": str(start),
            "BENCH_SPAN": str(span // self.processes),
            "BENCH_RATE": str(rate / connections if rate else 0),
        }
        return self._run("VoteUser", url, seconds=seconds, users=connections, env=env)


Generator = Wrk | Locust


def choose(name: str) -> Generator:
    """`auto`: wrk when it is installed (apt-get install wrk), else locust."""
    if name == "wrk" or (name == "auto" and shutil.which("wrk")):
        if not shutil.which("wrk"):
            raise RuntimeError("wrk is not installed (apt-get install wrk), use --generator locust")
        return Wrk()
    return Locust(processes=max(2, os.cpu_count() or 2))


def _seconds(value: float) -> str:
    return f"{max(1, round(value))}s"


def _find(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text)
    return match.group(1) if match else None


def _wrk_percentile(out: str, label: str) -> float:
    match = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s)\b", out, re.MULTILINE)
    if not match:
        return 0.0
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
