"""`voting bench`: how close the vote hot path is to its limits, in one run.

- requests per second of the true baseline, a pure Starlette app with one JSON route and
  no middleware under uvicorn (loadtests/pure_app.py), with as many workers as the engine;
- requests per second of the engine's own bare endpoint (GET /livez, through its whole
  middleware stack) and votes per second through the full HTTP path (POST /api/votes,
  every vote a fresh one), the same generator in processes of its own for all three;
- with --workers N > 1, a one-worker engine's votes per second in the same run; with
  --redis-cluster, an engine's on a three-master Redis Cluster started on loopback;
- for every load, the cores the server, Redis and the generator kept busy, and the
  server's and Redis's CPU time per request (the capacity line);
- vote latency (p50/p95/p99) at half of the measured vote rate;
- the drain rate into PostgreSQL of as many flushers as workers (`serve` runs one in each
  worker), and its ratio to the vote rate;
- the time of the official tally over a ledger of a million votes.

A 2-core machine is noisy: each figure is the median of several rounds. The bench creates
its own database and Redis key prefix on the configured servers (or the embedded ones) and
removes both at the end. Its last line, `vote/pure-bare ratio: X.XX`, is the one to track;
it says `not reported` instead when the generator, not the pure baseline, set the pace.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
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

GOALS = {"vote/pure-bare": 0.5, "p99 ms": 25.0, "flusher/vote": 5.0}


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
    db_url: str, redis_url: str | list[str], prefix: str, voters: int, secret: str, out: Path
) -> generators.VoteFiles:
    """Migrate, load an open edition with nominations, write the generators' input files;
    the voting window goes to each Redis given."""
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
    for url in [redis_url] if isinstance(redis_url, str) else redis_url:
        redis = open_redis(url)
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
class Load:
    """One kind of load, measured in every round: its rates and who was busy meanwhile
    (cores kept busy on average: CPU seconds over the round's wall seconds)."""

    label: str
    rates: list[float] = field(default_factory=list)
    server: list[float] = field(default_factory=list)
    redis: list[float] = field(default_factory=list)
    generator: list[float] = field(default_factory=list)
    # The server's CPU time per request answered, in microseconds: unlike the rates, it
    # does not move with the time the server spends waiting, nor much with neighbours.
    cpu_us: list[float] = field(default_factory=list)
    # Redis's CPU time per request (all masters of a cluster), in microseconds.
    redis_us: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def rate(self) -> float:
        return statistics.median(self.rates) if self.rates else 0.0

    def share(self, kind: str) -> float:
        values: list[float] = getattr(self, kind)
        return statistics.median(values) if values else 0.0


@dataclass
class Figures:
    pure: Load = field(default_factory=lambda: Load("pure"))
    bare: Load = field(default_factory=lambda: Load("livez"))
    votes: Load = field(default_factory=lambda: Load("votes"))
    one_worker: Load | None = None
    cluster: Load | None = None


class RedisCpu:
    """CPU seconds used so far by a Redis, or by every master of a Redis Cluster, read
    from INFO cpu (so a Redis on another machine is measured too)."""

    def __init__(self, url: str) -> None:
        import redis

        from voting.redis_cluster import is_cluster_url, plain_url

        self.clients: list[Any] = []
        if is_cluster_url(url):
            seed = redis.Redis.from_url(plain_url(url), socket_timeout=5)
            try:
                masters = {
                    (_text(master[0]) or "127.0.0.1", int(master[1]))
                    for _, _, master, *_ in seed.execute_command("CLUSTER SLOTS")
                }
                for host, port in sorted(masters):
                    self.clients.append(redis.Redis(host=host, port=port, socket_timeout=5))
            finally:
                seed.close()
        else:
            self.clients.append(redis.Redis.from_url(url, socket_timeout=5))

    def seconds(self) -> float:
        total = 0.0
        for client in self.clients:
            info = client.info("cpu")
            total += float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
        return total

    def close(self) -> None:
        for client in self.clients:
            client.close()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _persistence(redis_url: str) -> tuple[str, ...]:
    """The single Redis' append-only settings, for the bench's cluster to match them."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        config = client.config_get("append*")
    finally:
        client.close()
    return (
        "--appendonly",
        str(config.get("appendonly", "no")),
        "--appendfsync",
        str(config.get("appendfsync", "everysec")),
    )


async def run(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.database_url or not settings.redis_url:
        raise RuntimeError("the bench needs the PostgreSQL and Redis URLs resolved")
    generator = generators.choose(args.generator)
    admin = settings.database_url
    name = f"wsis_bench_{uuid.uuid4().hex[:8]}"
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    secret = "bench-secret-" + uuid.uuid4().hex
    tmp = Path(tempfile.mkdtemp(prefix="wsis-bench-"))
    cluster = None
    private = None
    redis_url = settings.redis_url
    admin_conn = await asyncpg.connect(admin)
    await admin_conn.execute(f'CREATE DATABASE "{name}"')
    db_url = with_database(admin, name)
    try:
        persistence = _persistence(settings.redis_url)
        if args.private_redis:
            # A Redis of the bench's own, with the configured one's append-only settings:
            # its INFO cpu then counts the votes only (a shared Redis' counts its other
            # clients' work too).
            from .redis_servers import RedisServer

            private = RedisServer(tmp / "redis", extra=persistence)
            await asyncio.to_thread(private.start)
            redis_url = private.url
        redis_urls = [redis_url]
        if args.redis_cluster:
            from .redis_servers import RedisClusterServers

            cluster = RedisClusterServers(tmp / "cluster", persistence=persistence)
            await asyncio.to_thread(cluster.start)
            redis_urls.append(cluster.url)
        files = await prepare(db_url, redis_urls, prefix, args.voters, secret, tmp)
        env = {
            "VOTING_DATABASE_URL": db_url,
            "VOTING_REDIS_URL": redis_url,
            "VOTING_SECRET_KEY": secret,
            "VOTING_REDIS_PREFIX": prefix,
            "VOTING_DATA_DIR": str(tmp),
            # Voters come from many addresses (X-Forwarded-For), as behind a proxy.
            "VOTING_TRUST_PROXY_HEADERS": "true",
            # The flusher is measured on its own below, from this process.
            "VOTING_BACKGROUND_TASKS": "false",
        }
        with contextlib.ExitStack() as stack:
            servers = {
                "engine": stack.enter_context(
                    LocalServer(
                        env, workers=args.workers, log=tmp / "server.log", server=args.server
                    )
                ),
                "pure": stack.enter_context(
                    LocalServer({}, workers=args.workers, log=tmp / "pure.log", pure=True)
                ),
            }
            if args.workers > 1:
                servers["one"] = stack.enter_context(
                    LocalServer(env, workers=1, log=tmp / "server1.log", server=args.server)
                )
            if cluster is not None:
                servers["cluster"] = stack.enter_context(
                    LocalServer(
                        {**env, "VOTING_REDIS_URL": cluster.url},
                        workers=args.workers,
                        log=tmp / "server-cluster.log",
                        server=args.server,
                    )
                )
            print(
                f"bench: {args.workers} worker(s) on {servers['engine'].server}, "
                f"{args.connections} connections, "
                f"{args.rounds} rounds of {args.seconds:g} s, load generator: {generator.name}"
                f" ({generator.cores} thread(s) or process(es)), {os.cpu_count()} cores"
                + (", a Redis of its own" if private else "")
                + (", Redis Cluster of 3 masters beside the single Redis" if cluster else ""),
                flush=True,
            )
            redis_cpu = {"single": RedisCpu(redis_url)}
            if cluster is not None:
                redis_cpu["cluster"] = RedisCpu(cluster.url)
            try:
                figures, half = await asyncio.to_thread(
                    _load_rounds, args, generator, servers, redis_cpu, files
                )
            finally:
                for cpu in redis_cpu.values():
                    cpu.close()
            stopped = servers["engine"].stop()
        drained, seconds = await drain(db_url, redis_url, prefix, args.workers)
        tally = None
        if args.tally_votes > 0:
            print(f"filling a ledger of {args.tally_votes} votes for the tally…", flush=True)
            tally = await tally_timing(db_url, args.tally_votes, max(1, args.rounds))
        _report(figures, half, drained, seconds, tally, stopped, args.workers, generator)
        return 0
    finally:
        if private is not None:
            await asyncio.to_thread(private.stop)
        else:
            await _cleanup(redis_url, prefix)
        if cluster is not None:
            await asyncio.to_thread(cluster.stop)
        await admin_conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin_conn.close()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def _load_rounds(
    args: argparse.Namespace,
    generator: generators.Generator,
    servers: dict[str, LocalServer],
    redis_cpu: dict[str, RedisCpu],
    files: generators.VoteFiles,
) -> tuple[Figures, generators.Result]:
    figures = Figures()
    if "one" in servers:
        figures.one_worker = Load("votes, 1 worker")
    if "cluster" in servers:
        figures.cluster = Load("votes, Redis Cluster")
    # Fresh votes only: every vote round on the single Redis (and the half-load one) has
    # its own block of pairs; the cluster, a Redis of its own, reuses the first blocks.
    blocks_per_round = 2 if "one" in servers else 1
    span = files.pairs // (args.rounds * blocks_per_round + 1)
    engine = servers["engine"]
    single = redis_cpu["single"]

    def measure(load: Load, server: LocalServer, redis: RedisCpu, go: Any) -> generators.Result:
        cpu, redis_before = server.cpu_seconds(), redis.seconds()
        result: generators.Result = go()
        server_cpu, redis_used = server.cpu_seconds() - cpu, redis.seconds() - redis_before
        wall = result.wall_s or args.seconds
        load.rates.append(result.rps)
        load.errors += result.errors
        load.cpu_us.append(_per_request(server_cpu, result.requests))
        load.redis_us.append(_per_request(redis_used, result.requests))
        load.server.append(server_cpu / wall)
        load.redis.append(redis_used / wall)
        load.generator.append(result.busy)
        return result

    def votes(server: LocalServer, start: int) -> Any:
        return lambda: generator.votes(
            server.url,
            files,
            seconds=args.seconds,
            connections=args.connections,
            start=start,
            span=span,
        )

    start = 0
    for n in range(1, args.rounds + 1):
        pure = measure(
            figures.pure,
            servers["pure"],
            single,
            lambda: generator.bare(
                servers["pure"].url, seconds=args.seconds, connections=args.connections, path="/"
            ),
        )
        bare = measure(
            figures.bare,
            engine,
            single,
            lambda: generator.bare(engine.url, seconds=args.seconds, connections=args.connections),
        )
        spy = _profiler(args.profile, engine.pid, args.seconds) if n == 1 else None
        vote = measure(figures.votes, engine, single, votes(engine, start))
        if spy is not None:
            spy.wait()
        line = (
            f"round {n}: pure {pure.rps:.0f} req/s, /livez {bare.rps:.0f} req/s,"
            f" votes {vote.rps:.0f} votes/s (refused or failed: {vote.errors})"
        )
        if figures.cluster is not None:
            clustered = measure(
                figures.cluster,
                servers["cluster"],
                redis_cpu["cluster"],
                votes(servers["cluster"], start),
            )
            line += f", Redis Cluster votes {clustered.rps:.0f} votes/s"
        start += span
        if figures.one_worker is not None:
            one = measure(figures.one_worker, servers["one"], single, votes(servers["one"], start))
            start += span
            line += f", 1 worker votes {one.rps:.0f} votes/s"
        print(line, flush=True)
    target = figures.votes.rate / 2
    half = generator.votes(
        engine.url,
        files,
        seconds=args.seconds,
        connections=min(args.connections, 32),
        start=start,
        span=span,
        rate=target,
    )
    if max(figures.votes.rates) * args.seconds > span / 2:
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
    flushers: int,
    generator: generators.Generator,
) -> None:
    pure, bare, votes = figures.pure.rate, figures.bare.rate, figures.votes.rate
    drain_rate = drained / seconds if seconds else 0.0
    print(f"server stopped {stopped:.1f} s after SIGTERM")
    print(
        f"pure baseline (GET /, Starlette + uvicorn, no middleware): median {pure:.0f} req/s"
        f"   rounds {_list(figures.pure.rates)}"
    )
    print(
        f"bare endpoint (GET /livez):    median {bare:.0f} req/s"
        f"   rounds {_list(figures.bare.rates)}"
    )
    print(
        f"vote path (POST /api/votes):   median {votes:.0f} votes/s rounds"
        f" {_list(figures.votes.rates)}"
    )
    if figures.votes.errors:
        print(f"  {figures.votes.errors} votes were refused or failed during the rounds")
    bare_cpu = statistics.median(figures.bare.cpu_us)
    vote_cpu = statistics.median(figures.votes.cpu_us)
    print(
        f"server CPU per request:        pure {statistics.median(figures.pure.cpu_us):.0f} us,"
        f" bare {bare_cpu:.0f} us, vote {vote_cpu:.0f} us"
        f" (bare/vote {bare_cpu / vote_cpu if vote_cpu else 0:.2f}; the rate ratio if the"
        " server were never idle)"
    )
    loads = [figures.pure, figures.bare, figures.votes]
    loads += [x for x in (figures.one_worker, figures.cluster) if x is not None]
    print(
        "cores kept busy (medians; of "
        f"{os.cpu_count()} on this machine, shared with whatever else runs on it):"
    )
    for load in loads:
        print(
            f"  {load.label:<22} server {load.share('server'):.2f}, Redis"
            f" {load.share('redis'):.2f}, generator {load.share('generator'):.2f}"
            f" ({load.rate:.0f}/s)"
        )
    for load in [figures.votes] + ([figures.cluster] if figures.cluster else []):
        app_us, redis_us = load.share("cpu_us"), load.share("redis_us")
        print(
            f"capacity ({load.label}): a busy app core {1e6 / app_us if app_us else 0:.0f}"
            f" votes/s ({app_us:.0f} us a vote), a busy Redis core"
            f" {1e6 / redis_us if redis_us else 0:.0f} votes/s ({redis_us:.0f} us a vote);"
            f" 50,000 votes/s at full load: {math.ceil(50_000 * app_us / 1e6)} app cores,"
            f" {math.ceil(50_000 * redis_us / 1e6)} Redis cores"
        )
    if figures.one_worker is not None:
        one = figures.one_worker.rate
        print(
            f"workers: {flushers} workers {votes:.0f} votes/s, 1 worker {one:.0f} votes/s"
            f" in the same run: ratio {votes / one if one else 0:.2f}"
        )
    if figures.cluster is not None:
        clustered = figures.cluster.rate
        print(
            f"Redis Cluster (3 masters): {clustered:.0f} votes/s, single Redis {votes:.0f}"
            f" votes/s in the same run: cluster/single ratio"
            f" {clustered / votes if votes else 0:.2f} (goal >= 0.9)"
        )
        if figures.cluster.errors:
            print(f"  {figures.cluster.errors} cluster votes were refused or failed")
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
    ratio = votes / pure if pure else 0.0
    saturated = generator_saturated(figures.pure, generator.cores, flushers)
    met = {
        "vote/pure-bare": ratio >= GOALS["vote/pure-bare"] and not saturated,
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
    print(
        f"stack cost: vote/livez ratio: {votes / bare if bare else 0:.2f},"
        f" livez/pure-bare ratio: {bare / pure if pure else 0:.2f}"
    )
    if saturated:
        print(f"generator: {generator.name} saturated before the pure baseline: {saturated}")
        print("vote/pure-bare ratio: not reported (the load generator was the bottleneck)")
    else:
        print(f"vote/pure-bare ratio: {ratio:.2f}")


def generator_saturated(pure: Load, cores: int, workers: int) -> str:
    """Why the pure baseline's rate was the generator's limit rather than the server's,
    or "" when it was not: the generator kept (nearly) all the cores it can use busy, or
    it was busier than a server that had cores left idle (waiting for requests)."""
    generator, server = pure.share("generator"), pure.share("server")
    if generator >= 0.9 * cores:
        return f"it kept {generator:.2f} of its {cores} thread(s) or process(es) busy"
    if server < 0.85 * workers and generator >= server:
        return (
            f"it kept {generator:.2f} cores busy while the server used {server:.2f} of its"
            f" {workers} worker(s)"
        )
    return ""


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
