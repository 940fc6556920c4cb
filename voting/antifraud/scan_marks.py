"""The incremental fraud scan's marks: what each category looked like when last scanned.

A scan that finds a category's votes as it left them has nothing new to find there for
the detectors that read one category at a time (`PER_CATEGORY`): they are functions of
that category's votes and of the edition's thresholds, so they would propose the very
findings already recorded. The mark is a fingerprint of the votes the detectors read
(not voided): their number and an MD5 digest of their keys, so a late vote flushed with
an old timestamp or a vote the committee voided moves it as surely as a new one.

Two more marks per edition hold what every category also depends on:
- `EDITION` ('*'): the thresholds, the source of the detectors' code (a deploy that
  changes a rule rescans everything) and the approved declarations (which spare votes);
  when it moves, every category is scanned again.
- `VERIFIED` ('+verified'): the address confirmations `bulk_verification` reads.

The detectors that look across categories (`EDITION_WIDE`: `drip` counts a voter's
categories and spreads over the edition's span, `bulk_verification` reads every
confirmation) run over the whole ledger whenever any mark moved; a scan where none moved
reads no vote at all. `voting fraud scan --full` ignores the marks.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

import asyncpg

from .config import FraudRules

EDITION = "*"
VERIFIED = "+verified"
PER_CATEGORY = frozenset({"cluster", "concentration", "burst", "catchall", "form_timing"})
EDITION_WIDE = frozenset({"bulk_verification", "drip"})
# An empty category (every vote voided): a mark of its own, so that it counts as moved.
EMPTY = "0:"
# The code the findings come from: a change to any of it is a change to the rules:
# detectors.py and every module of this package it imports (risk.agent_kind reads the
# agents for the institution rule), as tests/antifraud/test_detectors_incremental.py checks.
_SOURCES = (
    "detectors.py",
    "declarations.py",
    "signals.py",
    "config.py",
    "risk.py",
    "minimise.py",
)


@cache
def _code_digest() -> str:
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for name in _SOURCES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


async def fingerprints(conn: asyncpg.Connection, edition_id: int, t: FraudRules) -> dict[str, str]:
    """The marks the edition's ledger gives now: one per category with votes, and the
    two edition-wide ones. Three aggregate queries; no row reaches Python."""
    marks = {
        r["category"]: f"{r['n']}:{r['digest']}"
        for r in await conn.fetch(
            "SELECT category, count(*) AS n,"
            " md5(string_agg(voter_id, ',' ORDER BY voter_id)) AS digest"
            " FROM votes WHERE edition_id = $1 AND verdict <> 'voided' GROUP BY category",
            edition_id,
        )
    }
    verified = await conn.fetchrow(
        "SELECT count(*) AS n, md5(string_agg(voter_id || '|' || extract(epoch FROM verified_at)"
        " || '|' || coalesce(ip_prefix, ip, ''), ',' ORDER BY voter_id)) AS digest"
        " FROM voters WHERE edition_id = $1",
        edition_id,
    )
    marks[VERIFIED] = f"{verified['n']}:{verified['digest'] or ''}"
    declared = await conn.fetchval(
        "SELECT string_agg(id::text, ',' ORDER BY id) FROM mobilisations"
        " WHERE edition_id = $1 AND status = 'approved'",
        edition_id,
    )
    rules = json.dumps(t.to_dict(), sort_keys=True, default=str)
    marks[EDITION] = hashlib.sha256(
        f"{rules}|{_code_digest()}|{declared or ''}".encode()
    ).hexdigest()[:32]
    return marks


async def stored(conn: asyncpg.Connection, edition_id: int) -> dict[str, str]:
    return {
        r["category"]: r["fingerprint"]
        for r in await conn.fetch(
            "SELECT category, fingerprint FROM fraud_scan_marks WHERE edition_id = $1",
            edition_id,
        )
    }


def plan(now: dict[str, str], before: dict[str, str], *, full: bool) -> tuple[set[str], bool]:
    """(the categories the per-category detectors must read again, whether the
    edition-wide detectors must run). `now` gains the empty mark of a category that had
    votes at the last scan and has none left."""
    for category in before:
        if category not in now:
            now[category] = EMPTY
    categories = {c for c in now if c not in (EDITION, VERIFIED)}
    if full or before.get(EDITION) != now[EDITION]:
        return categories, True
    dirty = {c for c in categories if before.get(c) != now[c]}
    return dirty, bool(dirty) or before.get(VERIFIED) != now[VERIFIED]


async def save(conn: asyncpg.Connection, edition_id: int, marks: dict[str, str]) -> None:
    await conn.execute(
        "INSERT INTO fraud_scan_marks (edition_id, category, fingerprint)"
        " SELECT $1, c, f FROM unnest($2::text[], $3::text[]) AS u(c, f)"
        " ON CONFLICT (edition_id, category) DO UPDATE"
        " SET fingerprint = EXCLUDED.fingerprint, scanned_at = now()"
        " WHERE fraud_scan_marks.fingerprint IS DISTINCT FROM EXCLUDED.fingerprint",
        edition_id,
        list(marks),
        list(marks.values()),
    )
