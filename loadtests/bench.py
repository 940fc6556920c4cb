"""`voting bench`: how close the vote hot path is to its limits, in one run.

- votes per second through the full HTTP path (POST /api/votes, every vote a fresh one)
  and requests per second of the bare JSON endpoint (GET /livez) of the same server, with
  the same number of workers, the load generator in processes of its own; their ratio;
- vote latency (p50/p95/p99) at half of the measured vote rate;
- the drain rate into PostgreSQL of as many flushers as workers (`serve` runs one in each
  worker), and its ratio to the vote rate;
- the time of the official tally over a ledger of a million votes.

A 2-core machine is noisy: each figure is the median of several rounds. The bench creates
its own database and Redis key prefix on the configured servers (or the embedded ones) and
removes both at the end. Its last line, `vote/bare ratio: X.XX`, is the one to track.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from itsdangerous import TimestampSigner

from voting.settings import Settings

from . import generators
from .server import LocalServer, with_database

GOALS = {"vote/bare": 0.6, "p99 ms": 25.0, "flusher/vote": 5.0}


def session_cookie(secret: str, session: dict[str, Any]) -> str:
    """The cookie Starlette's SessionMiddleware would set for this session."""
    data = base64.b64encode(json.dumps(session).encode("utf-8"))
    return TimestampSigner(secret).sign(data).decode()


def bench_address(n: int) -> str:
    """Voter n's client address: each voter in a /48 of its own inside 2001:db8::/32, the
    documentation prefix, so the inline per-address and per-network limits see what a
    real crowd would show them (a benchmark from one address would measure 429s)."""
    return f"2001:db8:{n % 65536:x}::{n // 65536 + 1:x}"


async def prepare(
    db_url: str, redis_url: str, prefix: str, voters: int, secret: str, out: Path
) -> generators.VoteFiles:
    """Migrate, load an open edition with nominations, write the generators' input files."""
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
        await seed_nominations(conn, 180, edition_slug=edition.slug, seed=1, progress=False)
        rows = await conn.fetch(
            "SELECT public_id, category FROM nominations WHERE status='accepted' ORDER BY 1"
        )
    finally:
        await conn.close()
    redis = open_redis(redis_url)
    try:
        await Ballot(redis, prefix).sync_window(edition)
    finally:
        await redis.aclose()
    by_cat: dict[str, list[str]] = {}
    for r in rows:
        by_cat.setdefault(r["category"], []).append(r["public_id"])
    lines = []
    for v in range(voters):
        csrf = uuid.uuid4().hex
        # A large webmail domain: exempt from the per-domain limit, as in real contests.
        voter = {"id": pseudonym(secret, f"bench{v}@gmail.com"), "d": "gmail.com"}
        session = {"voter": {**voter, "e": edition.slug}, "csrf": csrf}
        lines.append(f"{session_cookie(secret, session)}\t{csrf}\t{bench_address(v)}\n")
    files = generators.VoteFiles(out / "voters.tsv", out / "ballots.txt", voters * len(by_cat))
    await asyncio.to_thread(files.voters.write_text, "".join(lines))
    await asyncio.to_thread(
        files.ballots.write_text, "".join(",".join(by_cat[c]) + "\n" for c in sorted(by_cat))
    )
    return files


async def drain(db_url: str, redis_url: str, prefix: str, flushers: int = 1) -> tuple[int, float]:
    """Time `flushers` flushers (one per worker, as `serve` runs them, each with its own
    consumer name, Redis client and pool) draining the whole backlog the vote rounds left
    in the streams, side by side."""
    from voting import db
    from voting.ledger import Flusher
    from voting.services import open_redis

    clients: list[Any] = []
    pools: list[asyncpg.Pool] = []

    async def until_empty(flusher: Flusher) -> int:
        total = 0
        while True:
            stats = await flusher.flush_once(reclaim=False)
            total += stats.inserted
            if not stats.read:
                return total

    try:
        for _ in range(flushers):
            clients.append(open_redis(redis_url))
            pools.append(await db.create_pool(db_url, min_size=1, max_size=4))
        started = time.perf_counter()
        # A TaskGroup: should one flusher fail, the others are stopped before the pools
        # close under them.
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(
                    until_empty(Flusher(clients[n], pools[n], prefix, consumer=f"bench{n}"))
                )
                for n in range(flushers)
            ]
        return sum(t.result() for t in tasks), time.perf_counter() - started
    finally:
        for client in clients:
            await client.aclose()
        for pool in pools:
            await pool.close()


