"""Offline detectors over the ledger. Each states its rule in its docstring and reads its
thresholds from the edition's `rules.antifraud` (voting/antifraud/config.py).

A detector only proposes: `scan` turns its findings into fraud flags and moves the votes
they name from 'counted' to 'quarantined'. It never touches a vote the committee already
released or voided, and it never deletes anything. Scans are idempotent: a finding has a
stable identity, so scanning again adds new votes to the same flag.
"""

from __future__ import annotations

import hashlib
import itertools
import statistics
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from .declarations import spare_declared

Vote = tuple[str, str]  # (voter_id, category)


def _digest(text: str | None) -> str:
    # A stable identity across processes (Python's hash() is salted per process).
    return hashlib.sha256((text or "").encode()).hexdigest()[:16]


@dataclass
class Finding:
    detector: str
    finding: str
    category: str | None
    nomination: str | None
    evidence: dict[str, Any]
    votes: list[Vote] = field(default_factory=list)


async def burst(conn: asyncpg.Connection, edition_id: int, t: dict[str, Any]) -> list[Finding]:
    """Bursts on one nomination far above its own recent rate.

    Rule: split time into buckets of `burst_bucket_s`. A bucket of a nomination is a burst
    when it holds at least `burst_min_votes` votes and more than `burst_factor` times the
    mean of the nomination's previous 12 buckets (empty ones count as zero; at least 1).
    In a burst, the votes from a network that sent `burst_network_min` or more of them are
    flagged: a real surge (a minister's post) comes from everywhere, a scripted one from a
    few networks.
    """
    bucket_s = int(t["burst_bucket_s"])
    rows = await conn.fetch(
        "SELECT nomination, category, floor(extract(epoch FROM cast_at) / $2)::bigint AS b,"
        " count(*) AS n FROM votes WHERE edition_id = $1 GROUP BY 1, 2, 3",
        edition_id,
        bucket_s,
    )
    per_nomination: dict[str, dict[int, int]] = defaultdict(dict)
    category_of: dict[str, str] = {}
    for r in rows:
        per_nomination[r["nomination"]][r["b"]] = r["n"]
        category_of[r["nomination"]] = r["category"]
    findings = []
    for nomination, buckets in per_nomination.items():
        for b, n in buckets.items():
            if n < t["burst_min_votes"]:
                continue
            baseline = max(1.0, sum(buckets.get(b - k, 0) for k in range(1, 13)) / 12)
            if n <= t["burst_factor"] * baseline:
                continue
            nets = await conn.fetch(
                "SELECT network, array_agg(voter_id) AS voters, count(*) AS n FROM votes"
                " WHERE edition_id = $1 AND nomination = $2 AND network IS NOT NULL"
                " AND cast_at >= to_timestamp($3) AND cast_at < to_timestamp($4)"
                " GROUP BY network HAVING count(*) >= $5",
                edition_id,
                nomination,
                b * bucket_s,
                (b + 1) * bucket_s,
                t["burst_network_min"],
            )
            for net in nets:
                findings.append(
                    Finding(
                        "burst",
                        f"{nomination}|{b}|{net['network']}",
                        category_of[nomination],
                        nomination,
                        {
                            "bucket_start": b * bucket_s,
                            "bucket_votes": n,
                            "baseline_per_bucket": round(baseline, 2),
                            "network": net["network"],
                            "network_votes": net["n"],
                        },
                        [(v, category_of[nomination]) for v in net["voters"]],
                    )
                )
    return findings


