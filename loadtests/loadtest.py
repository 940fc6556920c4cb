"""`voting loadtest`: the organizers' rehearsal of the load, with a verdict.

1. A rehearsal edition (voting/rehearsal.py): created from the current edition unless
   --edition names one, and minted voter tokens for it. The real edition is never touched.
2. The target: --target URL (a staging deployment sharing this configuration's database,
   Redis and secret key), or a `voting serve` started here on the configured servers (the
   embedded ones when none is configured).
3. locust, headless, runs the flows of locustfile.py (or surge.py: the final hour) and
   writes its CSV and HTML reports into --report-dir.
4. A summary table per request type; the ledger check: once the streams are drained,
   the votes the engine accepted (202) equal the rehearsal's ledger rows, and every
   second vote a returning voter sent was refused (409).
5. Exit 1 when a threshold (failure rate, p95, p99) is missed or the ledger check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from voting.settings import Settings

from .server import LocalServer

HERE = Path(__file__).parent


def seconds(timespan: str) -> int:
    """locust's timespans: 90, 90s, 5m, 1h30m."""
    if timespan.isdigit():
        return int(timespan)
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", timespan)
    if not parts or not any(parts.groups()):
        raise ValueError(f"not a duration: {timespan!r} (say 90s, 5m or 1h)")
    h, m, s = (int(g or 0) for g in parts.groups())
    return h * 3600 + m * 60 + s


@dataclass
class Row:
    type: str
    name: str
    requests: int
    failures: int
    rps: float
    p50: float
    p95: float
    p99: float


def read_stats(path: Path) -> list[Row]:
    with path.open(encoding="utf-8") as f:
        return [
            Row(
                r["Type"],
                r["Name"],
                int(r["Request Count"]),
                int(r["Failure Count"]),
                float(r["Requests/s"]),
                float(r["50%"] or 0),
                float(r["95%"] or 0),
                float(r["99%"] or 0),
            )
            for r in csv.DictReader(f)
        ]


def table(rows: list[Row]) -> str:
    lines = [
        f"{'request':44} {'count':>7} {'fail':>6} {'req/s':>8} {'p50':>6} {'p95':>6} {'p99':>6}"
    ]
    for r in rows:
        label = f"{r.type} {r.name}".strip()[:44]
        lines.append(
            f"{label:44} {r.requests:7d} {r.failures:6d} {r.rps:8.1f}"
            f" {r.p50:6.0f} {r.p95:6.0f} {r.p99:6.0f}"
        )
    lines.append("(latencies in ms)")
    return "\n".join(lines)


def verdict(rows: list[Row], args: argparse.Namespace) -> list[str]:
    """The thresholds missed, in words (none: the run passed)."""
    total = next((r for r in rows if r.name == "Aggregated"), None)
    if total is None or total.requests == 0:
        return ["no request was made"]
    missed = []
    rate = total.failures / total.requests
    if rate > args.max_failure_rate:
        missed.append(f"failure rate {rate:.2%} > {args.max_failure_rate:.2%}")
    if total.p95 > args.max_p95_ms:
        missed.append(f"p95 {total.p95:.0f} ms > {args.max_p95_ms:.0f} ms")
    if total.p99 > args.max_p99_ms:
        missed.append(f"p99 {total.p99:.0f} ms > {args.max_p99_ms:.0f} ms")
    return missed


@dataclass
class LedgerCheck:
    accepted: int
    ledger: int
    duplicates_sent: int
    duplicates_refused: int
    backlog: int

    @property
    def ok(self) -> bool:
        return (
            self.accepted == self.ledger
            and self.duplicates_sent == self.duplicates_refused
            and self.backlog == 0
        )


def tally_outcomes(outcomes: dict[str, int]) -> tuple[int, int, int]:
    """(votes accepted, second votes sent, second votes refused) from the answer counts."""
    accepted = sum(n for k, n in outcomes.items() if k.endswith(":202"))
    sent = sum(n for k, n in outcomes.items() if k.startswith("second vote:"))
    refused = outcomes.get("second vote:409", 0)
    return accepted, sent, refused


async def check_ledger(
    settings: Settings, slug: str, outcomes: dict[str, int], wait_s: float
) -> LedgerCheck:
    """Drain the rehearsal's streams (a flusher of our own beside the target's: several
    may run at once), then compare the ledger with what the engine answered."""
    from voting import db
    from voting.ballot import Keys
    from voting.ledger import Flusher, stream_backlog
    from voting.services import open_redis

    assert settings.database_url and settings.redis_url
    redis = open_redis(settings.redis_url)
    pool = await db.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        flusher = Flusher(redis, pool, settings.redis_prefix, consumer="loadtest")
        keys = Keys(settings.redis_prefix, slug)
        deadline = time.monotonic() + wait_s
        while True:
            await flusher.flush_once()
            backlog = await stream_backlog(redis, keys)
            if backlog == 0 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        async with pool.acquire() as conn:
            ledger = await conn.fetchval(
                "SELECT count(*) FROM votes v JOIN editions e ON e.id = v.edition_id"
                " WHERE e.slug = $1",
                slug,
            )
    finally:
        await redis.aclose()
        await pool.close()
    accepted, sent, refused = tally_outcomes(outcomes)
    return LedgerCheck(accepted, int(ledger), sent, refused, backlog)