# -- the official tally over a large ledger -------------------------------------------------


async def tally_timing(db_url: str, votes: int, rounds: int) -> dict[str, Any]:
    """Fill a ledger of `votes` rows in an edition of its own, time the official count."""
    from dataclasses import replace

    from voting import db, edition_store
    from voting.contest import builtin_edition_path, load_edition_file

    conn = await db.connect(db_url)
    try:
        now = datetime.now(UTC)
        base = load_edition_file(builtin_edition_path("demo"), now=now)
        edition = replace(base, slug="bench-tally", name="Benchmark tally")
        edition_id = await edition_store.save_edition(
            conn, edition, now=now, actor="bench", make_current=False
        )
        categories = [c.code for c in edition.categories]
        started = time.perf_counter()
        inserted = await fill_ledger(conn, edition_id, categories, votes)
        fill_seconds = time.perf_counter() - started
        await conn.execute("ANALYZE votes")
        count, label = official_tally()
        timings: dict[str, list[float]] = {"completeness off": [], "completeness on": []}
        for _ in range(rounds):
            for rule, key in ((False, "completeness off"), (True, "completeness on")):
                await conn.execute(
                    "UPDATE editions SET rules = rules || jsonb_build_object("
                    "'completeness_rule', $2::boolean) WHERE id=$1",
                    edition_id,
                    rule,
                )
                t0 = time.perf_counter()
                result = await count(conn, edition_id)
                timings[key].append(time.perf_counter() - t0)
                if not result:
                    raise RuntimeError("the tally counted nothing over a filled ledger")
        return {"votes": inserted, "fill": fill_seconds, "timings": timings, "function": label}
    finally:
        await conn.close()


async def fill_ledger(
    conn: asyncpg.Connection, edition_id: int, categories: list[str], votes: int
) -> int:
    """Exactly `votes` ledger rows in one statement: voters who vote in every category, but
    one in ten stops halfway (the completeness rule has something to exclude); a few nominations
    draw most votes; one vote in fifty is quarantined, one in two hundred voided."""
    ncat = len(categories)
    status = await conn.execute(
        """
        INSERT INTO votes (edition_id, voter_id, category, nomination, receipt, cast_at,
                           stream_id, verdict)
        SELECT $1, 'bv' || (g / $3), ($2::text[])[(g % $3) + 1],
               ($2::text[])[(g % $3) + 1] || '-' || floor(12 * power(random(), 3))::int,
               'br' || g, now(), '0-' || g,
               CASE WHEN g % 200 = 7 THEN 'voided' WHEN g % 50 = 3 THEN 'quarantined'
                    WHEN g % 97 = 5 THEN 'released' ELSE 'counted' END
        FROM generate_series(0, $4 * 20 / 19 + 2 * $3) AS g
        WHERE NOT ((g / $3) % 10 = 9 AND g % $3 >= $3 / 2)
        ORDER BY g
        LIMIT $4
        """,
        edition_id,
        categories,
        ncat,
        votes,
    )
    return int(status.split()[-1])


def official_tally() -> tuple[Any, str]:
    """The function that computes the official count per nomination from the ledger:
    `voting.tally.official`'s, or the ledger's own count where that package is absent."""
    try:
        from voting.tally.official import official_tally as tally
    except ImportError:
        from voting.ledger import ledger_counts

        async def by_rule(conn: asyncpg.Connection, edition_id: int) -> Any:
            row = await conn.fetchrow(
                "SELECT coalesce((rules->>'completeness_rule')::boolean, false) AS rule,"
                " (SELECT count(*) FROM categories WHERE edition_id=$1) AS ncat"
                " FROM editions WHERE id=$1",
                edition_id,
            )
            return await ledger_counts(
                conn, edition_id, completeness=row["rule"], ncat=int(row["ncat"])
            )

        return by_rule, "voting.ledger.ledger_counts"
    return tally, "voting.tally.official.official_tally"


# -- the run --------------------------------------------------------------------------------


@dataclass
class Figures:
    bare: list[float] = field(default_factory=list)
    votes: list[float] = field(default_factory=list)
    vote_errors: int = 0
    # The server's CPU time per request answered, in microseconds: unlike the rates, it
    # does not move with the time the server spends waiting, nor much with neighbours.
    bare_cpu_us: list[float] = field(default_factory=list)
    vote_cpu_us: list[float] = field(default_factory=list)


