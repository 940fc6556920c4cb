"""The incremental fraud scan gives exactly the flags a full scan gives.

Two editions receive the same traffic, round after round: organic voters, attacks of
every kind the detectors know (a burst from one network, a bot's beat, a catch-all
domain, forms sent too fast, a single-purpose drip, sleepers verified in bulk), the
committee voiding and releasing votes, an approved declaration, confirmations with no
vote. After each round one edition is scanned incrementally, the other fully; their
flags, the votes each flag names and every vote's verdict must be the same, and the
incremental scan must have skipped the categories the round did not touch.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tests.fixtures.antifraud import KEY
from tests.fixtures.editions import edition_data, load_data
from voting.antifraud import scan_marks
from voting.antifraud.config import DEFAULTS
from voting.antifraud.detectors import scan
from voting.antifraud.minimise import at_the_door
from voting.antifraud.quarantine import decide_flag, decide_vote

START = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
CATEGORIES = [f"C{i}" for i in range(1, 7)]
NOMS = {c: [f"{c}-{k}" for k in range(1, 4)] for c in CATEGORIES}
ATTACKS = ("burst", "beat", "catchall", "fast_forms", "drip", "sleepers", "supporters")


@dataclass
class Vote:
    voter: str
    category: str
    nomination: str
    at: datetime
    ip: str
    agent: str = "Mozilla/5.0"
    domain: str = "gmail.com"
    form_ms: int | None = None


@dataclass
class Voter:
    voter: str
    at: datetime
    ip: str
    domain: str = "gmail.com"


def _data(slug: str) -> dict[str, Any]:
    data = edition_data()
    data["slug"], data["name"] = slug, f"Edition {slug}"
    data["categories"] = [
        {"code": c, "name": f"Category {c}", "facilitator": "ITU"} for c in CATEGORIES
    ]
    return data


async def _apply(
    conn: asyncpg.Connection, edition_id: int, voters: list[Voter], votes: list[Vote]
) -> None:
    # As the engine writes them: minimised at the door (antifraud/minimise.py).
    await conn.executemany(
        "INSERT INTO voters (edition_id, voter_id, domain, ip_hash, ip_prefix, network,"
        " verified_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        [
            (edition_id, v.voter, v.domain, d.address, d.prefix, d.network or None, v.at)
            for v in voters
            for d in [at_the_door(KEY, v.ip, None)]
        ],
    )
    await conn.executemany(
        "INSERT INTO votes (edition_id, voter_id, category, nomination, receipt, cast_at,"
        " stream_id, ip_hash, ip_prefix, agent, email_domain, network, form_age_ms)"
        " VALUES ($1, $2, $3, $4, $5, $6, '0-0', $7, $8, $9, $10, $11, $12)",
        [
            (
                edition_id,
                v.voter,
                v.category,
                v.nomination,
                f"{edition_id}-{v.voter}-{v.category}",
                v.at,
                d.address,
                d.prefix,
                d.agent,
                v.domain,
                d.network or None,
                v.form_ms,
            )
            for v in votes
            for d in [at_the_door(KEY, v.ip, v.agent)]
        ],
    )


def _round(rng: random.Random, n: int, categories: list[str]) -> tuple[list[Voter], list[Vote]]:
    """One round of traffic in `categories` only: people, and an attack on each."""
    t0 = START + timedelta(hours=12 * n)
    voters: list[Voter] = []
    votes: list[Vote] = []
    for i in range(rng.randint(20, 40)):  # people, each in some of the round's categories
        vid = f"r{n}p{i}"
        at = t0 + timedelta(minutes=rng.randint(0, 600))
        ip = f"10.{rng.randint(0, 250)}.{rng.randint(0, 250)}.{rng.randint(1, 250)}"
        voters.append(Voter(vid, at, ip, rng.choice(["gmail.com", "outlook.com", "uni.example"])))
        for c in rng.sample(categories, rng.randint(1, len(categories))):
            votes.append(
                Vote(
                    vid,
                    c,
                    rng.choice(NOMS[c]),
                    at + timedelta(minutes=rng.randint(2, 90)),
                    ip,
                    agent=f"Mozilla/5.0 (agent {rng.randint(0, 9)})",
                    domain=voters[-1].domain,
                    form_ms=rng.randint(4000, 60000),
                )
            )
    for j, c in enumerate(categories):
        # The first round has one attack of each kind; later ones draw theirs.
        kind = ATTACKS[j % len(ATTACKS)] if n == 0 else rng.choice(ATTACKS)
        target = rng.choice(NOMS[c])
        tag = f"r{n}{c}{kind}"
        at = t0 + timedelta(minutes=rng.randint(0, 300))
        size = rng.randint(12, 30)
        for i in range(size):
            vid = f"{tag}{i}"
            if kind == "burst":  # one /24, minutes apart
                vote = Vote(vid, c, target, at + timedelta(seconds=9 * i), f"192.0.{n}.{i}")
            elif kind == "beat":  # one agent, a beat
                vote = Vote(
                    vid,
                    c,
                    target,
                    at + timedelta(seconds=240 * i),
                    f"{30 + i}.{n}.{i}.7",
                    agent="python-requests/2.31",
                )
            elif kind == "catchall":  # one custom domain from everywhere
                vote = Vote(
                    vid,
                    c,
                    target,
                    at + timedelta(minutes=rng.randint(0, 400)),
                    f"{40 + i}.{i}.{n}.3",
                    domain=f"mint{n}.example",
                )
            elif kind == "fast_forms":
                vote = Vote(
                    vid,
                    c,
                    target,
                    at + timedelta(minutes=rng.randint(0, 400)),
                    f"{60 + i}.{n}.9.3",
                    form_ms=2100 + 50 * i,
                )
            elif kind == "drip":  # single-purpose, an hour apart
                vote = Vote(vid, c, target, at + timedelta(hours=i), f"172.{16 + i % 10}.{n}.{i}")
                voters.append(Voter(vid, vote.at - timedelta(minutes=20), vote.ip))
            elif kind == "sleepers":  # verified in bulk on one /16, voting from elsewhere
                voters.append(Voter(vid, t0 + timedelta(seconds=40 * i), f"100.64.{n}.{i}"))
                vote = Vote(
                    vid, c, target, at + timedelta(hours=3, minutes=9 * i), f"{80 + i}.{n}.{i}.9"
                )
            else:  # supporters after a post: a wave, organic
                vote = Vote(
                    vid,
                    c,
                    target,
                    at + timedelta(minutes=2 * i),
                    f"81.{i}.{n}.4",
                    domain="outlook.com",
                    form_ms=rng.randint(8000, 30000),
                )
            votes.append(vote)
    return voters, votes


async def _state(conn: asyncpg.Connection, edition_id: int) -> dict[str, Any]:
    """Everything a scan decides, without the rows' ids (sequences differ)."""

    def evidence(raw: Any) -> str:
        e = dict(raw if isinstance(raw, dict) else json.loads(raw))
        if "declarations" in e:  # their ids differ between the two editions
            e["declarations"] = len(e["declarations"])
        return json.dumps(e, sort_keys=True)

    flags = {
        (r["detector"], r["finding"], r["category"], r["nomination"], evidence(r["evidence"]))
        for r in await conn.fetch(
            "SELECT detector, finding, category, nomination, evidence FROM fraud_flags"
            " WHERE edition_id = $1",
            edition_id,
        )
    }
    named = {
        tuple(r)
        for r in await conn.fetch(
            "SELECT f.detector, f.finding, fv.voter_id, fv.category FROM fraud_flag_votes fv"
            " JOIN fraud_flags f ON f.id = fv.flag_id WHERE f.edition_id = $1",
            edition_id,
        )
    }
    verdicts = {
        (r["voter_id"], r["category"]): (r["verdict"], sorted(r["verdict_reasons"]))
        for r in await conn.fetch(
            "SELECT voter_id, category, verdict, verdict_reasons FROM votes WHERE edition_id = $1",
            edition_id,
        )
    }
    return {"flags": flags, "named": named, "verdicts": verdicts}


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_incremental_scans_flag_exactly_what_full_scans_flag(conn, clock, seed):
    await load_data(conn, _data("inc"), clock.now())
    await load_data(conn, _data("ref"), clock.now())
    inc = await conn.fetchval("SELECT id FROM editions WHERE slug='inc'")
    ref = await conn.fetchval("SELECT id FROM editions WHERE slug='ref'")
    rng = random.Random(seed)
    skipped = 0
    # Where each vote came from: the ledger keeps only its prefix and the address's hash.
    addresses: dict[tuple[str, str], str] = {}
    for n in range(7):
        if n == 0:
            touched = list(CATEGORIES)
        elif n == 3:  # C1 (its burst of the first round) is left for the declaration
            touched = sorted(rng.sample(CATEGORIES[1:], rng.randint(1, 3)))
        elif n == 4:
            touched = []  # confirmations only, no vote
        else:
            touched = sorted(rng.sample(CATEGORIES, rng.randint(1, 3)))
        voters, votes = _round(rng, n, touched) if touched else ([], [])
        if n == 4:
            voters = [
                Voter(f"late{i}", START + timedelta(days=5, seconds=20 * i), f"100.65.0.{i}")
                for i in range(30)
            ]
        addresses.update({(v.voter, v.category): v.ip for v in votes})
        for edition_id in (inc, ref):
            await _apply(conn, edition_id, voters, votes)
        if n in (2, 5):
            await _committee(conn, rng, inc, ref)
        if n == 3:
            await _declare(conn, rng, inc, ref, touched, addresses)
        got = await scan(conn, inc, "inc", DEFAULTS, address_key=KEY)
        want = await scan(conn, ref, "ref", DEFAULTS, address_key=KEY, full=True)
        assert await _state(conn, inc) == await _state(conn, ref), f"round {n}"
        assert got.quarantined == want.quarantined, (n, got, want)
        skipped += got.of_categories - len(got.categories)
        if n == 4:  # no vote moved: the per-category detectors read nothing
            assert got.categories == [] and got.edition_wide
    assert skipped > 0  # the incremental scan did skip categories
    state = await _state(conn, ref)
    assert len({d for d, *_ in state["flags"]}) >= 3, state["flags"]
    # Nothing moved since: the incremental scan reads no vote; a full one finds no more.
    quiet = await scan(conn, inc, "inc", DEFAULTS, address_key=KEY)
    assert quiet.categories == [] and not quiet.edition_wide and quiet.flags == 0
    before = await _state(conn, inc)
    again = await scan(conn, inc, "inc", DEFAULTS, address_key=KEY, full=True)
    assert again.quarantined == 0 and await _state(conn, inc) == before


