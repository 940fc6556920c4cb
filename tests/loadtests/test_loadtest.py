"""Short runs of `voting loadtest` and `voting bench`, so that neither rots: seconds each,
real servers, no threshold on speed. Plus the pieces they are built from."""

import asyncio
import os
import re
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from loadtests import loadtest
from loadtests.bench import drain
from loadtests.shapes import surge_users
from tests.fixtures.services import TEST_SECRET
from tests.fixtures.voting import redis_now, voter, voting_edition
from voting import db, edition_store
from voting.seed import seed_nominations


def _env(database_url, redis_url, redis_prefix, tmp_path):
    return {
        **os.environ,
        "VOTING_DATABASE_URL": database_url,
        "VOTING_REDIS_URL": redis_url,
        "VOTING_REDIS_PREFIX": redis_prefix,
        "VOTING_SECRET_KEY": TEST_SECRET,
        "VOTING_DATA_DIR": str(tmp_path),
    }


def _voting(args, env, timeout=240):
    return subprocess.run(
        [sys.executable, "-m", "voting.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_a_short_surge_rehearsal_passes_and_its_ledger_matches(
    database_url, redis_url, redis_prefix, tmp_path
):
    async def real_edition() -> int:
        from datetime import UTC, datetime

        from tests.fixtures.editions import edition_data
        from voting.contest import parse_edition

        conn = await db.connect(database_url)
        try:
            now = datetime.now(UTC)
            edition = parse_edition(edition_data(), now=now)
            edition_id = await edition_store.save_edition(
                conn, edition, now=now, actor="test", make_current=True
            )
            await seed_nominations(conn, 18, edition_slug=edition.slug, progress=False)
            return edition_id
        finally:
            await conn.close()

    real_id = asyncio.run(real_edition())
    env = _env(database_url, redis_url, redis_prefix, tmp_path)
    report = tmp_path / "report"
    done = _voting(
        [
            "loadtest",
            "--users",
            "12",
            "--spawn-rate",
            "12",
            "--duration",
            "6s",
            "--shape",
            "surge",
            # Voters who read the ballot for at least min_form_seconds (2 s): faster
            # ones are asked a challenge, which the load generator would solve on the
            # same two cores as the server, and the latency limits measure that.
            "--think",
            "2.5",
            "--report-dir",
            str(report),
        ],
        env,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "PASSED" in out
    accepted = int(re.search(r"votes accepted: (\d+); ledger rows: (\d+)", out).group(1))
    ledger = int(re.search(r"votes accepted: (\d+); ledger rows: (\d+)", out).group(2))
    assert accepted == ledger > 0
    sent, refused = map(int, re.search(r"duplicates sent: (\d+), refused: (\d+)", out).groups())
    assert sent == refused
    for request in ("POST vote", "POST /api/rehearsal/session", "GET /api/nominations/{id}"):
        assert request in out
    assert (report / "locust_stats.csv").exists() and (report / "locust.html").exists()

    async def after() -> tuple[int, int]:
        conn = await db.connect(database_url)
        try:
            real_votes = await conn.fetchval(
                "SELECT count(*) FROM votes WHERE edition_id=$1", real_id
            )
            rehearsals = await conn.fetchval("SELECT count(*) FROM editions WHERE is_rehearsal")
            return real_votes, rehearsals
        finally:
            await conn.close()

    # The real edition got no vote, and the rehearsal is gone.
    assert asyncio.run(after()) == (0, 0)


def test_a_short_bench_prints_medians_ratios_and_its_tracking_line(
    database_url, redis_url, redis_prefix, tmp_path
):
    env = _env(database_url, redis_url, redis_prefix, tmp_path)
    done = _voting(
        [
            "bench",
            "--seconds",
            "1",
            "--rounds",
            "2",
            "--connections",
            "8",
            "--voters",
            "3000",
            "--tally-votes",
            "3000",
        ],
        env,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    lines = out.strip().splitlines()
    # wrk (./dev installs it) drives the pure baseline to its limit: the ratio is reported.
    assert "load generator: wrk" in out
    assert re.fullmatch(r"vote/pure-bare ratio: \d+\.\d\d", lines[-1]), out
    assert re.fullmatch(
        r"stack cost: vote/livez ratio: \d+\.\d\d, livez/pure-bare ratio: \d+\.\d\d", lines[-2]
    ), out
    assert re.search(r"pure baseline \(GET /, .*\): median [1-9]\d* req/s", out)
    assert re.search(r"bare endpoint .* median [1-9]\d* req/s", out)
    assert re.search(r"vote path .* median [1-9]\d* votes/s", out)
    assert re.search(r"latency at half load .* p50 [\d.]+ ms, p95 [\d.]+ ms, p99 [\d.]+ ms", out)
    cpu = re.search(r"server CPU per request: +pure (\d+) us, bare (\d+) us, vote (\d+) us", out)
    assert cpu and 0 < int(cpu[1]) and 0 < int(cpu[2]) and 0 < int(cpu[3]), out
    for load in ("pure", "livez", "votes"):
        shares = re.search(
            rf"^  {load} +server ([\d.]+), Redis ([\d.]+), generator ([\d.]+)", out, re.M
        )
        assert shares and float(shares[1]) > 0 and float(shares[3]) > 0, out
    capacity = re.search(
        r"capacity \(votes\): a busy app core (\d+) votes/s \((\d+) us a vote\), a busy Redis"
        r" core (\d+) votes/s \((\d+) us a vote\); 50,000 votes/s at full load: (\d+) app"
        r" cores, (\d+) Redis cores",
        out,
    )
    assert capacity and all(int(g) > 0 for g in capacity.groups()), out
    drained = int(re.search(r"flusher drain \(1 flusher\): (\d+) votes", out).group(1))
    assert drained > 0 and "flusher/vote ratio:" in out
    assert re.search(r"official tally over \d+ ledger votes \(completeness on\)", out)
    assert "goals:" in out


def test_the_bench_falls_back_to_locust_where_wrk_is_missing(
    database_url, redis_url, redis_prefix, tmp_path
):
    """What a fresh machine without wrk runs."""
    env = _env(database_url, redis_url, redis_prefix, tmp_path)
    done = _voting(
        [
            "bench",
            "--generator",
            "locust",
            "--seconds",
            "1",
            "--rounds",
            "1",
            "--connections",
            "4",
            "--voters",
            "2000",
            "--tally-votes",
            "0",
        ],
        env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "load generator: locust FastHttpUser" in done.stdout
    assert re.search(r"vote path .* median [1-9]\d* votes/s", done.stdout)
    # Locust may well be the bottleneck before the pure baseline: then it says so and
    # gives no ratio; else the ratio.
    last = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"vote/pure-bare ratio: \d+\.\d\d", last) or (
        last == "vote/pure-bare ratio: not reported (the load generator was the bottleneck)"
        and "generator: locust FastHttpUser saturated before the pure baseline: it " in done.stdout
    ), done.stdout


def test_the_bench_on_two_workers_and_a_redis_cluster_reports_both_ratios(
    database_url, redis_url, redis_prefix, tmp_path
):
    """--workers 2: the one-worker server measured in the same run; --redis-cluster: a
    three-master cluster on loopback beside the single Redis; --private-redis: that single
    Redis one the bench starts. No threshold on speed."""
    env = _env(database_url, redis_url, redis_prefix, tmp_path)
    done = _voting(
        [
            "bench",
            "--workers",
            "2",
            "--redis-cluster",
            "--private-redis",
            "--seconds",
            "1",
            "--rounds",
            "1",
            "--connections",
            "8",
            "--voters",
            "3000",
            "--tally-votes",
            "0",
        ],
        env,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert ", a Redis of its own, Redis Cluster of 3 masters beside the single Redis" in out
    workers = re.search(
        r"workers: 2 workers (\d+) votes/s, 1 worker (\d+) votes/s in the same run: ratio"
        r" \d+\.\d\d",
        out,
    )
    assert workers and int(workers[1]) > 0 and int(workers[2]) > 0, out
    cluster = re.search(
        r"Redis Cluster \(3 masters\): (\d+) votes/s, single Redis (\d+) votes/s in the same"
        r" run: cluster/single ratio \d+\.\d\d",
        out,
    )
    assert cluster and int(cluster[1]) > 0 and int(cluster[2]) > 0, out
    assert "capacity (votes, Redis Cluster): a busy app core " in out
    for load in ("votes", "votes, 1 worker", "votes, Redis Cluster"):
        shares = re.search(
            rf"^  {load} +server ([\d.]+), Redis ([\d.]+), generator ([\d.]+)", out, re.M
        )
        # Both Redis setups did the scripts' work: their CPU time is seen.
        assert shares and float(shares[1]) > 0 and float(shares[2]) > 0, out
    assert re.search(r"flusher drain \(2 flushers\): [1-9]\d* votes", out)
    assert out.strip().splitlines()[-1].startswith("vote/pure-bare ratio: ")


def test_the_asgi_server_comparison_measures_both_servers():
    args = ["--no-engine", "--rounds", "1", "--seconds", "1", "--connections", "8"]
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.asgi_servers", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for server in ("uvicorn", "granian"):
        assert re.search(rf"^{server} hello: median [1-9]\d*/s", done.stdout, re.M), done.stdout
    assert re.search(r"^granian/uvicorn \(hello\): \d+\.\d\d$", done.stdout, re.M)


@given(
    peak=st.integers(1, 100_000),
    duration=st.floats(1, 7200),
    a=st.floats(0, 1),
    b=st.floats(0, 1),
)
def test_the_surge_grows_toward_the_cutoff_and_stays_within_the_peak(peak, duration, a, b):
    early, late = sorted((a * duration, b * duration))
    assert 1 <= surge_users(early, duration, peak) <= surge_users(late, duration, peak) <= peak
    assert surge_users(duration, duration, peak) == peak


def test_the_verdict_names_every_threshold_missed():
    import argparse

    args = argparse.Namespace(max_failure_rate=0.01, max_p95_ms=100, max_p99_ms=200)
    row = loadtest.Row("", "Aggregated", 1000, 5, 50.0, 10, 90, 150)
    assert loadtest.verdict([row], args) == []
    slow = loadtest.Row("", "Aggregated", 1000, 20, 50.0, 10, 120, 250)
    missed = loadtest.verdict([slow], args)
    assert [m.split()[0] for m in missed] == ["failure", "p95", "p99"]
    assert loadtest.verdict([], args) == ["no request was made"]
    assert loadtest.seconds("1h2m3s") == 3723 and loadtest.seconds("90") == 90
    assert loadtest.tally_outcomes({"vote:202": 5, "second vote:409": 2, "second vote:202": 1}) == (
        6,
        3,
        2,
    )


async def test_the_bench_drains_with_one_flusher_per_worker(
    ballot, conn, redis_client, redis_url, database_url, redis_prefix
):
    """`serve` runs a flusher in each worker: the bench times as many side by side, and
    together they write every vote once."""
    edition, edition_id = await voting_edition(conn, ballot, await redis_now(redis_client))
    for n in range(300):
        await ballot.cast(edition.slug, voter(n), ("C1", "C2")[n % 2], "N1")
    drained, seconds = await drain(database_url, redis_url, redis_prefix, flushers=2)
    assert drained == 300 and seconds > 0
    count = await conn.fetchval("SELECT count(*) FROM votes WHERE edition_id=$1", edition_id)
    assert count == 300
    # Both read every stream (a consumer exists once it has read from one).
    for stream in ballot.keys(edition.slug).all_streams():
        consumers = await redis_client.xinfo_consumers(stream, "flushers")
        assert {bytes(c["name"]) for c in consumers} >= {b"bench0", b"bench1"}


@given(
    generator=st.floats(0, 8),
    server=st.floats(0, 8),
    cores=st.integers(1, 8),
    workers=st.integers(1, 8),
)
def test_the_pure_baseline_is_refused_exactly_when_the_generator_set_its_pace(
    generator, server, cores, workers
):
    from loadtests.bench import Load, generator_saturated

    pure = Load("pure", rates=[1.0], server=[server], generator=[generator])
    why = generator_saturated(pure, cores, workers)
    if generator >= 0.9 * cores:
        assert why.startswith("it kept") and f"of its {cores}" in why
    elif server < 0.85 * workers and generator >= server:
        assert "while the server used" in why
    else:
        assert why == ""
    # A server busy on all its workers with a generator far from its own limit: reported.
    assert (
        generator_saturated(Load("pure", server=[workers], generator=[0.0]), cores, workers) == ""
    )


def test_the_generator_s_cpu_time_is_its_own():
    from loadtests.generators import run_measured

    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
    code, out, err, cpu, wall = run_measured([sys.executable, "-c", burn + "\nprint('done')"])
    assert code == 0 and out.strip() == "done" and err == ""
    assert 0.3 <= cpu <= wall + 0.05
    sleeper = run_measured([sys.executable, "-c", "import time; time.sleep(0.4)"])
    assert sleeper[3] < 0.3 <= sleeper[4]
    assert run_measured([sys.executable, "-c", "raise SystemExit(3)"])[0] == 3
