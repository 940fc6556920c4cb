"""What a receipt says about its vote: counted, held or voided, from the ledger.

A receipt proves a vote to whoever holds it: anyone who types it in sees which
nomination it went to. That is accepted for a prize vote; the defence against bought or
ordered votes is the fraud layer, not the secrecy of receipts. The answer never names
the voter, nor which fraud rule held a vote.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import asyncpg

from ..contest import Edition
from ..i18n import N_

# Shown to the voter (translated at display time).
REASONS = {
    "counted": N_("This vote counts."),
    "quarantined": N_("This vote is held for review by the prize committee."),
    "voided": N_("The prize committee voided this vote; it does not count."),
    "incomplete_ballot_open": N_("This vote counts once you have voted in every category."),
    "incomplete_ballot_closed": N_(
        "This ballot did not vote in every category, which this edition requires: it does"
        " not count."
    ),
}

_RECEIPT = re.compile(r"^[A-Z2-7]{16}$")
# Receipts are RFC 4648 base32: people reading them out type digits that look alike.
_LOOKALIKES = str.maketrans({"0": "O", "1": "I", "8": "B"})


def normalize_receipt(raw: str) -> str | None:
    """`abcd efgh-...` -> `ABCD-EFGH-...`; None when it cannot be a receipt."""
    compact = re.sub(r"[\s-]", "", raw or "").upper().translate(_LOOKALIKES)
    if not _RECEIPT.match(compact):
        return None
    return "-".join(compact[i : i + 4] for i in range(0, 16, 4))


async def receipt_status(
    conn: asyncpg.Connection, edition: Edition, edition_id: int, receipt: str, now: datetime
) -> dict[str, Any] | None:
    """The vote's state, or None when the ledger has no vote with this receipt."""
    row = await conn.fetchrow(
        "SELECT v.category, v.nomination, v.verdict, v.cast_at,"
        " (SELECT count(*) FROM votes b WHERE b.edition_id=v.edition_id"
        "  AND b.voter_id=v.voter_id) AS ballot"
        " FROM votes v WHERE v.edition_id=$1 AND v.receipt=$2",
        edition_id,
        receipt,
    )
    if row is None:
        return None
    complete = not edition.rules.results.completeness_rule or row["ballot"] >= len(
        edition.categories
    )
    voting_open = now < edition.phase("voting").closes_at
    if row["verdict"] == "voided":
        status, reason = "voided", "voided"
    elif row["verdict"] == "quarantined":
        status, reason = "held", "quarantined"
    elif complete:
        status, reason = "counted", "counted"
    elif voting_open:
        status, reason = "held", "incomplete_ballot_open"
    else:
        status, reason = "not_counted", "incomplete_ballot_closed"
    return {
        "receipt": receipt,
        "edition": edition.slug,
        "category": row["category"],
        "nomination": row["nomination"],
        "cast_at": row["cast_at"],
        "status": status,
        "reason": reason,
        "message": REASONS[reason],
    }