def run_locust(
    args: argparse.Namespace, url: str, slug: str, voters: Path, report: Path
) -> tuple[list[Row], dict[str, int]]:
    locustfile = HERE / ("surge.py" if args.shape == "surge" else "locustfile.py")
    outcomes = report / "outcomes.json"
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(locustfile),
        "--headless",
        "--host",
        url,
        "--users",
        str(args.users),
        "--spawn-rate",
        str(args.spawn_rate),
        "--run-time",
        args.duration,
        "--stop-timeout",
        str(max(5, round(args.think * 4))),
        "--csv",
        str(report / "locust"),
        "--html",
        str(report / "locust.html"),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    env = {
        **os.environ,
        "LOAD_EDITION": slug,
        "LOAD_VOTERS": str(voters),
        "LOAD_THINK": str(args.think),
        "LOAD_OUTCOMES": str(outcomes),
    }
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    (report / "locust.log").write_text(done.stdout + done.stderr)
    stats = report / "locust_stats.csv"
    if not stats.exists():
        raise RuntimeError(f"locust wrote no statistics; see {report / 'locust.log'}")
    found = json.loads(outcomes.read_text()) if outcomes.exists() else {}
    return read_stats(stats), found


async def run(args: argparse.Namespace, settings: Settings) -> int:
    from voting import db, rehearsal
    from voting.clock import SystemClock
    from voting.security import Tokens
    from voting.services import open_redis

    assert settings.database_url and settings.redis_url
    duration = seconds(args.duration)
    report = Path(args.report_dir)
    await asyncio.to_thread(report.mkdir, parents=True, exist_ok=True)
    # Each voter spends about think time per vote; mint generously, unused ones expire.
    count = args.voters or max(100, int(args.users * duration / max(args.think, 0.5)) + 100)
    conn = await db.connect(settings.database_url)
    redis = open_redis(settings.redis_url)
    created = None
    try:
        await db.migrate(conn)
        slug = args.edition
        if slug is None:
            created = await rehearsal.create(
                conn,
                redis,
                settings.redis_prefix,
                now=SystemClock().now(),
                hours=max(1.0, duration / 3600 + 1),
                actor="loadtest",
            )
            slug = created.slug
            print(f"rehearsal {slug!r}: {created.nominations} nominations, voting open now")
        tokens = await rehearsal.mint_voters(
            conn, Tokens(settings.secret_key), settings.secret_key, slug, count, actor="loadtest"
        )
        voters = report / "voters.txt"
        await asyncio.to_thread(voters.write_text, "".join(t + "\n" for t in tokens))
        print(f"minted {count} voter tokens into {voters}", flush=True)
        rows, outcomes = await _load(args, settings, slug, voters, report)
        print(table(rows))
        check = await check_ledger(settings, slug, outcomes, args.drain_timeout)
        missed = verdict(rows, args)
        print(
            f"votes accepted: {check.accepted}; ledger rows: {check.ledger}"
            f" (not yet flushed: {check.backlog}); duplicates sent: {check.duplicates_sent},"
            f" refused: {check.duplicates_refused}"
        )
        limited = sum(n for k, n in outcomes.items() if k.endswith(":429"))
        if limited:
            print(f"refused by the rate limits (429): {limited}")
        if outcomes.get("no voter token left"):
            print("warning: the minted voters ran out; raise --voters")
        print(f"reports: {report}/locust_stats.csv, {report}/locust.html")
        if not check.ok:
            missed.append("the ledger does not match what the engine answered")
        if missed:
            print("FAILED: " + "; ".join(missed))
            return 1
        print("PASSED: every threshold met and the ledger matches")
        return 0
    finally:
        if created is not None and not args.keep:
            await rehearsal.drop(conn, redis, settings.redis_prefix, created.slug, actor="loadtest")
            print(f"dropped rehearsal {created.slug!r}")
        await redis.aclose()
        await conn.close()


async def _load(
    args: argparse.Namespace, settings: Settings, slug: str, voters: Path, report: Path
) -> tuple[list[Row], dict[str, int]]:
    if args.target:
        return await asyncio.to_thread(run_locust, args, args.target, slug, voters, report)
    assert settings.database_url and settings.redis_url
    env = {
        "VOTING_DATABASE_URL": settings.database_url,
        "VOTING_REDIS_URL": settings.redis_url,
        "VOTING_SECRET_KEY": settings.secret_key,
        "VOTING_REDIS_PREFIX": settings.redis_prefix,
        "VOTING_DATA_DIR": str(settings.data_dir),
        # The flows send each voter's address as a proxy would.
        "VOTING_TRUST_PROXY_HEADERS": "true",
    }
    with LocalServer(env, workers=args.workers, log=report / "server.log") as server:
        print(f"target: a server started here, {server.url}", flush=True)
        return await asyncio.to_thread(run_locust, args, server.url, slug, voters, report)
