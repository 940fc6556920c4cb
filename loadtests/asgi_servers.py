"""The ASGI server as a lever: uvicorn (as `voting serve` runs it) against granian, for the
bench's pure Starlette hello and for the engine's vote path, one worker each, the same
wrk load, rounds alternating between the two so that both see the same neighbours.

A measurement, not a switch: `voting serve` stays on uvicorn until graceful shutdown,
worker restart, proxy headers and the fault tests are shown to hold under granian.

    python -m loadtests.asgi_servers --rounds 3 --seconds 4 [--no-engine]

Needs wrk, granian (the test extra) and, for the engine, the configured PostgreSQL and
Redis (VOTING_DATABASE_URL as an administrator, VOTING_REDIS_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
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


async def engine(args: argparse.Namespace, wrk: generators.Wrk) -> dict[str, list[float]]:
    from voting.metrics_dir import prepare_metrics_dir
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
            "VOTING_DATA_DIR": str(tmp),
            "VOTING_TRUST_PROXY_HEADERS": "true",
            "VOTING_BACKGROUND_TASKS": "false",
        }
        # What `voting serve` does before its workers start: the metrics directory.
        prepare_metrics_dir(tmp)
        env["PROMETHEUS_MULTIPROC_DIR"] = os.environ["PROMETHEUS_MULTIPROC_DIR"]
        span = files.pairs // (2 * args.rounds + 1)
        errors = {"uvicorn": 0, "granian": 0}

        def rounds(uvicorn_url: str, granian_url: str) -> None:
            start = 0
            for _ in range(args.rounds):
                for label, url in (("uvicorn", uvicorn_url), ("granian", granian_url)):
                    bare = wrk.bare(url, seconds=args.seconds, connections=args.connections)
                    votes = wrk.votes(
                        url,
                        files,
                        seconds=args.seconds,
                        connections=args.connections,
                        start=start,
                        span=span,
                    )
                    start += span
                    figures[f"{label} /livez"].append(bare.rps)
                    figures[f"{label} votes"].append(votes.rps)
                    errors[label] += votes.errors + bare.errors

        with (
            LocalServer(env, workers=1, log=tmp / "uvicorn.log") as uvicorn,
            granian("voting.app:app_from_env", env, factory=True, health="/healthz") as other,
        ):
            await asyncio.to_thread(rounds, uvicorn.url, other)
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
    if not args.no_engine:
        figures.update(asyncio.run(engine(args, wrk)))
    for label, values in figures.items():
        print(_line(label, values))
    for kind in ("hello", "votes", "/livez"):
        if f"uvicorn {kind}" in figures:
            u = statistics.median(figures[f"uvicorn {kind}"])
            g = statistics.median(figures[f"granian {kind}"])
            print(f"granian/uvicorn ({kind}): {g / u if u else 0:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