async def _committee(conn: asyncpg.Connection, rng: random.Random, inc: int, ref: int) -> None:
    """The same decisions in both editions: void a held vote and a counted one, release a
    voided one back, release a whole flag."""
    held = await conn.fetch(
        "SELECT voter_id, category, verdict FROM votes WHERE edition_id=$1"
        " ORDER BY voter_id, category",
        ref,
    )
    quarantined = [r for r in held if r["verdict"] == "quarantined"]
    counted = [r for r in held if r["verdict"] == "counted"]
    picks = []
    if quarantined:
        picks.append((rng.choice(quarantined), "void"))
    picks.append((rng.choice(counted), "void"))
    for (voter, category, _), action in picks:
        for edition_id, slug in ((inc, "inc"), (ref, "ref")):
            await decide_vote(
                conn,
                edition_id,
                slug,
                f"{edition_id}-{voter}-{category}",
                action,
                actor="test",
                reason="test",
            )
    if picks:  # and one voided vote released again: it comes back into the ledger
        (voter, category, _), _ = picks[-1]
        for edition_id, slug in ((inc, "inc"), (ref, "ref")):
            await decide_vote(
                conn,
                edition_id,
                slug,
                f"{edition_id}-{voter}-{category}",
                "release",
                actor="test",
                reason="test",
            )
    flags = await conn.fetch(
        "SELECT detector, finding FROM fraud_flags WHERE edition_id=$1 AND status='open'"
        " ORDER BY detector, finding",
        ref,
    )
    if flags:
        detector, finding = rng.choice(flags)
        for edition_id, slug in ((inc, "inc"), (ref, "ref")):
            flag_id = await conn.fetchval(
                "SELECT id FROM fraud_flags WHERE edition_id=$1 AND detector=$2 AND finding=$3",
                edition_id,
                detector,
                finding,
            )
            await decide_flag(
                conn, edition_id, slug, flag_id, "release", actor="test", reason="test"
            )


