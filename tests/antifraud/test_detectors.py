"""Each offline detector on its own, quarantine decisions, and the committee's pages."""

import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.antifraud import KEY, add_vote, add_voter, browser, organic
from tests.fixtures.editions import edition_data, load_data
from tests.fixtures.flows import csrf_from, sign_in
from voting import accounts
from voting.antifraud.config import DEFAULTS
from voting.antifraud.detectors import (
    BASELINE_CAP,
    BASELINE_FLOOR,
    DETECTORS,
    VoteRow,
    _Baseline,
    _beyond_usual,
    _sleeps,
    audit_category,
    bulk_verification,
    burst,
    catchall,
    cluster,
    concentration,
    drip,
    form_timing,
    load,
    scan,
)
from voting.antifraud.quarantine import DecisionRefused, decide_flag, decide_vote, verdict_counts
from voting.antifraud.signals import networks_of, networks_of_reference

START = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
NOMS = {"C1": ["A1", "A2", "A3"], "C2": ["B1", "B2"], "C3": ["D1", "D2"]}
# Minutes from a start at which people arrive: at random, as people do (no beat).
IRREGULAR = [0, 2, 31, 40, 95, 96, 150, 233, 240, 300, 381, 399, 470, 560, 566, 640, 701]


@pytest.fixture
async def edition_id(conn, clock):
    await load_data(conn, edition_data(), clock.now())
    return await conn.fetchval("SELECT id FROM editions WHERE slug='test-edition'")


async def verdicts(conn, edition_id):
    rows = await conn.fetch(
        "SELECT voter_id, category, verdict, verdict_reasons FROM votes WHERE edition_id=$1",
        edition_id,
    )
    return {(r["voter_id"], r["category"]): (r["verdict"], r["verdict_reasons"]) for r in rows}


async def test_organic_traffic_raises_no_flag(conn, edition_id):
    await organic(conn, edition_id, START, 120, NOMS)
    report = await scan(conn, edition_id, "test-edition", DEFAULTS, address_key=KEY)
    assert report.quarantined == 0, report.per_detector


async def test_concentration_sees_ipv6_rotation_inside_one_48_and_spares_an_office(
    conn, edition_id
):
    await organic(conn, edition_id, START, 60, NOMS)
    at = START + timedelta(hours=2)
    for i in range(15):  # a new /64 each time, one /48, hours apart, many agents
        await add_vote(
            conn,
            edition_id,
            f"six{i}",
            "C1",
            "A3",
            at=at + timedelta(minutes=IRREGULAR[i]),
            ip=f"2001:db8:77:{i:x}::{i + 1:x}",
            agent=f"agent-{i}",
            domain="gmail.com",
        )
    for i in range(15):  # a ministry's staff behind one NAT address, one managed browser
        await add_vote(
            conn,
            edition_id,
            f"staff{i}",
            "C1",
            "A2",
            at=at + timedelta(minutes=IRREGULAR[i] / 4),
            ip="203.0.113.10",
            agent="Mozilla/5.0 (Managed Edge)",
            domain="ministry.gov.example",
        )
    findings = await concentration(await load(conn, edition_id), DEFAULTS)
    flagged = {v for f in findings for v, _ in f.votes}
    assert flagged == {f"six{i}" for i in range(15)}
    assert {f.evidence["network"] for f in findings} >= {"2001:db8:77::/48"}
    report = await scan(conn, edition_id, "test-edition", DEFAULTS, address_key=KEY)
    assert report.quarantined == 15, report.per_detector
    v = await verdicts(conn, edition_id)
    assert all(v[(f"staff{i}", "C1")][0] == "counted" for i in range(15))


@pytest.mark.parametrize(
    ("agent", "spared"),
    [
        ("Mozilla/5.0 (Managed Edge)", True),
        ("python-requests/2.31.0", False),
        ("Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0", False),
        ("", False),
    ],
)
async def test_a_group_on_its_own_domain_is_an_institution_only_in_browsers(
    conn, edition_id, agent, spared
):
    """A farm on a custom domain of its own, behind one /24, is not an office: found over
    HTTP (tests/loadtests/test_fraud_http.py), where the simulated farm's rhythm had hidden it."""
    await organic(conn, edition_id, START, 60, NOMS)
    at = START + timedelta(hours=2)
    for i in range(15):
        await add_vote(
            conn,
            edition_id,
            f"member{i}",
            "C1",
            "A2",
            at=at + timedelta(minutes=IRREGULAR[i] / 4),
            ip=f"203.0.113.{10 + i}",
            agent=agent,
            domain="own-domain.example",
        )
    findings = await concentration(await load(conn, edition_id), DEFAULTS)
    flagged = {v for f in findings for v, _ in f.votes}
    assert flagged == (set() if spared else {f"member{i}" for i in range(15)})


