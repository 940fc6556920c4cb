"""The fraud layer measured on labelled attack traffic: floors that a regression breaks."""

import os
import re
import subprocess
import sys

import pytest

from voting import db
from voting.antifraud.simulator import ATTACKS, simulate
from voting.services import open_redis


@pytest.fixture
async def engine(database_url, redis_url):
    pool = await db.create_pool(database_url, min_size=1, max_size=3)
    redis = open_redis(redis_url, max_connections=8)
    yield pool, redis
    await redis.aclose()
    await pool.close()


async def test_fixed_seed_run_keeps_attacks_out_and_organic_votes_in(engine, conn):
    pool, redis = engine
    report = await simulate(pool, redis, secret="s" * 40, seed=1, organic=1500)
    lines = report.lines()
    print("\n".join(lines))
    assert report.kept_out_share() >= 0.95
    assert report.organic_hit_share <= 0.01
    for attack in ATTACKS:
        assert report.attempts[attack] > 0
        assert report.kept_out_share(attack) >= 0.9, (attack, report.detail[attack])
    assert report.organic > 3000
    assert re.fullmatch(r"attack votes kept out: \d+\.\d%, organic votes hit: \d+\.\d%", lines[-1])
    # The simulation cleaned up after itself.
    assert await conn.fetchval("SELECT count(*) FROM editions WHERE slug LIKE 'sim-%'") == 0
    assert not [k async for k in redis.scan_iter(match="sim*:*", count=1000)]


async def test_the_same_seed_gives_the_same_figures(engine):
    pool, redis = engine
    a = await simulate(pool, redis, secret="s" * 40, seed=5, organic=300)
    b = await simulate(pool, redis, secret="s" * 40, seed=5, organic=300)
    assert a.detail == b.detail


def test_voting_fraud_simulate_prints_the_measure(database_url, redis_url, tmp_path):
    env = {
        **os.environ,
        "VOTING_DATABASE_URL": database_url,
        "VOTING_REDIS_URL": redis_url,
        "VOTING_DATA_DIR": str(tmp_path),
        "VOTING_SECRET_KEY": "k" * 40,
    }
    done = subprocess.run(
        [sys.executable, "-m", "voting.cli", "fraud", "simulate", "--organic", "300"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("attack votes kept out: ") and ", organic votes hit: " in last