async def run(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.database_url or not settings.redis_url:
        raise RuntimeError("the bench needs the PostgreSQL and Redis URLs resolved")
    generator = generators.choose(args.generator)
    admin = settings.database_url
    name = f"wsis_bench_{uuid.uuid4().hex[:8]}"
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    secret = "bench-secret-" + uuid.uuid4().hex
    tmp = Path(tempfile.mkdtemp(prefix="wsis-bench-"))
    admin_conn = await asyncpg.connect(admin)
    await admin_conn.execute(f'CREATE DATABASE "{name}"')
    db_url = with_database(admin, name)
    try:
        files = await prepare(db_url, settings.redis_url, prefix, args.voters, secret, tmp)
        env = {
            "VOTING_DATABASE_URL": db_url,
            "VOTING_REDIS_URL": settings.redis_url,
            "VOTING_SECRET_KEY": secret,
            "VOTING_REDIS_PREFIX": prefix,
            "VOTING_DATA_DIR": str(tmp),
            # Voters come from many addresses (X-Forwarded-For), as behind a proxy.
            "VOTING_TRUST_PROXY_HEADERS": "true",
            # The flusher is measured on its own below, from this process.
            "VOTING_BACKGROUND_TASKS": "false",
        }
        with LocalServer(env, workers=args.workers, log=tmp / "server.log") as server:
            print(
                f"bench: {args.workers} worker(s), {args.connections} connections, "
                f"{args.rounds} rounds of {args.seconds:g} s, load generator: {generator.name}",
                flush=True,
            )
            figures, half = await asyncio.to_thread(_load_rounds, args, generator, server, files)
            stopped = server.stop()
        drained, seconds = await drain(db_url, settings.redis_url, prefix, args.workers)
        tally = None
        if args.tally_votes > 0:
            print(f"filling a ledger of {args.tally_votes} votes for the tally…", flush=True)
            tally = await tally_timing(db_url, args.tally_votes, max(1, args.rounds))
        _report(figures, half, drained, seconds, tally, stopped, args.workers)
        return 0
    finally:
        await _cleanup(settings.redis_url, prefix)
        await admin_conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin_conn.close()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def _load_rounds(
    args: argparse.Namespace,
    generator: generators.Generator,
    server: LocalServer,
    files: generators.VoteFiles,
) -> tuple[Figures, generators.Result]:
    figures = Figures()
    # Fresh votes only: every round (and the half-load one) has its own block of pairs.
    span = files.pairs // (args.rounds + 1)
    start = 0
    for n in range(1, args.rounds + 1):
        cpu = server.cpu_seconds()
        bare = generator.bare(server.url, seconds=args.seconds, connections=args.connections)
        figures.bare_cpu_us.append(_per_request(server.cpu_seconds() - cpu, bare.requests))
        spy = _profiler(args.profile, server.pid, args.seconds) if n == 1 else None
        cpu = server.cpu_seconds()
        votes = generator.votes(
            server.url,
            files,
            seconds=args.seconds,
            connections=args.connections,
            start=start,
            span=span,
        )
        figures.vote_cpu_us.append(_per_request(server.cpu_seconds() - cpu, votes.requests))
        if spy is not None:
            spy.wait()
        start += span
        figures.bare.append(bare.rps)
        figures.votes.append(votes.rps)
        figures.vote_errors += votes.errors
        print(
            f"round {n}: bare {bare.rps:.0f} req/s, votes {votes.rps:.0f} votes/s"
            f" (refused or failed: {votes.errors})",
            flush=True,
        )
    target = statistics.median(figures.votes) / 2
    half = generator.votes(
        server.url,
        files,
        seconds=args.seconds,
        connections=min(args.connections, 32),
        start=start,
        span=span,
        rate=target,
    )
    if max(figures.votes) * args.seconds > span / 2:
        print(f"warning: rounds near {span} votes each would repeat pairs: raise --voters")
    return figures, half


def _per_request(cpu_seconds: float, requests: int) -> float:
    return cpu_seconds / requests * 1e6 if requests else 0.0


def _profiler(path: str | None, pid: int, seconds: float) -> subprocess.Popen[bytes] | None:
    if not path:
        return None
    fmt = (
        "flamegraph" if path.endswith(".svg") else "speedscope" if path.endswith(".json") else "raw"
    )
    # py-spy installs next to the interpreter (the test extra), maybe not on PATH.
    beside = Path(sys.executable).parent / "py-spy"
    return subprocess.Popen(
        [
            str(beside) if beside.exists() else "py-spy",
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--duration",
            str(max(1, int(seconds) - 1)),
            # py-spy's default 100 samples a second leave too few for a vote's parts; it
            # reads the stacks without pausing the server, which would slow it several
            # times over (at the price of a rare torn stack).
            "--rate",
            "1000",
            "--nonblocking",
            "--format",
            fmt,
            "--output",
            path,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _report(
    figures: Figures,
    half: generators.Result,
    drained: int,
    seconds: float,
    tally: dict[str, Any] | None,
    stopped: float,
    flushers: int = 1,
) -> None:
    bare = statistics.median(figures.bare)
    votes = statistics.median(figures.votes)
    drain_rate = drained / seconds if seconds else 0.0
    print(f"server stopped {stopped:.1f} s after SIGTERM")
    print(f"bare endpoint (GET /livez):    median {bare:.0f} req/s   rounds {_list(figures.bare)}")
    print(
        f"vote path (POST /api/votes):   median {votes:.0f} votes/s rounds {_list(figures.votes)}"
    )
    if figures.vote_errors:
        print(f"  {figures.vote_errors} votes were refused or failed during the rounds")
    bare_cpu, vote_cpu = (
        statistics.median(figures.bare_cpu_us),
        statistics.median(figures.vote_cpu_us),
    )
    print(
        f"server CPU per request:        bare {bare_cpu:.0f} us, vote {vote_cpu:.0f} us"
        f" (bare/vote {bare_cpu / vote_cpu if vote_cpu else 0:.2f}; the rate ratio if the"
        " server were never idle)"
    )
    print(
        f"latency at half load ({votes / 2:.0f} votes/s asked, {half.rps:.0f} achieved, "
        f"{half.errors} refused or failed): p50 {half.p50_ms:.2f} ms, p95 {half.p95_ms:.2f} ms,"
        f" p99 {half.p99_ms:.2f} ms"
    )
    ratio_flush = drain_rate / votes if votes else 0.0
    print(
        f"flusher drain ({flushers} flusher{'s' if flushers > 1 else ''}): {drained} votes in"
        f" {seconds:.2f} s = {drain_rate:.0f} votes/s; "
        f"flusher/vote ratio: {ratio_flush:.1f}"
    )
    if tally is not None:
        for rule, times in tally["timings"].items():
            print(
                f"official tally over {tally['votes']} ledger votes ({rule}): median "
                f"{statistics.median(times):.3f} s  rounds {_list(times, '{:.3f}')}"
                f"  [{tally['function']}]"
            )
    ratio = votes / bare if bare else 0.0
    met = {
        "vote/bare": ratio >= GOALS["vote/bare"],
        "p99 ms": 0 < half.p99_ms < GOALS["p99 ms"],
        "flusher/vote": ratio_flush >= GOALS["flusher/vote"],
    }
    print(
        "goals: "
        + ", ".join(
            f"{k} {'<' if k == 'p99 ms' else '>='} {v:g} {'met' if met[k] else 'MISSED'}"
            for k, v in GOALS.items()
        )
    )
    print(f"vote/bare ratio: {ratio:.2f}")


def _list(values: list[float], fmt: str = "{:.0f}") -> str:
    return ", ".join(fmt.format(v) for v in values)


async def _cleanup(redis_url: str, prefix: str) -> None:
    from voting.services import open_redis

    redis = open_redis(redis_url)
    try:
        batch = []
        async for key in redis.scan_iter(match=f"{prefix}:*", count=5000):
            batch.append(key)
            if len(batch) >= 5000:
                await redis.delete(*batch)
                batch = []
        if batch:
            await redis.delete(*batch)
    finally:
        await redis.aclose()


def main(argv: list[str] | None = None) -> int:
    """`python -m loadtests.bench`: the same as `voting bench`, run as that command.

    `voting bench` imports this module, so this module does not import the command line
    back (no import cycle): it runs `python -m voting.cli bench ARGS` in a child process.
    """
    command = [sys.executable, "-m", "voting.cli", "bench", *(argv or [])]
    return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