async def test_a_farm_on_one_nomination_does_not_make_a_carrier_look_concentrated(conn, edition_id):
    """A carrier's crowd votes like its category; a farm's 600 votes on another
    nomination of the category must not dilute the carrier's share of the baseline until
    the carrier looks concentrated on the most popular nomination (the pooled share did:
    `voting fraud simulate --scale 3`, seed 1, held 9% of the carrier's votes)."""
    weights = ["E1"] * 4 + ["E2"] * 2 + ["E3", "E4", "E5", "E6"]
    for i in range(120):  # people from everywhere: a /16 each
        ip = f"{11 + i}.{i % 7}.{i % 250}.9"
        await add_vote(
            conn,
            edition_id,
            f"person{i}",
            "C1",
            weights[i % 10],
            at=START + timedelta(minutes=IRREGULAR[i % 17] + 700 * (i // 17)),
            ip=ip,
            agent=browser(i),
            domain=("gmail.com", "outlook.com")[i % 2],
        )
    for i in range(80):  # a mobile carrier: one public /24, the same taste
        await add_vote(
            conn,
            edition_id,
            f"mobile{i}",
            "C1",
            weights[i % 10],
            at=START + timedelta(minutes=IRREGULAR[i % 17] + 900 * (i // 17) + 5),
            ip=f"100.70.5.{1 + i % 12}",
            agent=browser(i + 3),
            domain="gmail.com",
        )
    for i in range(600):  # a farm on three hosting /24s, all for E6
        await add_vote(
            conn,
            edition_id,
            f"farm{i}",
            "C1",
            "E6",
            at=START + timedelta(minutes=i),
            ip=f"23.1.{i % 3}.{2 + i % 200}",
            agent=browser(i),
            domain="gmail.com",
        )
    findings = await concentration(await load(conn, edition_id), DEFAULTS)
    named = {v for f in findings for v, _ in f.votes}
    assert {f"farm{i}" for i in range(600)} <= named
    assert not {v for v in named if not v.startswith("farm")}, findings


async def test_one_vote_on_each_empty_nomination_does_not_hide_a_farm(conn, edition_id):
    """The cap follows the median nomination, which one vote on each empty nomination
    pulls down to 1: the floor keeps the farm's network at most twice its pooled share of
    the baseline, so its 150 votes still stand out (without it none was flagged)."""
    for n in range(8):  # eight honest nominations, 75 votes each from everywhere
        for i in range(75):
            await add_vote(
                conn,
                edition_id,
                f"person{n}-{i}",
                "C1",
                f"H{n}",
                at=START + timedelta(minutes=7 * i + n),
                ip=f"10.{n}.{i}.9",
                agent=browser(i),
                domain="gmail.com",
            )
    for n in range(11):  # the farm's vote on each empty nomination
        await add_vote(
            conn,
            edition_id,
            f"seed{n}",
            "C1",
            f"X{n}",
            at=START + timedelta(minutes=n),
            ip=f"23.9.9.{n + 2}",
            agent=browser(n),
            domain="gmail.com",
        )
    for i in range(150):
        await add_vote(
            conn,
            edition_id,
            f"farm{i}",
            "C1",
            "T",
            at=START + timedelta(minutes=3 * i),
            ip=f"23.9.9.{20 + i % 200}",
            agent=browser(i),
            domain="gmail.com",
        )
    findings = await concentration(await load(conn, edition_id), DEFAULTS)
    assert {f"farm{i}" for i in range(150)} <= {v for f in findings for v, _ in f.votes}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 7), st.integers(0, 5)), min_size=1, max_size=300))
def test_the_baseline_is_the_pooled_share_until_a_nomination_passes_the_cap(votes):
    """Nomination n, network k per vote. Below the cap the share is exactly the pooled
    one; above it the weighed votes never fall under BASELINE_FLOOR of all votes, so no
    network's share exceeds twice its pooled share of the whole category."""
    rows = [
        VoteRow(f"v{i}", "C1", f"N{n}", float(i), (f"net{k}",), "a", "d", -1)
        for i, (n, k) in enumerate(votes)
    ]
    base = _Baseline(rows, lambda v: v.nets)
    sizes = Counter(r.nomination for r in rows)
    counts = Counter((r.nomination, r.nets[0]) for r in rows)
    nets = Counter(r.nets[0] for r in rows)
    assert base.total >= BASELINE_FLOOR * len(rows) - 1e-9
    for net, total in nets.items():
        assert base.counts[net] / base.total <= 2 * total / len(rows) + 1e-9
    uncapped = max(sizes.values()) <= BASELINE_CAP * statistics.median(sizes.values())
    for nomination, size in sizes.items():
        for net in nets:
            got = base.share(net, nomination, votes=size, with_key=counts[(nomination, net)])
            if uncapped:
                rest = len(rows) - size
                pooled = (nets[net] - counts[(nomination, net)]) / rest if rest else 0.0
                assert got == pytest.approx(pooled, abs=1e-12)


async def test_burst_flags_the_networks_behind_a_surge_in_any_window(conn, edition_id):
    await organic(conn, edition_id, START, 60, NOMS)
    burst_at = START + timedelta(hours=6)
    for i in range(40):  # 40 votes in 5 minutes from one /24 for A2
        await add_vote(
            conn,
            edition_id,
            f"farm{i}",
            "C1",
            "A2",
            at=burst_at + timedelta(seconds=7 * i),
            ip=f"192.0.2.{i}",
            agent=f"agent-{i}",
            domain="gmail.com",
        )
    findings = await burst(await load(conn, edition_id), DEFAULTS)
    assert {f.evidence["window_s"] for f in findings} >= {600, 3600}
    assert {v for f in findings for v, _ in f.votes} == {f"farm{i}" for i in range(40)}
    report = await scan(conn, edition_id, "test-edition", DEFAULTS, address_key=KEY)
    assert report.quarantined == 40
    v = await verdicts(conn, edition_id)
    assert all(v[(f"farm{i}", "C1")][0] == "quarantined" for i in range(40))
    assert all(
        state == "counted" for (vid, _), (state, _) in v.items() if vid.startswith("organic")
    )
    # A rescan finds the same thing and changes nothing.
    again = await scan(conn, edition_id, "test-edition", DEFAULTS, address_key=KEY)
    assert again.quarantined == 0
    assert await conn.fetchval("SELECT count(*) FROM fraud_flags") == report.flags


