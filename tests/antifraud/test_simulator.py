"""The fraud layer measured on labelled traffic: floors that a regression breaks.

The simulation's cases (voting/antifraud/simulator.py CASES) were written before the
detectors were tuned; the thresholds were tuned on seed 1 and checked on seeds 2 and 3
(README, "Fraud"). The sign-ins and votes go through the engine's own rules
(`admit_signin`, `assess_vote`, the step-up on a rate limit), and every simulated actor
solves the challenges it is asked. Asserted: every organic case at most 2% hit and all
organic votes at most 1%; every attack case with a signal at least 90% kept out; every
vote of a priced case (the signal asks a challenge) paid one. Printed, not asserted, and
named in the README: the overall share of attack votes kept out, which the cases without
a signal (bought votes with cover, the adaptive attacker's cover settings) hold under 95%.
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


def assert_floors(report):
    """The floors every run must meet, whatever its seed and sizes."""
    for case in CASES:
        assert report.attempts.get(case.name, 0) > 0, case.name
        if not case.attack:
            # Every organic case: at most 2% of its votes refused or held, whatever did it.
            assert report.hit_share(case.name) <= 0.02, (case.name, report.rules[case.name])
        elif case.signal == "yes":
            # Every attack with a signal: at least 90% of its votes kept out.
            share = report.kept_out_share(case.name)
            assert share >= 0.9, (case.name, report.detail[case.name])
        elif case.signal == "priced":
            # Every vote of it that counted paid for a challenge first.
            assert report.unpriced.get(case.name, 0) == 0, case.name
            assert report.challenges[case.name] >= report.attempts[case.name]
    assert report.organic_hit_share <= 0.01
    assert report.signal_kept_out_share() >= 0.95


async def test_fixed_seed_run_meets_the_floors_case_by_case(engine, conn):
    pool, redis = engine
    report = await simulate(pool, redis, secret="s" * 40, seed=1, organic=1000)
    lines = report.lines()
    print("\n".join(lines))
    assert_floors(report)
    # The NAT crowd passed its network's sign-in limit and solved challenges to go on.
    assert report.challenges["ministry"] > 0
    # The adaptive attacker's cheapest setting that got votes counted is printed; in this
    # model it needs a residential address per vote, patient or paced to waking hours:
    # bought votes from real people's lines, which no signal sees (the audit's business).
    cheapest = report.cheapest_undetected()
    assert cheapest is not None and "per_net=1 " in cheapest
    assert f"adaptive attacker's cheapest setting counted: {cheapest}" in lines
    assert re.fullmatch(r"attack votes kept out: \d+\.\d%, organic votes hit: \d+\.\d%", lines[-1])
    # The simulation cleaned up after itself.
    assert await conn.fetchval("SELECT count(*) FROM editions WHERE slug = $1", report.slug) == 0
    assert not [k async for k in redis.scan_iter(match=f"{report.prefix}:*", count=1000)]


@pytest.mark.parametrize(
    ("seed", "organic", "scale"), [(3, 1000, 0.3), (1, 1000, 3.0), (1, 3000, 1.0)]
)
async def test_the_floors_hold_when_the_cases_are_smaller_or_larger(engine, seed, organic, scale):
    """The thresholds were tuned with 1000 organic voters at scale 1; the other cases at a
    third and at three times that size, and three times the organic voters beside them,
    are cases they were not tuned on. Before the baseline cap, the small-wave rule and
    the night beyond the category's usual, a nominator's small posts (scale 0.3, seed 3:
    12% hit), a carrier's crowd next to a large farm (scale 3, seed 1: 9% hit) and a
    popular project's banner readers (3000 organic, seed 1: 36% hit) broke the floor."""
    pool, redis = engine
    report = await simulate(pool, redis, secret="s" * 40, seed=seed, organic=organic, scale=scale)
    print("\n".join(report.lines()))
    assert_floors(report)


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


@pytest.mark.parametrize(
    ("rule", "said"),
    [
        ("ip_limt=3", "--rule: rules.antifraud.ip_limt: unknown threshold"),
        ("ip_limit=1.5", "--rule: rules.antifraud.ip_limit: must be a whole number"),
        ("ip_limit=many", "invalid literal for int()"),
    ],
)
def test_a_bad_threshold_is_one_line_before_anything_is_simulated(
    database_url, redis_url, tmp_path, rule, said
):
    env = {
        **os.environ,
        "VOTING_DATABASE_URL": database_url,
        "VOTING_REDIS_URL": redis_url,
        "VOTING_DATA_DIR": str(tmp_path),
        "VOTING_SECRET_KEY": "k" * 40,
    }
    done = subprocess.run(
        [sys.executable, "-m", "voting.cli", "fraud", "simulate", "--rule", rule],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert said in done.stderr and "Traceback" not in done.stderr