async def cluster(conn: asyncpg.Connection, edition_id: int, t: dict[str, Any]) -> list[Finding]:
    """Clusters of voters that share network, user agent and timing.

    Rule: within a window of `cluster_window_s`, at least `cluster_min` votes for one
    nomination from one network with one user agent, arriving with a median gap of at
    most `cluster_max_median_gap_s` seconds. Colleagues voting for their organization over
    an afternoon share a network and an agent too, but not a machine's rhythm.
    """
    window = int(t["cluster_window_s"])
    rows = await conn.fetch(
        "SELECT nomination, category, network, user_agent,"
        " floor(extract(epoch FROM cast_at) / $2)::bigint AS w,"
        " array_agg(voter_id ORDER BY cast_at) AS voters,"
        " array_agg(extract(epoch FROM cast_at)::float8 ORDER BY cast_at) AS times"
        " FROM votes WHERE edition_id = $1 AND network IS NOT NULL"
        " GROUP BY 1, 2, 3, 4, 5 HAVING count(*) >= $3",
        edition_id,
        window,
        t["cluster_min"],
    )
    findings = []
    for r in rows:
        times = r["times"]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        median_gap = statistics.median(gaps)
        if median_gap > t["cluster_max_median_gap_s"]:
            continue
        findings.append(
            Finding(
                "cluster",
                f"{r['nomination']}|{r['network']}|{r['w']}|{_digest(r['user_agent'])}",
                r["category"],
                r["nomination"],
                {
                    "network": r["network"],
                    "user_agent": (r["user_agent"] or "")[:200],
                    "votes": len(times),
                    "median_gap_s": round(median_gap, 2),
                    "first": times[0],
                    "last": times[-1],
                },
                [(v, r["category"]) for v in r["voters"]],
            )
        )
    return findings


async def bulk_verification(
    conn: asyncpg.Connection, edition_id: int, t: dict[str, Any]
) -> list[Finding]:
    """Votes whose accounts were verified in bulk moments before voting.

    Rule: at least `bulk_verify_min` voters verified from one network within one window
    of `bulk_verify_window_s`; their votes cast within `bulk_vote_within_s` of their own
    verification are flagged. A household verifies a few addresses; a farm, dozens.
    """
    window = int(t["bulk_verify_window_s"])
    rows = await conn.fetch(
        "WITH bulk AS ("
        "  SELECT network, floor(extract(epoch FROM verified_at) / $2)::bigint AS w,"
        "         count(*) AS n"
        "  FROM voters WHERE edition_id = $1 AND network IS NOT NULL"
        "  GROUP BY 1, 2 HAVING count(*) >= $3)"
        " SELECT b.network, b.w, b.n, v.voter_id, v.category, v.nomination"
        " FROM bulk b JOIN voters r ON r.edition_id = $1 AND r.network = b.network"
        "   AND floor(extract(epoch FROM r.verified_at) / $2)::bigint = b.w"
        " JOIN votes v ON v.edition_id = $1 AND v.voter_id = r.voter_id"
        "   AND v.cast_at <= r.verified_at + make_interval(secs => $4)",
        edition_id,
        window,
        t["bulk_verify_min"],
        float(t["bulk_vote_within_s"]),
    )
    groups: dict[tuple[str, int], Finding] = {}
    for r in rows:
        key = (r["network"], r["w"])
        if key not in groups:
            groups[key] = Finding(
                "bulk_verification",
                f"{r['network']}|{r['w']}",
                None,
                None,
                {"network": r["network"], "window_start": r["w"] * window, "verified": r["n"]},
            )
        groups[key].votes.append((r["voter_id"], r["category"]))
    return list(groups.values())