async def test_cluster_flags_a_machine_rhythm_at_any_pace_not_colleagues(conn, edition_id):
    await organic(conn, edition_id, START, 30, NOMS)
    at = START + timedelta(hours=3)
    for i in range(12):  # one agent, a beat every 4 minutes: slow, but a loop
        await add_vote(
            conn,
            edition_id,
            f"bot{i}",
            "C2",
            "B1",
            at=at + timedelta(seconds=240 * i + (i % 3)),
            ip=f"198.51.{i}.7",
            agent="python-requests/2.31",
            domain="gmail.com",
        )
    gaps = [5, 300, 40, 900, 12, 200, 61, 1500, 7, 420, 95]  # colleagues: at random
    staff_at = at
    for i in range(12):
        await add_vote(
            conn,
            edition_id,
            f"staff{i}",
            "C2",
            "B2",
            at=staff_at,
            ip="203.0.113.9",
            agent="Mozilla/5.0 (Corporate)",
            domain="agency.example",
        )
        staff_at += timedelta(seconds=gaps[i % len(gaps)])
    findings = await cluster(await load(conn, edition_id), DEFAULTS)
    assert {v for f in findings for v, _ in f.votes} == {f"bot{i}" for i in range(12)}


async def test_bulk_verification_flags_sleepers_voting_later_from_elsewhere(conn, edition_id):
    await organic(conn, edition_id, START, 60, NOMS)
    minted = START + timedelta(hours=1)
    for i in range(40):  # minted on one /16 in half an hour, voting a day later via proxies
        vid = f"sleeper{i}"
        await add_voter(
            conn,
            edition_id,
            vid,
            verified_at=minted + timedelta(seconds=45 * i),
            ip=f"100.64.{i % 4}.{i}",
        )
        ip = f"{20 + i}.{i * 3}.{i}.9"
        await add_vote(
            conn,
            edition_id,
            vid,
            "C1",
            "A3",
            at=START + timedelta(days=1, minutes=30 * i),
            ip=ip,
            agent=f"a{i}",
            domain="gmail.com",
            form_ms=9000 + 500 * i,
        )
    for i in range(20):  # staff verified together after a mail, voting from the office
        vid = f"staff{i}"
        at = START + timedelta(hours=5, seconds=30 * i)
        await add_voter(conn, edition_id, vid, verified_at=at, ip="203.0.113.10")
        await add_vote(
            conn,
            edition_id,
            vid,
            "C1",
            "A2",
            at=at + timedelta(minutes=4),
            ip="203.0.113.10",
            domain="ministry.gov.example",
            form_ms=15000,
        )
    findings = await bulk_verification(await load(conn, edition_id), DEFAULTS)
    assert {v for f in findings for v, _ in f.votes} == {f"sleeper{i}" for i in range(40)}


async def test_drip_flags_a_steady_trickle_but_not_a_wave_from_a_post(conn, edition_id):
    await organic(conn, edition_id, START, 100, NOMS)
    for i in range(30):  # bought: one vote each, one category, an hour apart, patiently
        vid = f"drip{i}"
        at = START + timedelta(hours=i)
        ip = f"172.{16 + i % 10}.{i}.5"
        await add_voter(conn, edition_id, vid, verified_at=at, ip=ip)
        await add_vote(
            conn,
            edition_id,
            vid,
            "C1",
            "A3",
            at=at + timedelta(minutes=20 + i),
            ip=ip,
            agent=f"Android {i % 4}",
            domain="gmail.com",
            form_ms=8000 + 300 * i,
        )
    post = START + timedelta(hours=10)
    for i in range(30):  # a nominator's post: supporters within the hour, B2 only
        vid = f"fan{i}"
        ip = f"81.{i}.{i * 5 % 256}.4"
        await add_voter(conn, edition_id, vid, verified_at=post + timedelta(minutes=2 * i), ip=ip)
        await add_vote(
            conn,
            edition_id,
            vid,
            "C2",
            "B2",
            at=post + timedelta(minutes=2 * i + 3),
            ip=ip,
            agent=f"Mozilla/5.0 (fan {i % 5})",
            domain="outlook.com",
            form_ms=12000 + 200 * i,
        )
    findings = await drip(await load(conn, edition_id), DEFAULTS)
    assert {v for f in findings for v, _ in f.votes} == {f"drip{i}" for i in range(30)}


@pytest.mark.parametrize(("shape", "flagged"), [("waves", False), ("steady", True)])
async def test_drip_sees_a_small_wave_as_a_wave(conn, edition_id, shape, flagged):
    """Two posts of a nominator, nine supporters each within the hour, are waves however
    small: the test that sets a wave aside takes no pseudo-count (with one, `voting fraud
    simulate --scale 0.3` held a quarter of a small nomination's supporters). The same
    eighteen single-purpose voters arriving steadily over three days are a drip."""
    await organic(conn, edition_id, START, 100, NOMS)
    if shape == "waves":
        arrivals = [START + timedelta(hours=h, minutes=5 * i) for h in (6, 66) for i in range(9)]
    else:
        arrivals = [START + timedelta(hours=4 * i, minutes=IRREGULAR[i % 17]) for i in range(18)]
    for i, at in enumerate(arrivals):
        vid = f"fan{i}"
        ip = f"81.{i}.{i * 5 % 256}.4"
        await add_voter(conn, edition_id, vid, verified_at=at, ip=ip)
        await add_vote(
            conn,
            edition_id,
            vid,
            "C2",
            "B2",
            at=at + timedelta(minutes=3),
            ip=ip,
            agent=browser(i),
            domain="outlook.com",
            form_ms=12000 + 200 * i,
        )
    findings = await drip(await load(conn, edition_id), DEFAULTS)
    named = {v for f in findings for v, _ in f.votes}
    assert named == ({f"fan{i}" for i in range(18)} if flagged else set())


async def banner_readers(conn, edition_id, times, agent, *, form_ms=None) -> None:
    """Readers of a project's banner (C1's A3), one a time in `times`, each from an
    address of its own in one region, `agent(i)` their browser, `form_ms(i)` the time
    on its form (none: not reported): voter reader<i> confirms at its time and votes
    20-49 minutes later."""
    for i, at in enumerate(times):
        vid = f"reader{i}"
        ip = f"172.{16 + i % 10}.{i}.5"
        await add_voter(conn, edition_id, vid, verified_at=at, ip=ip)
        await add_vote(
            conn,
            edition_id,
            vid,
            "C1",
            "A3",
            at=at + timedelta(minutes=20 + i % 30),
            ip=ip,
            agent=agent(i),
            domain="gmail.com",
            form_ms=form_ms(i) if form_ms else None,
        )