async def _declare(
    conn: asyncpg.Connection,
    rng: random.Random,
    inc: int,
    ref: int,
    touched: list[str],
    addresses: dict[tuple[str, str], str],
) -> None:
    """An approved declaration for the addresses of half the votes a flag already holds,
    in a category this round leaves alone: the flag keeps the other half and its evidence
    now counts the declared ones, so every category must be read again. Each is a /32,
    narrower than the prefix a vote keeps: matched by the address's keyed hash."""
    flags = await conn.fetch(
        "SELECT id, nomination FROM fraud_flags WHERE edition_id=$1 AND category <> ALL($2)"
        " AND detector = ANY($3) ORDER BY detector, finding",
        ref,
        touched,
        ["concentration", "burst", "catchall"],
    )
    assert flags, "the rounds before made no flag a declaration could explain"
    flag = rng.choice(flags)
    ips = [
        addresses[(r["voter_id"], r["category"])]
        for r in await conn.fetch(
            "SELECT voter_id, category FROM fraud_flag_votes WHERE flag_id = $1 ORDER BY voter_id",
            flag["id"],
        )
    ]
    declared = [f"{ip}/32" for ip in ips[: len(ips) // 2]]
    for edition_id in (inc, ref):
        owner = await conn.fetchval(
            "INSERT INTO users (email) VALUES ($1) ON CONFLICT (email) DO UPDATE"
            " SET email = EXCLUDED.email RETURNING id",
            "nominator@example.org",
        )
        await conn.execute(
            "INSERT INTO mobilisations (edition_id, nomination, declared_by, networks,"
            " expected_votes, starts_at, ends_at, status)"
            " VALUES ($1, $2, $3, $4::cidr[], 300, $5, $6, 'approved')",
            edition_id,
            flag["nomination"],
            owner,
            declared,
            START,
            START + timedelta(days=30),
        )


def test_the_plan_reads_again_only_what_moved():
    before = {"C1": "3:a", "C2": "2:b", "C3": "1:c", scan_marks.EDITION: "e", "+verified": "v"}
    now = {"C1": "3:a", "C2": "3:x", "C4": "1:d", scan_marks.EDITION: "e", "+verified": "v"}
    dirty, wide = scan_marks.plan(dict(now), before, full=False)
    # C2 moved, C4 is new, C3 lost its votes (all voided): read again; C1 is as it was.
    assert dirty == {"C2", "C3", "C4"} and wide
    dirty, wide = scan_marks.plan(dict(before), before, full=False)
    assert dirty == set() and not wide
    dirty, wide = scan_marks.plan({**before, "+verified": "w"}, before, full=False)
    assert dirty == set() and wide
    dirty, wide = scan_marks.plan({**before, scan_marks.EDITION: "f"}, before, full=False)
    assert dirty == {"C1", "C2", "C3"} and wide
    dirty, wide = scan_marks.plan(dict(before), before, full=True)
    assert dirty == {"C1", "C2", "C3"} and wide


def test_the_code_mark_covers_every_module_the_detectors_import():
    """A rule changed in a module the detectors import must move the edition's mark, or
    an incremental scan would never apply it to unchanged categories."""
    import ast
    from pathlib import Path

    from voting.antifraud import scan_marks

    source = Path(scan_marks.__file__).with_name("detectors.py").read_text()
    imported = {
        f"{node.module}.py"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
    } | {
        f"{alias.name}.py"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module is None
        for alias in node.names
    }
    assert imported - {"scan_marks.py"} <= set(scan_marks._SOURCES)
