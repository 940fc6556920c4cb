"""How long a fraud scan takes, full and incremental, on the current edition's ledger.

    VOTING_DATABASE_URL=... VOTING_REDIS_URL=... python -m loadtests.scan_bench \\
        [--simulate ORGANIC] [--runs R] [--votes V]

With `--simulate`, first writes a labelled ledger into that database with the fraud
simulator (`voting fraud simulate`'s traffic, ORGANIC organic voters: 2000 gives about
20,000 votes in 18 categories), keeps it and makes its edition the current one (use a
database of its own, empty or migrated: the ledger stays). Then, inside one
transaction rolled back at the end (the ledger is left as it was), times in this
process, median of R runs each:
- a full scan (`voting fraud scan --full`);
- an incremental scan with no vote since the last one;
- an incremental scan after V new votes in 1, 3 and all categories.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import asyncpg

from voting import db, edition_store
from voting.antifraud.detectors import scan
from voting.antifraud.minimise import address_key
from voting.settings import Settings, load_settings


async def _simulate(settings: Settings, organic: int) -> None:
    import redis.asyncio as aioredis

    from voting.antifraud.simulator import simulate

    conn = await db.connect(settings.database_url or "")
    try:
        await db.migrate(conn)
    finally:
        await conn.close()
    pool = await db.create_pool(settings.database_url or "")
    redis = aioredis.from_url(settings.redis_url or "")
    try:
        report = await simulate(
            pool, redis, secret=settings.secret_key, seed=1, organic=organic, keep=True
        )
        async with pool.acquire() as conn:
            await edition_store.set_current(conn, report.slug)
        # The simulator's Redis keys are not needed: the ledger is in PostgreSQL.
        keys = [k async for k in redis.scan_iter(match=f"{report.prefix}:*", count=1000)]
        for i in range(0, len(keys), 1000):
            await redis.delete(*keys[i : i + 1000])
        print(f"simulated ledger kept: edition {report.slug}")
    finally:
        await redis.aclose()
        await pool.close()


async def _add_votes(
    conn: asyncpg.Connection, edition_id: int, categories: list[str], n: int, tag: str
) -> None:
    """`n` new votes in each category: copies of its latest votes by new voters, a
    minute after the ledger's last vote."""
    await conn.execute(
        "INSERT INTO votes (edition_id, voter_id, category, nomination, receipt, cast_at,"
        " stream_id, ip, user_agent, email_domain, network, form_age_ms)"
        " SELECT edition_id, $3 || voter_id, category, nomination, $3 || receipt,"
        " (SELECT max(cast_at) FROM votes WHERE edition_id = $1) + interval '1 minute',"
        " stream_id, ip, user_agent, email_domain, network, form_age_ms FROM ("
        "   SELECT *, row_number() OVER (PARTITION BY category ORDER BY cast_at DESC) AS k"
        "   FROM votes WHERE edition_id = $1 AND category = ANY($2)) AS latest"
        " WHERE k <= $4",
        edition_id,
        categories,
        tag,
        n,
    )


async def _timed(
    conn: asyncpg.Connection, edition_id: int, slug: str, t: dict[str, Any], *, full: bool
) -> tuple[float, Any]:
    start = time.perf_counter()
    key = address_key(load_settings().secret_key)
    report = await scan(conn, edition_id, slug, t, address_key=key, full=full)
    return time.perf_counter() - start, report


async def run(args: argparse.Namespace) -> None:
    settings = load_settings()
    if args.simulate:
        await _simulate(settings, args.simulate)
    conn = await db.connect(settings.database_url or "")
    try:
        edition = await edition_store.current_edition(conn)
        assert edition is not None, "no current edition: load one, or pass --simulate"
        edition_id = await edition_store.edition_id(conn, edition.slug)
        assert edition_id is not None
        t = edition.rules.fraud
        votes = await conn.fetchval("SELECT count(*) FROM votes WHERE edition_id=$1", edition_id)
        categories = sorted(
            r["category"]
            for r in await conn.fetch(
                "SELECT DISTINCT category FROM votes WHERE edition_id=$1", edition_id
            )
        )
        print(f"edition {edition.slug}: {votes} votes in {len(categories)} categories")
        outer = conn.transaction()
        await outer.start()
        try:
            key = address_key(settings.secret_key)
            await scan(conn, edition_id, edition.slug, t, address_key=key, full=True)  # marks
            rows: list[tuple[str, list[float], Any]] = []
            full = [
                await _timed(conn, edition_id, edition.slug, t, full=True) for _ in range(args.runs)
            ]
            rows.append(("full scan", [s for s, _ in full], full[-1][1]))
            quiet = [
                await _timed(conn, edition_id, edition.slug, t, full=False)
                for _ in range(args.runs)
            ]
            rows.append(("incremental, nothing new", [s for s, _ in quiet], quiet[-1][1]))
            for k in (1, 3, len(categories)):
                took = []
                report = None
                for r in range(args.runs):
                    await _add_votes(conn, edition_id, categories[:k], args.votes, f"b{k}r{r}-")
                    seconds, report = await _timed(conn, edition_id, edition.slug, t, full=False)
                    took.append(seconds)
                rows.append(
                    (f"incremental, {args.votes} new votes in {k} categories", took, report)
                )
        finally:
            await outer.rollback()
    finally:
        await conn.close()
    for name, took, report in rows:
        print(
            f"{name:<48} median {statistics.median(took):6.3f} s"
            f" (min {min(took):.3f}, max {max(took):.3f});"
            f" read again {len(report.categories)} of {report.of_categories} categories,"
            f" edition-wide detectors {'ran' if report.edition_wide else 'skipped'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulate", type=int, metavar="ORGANIC", default=0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--votes", type=int, default=20)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