@pytest.mark.parametrize(("hours", "flagged"), [(range(24), True), (range(4, 22), False)])
async def test_drip_spares_a_trickle_that_keeps_a_night(conn, edition_id, hours, flagged):
    """A project's website banner: its readers, of one region, come steadily over three
    days but sleep; bought votes run around the clock."""
    await organic(conn, edition_id, START, 100, NOMS)
    day0 = START.replace(hour=0)
    slots = [day0 + timedelta(days=d, hours=h) for d in range(1, 4) for h in hours]
    await banner_readers(
        conn,
        edition_id,
        slots[::2][:36],
        lambda i: f"Mozilla/5.0 (reader {i % 4})",
        form_ms=lambda i: 8000 + 300 * i,
    )
    findings = await drip(await load(conn, edition_id), DEFAULTS)
    found = {v for f in findings for v, _ in f.votes if v.startswith("reader")}
    assert bool(found) is flagged, findings


@pytest.mark.parametrize(("hours", "flagged"), [(range(24), True), (range(4, 22), False)])
async def test_drip_looks_for_the_night_beyond_the_category_usual(conn, edition_id, hours, flagged):
    """A popular project's banner readers keep their region's night, but the category's
    own single-purpose voters, from everywhere, also vote for the project around the
    clock at the category's usual rate: the night is looked for in what the project has
    beyond its due share of those (seen in `voting fraud simulate --organic 3000`, seed
    1: a banner 36% hit). Readers who come round the clock are still a drip."""
    await organic(conn, edition_id, START, 600, NOMS)
    day0 = START.replace(hour=0) + timedelta(days=1)
    # The category's single-purpose voters, evenly round the clock: A1 on even hours, A2
    # on odd ones, A3 (as popular, at about the same rate) every 90 minutes.
    steady = [("A1", 36, 2.0, 0.0), ("A2", 36, 2.0, 1.0), ("A3", 48, 1.5, 0.0)]
    for nomination, count, every, offset in steady:
        for i in range(count):
            at = day0 + timedelta(hours=offset + i * every, minutes=7)
            vid = f"single{nomination}{i}"
            ip = f"82.{i}.{ord(nomination[1])}.9"
            await add_voter(conn, edition_id, vid, verified_at=at, ip=ip)
            await add_vote(conn, edition_id, vid, "C1", nomination, at=at, ip=ip, agent=browser(i))
    slots = [day0 + timedelta(days=d, hours=h) for d in range(3) for h in hours]
    await banner_readers(
        conn, edition_id, [slots[k * len(slots) // 108] for k in range(108)], browser
    )
    findings = await drip(await load(conn, edition_id), DEFAULTS)
    found = {v for f in findings for v, _ in f.votes if v.startswith("reader")}
    assert bool(found) is flagged, findings


def test_beyond_usual_never_carves_a_night_out_of_a_trickle():
    """A category whose single-purpose votes crowd into six evening hours must not lend a
    round-the-clock trickle a night: no hour loses more than an even spread's share of
    what is due (a review's finding: the pooled profile took it all from the evening)."""
    trickle = Counter({h: 10 for h in range(24)})
    evening = Counter({h: 50 if 17 <= h < 23 else 2 for h in range(24)})
    beyond = _beyond_usual(trickle, evening, due=120)
    assert min(beyond.values()) == pytest.approx(10 - 120 / 24)
    assert not _sleeps(beyond, DEFAULTS.drip_night_share)


@given(st.integers(min_value=24, max_value=3000))
def test_an_even_trickle_never_keeps_a_night(n):
    hours = Counter({h: n // 24 + (1 if h < n % 24 else 0) for h in range(24)})
    assert not _sleeps(hours, DEFAULTS.drip_night_share)


@pytest.mark.parametrize(
    ("votes", "quiet", "sleeps"), [(24, 0, True), (24, 1, False), (100, 5, True), (100, 8, False)]
)
def test_a_night_is_few_enough_and_unlikely_by_chance(votes, quiet, sleeps):
    """Hours 0-5 hold `quiet` of `votes`, the rest spread evenly: at 24 votes one vote in
    the night is a round-the-clock trickle's chance (0.9% a block), none is not (0.1%)."""
    hours = Counter(h % 6 for h in range(quiet))
    for i in range(votes - quiet):
        hours[6 + i % 18] += 1
    assert _sleeps(hours, DEFAULTS.drip_night_share) is sleeps


async def test_drip_sees_a_night_only_in_all_single_purpose_votes(conn, edition_id):
    """A round-the-clock drip with a daily wave at one hour: setting the waves (and
    their neighbours) aside must not leave a "night" behind that spares the drip; and a
    trickle too small to show a night is judged as before."""
    await organic(conn, edition_id, START, 100, NOMS)
    day0 = START.replace(hour=0)
    n = 0

    async def vote(at, nomination, category="C1"):
        nonlocal n
        vid = f"bot{n}"
        ip = f"172.{16 + n % 10}.{n % 250}.5"
        n += 1
        await add_voter(conn, edition_id, vid, verified_at=at, ip=ip)
        await add_vote(
            conn,
            edition_id,
            vid,
            category,
            nomination,
            at=at + timedelta(minutes=7),
            ip=ip,
            agent=f"Mozilla/5.0 (bot {n % 4})",
            domain="gmail.com",
            form_ms=8000 + 300 * n,
        )

    for hour in range(0, 72, 2):  # A3: every two hours, day and night
        await vote(day0 + timedelta(days=1, hours=hour), "A3")
    for day in range(1, 4):  # ... and a wave every day at 10:00
        for k in range(14):
            await vote(day0 + timedelta(days=day, hours=10, minutes=4 * k), "A3")
    for k in range(20):  # B2: a trickle too small to show a night, in waking hours only
        await vote(day0 + timedelta(days=1 + k // 7, hours=6 + 2 * (k % 7)), "B2", "C2")
    findings = await drip(await load(conn, edition_id), DEFAULTS)
    flagged = {f.nomination for f in findings}
    assert "A3" in flagged, findings
    assert "B2" in flagged, findings


async def test_catchall_flags_a_domain_minting_voters_everywhere_not_an_office(conn, edition_id):
    await organic(conn, edition_id, START, 60, NOMS)
    for i in range(25):
        await add_vote(
            conn,
            edition_id,
            f"ca{i}",
            "C1",
            "A3",
            at=START + timedelta(hours=1, minutes=IRREGULAR[i % 17] * 2 + i),
            ip=f"{30 + i}.{i}.2.3",
            domain="bright-futures.example",
        )
    for i in range(15):
        await add_vote(
            conn,
            edition_id,
            f"office{i}",
            "C1",
            "A2",
            at=START + timedelta(hours=2, minutes=IRREGULAR[i] / 2),
            ip="203.0.113.10",
            domain="agency.example",
        )
    findings = await catchall(await load(conn, edition_id), DEFAULTS)
    assert {v for f in findings for v, _ in f.votes} == {f"ca{i}" for i in range(25)}
    assert findings[0].evidence["domain"] == "bright-futures.example"


async def test_form_timing_flags_forms_sent_just_past_the_minimum(conn, edition_id):
    await organic(conn, edition_id, START, 60, NOMS)
    for i in range(15):  # tokens fetched without the page, sent 2.2 to 3.6 s later
        await add_vote(
            conn,
            edition_id,
            f"tk{i}",
            "C1",
            "A3",
            at=START + timedelta(hours=1, minutes=IRREGULAR[i] * 2),
            ip=f"{40 + i}.{i}.9.3",
            domain="gmail.com",
            form_ms=2200 + 100 * i,
        )
    findings = await form_timing(await load(conn, edition_id), DEFAULTS)
    assert [f.nomination for f in findings] == ["A3"]
    flagged = {v for v, _ in findings[0].votes}
    # Every fast vote of the nomination: the script's, and its own people's fast ones.
    assert flagged >= {f"tk{i}" for i in range(15)}
    fast = await conn.fetch(
        "SELECT voter_id FROM votes WHERE nomination='A3' AND form_age_ms < $1",
        findings[0].evidence["quantile_ms"],
    )
    assert flagged == {r["voter_id"] for r in fast}


async def test_audit_profiles_each_nomination_against_its_category(conn, edition_id):
    await organic(conn, edition_id, START, 60, NOMS)
    for i in range(30):  # bought voters: one vote each, at once, for A3
        vid = f"paid{i}"
        at = START + timedelta(hours=i)
        await add_voter(conn, edition_id, vid, verified_at=at, ip=f"{50 + i}.1.1.1")
        await add_vote(
            conn, edition_id, vid, "C1", "A3", at=at + timedelta(seconds=40), ip=f"{50 + i}.1.1.1"
        )
    audit = await audit_category(conn, edition_id, "C1", lang="en")
    a3, a1 = audit["A3"], audit["A1"]
    assert a3["figures"]["votes"] == 50
    assert a3["figures"]["single_category_share"] == 0.6
    assert a3["category"]["single_category_share"] == 0.0
    assert a3["figures"]["voted_within_60s_share"] == 0.6
    assert a1["figures"]["voted_within_60s_share"] == 0.0
    assert "60.0% of its voters voted in this category only" in a3["summary"]
    assert a1["summary"] == "Nothing in its voters' profile stands out from the category."
    fr = await audit_category(conn, edition_id, "C1", lang="fr")
    assert fr["A1"]["summary"] != a1["summary"]


async def test_decisions_change_the_official_count_exactly(conn, edition_id):
    receipts = []
    for i in range(6):
        receipts.append(
            await add_vote(
                conn,
                edition_id,
                f"v{i}",
                "C1",
                "A1",
                at=START,
                ip=f"10.9.9.{i}",
                verdict="quarantined",
            )
        )
    counted = await add_vote(conn, edition_id, "ok", "C1", "A1", at=START, ip="10.9.8.1")

    def official(c):
        return c["A1"]["counted"] + c["A1"]["released"]

    assert official(await verdict_counts(conn, edition_id)) == 1
    await decide_vote(
        conn,
        edition_id,
        "test-edition",
        receipts[0],
        "release",
        actor="u:c",
        reason="a real person",
    )
    await decide_vote(
        conn, edition_id, "test-edition", receipts[1], "void", actor="u:c", reason="a bot"
    )
    assert official(await verdict_counts(conn, edition_id)) == 2
    with pytest.raises(DecisionRefused) as refused:
        await decide_vote(
            conn, edition_id, "test-edition", counted, "release", actor="u:c", reason="x"
        )
    assert refused.value.status == 409
    with pytest.raises(DecisionRefused, match="reason"):
        await decide_vote(
            conn, edition_id, "test-edition", receipts[2], "void", actor="u:c", reason=" "
        )
    with pytest.raises(DecisionRefused) as missing:
        await decide_vote(conn, edition_id, "test-edition", "nope", "void", actor="u:c", reason="x")
    assert missing.value.status == 404
    audit = await conn.fetch(
        "SELECT actor, action, reason FROM audit_log WHERE action LIKE 'fraud.%' ORDER BY id"
    )
    assert [(a["action"], a["reason"]) for a in audit] == [
        ("fraud.release", "a real person"),
        ("fraud.void", "a bot"),
    ]
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await conn.execute("DELETE FROM audit_log WHERE action LIKE 'fraud.%'")


async def test_a_whole_flag_is_released_or_voided_at_once(conn, edition_id):
    at = START + timedelta(hours=3)
    for i in range(10):
        await add_vote(
            conn,
            edition_id,
            f"bot{i}",
            "C2",
            "B1",
            at=at + timedelta(seconds=5 * i),
            ip=f"198.51.100.{i}",
            agent="curl/8",
        )
    await scan(conn, edition_id, "test-edition", DEFAULTS, address_key=KEY)
    flag_id = await conn.fetchval("SELECT id FROM fraud_flags WHERE detector='cluster'")
    result = await decide_flag(
        conn, edition_id, "test-edition", flag_id, "void", actor="u:c", reason="script"
    )
    assert result["votes"] == 10
    counts = await verdict_counts(conn, edition_id)
    assert counts["B1"] == {"counted": 0, "quarantined": 0, "released": 0, "voided": 10}
    assert await conn.fetchval("SELECT status FROM fraud_flags WHERE id=$1", flag_id) == "voided"
    # A rescan never puts a decided vote back in quarantine.
    assert (
        await scan(conn, edition_id, "test-edition", DEFAULTS, address_key=KEY)
    ).quarantined == 0


async def test_same_voter_holds_the_cover_votes_of_a_held_identity(conn, edition_id):
    await organic(conn, edition_id, START, 60, NOMS)
    at = START + timedelta(hours=3)
    for i in range(10):  # a script's rhythm for B1, and a vote elsewhere each to look human
        await add_vote(
            conn,
            edition_id,
            f"bot{i}",
            "C2",
            "B1",
            at=at + timedelta(seconds=5 * i),
            ip=f"198.51.100.{i}",
            agent="curl/8",
        )
        await add_vote(
            conn,
            edition_id,
            f"bot{i}",
            "C1" if i % 2 else "C3",
            "A1" if i % 2 else "D1",
            at=at + timedelta(minutes=20 + IRREGULAR[i]),
            ip=f"198.51.100.{i}",
        )
    before = await verdicts(conn, edition_id)
    report = await scan(conn, edition_id, "test-edition", DEFAULTS, address_key=KEY)
    after = await verdicts(conn, edition_id)
    held = {k for k, (verdict, _) in after.items() if verdict == "quarantined"}
    assert {k for k in held if k[1] == "C2"} == {(f"bot{i}", "C2") for i in range(10)}
    cover = {(f"bot{i}", "C1" if i % 2 else "C3") for i in range(10)}
    assert {k for k in held if k[1] != "C2"} == cover
    assert all(after[k][1] == ["same_voter"] for k in cover)
    assert report.per_detector["same_voter"] == 10
    # Nobody else's vote moved.
    assert {k for k, v in after.items() if v != before[k]} == held
    flag = await conn.fetchrow(
        "SELECT category, nomination, evidence FROM fraud_flags WHERE detector='same_voter'"
    )
    assert (flag["category"], flag["nomination"]) == ("C2", "B1")
    assert flag["evidence"] == {"voters": 10, "votes": 10, "categories": 2}
    # Scanned again with nothing new: nothing moves, nothing is written twice.
    again = await scan(conn, edition_id, "test-edition", DEFAULTS, address_key=KEY, full=True)
    assert again.quarantined == 0
    assert await conn.fetchval("SELECT count(*) FROM fraud_flags WHERE detector='same_voter'") == 1


async def test_same_voter_follows_a_vote_held_at_the_vote_then_named_by_a_rule(conn, edition_id):
    # A script held at the vote already (its agent), then named by `cluster` for its
    # rhythm: the rule's name is not added to a held vote, its flag names it all the same.
    at = START + timedelta(hours=3)
    for i in range(10):
        await add_vote(
            conn,
            edition_id,
            f"bot{i}",
            "C2",
            "B1",
            at=at + timedelta(seconds=5 * i),
            ip=f"198.51.100.{i}",
            agent="curl/8",
            verdict="quarantined",
        )
        await add_vote(
            conn,
            edition_id,
            f"bot{i}",
            "C3" if i % 2 else "C1",
            "D2" if i % 2 else "A2",
            at=at + timedelta(hours=1, minutes=IRREGULAR[i] * 3),
            ip=f"10.{9 + i}.0.1",
        )
    await conn.execute(
        "UPDATE votes SET verdict_reasons='{agent_script}' WHERE category='C2' AND edition_id=$1",
        edition_id,
    )
    await scan(conn, edition_id, "test-edition", DEFAULTS, address_key=KEY)
    assert (
        await conn.fetchval(
            "SELECT count(DISTINCT fv.voter_id) FROM fraud_flag_votes fv"
            " JOIN fraud_flags f ON f.id = fv.flag_id WHERE f.detector = 'cluster'"
        )
        == 10
    )
    after = await verdicts(conn, edition_id)
    cover = [(f"bot{i}", "C3" if i % 2 else "C1") for i in range(10)]
    assert [after[k] for k in cover] == [("quarantined", ["same_voter"])] * 10
    assert [after[(f"bot{i}", "C2")] for i in range(10)] == [("quarantined", ["agent_script"])] * 10


async def test_same_voter_follows_only_a_vote_held_for_who_cast_it(conn, edition_id):
    at = START + timedelta(hours=1)
    # Held for its network, held at the vote for its one form, held for a fast form,
    # released by the committee, voided by it, and held only by this very rule: each
    # voter also voted in C3.
    held = {
        "network": ("quarantined", "{concentration}"),
        "form": ("quarantined", "{form_other_voter}"),
        "fast": ("quarantined", "{form_timing}"),
        "freed": ("released", "{drip}"),
        "void": ("voided", "{}"),
        "echo": ("quarantined", "{same_voter}"),
    }
    for i, (voter, (verdict, reasons)) in enumerate(held.items()):
        await add_vote(conn, edition_id, voter, "C1", "A1", at=at, ip=f"10.0.0.{i}")
        await conn.execute(
            "UPDATE votes SET verdict=$2, verdict_reasons=$3::text::text[]"
            " WHERE voter_id=$1 AND category='C1'",
            voter,
            verdict,
            reasons,
        )
        await add_vote(
            conn, edition_id, voter, "C3", "D1", at=at + timedelta(hours=1), ip="10.1.0.1"
        )
    await scan(conn, edition_id, "test-edition", DEFAULTS, address_key=KEY, full=True)
    after = await verdicts(conn, edition_id)
    followed = {v for v in held if after[(v, "C3")] == ("quarantined", ["same_voter"])}
    assert followed == {"network", "void"}
    assert all(after[(v, "C3")] == ("counted", []) for v in held.keys() - followed)


VERDICT_START = st.sampled_from(["counted", "quarantined"])
DECISION = st.tuples(st.integers(0, 9), st.sampled_from(["release", "void"]))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    start=st.lists(VERDICT_START, min_size=10, max_size=10),
    decisions=st.lists(DECISION, max_size=25),
)
async def test_any_decisions_keep_official_equal_counted_plus_released(
    conn, edition_id, start, decisions
):
    await conn.execute("DELETE FROM votes WHERE edition_id=$1", edition_id)
    receipts = [
        await add_vote(conn, edition_id, f"p{i}", "C1", "A1", at=START, ip="10.1.1.1", verdict=v)
        for i, v in enumerate(start)
    ]
    for index, action in decisions:
        try:
            await decide_vote(
                conn, edition_id, "test-edition", receipts[index], action, actor="u:c", reason="r"
            )
        except DecisionRefused as exc:
            assert exc.status == 409
    rows = await conn.fetch("SELECT receipt, verdict FROM votes WHERE edition_id=$1", edition_id)
    assert sorted(r["receipt"] for r in rows) == sorted(receipts)  # nothing lost or doubled
    counts = await verdict_counts(conn, edition_id)
    official = counts["A1"]["counted"] + counts["A1"]["released"]
    assert official == sum(r["verdict"] in ("counted", "released") for r in rows)
    assert sum(counts["A1"].values()) == 10


def test_every_detector_states_its_rule():
    for name, detector in DETECTORS.items():
        assert detector.__doc__ and "Rule:" in detector.__doc__, name


async def test_committee_pages_and_api(mail_client, mail_app, smtp, conn):
    from tests.fixtures.voting import open_voting

    edition, edition_id, noms = await open_voting(mail_app, conn)
    at = datetime.now(UTC)
    for i in range(10):
        await add_vote(
            conn,
            edition_id,
            f"bot{i}",
            "C1",
            noms["C1"][0],
            at=at + timedelta(seconds=3 * i),
            ip=f"198.51.100.{i}",
            agent="curl/8",
        )
    svc = mail_app.state.services
    await scan(conn, edition_id, edition.slug, DEFAULTS, address_key=KEY)
    await sign_in(mail_client, mail_app, smtp, "chair@example.org")
    assert (await mail_client.get("/committee/fraud/C1")).status_code == 403
    await accounts.grant(conn, "chair@example.org", "committee")
    # A change of roles ends the account's sessions: sign in again with the new role.
    await sign_in(mail_client, mail_app, smtp, "chair@example.org")
    page = await mail_client.get("/committee/fraud/C1")
    assert page.status_code == 200 and "cluster" in page.text and "curl/8" in page.text
    api = (await mail_client.get("/api/fraud/C1")).json()
    flag = api["flags"][0]
    assert flag["detector"] == "cluster" and flag["held"] == 10
    row = next(n for n in api["nominations"] if n["nomination"] == noms["C1"][0])
    assert row["quarantined"] == 10 and row["official"] == 0
    # The committee's audit rides along, per nomination.
    assert row["audit"]["figures"]["votes"] == 10 and row["audit"]["summary"]
    # Release the whole flag from the page.
    r = await mail_client.post(
        f"/committee/fraud/flags/{flag['id']}",
        data={
            "csrf_token": csrf_from(page.text),
            "action": "release",
            "reason": "checked by phone",
            "category": "C1",
        },
    )
    assert r.status_code == 303
    counts = await verdict_counts(conn, edition_id, "C1")
    assert counts[noms["C1"][0]]["released"] == 10
    # The API refuses without CSRF and with a bad action.
    receipt = await conn.fetchval("SELECT receipt FROM votes WHERE voter_id='bot0'")
    r = await mail_client.post(
        f"/api/fraud/votes/{receipt}", json={"action": "void", "reason": "x"}
    )
    assert r.status_code == 403
    token = (await mail_client.get("/api/session")).json()["csrf_token"]
    r = await mail_client.post(
        f"/api/fraud/votes/{receipt}",
        json={"action": "delete", "reason": "x"},
        headers={"X-CSRF-Token": token},
    )
    assert r.status_code == 422
    r = await mail_client.post(
        f"/api/fraud/votes/{receipt}",
        json={"action": "void", "reason": "second look"},
        headers={"X-CSRF-Token": token},
    )
    assert r.status_code == 200 and r.json()["to"] == "voided"
    del svc


async def test_the_committee_page_shows_the_audit_for_bought_votes(
    mail_client, mail_app, smtp, conn
):
    """The per-nomination audit of the JSON API, on the committee's page: a plain summary
    and a table of figures beside the category's, in the page's language."""
    import html

    from tests.fixtures.voting import open_voting

    _, edition_id, noms = await open_voting(mail_app, conn, nominations=60)
    code = next(c for c, ids in sorted(noms.items()) if len(ids) >= 3)
    other = next(c for c in sorted(noms) if c != code)
    bought, *fair = noms[code][:3]
    at = datetime.now(UTC) - timedelta(hours=3)
    for i in range(12):
        # Paid voters: confirmed, voted 40 s later for one project, and nothing else.
        vid = f"paid{i}"
        ip = f"{60 + i}.{i}.1.1"
        await add_voter(conn, edition_id, vid, verified_at=at, ip=ip, domain="gmail.com")
        await add_vote(conn, edition_id, vid, code, bought, at=at + timedelta(seconds=40), ip=ip)
        # Supporters of the others: voted an hour after confirming, in two categories.
        vid = f"fan{i}"
        ip = f"10.{i}.2.2"
        await add_voter(conn, edition_id, vid, verified_at=at, ip=ip)
        await add_vote(conn, edition_id, vid, code, fair[i % 2], at=at + timedelta(hours=1), ip=ip)
        await add_vote(
            conn, edition_id, vid, other, noms[other][0], at=at + timedelta(hours=1), ip=ip
        )
    await sign_in(mail_client, mail_app, smtp, "chair@example.org")
    await accounts.grant(conn, "chair@example.org", "committee")
    await sign_in(mail_client, mail_app, smtp, "chair@example.org")

    english = await audit_category(conn, edition_id, code, lang="en")
    assert "100.0% of its voters voted in this category only" in english[bought]["summary"]
    page = await mail_client.get(f"/committee/fraud/{code}?lang=en")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "Audit for bought votes" in text
    for n in (bought, *fair):
        assert english[n]["summary"] in text
    section = text[text.index('id="audit-heading"') :]
    assert f'id="audit-{bought}"' in section
    # The figures, in a table with its caption and headers: 40 s against an hour.
    assert "<caption>Voters' profile:" in section
    assert '<th scope="row">Median time from confirming the address to voting</th>' in section
    assert "<td>40 seconds</td><td>60 minutes</td>" in section
    assert "<td>100.0%</td><td>0.0%</td>" in section

    french = await audit_category(conn, edition_id, code, lang="fr")
    assert french[bought]["summary"] != english[bought]["summary"]
    page = await mail_client.get(f"/committee/fraud/{code}?lang=fr")
    text = html.unescape(page.text)
    assert french[bought]["summary"] in text and "<td>40\xa0secondes</td>" in text
    assert english[bought]["summary"] not in text


async def test_nominator_sees_held_votes_after_close_and_asks_for_review(
    mail_client, mail_app, smtp, conn
):
    from tests.fixtures.voting import open_voting

    edition, edition_id, noms = await open_voting(mail_app, conn)
    target = noms["C2"][0]
    owner = await accounts.get_or_create(conn, "nominator@example.org")
    await conn.execute("UPDATE nominations SET owner_id=$1 WHERE public_id=$2", owner.id, target)
    for i in range(3):
        await add_vote(
            conn,
            edition_id,
            f"held-voter-{i}",
            "C2",
            target,
            at=START,
            ip="10.2.2.2",
            verdict="quarantined",
        )
    await conn.execute(
        "UPDATE votes SET verdict_reasons='{cluster}' WHERE voter_id LIKE 'held-voter-%'"
    )
    await sign_in(mail_client, mail_app, smtp, "nominator@example.org")
    before = await mail_client.get(f"/nominations/{target}/held-votes")
    assert before.status_code == 200 and "opens when voting closes" in before.text
    mail_app.state.services.clock.set(edition.phase("voting").closes_at)
    page = await mail_client.get(f"/nominations/{target}/held-votes")
    # Counts by rule, never voter data.
    assert "cluster" in page.text and "held-voter" not in page.text
    r = await mail_client.post(
        f"/nominations/{target}/held-votes",
        data={"csrf_token": csrf_from(page.text), "message": "Our staff voted from the office."},
    )
    assert r.status_code == 200 and "with the committee" in r.text
    # Someone else's nomination: 404.
    other = noms["C2"][1]
    assert (await mail_client.get(f"/nominations/{other}/held-votes")).status_code == 404
    # The committee answers on the record.
    await accounts.grant(conn, "nominator@example.org", "committee")
    # A change of roles ends the account's sessions: sign in again with the new role.
    await sign_in(mail_client, mail_app, smtp, "nominator@example.org")
    reviews = await mail_client.get("/committee/reviews")
    request_id = await conn.fetchval("SELECT id FROM vote_review_requests")
    r = await mail_client.post(
        f"/committee/reviews/{request_id}",
        data={"csrf_token": csrf_from(reviews.text), "answer": "Released after checking."},
    )
    assert r.status_code == 303
    actions = [a["action"] for a in await conn.fetch("SELECT action FROM audit_log")]
    assert "fraud.review_asked" in actions and "fraud.review_answered" in actions


def test_networks_of_gives_every_width():
    assert networks_of("192.0.2.77") == ("192.0.2.0/24", "192.0.0.0/16")
    assert networks_of("::ffff:192.0.2.5") == ("192.0.2.0/24", "192.0.0.0/16")
    assert networks_of("2001:db8:abcd:12:1:2:3:4") == (
        "2001:db8:abcd:12::/64",
        "2001:db8:abcd::/56",
        "2001:db8:abcd::/48",
        "2001:db8::/32",
    )
    assert networks_of("not an ip") == ()
    assert networks_of("") == ()


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.ip_addresses().map(str),
        st.ip_addresses(v=6).map(lambda a: a.exploded),
        st.ip_addresses(v=4).map(lambda a: f"::ffff:{a}"),
        st.text(alphabet="0123456789abcdefABCDEF:.%x ", max_size=45),
    )
)
def test_fast_networks_of_says_what_ipaddress_says(ip):
    assert networks_of(ip) == networks_of_reference(ip)
