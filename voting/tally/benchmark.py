"""How long the results take over a large ledger. Prints figures; asserts nothing.

    python -m voting.tally.benchmark postgresql://USER@HOST:5432/postgres --votes 1000000

Creates a scratch database next to the one the URL names (and drops it after), loads the
demo edition with 180 accepted nominations, fills the ledger with exactly `--votes` votes (ten
percent of voters stop halfway, one vote in fifty quarantined, one in two hundred voided,
a few nominations draw most votes), then times: the official tally with the completeness
rule off and on, the Merkle fingerprint, the whole results computation, the publication
(leaves and tree levels stored), the ledger export, and inclusion proofs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from .. import accounts, db, edition_store
from ..contest import Phase, builtin_edition_path, load_edition_file
from ..seed import seed_nominations
from . import publication as pub
from .merkle import counted_leaves
from .official import official_tally
from .results import compute, fingerprint

FILL_SQL = """
INSERT INTO votes (edition_id, voter_id, category, nomination, receipt, cast_at, stream_id,
                   verdict)
SELECT $1, 'bv' || (g / $3), ($2::text[])[(g % $3) + 1],
       ($4::text[])[(g % $3) * 10 + 1 + floor(10 * power(random(), 3))::int],
       'BR' || g, $5::timestamptz + (g || ' milliseconds')::interval, '0-' || g,
       CASE WHEN g % 200 = 7 THEN 'voided' WHEN g % 50 = 3 THEN 'quarantined'
            WHEN g % 97 = 5 THEN 'released' ELSE 'counted' END
FROM generate_series(0, 2 * $6) AS g
WHERE NOT ((g / $3) % 10 = 9 AND g % $3 >= $3 / 2)
ORDER BY g
LIMIT $6
"""


CPU: list[float] = []  # this process's CPU seconds of the last `timed` call's rounds


async def timed(fn: Callable[[], Awaitable[Any]], rounds: int) -> tuple[float, Any]:
    """Median wall time; on a busy machine also read `cpu()`, this process's share."""
    times = []
    CPU.clear()
    result = None
    for _ in range(rounds):
        started, cpu = time.perf_counter(), time.process_time()
        result = await fn()
        times.append(time.perf_counter() - started)
        CPU.append(time.process_time() - cpu)
    return statistics.median(times), result


def cpu() -> str:
    return f" (Python CPU {statistics.median(CPU) * 1000:.0f} ms)"


