"""A slice of the fraud simulation over HTTP, against a real `voting serve`
(loadtests/fraud_http.py): the same floors as the simulated run, on requests sent as
browsers and bots send them."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg

from loadtests import fraud_http
from tests.fixtures import live_server
from tests.fixtures.antifraud import KEY, add_vote
from tests.fixtures.editions import edition_data
from voting import db, edition_store
from voting.antifraud.config import FraudRules
from voting.contest import parse_edition
from voting.seed import seed_nominations

# Small challenges, so that the slice runs in seconds: the
# rules, not their sizes, are under test.
RULES = {"challenge_max_number": 5000}


async def _site(conn: asyncpg.Connection) -> tuple[int, str, dict[str, list[str]]]:
    data = edition_data()
    data["slug"] = "fraud-http"
    data["rules"] = {"antifraud": RULES}
    now = datetime.now(UTC)
    edition = parse_edition(data, now=now)
    await edition_store.save_edition(
        conn, edition, now=now - timedelta(days=400), actor="test", make_current=True
    )
    edition_id = await conn.fetchval("SELECT id FROM editions WHERE slug=$1", data["slug"])
    await seed_nominations(conn, 9, edition_slug=data["slug"], seed=3, progress=False)
    rows = await conn.fetch(
        "SELECT public_id, category FROM nominations WHERE edition_id=$1 AND status='accepted'"
        " ORDER BY public_id",
        edition_id,
    )
    nominations: dict[str, list[str]] = {}
    for r in rows:
        nominations.setdefault(r["category"], []).append(r["public_id"])
    # The day so far: people voting from everywhere, the categories' baseline.
    rng = random.Random(7)
    for i in range(300):
        category = rng.choice(sorted(nominations))
        await add_vote(
            conn,
            edition_id,
            f"before{i:05d}",
            category,
            rng.choice(nominations[category][:2]),
            at=now - timedelta(minutes=rng.randint(5, 20 * 60)),
            ip=f"{rng.randrange(11, 200)}.{rng.randrange(256)}.{rng.randrange(256)}.9",
        )
    return edition_id, data["slug"], nominations


async def test_the_http_slice_meets_the_floors_case_by_case(
    pg_admin_url, template_db, redis_url, tmp_path
):
    database_url = await live_server.own_database(pg_admin_url, template_db)
    prefix = f"fh{uuid.uuid4().hex[:10]}"
    try:
        conn = await db.connect(database_url)
        try:
            edition_id, slug, nominations = await _site(conn)
        finally:
            await conn.close()
        # Each client names its address in X-Forwarded-For, believed from loopback.
        server = live_server.start(
            database_url,
            redis_url,
            prefix,
            tmp_path / "serve",
            env={"VOTING_TRUST_PROXY_HEADERS": "true"},
        )
        pool = await db.create_pool(database_url, min_size=1, max_size=4)
        try:
            report = await fraud_http.run(
                server.url, nominations, fraud_http.outbox_reader(pool), seed=1
            )
            await fraud_http.judge(
                pool, edition_id, slug, replace(FraudRules(), **RULES), report, address_key=KEY
            )
        finally:
            await pool.close()
            live_server.stop(server)
    finally:
        await live_server.drop_prefix(redis_url, prefix)
        await live_server.drop_database(pg_admin_url, database_url)
    print("\n".join(report.lines()))
    for case, size in fraud_http.SIZES.items():
        assert report.tried[case] >= size, (case, report.detail.get(case))
    # Honest people, alone or behind one office address: none turned away or held.
    for case in ("organic", "ministry"):
        assert report.share_out(case) <= 0.02, (case, report.detail[case])
    # The office passed its network's sign-in limit and its address's vote limit: its
    # people solved challenges instead of being refused.
    assert report.challenges["ministry"] > 0
    # Attacks with a signal: kept out.
    for case in ("tokenless", "replayed", "headless", "throwaway", "farm"):
        assert report.share_out(case) >= 0.9, (case, report.detail[case])
    # One mailbox written eight ways: its one vote counts, no other.
    assert report.tried["aliases"] - report.kept_out["aliases"] == 1, report.detail["aliases"]
    # A quick click is priced: every one of those votes paid a challenge.
    assert report.challenges["too_fast"] >= report.tried["too_fast"]
