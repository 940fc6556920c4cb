"""The prize committee's decisions on suspect votes, one vote or a whole flag at once.

A quarantined vote stays in the ledger, out of the official tally, until the committee
releases it (it counts) or voids it (it never counts). A released vote may still be
voided, and a voided one released, on a new decision: every decision is in the audit log,
so the record shows each step. Nothing is ever deleted.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from ..errors import Refusal
from ..i18n import N_

ACTIONS = {"release": "released", "void": "voided"}
# Which verdicts each decision applies to is decided in the database: decide_vote() and
# decide_flag_votes() (0011_least_privilege.sql) change a verdict and write its audit row
# in one go; release applies to quarantined and voided votes, void to the others.


class DecisionRefused(Refusal):
    """A refused decision on held votes. Its code stays `decision_refused` (the JSON API's);
    the status tells which refusal it is."""

    def __init__(self, status: int, template: str, **params: Any) -> None:
        super().__init__(status, "decision_refused", template, **params)


def _check(action: str, reason: str) -> str:
    if action not in ACTIONS:
        raise DecisionRefused(422, N_("The decision must be 'release' or 'void'."))
    if not reason.strip():
        raise DecisionRefused(422, N_("A decision needs a reason, for the record."))
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
    # One call: the verdict and its audit row together (0011_least_privilege.sql); the
    # application may not UPDATE votes itself.
    row = await conn.fetchrow(
        "SELECT previous, changed FROM decide_vote($1, $2, $3, $4, $5)",
        edition_id,
        receipt,
        action,
        actor,
        reason,
    )
    if row["previous"] is None:
        raise DecisionRefused(404, N_("There is no vote with receipt {receipt}."), receipt=receipt)
    if not row["changed"]:
        raise DecisionRefused(
            409, N_("This vote cannot take that decision: it has it already, or is not held.")
        )
    return {"receipt": receipt, "from": row["previous"], "to": verdict}


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
    changed = await conn.fetchval(
        "SELECT decide_flag_votes($1, $2, $3, $4, $5)", edition_id, flag_id, action, actor, reason
    )
    if changed is None:
        raise DecisionRefused(404, N_("There is no fraud flag {flag}."), flag=flag_id)
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