async def run(admin_url: str, votes: int, rounds: int) -> None:
    name = f"wsis_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    conn = await db.connect(url)
    try:
        await db.migrate(conn)
        now = datetime.now(UTC)
        demo = load_edition_file(builtin_edition_path("demo"), now=now - timedelta(days=60))
        # Voting over, the results phase open: what publication needs.
        phases = tuple(
            Phase(p.name, p.opens_at, min(p.closes_at, now - timedelta(days=1)))
            if p.name != "results"
            else Phase("results", now - timedelta(days=1), now + timedelta(days=30))
            for p in demo.phases
        )
        phases = tuple(
            replace(p, opens_at=min(p.opens_at, p.closes_at - timedelta(hours=1))) for p in phases
        )
        edition = replace(demo, slug="bench-results", phases=phases)
        edition_id = await edition_store.save_edition(
            conn, edition, now=now - timedelta(days=400), actor="bench", make_current=True
        )
        await seed_nominations(conn, 180, edition_slug=edition.slug, seed=1, progress=False)
        rows = await conn.fetch(
            "SELECT public_id, category FROM nominations WHERE edition_id=$1"
            " ORDER BY category, public_id",
            edition_id,
        )
        codes = [c.code for c in edition.categories]
        by_category = {c: [r["public_id"] for r in rows if r["category"] == c] for c in codes}
        ids = [n for c in codes for n in by_category[c][:10]]
        started = time.perf_counter()
        status = await conn.execute(
            FILL_SQL,
            edition_id,
            codes,
            len(codes),
            ids,
            edition.phase("voting").opens_at,
            votes,
        )
        await conn.execute("VACUUM ANALYZE votes")
        print(f"ledger: {status.split()[-1]} votes in {time.perf_counter() - started:.1f} s")

        print(f"load average before the timings: {os.getloadavg()[0]:.1f}")
        for rule in (False, True):
            await conn.execute(
                "UPDATE editions SET rules = rules || jsonb_build_object("
                "'completeness_rule', $2::boolean) WHERE id=$1",
                edition_id,
                rule,
            )
            seconds, tally = await timed(lambda: official_tally(conn, edition_id), rounds)
            official = sum(t["official"] for t in tally.values())
            print(
                f"official tally, completeness {'on ' if rule else 'off'}: median"
                f" {seconds * 1000:.0f} ms over {rounds} rounds ({official} official votes)"
            )
        # No expert panel here: a blend that gives the experts no weight can be published.
        rules_now = replace(
            edition.rules,
            results=replace(
                edition.rules.results,
                completeness_rule=True,
                merge_rule="blend",
                expert_weight=Fraction(0),
            ),
        )
        await conn.execute(
            "UPDATE editions SET rules=$2 WHERE id=$1", edition_id, rules_now.to_json()
        )
        edition = replace(edition, rules=rules_now)

        seconds, leaves = await timed(lambda: counted_leaves(conn, edition_id), 1)
        print(f"counted leaves (fetched and hashed): {seconds * 1000:.0f} ms{cpu()}")
        seconds, fp = await timed(lambda: fingerprint(conn, edition_id), 1)
        print(
            f"fingerprint (leaves + Merkle tree of {fp.leaf_count}): {seconds * 1000:.0f} ms{cpu()}"
        )
        seconds, results = await timed(lambda: compute(conn, edition, edition_id), 1)
        print(f"whole results (tally, panel, merge, fingerprint): {seconds * 1000:.0f} ms{cpu()}")
        for member in ("a", "b"):
            user = await accounts.grant(conn, f"bench-{member}@example.org", "committee")
            await conn.execute(
                "INSERT INTO result_signoffs (edition_id, user_id, digest) VALUES ($1, $2, $3)",
                edition_id,
                user.id,
                results.digest(),
            )
        seconds, (publication, _) = await timed(
            lambda: pub.publish(conn, edition, edition_id, now=now, actor="bench"), 1
        )
        print(
            f"publication (results, {publication.leaf_count} leaves, tree levels):"
            f" {seconds * 1000:.0f} ms{cpu()}"
        )

        async def export() -> int:
            size = 0
            async for chunk in pub.export_chunks(conn, publication, edition.slug):
                size += len(chunk)
            return size

        seconds, size = await timed(export, 1)
        print(f"ledger export: {size / 1e6:.1f} MB in {seconds * 1000:.0f} ms{cpu()}")
        receipts = [
            r["receipt"]
            for r in await conn.fetch(
                "SELECT receipt FROM votes WHERE edition_id=$1 AND verdict='counted'"
                " ORDER BY random() LIMIT 200",
                edition_id,
            )
        ]
        proof_times = []
        found = 0
        for receipt in receipts:
            started = time.perf_counter()
            proof = await pub.inclusion_proof(conn, publication, edition.slug, receipt)
            proof_times.append(time.perf_counter() - started)
            found += proof is not None
        print(
            f"inclusion proof: median {statistics.median(proof_times) * 1000:.2f} ms,"
            f" p99 {sorted(proof_times)[int(len(proof_times) * 0.99) - 1] * 1000:.2f} ms"
            f" ({found} of {len(receipts)} counted receipts in the published tally)"
        )
        del leaves, fp
    finally:
        await conn.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("admin_url", help="a PostgreSQL URL allowed to create databases")
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(run(args.admin_url, args.votes, args.rounds))


if __name__ == "__main__":
    main()
