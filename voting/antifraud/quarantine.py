"""The prize committee's decisions on suspect votes, one vote or a whole flag at once.

A quarantined vote stays in the ledger, out of the official tally, until the committee
releases it (it counts) or voids it (it never counts). A released vote may still be
voided, and a voided one released, on a new decision: every decision is in the audit log,
so the record shows each step. Nothing is ever deleted.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from ..edition_store import audit
from ..i18n import gettext

ACTIONS = {"release": "released", "void": "voided"}
# Which verdicts each decision may apply to.
_FROM = {
    "release": ("quarantined", "voided"),
    "void": ("quarantined", "released", "counted"),
}


class DecisionRefused(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _check(action: str, reason: str) -> str:
    if action not in ACTIONS:
        raise DecisionRefused(422, gettext("The decision must be 'release' or 'void'."))
    if not reason.strip():
        raise DecisionRefused(422, gettext("A decision needs a reason, for the record."))
    return ACTIONS[action]


async def decide_vote(
    conn: asyncpg.Connection,
    edition_id: int,
    slug: str,
    receipt: str,
    action: str,
    *,
    actor: str,
    reason: str,
) -> dict[str, Any]:
    verdict = _check(action, reason)
    async with conn.transaction():
        row = await conn.fetchrow(
            "SELECT voter_id, category, nomination, verdict FROM votes"
            " WHERE edition_id = $1 AND receipt = $2 FOR UPDATE",
            edition_id,
            receipt,
        )
        if row is None:
            raise DecisionRefused(404, f"There is no vote with receipt {receipt}.")
        if row["verdict"] not in _FROM[action]:
            raise DecisionRefused(
                409, f"A {row['verdict']} vote cannot be {verdict}; it is already so or not held."
            )
        await conn.execute(
            "UPDATE votes SET verdict = $3, verdict_at = now()"
            " WHERE edition_id = $1 AND receipt = $2",
            edition_id,
            receipt,
            verdict,
        )
        await audit(
            conn,
            actor=actor,
            action=f"fraud.{action}",
            edition=slug,
            subject=f"receipt:{receipt}",
            reason=reason,
            detail={"from": row["verdict"], "to": verdict, "nomination": row["nomination"]},
        )
    return {"receipt": receipt, "from": row["verdict"], "to": verdict}


async def decide_flag(
    conn: asyncpg.Connection,
    edition_id: int,
    slug: str,
    flag_id: int,
    action: str,
    *,
    actor: str,
    reason: str,
) -> dict[str, Any]:
    """Release or void every vote a flag holds in quarantine (a whole cluster at once)."""
    verdict = _check(action, reason)
    async with conn.transaction():
        flag = await conn.fetchrow(
            "SELECT id, status FROM fraud_flags WHERE id = $1 AND edition_id = $2 FOR UPDATE",
            flag_id,
            edition_id,
        )
        if flag is None:
            raise DecisionRefused(404, f"There is no fraud flag {flag_id}.")
        result = await conn.execute(
            "UPDATE votes SET verdict = $3, verdict_at = now()"
            " FROM fraud_flag_votes f"
            " WHERE f.flag_id = $2 AND votes.edition_id = $1 AND votes.voter_id = f.voter_id"
            "   AND votes.category = f.category AND votes.verdict = 'quarantined'",
            edition_id,
            flag_id,
            verdict,
        )
        changed = int(result.split()[-1])
        await conn.execute(
            "UPDATE fraud_flags SET status = $2, decided_at = now(), decided_by = $3,"
            " decision_reason = $4 WHERE id = $1",
            flag_id,
            verdict,
            actor,
            reason,
        )
        await audit(
            conn,
            actor=actor,
            action=f"fraud.{action}_flag",
            edition=slug,
            subject=f"flag:{flag_id}",
            reason=reason,
            detail={"votes": changed, "to": verdict},
        )
    return {"flag": flag_id, "votes": changed, "to": verdict}


async def verdict_counts(
    conn: asyncpg.Connection, edition_id: int, category: str | None = None
) -> dict[str, dict[str, int]]:
    """Per nomination: votes by verdict (what the committee's fraud page shows)."""
    rows = await conn.fetch(
        "SELECT nomination, verdict, count(*) AS n FROM votes WHERE edition_id = $1"
        " AND ($2::text IS NULL OR category = $2) GROUP BY 1, 2",
        edition_id,
        category,
    )
    counts: dict[str, dict[str, int]] = {}
    for r in rows:
        entry = counts.setdefault(
            r["nomination"], {"counted": 0, "quarantined": 0, "released": 0, "voided": 0}
        )
        entry[r["verdict"]] = int(r["n"])
    return counts


async def reasons_of(conn: asyncpg.Connection, edition_id: int, nomination: str) -> dict:
    """Held and voided votes of one nomination by rule: what its nominator may see."""
    rows = await conn.fetch(
        "SELECT verdict, reason, count(*) AS n FROM ("
        "  SELECT verdict, unnest(CASE WHEN cardinality(verdict_reasons) = 0"
        "    THEN ARRAY['committee'] ELSE verdict_reasons END) AS reason"
        "  FROM votes WHERE edition_id = $1 AND nomination = $2"
        "    AND verdict IN ('quarantined', 'voided')) s GROUP BY 1, 2 ORDER BY 1, 2",
        edition_id,
        nomination,
    )
    out: dict[str, dict[str, int]] = {"quarantined": {}, "voided": {}}
    for r in rows:
        out[r["verdict"]][r["reason"]] = int(r["n"])
    return out
