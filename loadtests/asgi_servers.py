"""The ASGI server as a lever: uvicorn against granian, for the bench's pure Starlette
hello and for the engine (`voting serve --server uvicorn` and `--server granian`, through
the one harness, loadtests/server.py), one worker each, the same wrk load, rounds
alternating between the two so that both see the same neighbours; for the engine, the
server's CPU time a request too (every process of it), the figure that sizes a machine
whose cores are all busy.

    python -m loadtests.asgi_servers --rounds 3 --seconds 4 [--no-engine]

Three runs on 2026-12-06 (2 shared cores, load average 1.84, 3.92, 1.88): granian's rates
were higher (votes 1.08x, 1.09x, 1.09x; /livez 1.39x, 1.45x, 1.35x; hello 1.37x, 1.99x,
1.37x) while its CPU a vote was higher too (229 against 191 us, 228 against 201, 219
against 192), so `voting serve` stays on uvicorn by default (README, "The ASGI server as
a lever").

Needs wrk and, for the engine, the configured PostgreSQL and Redis (VOTING_DATABASE_URL as
an administrator, VOTING_REDIS_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import httpx

from . import bench, generators
from .server import LocalServer, free_port, with_database


@contextlib.contextmanager
def granian(target: str, env: dict[str, str], *, factory: bool, health: str) -> Iterator[str]:
    """granian serving `target` (module:attribute) on a free port, one worker, uvloop."""
    port = free_port()
    cmd = [sys.executable, "-m", "granian", "--interface", "asgi", "--workers", "1"]
    cmd += ["--loop", "uvloop", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--log-level", "warning", "--no-ws", *(["--factory"] if factory else []), target]
    process = subprocess.Popen(
        cmd,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"granian exited with {process.returncode}")
            try:
                if httpx.get(url + health, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("granian did not answer within 60 s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def _line(label: str, values: list[float]) -> str:
    rounds = ", ".join(f"{v:.0f}" for v in values)
    return f"{label}: median {statistics.median(values):.0f}/s  rounds {rounds}"


def hello(args: argparse.Namespace, wrk: generators.Wrk) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"uvicorn hello": [], "granian hello": []}
    with (
        LocalServer({}, workers=1, pure=True) as uvicorn,
        granian("loadtests.pure_app:app", {}, factory=False, health="/") as other,
    ):
        for _ in range(args.rounds):
            for label, url in (("uvicorn hello", uvicorn.url), ("granian hello", other)):
                result = wrk.bare(url, seconds=args.seconds, connections=args.connections, path="/")
                figures[label].append(result.rps)
    return figures


async def engine(
    args: argparse.Namespace, wrk: generators.Wrk, cpu: dict[str, list[float]]
) -> dict[str, list[float]]:
    from voting.settings import load_settings

    settings = load_settings()
    if not settings.database_url or not settings.redis_url:
        raise RuntimeError("set VOTING_DATABASE_URL (an administrator's) and VOTING_REDIS_URL")
    name, prefix = f"wsis_asgi_{uuid.uuid4().hex[:8]}", f"asgi{uuid.uuid4().hex[:6]}"
    secret = "bench-secret-" + uuid.uuid4().hex
    tmp = Path(tempfile.mkdtemp(prefix="wsis-asgi-"))
    admin = await asyncpg.connect(settings.database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    db_url = with_database(settings.database_url, name)
    figures: dict[str, list[float]] = {
        "uvicorn votes": [],
        "granian votes": [],
        "uvicorn /livez": [],
        "granian /livez": [],
    }
    try:
        files = await bench.prepare(db_url, settings.redis_url, prefix, args.voters, secret, tmp)
        env = {
            "VOTING_DATABASE_URL": db_url,
            "VOTING_REDIS_URL": settings.redis_url,
            "VOTING_SECRET_KEY": secret,
            "VOTING_REDIS_PREFIX": prefix,
            "VOTING_TRUST_PROXY_HEADERS": "true",
            "VOTING_BACKGROUND_TASKS": "false",
        }
        span = files.pairs // (2 * args.rounds + 1)
        errors = {"uvicorn": 0, "granian": 0}

        def measured(server: LocalServer, kind: str, run: Callable[[], generators.Result]) -> None:
            """The load's rate, and its server CPU time a request (every process)."""
            label = server.server or ""
            before = server.cpu_seconds()
            result = run()
            used = server.cpu_seconds() - before
            figures[f"{label} {kind}"].append(result.rps)
            cpu[f"{label} {kind}"].append(used / max(result.requests, 1) * 1e6)
            errors[label] += result.errors

        def rounds(servers: list[LocalServer]) -> None:
            start = 0
            for _ in range(args.rounds):
                for server in servers:
                    load = {"seconds": args.seconds, "connections": args.connections}
                    measured(server, "/livez", functools.partial(wrk.bare, server.url, **load))
                    measured(
                        server,
                        "votes",
                        functools.partial(
                            wrk.votes, server.url, files, start=start, span=span, **load
                        ),
                    )
                    start += span

        # `voting serve` itself on each server, through the one harness; each its own
        # data dir (serve empties the metrics directory under it as it starts).
        def serve(name: str) -> LocalServer:
            own = {**env, "VOTING_DATA_DIR": str(tmp / name)}
            return LocalServer(own, workers=1, log=tmp / f"{name}.log", server=name)

        with serve("uvicorn") as uvicorn, serve("granian") as other:
            await asyncio.to_thread(rounds, [uvicorn, other])
        # A server that answers votes with errors is not faster: it is broken.
        print(f"refused or failed: uvicorn {errors['uvicorn']}, granian {errors['granian']}")
    finally:
        await bench._cleanup(settings.redis_url, prefix)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--voters", type=int, default=40_000)
    parser.add_argument("--no-engine", action="store_true", help="the pure hello only")
    args = parser.parse_args(argv)
    wrk = generators.Wrk()
    figures = hello(args, wrk)
    cpu: dict[str, list[float]] = collections.defaultdict(list)
    if not args.no_engine:
        figures.update(asyncio.run(engine(args, wrk, cpu)))
    for label, values in figures.items():
        print(_line(label, values))
    for label, values in cpu.items():
        rounds = ", ".join(f"{v:.0f}" for v in values)
        print(f"{label}: server CPU {statistics.median(values):.0f} us a request  rounds {rounds}")
    for kind in ("hello", "votes", "/livez"):
        if f"uvicorn {kind}" in figures:
            u = statistics.median(figures[f"uvicorn {kind}"])
            g = statistics.median(figures[f"granian {kind}"])
            print(f"granian/uvicorn ({kind}): {g / u if u else 0:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