async def drip(conn: asyncpg.Connection, edition_id: int, t: dict[str, Any]) -> list[Finding]:
    """A slow drip of bought votes for one nomination.

    Rule: call a voter single-purpose when they voted in one category only, within
    `drip_fast_vote_s` of verifying their address. For each nomination, if at least
    `drip_min_votes` of its votes come from single-purpose voters and their share of its
    votes is at least `drip_share_factor` times their share among the other nominations of
    its category, those votes are flagged. Bought voters do the one thing they are paid
    for and leave; people who came to vote look around. Known limit: supporters sent a
    direct link by their nominator behave alike, which is why this only quarantines, and
    the committee sees the evidence before deciding.
    """
    rows = await conn.fetch(
        "WITH per_voter AS ("
        "  SELECT voter_id, count(*) AS cats, min(cast_at) AS first_vote"
        "  FROM votes WHERE edition_id = $1 GROUP BY voter_id),"
        " single AS ("
        "  SELECT p.voter_id FROM per_voter p JOIN voters r"
        "    ON r.edition_id = $1 AND r.voter_id = p.voter_id"
        "  WHERE p.cats = 1 AND p.first_vote <= r.verified_at + make_interval(secs => $2))"
        " SELECT v.category, v.nomination, count(*) AS total,"
        "   count(s.voter_id) AS single,"
        "   array_agg(v.voter_id) FILTER (WHERE s.voter_id IS NOT NULL) AS single_voters"
        " FROM votes v LEFT JOIN single s USING (voter_id)"
        " WHERE v.edition_id = $1 GROUP BY 1, 2",
        edition_id,
        float(t["drip_fast_vote_s"]),
    )
    by_category: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for r in rows:
        by_category[r["category"]].append(r)
    findings = []
    for category, noms in by_category.items():
        for r in noms:
            if r["single"] < t["drip_min_votes"]:
                continue
            others_total = sum(o["total"] for o in noms if o is not r)
            others_single = sum(o["single"] for o in noms if o is not r)
            baseline = max(others_single / others_total if others_total else 0.0, 0.01)
            share = r["single"] / r["total"]
            if share < t["drip_share_factor"] * baseline:
                continue
            findings.append(
                Finding(
                    "drip",
                    r["nomination"],
                    category,
                    r["nomination"],
                    {
                        "single_purpose_votes": r["single"],
                        "votes": r["total"],
                        "share": round(share, 3),
                        "category_share": round(baseline, 3),
                    },
                    [(v, category) for v in r["single_voters"]],
                )
            )
    return findings


Detector = Callable[[asyncpg.Connection, int, dict[str, Any]], Awaitable[list[Finding]]]
DETECTORS: dict[str, Detector] = {
    "burst": burst,
    "cluster": cluster,
    "bulk_verification": bulk_verification,
    "drip": drip,
}


@dataclass
class ScanReport:
    flags: int = 0
    quarantined: int = 0
    per_detector: dict[str, int] = field(default_factory=dict)


async def scan(
    conn: asyncpg.Connection, edition_id: int, slug: str, t: dict[str, Any]
) -> ScanReport:
    """Run every detector and quarantine what they find, under an advisory lock per
    edition so that the workers of a multi-process server do not scan at once."""
    report = ScanReport()
    async with conn.transaction():
        got = await conn.fetchval("SELECT pg_try_advisory_xact_lock(7717, $1)", edition_id)
        if not got:
            return report
        for name, detector in DETECTORS.items():
            findings = await detector(conn, edition_id, t)
            findings = await spare_declared(conn, edition_id, findings)  # declarations.py
            moved = 0
            for finding in findings:
                moved += await _record(conn, edition_id, slug, finding)
            report.per_detector[name] = moved
            report.flags += len(findings)
            report.quarantined += moved
    return report


async def _record(conn: asyncpg.Connection, edition_id: int, slug: str, f: Finding) -> int:
    flag_id = await conn.fetchval(
        "INSERT INTO fraud_flags (edition_id, detector, finding, category, nomination, evidence)"
        " VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (edition_id, detector, finding) DO UPDATE SET evidence = EXCLUDED.evidence"
        " RETURNING id",
        edition_id,
        f.detector,
        f.finding,
        f.category,
        f.nomination,
        f.evidence,
    )
    voters = [v for v, _ in f.votes]
    categories = [c for _, c in f.votes]
    await conn.execute(
        "INSERT INTO fraud_flag_votes (flag_id, edition_id, voter_id, category)"
        " SELECT $1, $2, v, c FROM unnest($3::text[], $4::text[]) AS u(v, c)"
        " ON CONFLICT DO NOTHING",
        flag_id,
        edition_id,
        voters,
        categories,
    )
    # The verdicts and the audit row in one call (0011_least_privilege.sql): the
    # application may not UPDATE votes itself.
    return int(
        await conn.fetchval("SELECT quarantine_flag_votes($1, $2, $3)", flag_id, voters, categories)
    )
