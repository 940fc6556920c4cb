"""The hot path's benchmark: votes per second through the full HTTP path against a bare
endpoint of the same server, the latency at half load, and the flusher's drain rate.

It creates its own database and Redis key prefix on the configured servers (or the
embedded ones), starts `voting serve --workers N` in its own process, and drives it with
wrk (a C load generator in another process, so the client is not the bottleneck).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from itsdangerous import TimestampSigner

HERE = Path(__file__).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def session_cookie(secret: str, session: dict) -> str:
    """The cookie Starlette's SessionMiddleware would set for this session."""
    data = base64.b64encode(json.dumps(session).encode("utf-8"))
    return TimestampSigner(secret).sign(data).decode()


async def prepare(db_url: str, redis_url: str, prefix: str, voters: int, secret: str, out: Path):
    """Migrate, load an open edition with nominations, write the wrk input file."""
    from voting import db, edition_store
    from voting.ballot import Ballot
    from voting.contest import builtin_edition_path, load_edition_file
    from voting.security import pseudonym
    from voting.seed import seed_nominations
    from voting.services import open_redis

    conn = await db.connect(db_url)
    try:
        await db.migrate(conn)
        now = datetime.now(UTC)
        edition = load_edition_file(builtin_edition_path("demo"), now=now)
        await edition_store.save_edition(conn, edition, now=now, actor="bench", make_current=True)
        await seed_nominations(conn, 180, edition_slug="demo", seed=1, progress=False)
        rows = await conn.fetch(
            "SELECT public_id, category FROM nominations WHERE status='accepted' ORDER BY 1"
        )
    finally:
        await conn.close()
    redis = open_redis(redis_url)
    await Ballot(redis, prefix).sync_window(edition)
    await redis.aclose()
    by_cat: dict[str, list[str]] = {}
    for r in rows:
        by_cat.setdefault(r["category"], []).append(r["public_id"])
    categories = sorted(by_cat)
    lines = []
    for v in range(voters):
        vid = pseudonym(secret, f"bench{v}@example.org")
        csrf = uuid.uuid4().hex
        cookie = session_cookie(
            secret, {"voter": {"id": vid, "d": "example.org", "e": "demo"}, "csrf": csrf}
        )
        for c in categories:
            noms = by_cat[c]
            body = json.dumps({"nomination": noms[v % len(noms)]})
            lines.append(f"{cookie}\t{csrf}\t{body}")
    # Interleave so consecutive requests come from different voters.
    n = len(categories)
    ordered = [lines[v * n + c] for c in range(n) for v in range(voters)]
    await asyncio.to_thread(out.write_text, "\n".join(ordered) + "\n")
    return len(ordered)


async def drain(db_url: str, redis_url: str, prefix: str) -> tuple[int, float]:
    """Time one flusher draining the whole backlog the vote rounds left in the streams."""
    from voting import db
    from voting.ledger import Flusher
    from voting.services import open_redis

    redis = open_redis(redis_url)
    pool = await db.create_pool(db_url, min_size=1, max_size=2)
    try:
        flusher = Flusher(redis, pool, prefix, consumer="bench", batch=5000)
        started = time.perf_counter()
        total = 0
        while True:
            stats = await flusher.flush_once(reclaim=False)
            total += stats.inserted
            if not stats.read:
                break
        return total, time.perf_counter() - started
    finally:
        await redis.aclose()
        await pool.close()


def wrk(
    url: str,
    *,
    seconds: int,
    connections: int,
    threads: int,
    script: Path | None,
    args: list[str] | None = None,
    rate: int | None = None,
) -> dict:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script:
        cmd += ["-s", str(script)]
    cmd.append(url)
    if args:
        cmd += ["--", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, "non2xx": int(non2xx.group(1)) if non2xx else 0, "raw": out}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--voters", type=int, default=20000)
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk is needed (apt-get install wrk)", file=sys.stderr)
        return 2
    admin = os.environ.get("VOTING_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    redis_url = os.environ.get("VOTING_REDIS_URL") or "redis://127.0.0.1:6379/0"
    name = f"wsis_bench_{uuid.uuid4().hex[:8]}"
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    secret = "bench-secret-" + uuid.uuid4().hex
    tmp = Path(tempfile.mkdtemp(prefix="wsis-bench-"))

    async def create() -> None:
        c = await asyncpg.connect(admin)
        await c.execute(f'CREATE DATABASE "{name}"')
        await c.close()

    async def drop() -> None:
        c = await asyncpg.connect(admin)
        await c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await c.close()

    asyncio.run(create())
    db_url = _with_db(admin, name)
    port = _free_port()
    proc = None
    try:
        total = asyncio.run(
            prepare(db_url, redis_url, prefix, args.voters, secret, tmp / "votes.tsv")
        )
        env = {
            **os.environ,
            "VOTING_DATABASE_URL": db_url,
            "VOTING_REDIS_URL": redis_url,
            "VOTING_SECRET_KEY": secret,
            "VOTING_REDIS_PREFIX": prefix,
            "VOTING_DATA_DIR": str(tmp),
            # The flusher is measured on its own below, from this process.
            "VOTING_BACKGROUND_TASKS": "false",
        }
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "voting.cli",
                "serve",
                "--no-demo",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        threads = 2
        bare, votes = [], []
        for _ in range(args.rounds):
            bare.append(
                wrk(
                    f"{base}/livez",
                    seconds=args.seconds,
                    connections=args.connections,
                    threads=threads,
                    script=None,
                )["rps"]
            )
            v = wrk(
                base,
                seconds=args.seconds,
                connections=args.connections,
                threads=threads,
                script=HERE / "wrk_votes.lua",
                args=[str(tmp / "votes.tsv"), str(threads)],
            )
            votes.append(v["rps"])
            print(
                f"round: bare {bare[-1]:.0f} req/s, votes {votes[-1]:.0f} votes/s "
                f"(non-2xx {v['non2xx']})",
                flush=True,
            )
        print(f"workers: {args.workers}; vote lines available: {total}")
        print(f"bare endpoint median: {statistics.median(bare):.0f} req/s")
        print(f"vote path median:     {statistics.median(votes):.0f} votes/s")
        drained, seconds = asyncio.run(drain(db_url, redis_url, prefix))
        drain_rate = drained / seconds if seconds else 0.0
        print(
            f"flusher drain: {drained} votes in {seconds:.2f} s = {drain_rate:.0f} votes/s "
            f"({drain_rate / statistics.median(votes):.1f}x the vote rate)"
        )
        print(f"vote/bare ratio: {statistics.median(votes) / statistics.median(bare):.2f}")
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            started = time.monotonic()
            try:
                proc.wait(60)
                print(f"server stopped {time.monotonic() - started:.1f} s after SIGTERM")
            except subprocess.TimeoutExpired:
                print("the server did not stop within 60 s of SIGTERM", file=sys.stderr)
                subprocess.run(
                    ["py-spy", "dump", "--pid", str(proc.pid)],
                    check=False,
                )
                proc.kill()
        asyncio.run(drop())
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
