"""The flusher on a Redis Cluster: its streams spread over the nodes, against shard order.

    python -m loadtests.flush_spread --database-url postgresql://postgres@127.0.0.1:5432/test

Starts a three-master Redis Cluster on loopback (loadtests/redis_servers.py) and a
database of its own on the given server, then, in alternating rounds, casts `--votes`
votes through the engine's own `Ballot` (so the streams hold what the vote script
writes) and times one `Flusher` draining them into the ledger: once in the order
`voting.ledger.spread` gives (the drains in flight on different nodes), once in plain
shard order (what the flusher did before), each with `--parallel` drains at once. Prints
the medians and their ratio; a noisy machine moves both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from voting import db, edition_store
from voting.ballot import Ballot
from voting.contest import builtin_edition_path, load_edition_file
from voting.ledger import Flusher
from voting.services import open_redis

from .redis_servers import RedisClusterServers
from .server import with_database


class ShardOrder(Flusher):
    """The flusher as it was: streams in shard order, whatever node holds them."""

    def _order(self, streams: list[str]) -> list[str]:
        return streams


def _voter(i: int) -> str:
    # A pseudonym's shape: hex whose first digits pick the shard, spread over all of them.
    return hashlib.sha256(str(i).encode()).hexdigest()[:32]


async def _fill(redis_url: str, pool: asyncpg.Pool, votes: int) -> tuple[str, str]:
    """A fresh edition and key prefix, with `votes` votes cast into its streams."""
    now = datetime.now(UTC)
    slug = f"fs{uuid.uuid4().hex[:8]}"
    prefix = f"fs{uuid.uuid4().hex[:8]}"
    edition = load_edition_file(builtin_edition_path("demo"), now=now)
    edition = dataclasses.replace(edition, slug=slug)
    async with pool.acquire() as conn:
        await edition_store.save_edition(conn, edition, now=now, actor="flush_spread")
    client = open_redis(redis_url, max_connections=64)
    try:
        ballot = Ballot(client, prefix)
        await ballot.sync_window(edition)
        categories = [(c.code, f"{c.code}-N1") for c in edition.categories]
        for start in range(0, votes, 1000):
            await asyncio.gather(
                *(
                    ballot.cast(slug, _voter(i), *categories[i % len(categories)])
                    for i in range(start, min(votes, start + 1000))
                )
            )
    finally:
        await client.aclose()
    return slug, prefix


async def _drain(
    redis_url: str, pool: asyncpg.Pool, prefix: str, kind: type[Flusher], parallel: int
) -> tuple[int, float]:
    client = open_redis(redis_url, max_connections=64)
    try:
        flusher = kind(client, pool, prefix, consumer="flush-spread", parallel=parallel)
        started = time.perf_counter()
        total = 0
        while True:
            stats = await flusher.flush_once(reclaim=False)
            total += stats.inserted
            if not stats.read:
                return total, time.perf_counter() - started
    finally:
        await client.aclose()


async def main(args: argparse.Namespace) -> int:
    name = f"wsis_flushspread_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    tmp = Path(tempfile.mkdtemp(prefix="wsis-fs-", dir="/tmp"))
    cluster = RedisClusterServers(tmp / "cluster")
    await asyncio.to_thread(cluster.start)
    rates: dict[str, list[float]] = {"spread": [], "shard order": []}
    try:
        url = with_database(args.database_url, name)
        conn = await db.connect(url)
        await db.migrate(conn)
        await conn.close()
        pool = await db.create_pool(url, min_size=1, max_size=args.parallel + 2)
        try:
            for round_ in range(args.rounds):
                # Alternate which goes first, so a drift in the machine's load is shared.
                kinds = [("spread", Flusher), ("shard order", ShardOrder)]
                for label, kind in kinds if round_ % 2 == 0 else kinds[::-1]:
                    _, prefix = await _fill(cluster.url, pool, args.votes)
                    drained, seconds = await _drain(cluster.url, pool, prefix, kind, args.parallel)
                    if drained != args.votes:
                        print(f"{label}: drained {drained} of {args.votes} votes")
                        return 1
                    rates[label].append(drained / seconds)
                    print(
                        f"round {round_ + 1} {label}: {drained} votes in {seconds:.2f} s"
                        f" = {drained / seconds:.0f} votes/s",
                        flush=True,
                    )
        finally:
            await pool.close()
    finally:
        await asyncio.to_thread(cluster.stop)
        shutil.rmtree(tmp, ignore_errors=True)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    spread, plain = (statistics.median(rates[k]) for k in ("spread", "shard order"))
    print(
        f"flusher on a 3-master cluster, parallel {args.parallel}: spread median {spread:.0f}"
        f" votes/s, shard order {plain:.0f} votes/s: spread/shard-order ratio {spread / plain:.2f}"
    )
    return 0


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--votes", type=int, default=40_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=2)
    return asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(cli())
