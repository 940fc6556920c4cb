"""Helpers for the results tests: editions at a given stage of their calendar (against the
real clock, which the database's freeze trigger reads), ledger votes, experts, scores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tests.helpers import edition_data
from voting import accounts, edition_store
from voting.ballot import new_receipt
from voting.contest import Edition, parse_edition
from voting.seed import seed_nominations

STAGES: dict[str, dict[str, tuple[str, str]]] = {
    "voting": {},
    "expert_review": {
        "nominations": ("-60d", "-40d"),
        "review": ("-40d", "-20d"),
        "voting": ("-20d", "-1d"),
        "expert_review": ("-1d", "+10d"),
        "results": ("+10d", "+40d"),
    },
    "results": {
        "nominations": ("-80d", "-60d"),
        "review": ("-60d", "-40d"),
        "voting": ("-40d", "-20d"),
        "expert_review": ("-20d", "-1d"),
        "results": ("-1d", "+30d"),
    },
}
CRITERIA = [
    {"code": "impact", "name": "Impact", "weight": 3},
    {"code": "innovation", "name": "Innovation", "weight": 1},
]


async def results_edition(
    conn: asyncpg.Connection,
    stage: str,
    *,
    rules: dict[str, Any] | None = None,
    slug: str = "test-edition",
    nominations: int = 9,
) -> tuple[Edition, int, dict[str, list[str]]]:
    """An edition at `stage` with accepted nominations: (edition, id, {category: ids})."""
    now = datetime.now(UTC)
    data = edition_data(**STAGES[stage])
    data["slug"] = slug
    data["rules"] = {"shortlist_size": 2, "criteria": CRITERIA, **(rules or {})}
    edition = parse_edition(data, now=now)
    edition_id = await edition_store.save_edition(
        conn, edition, now=now - timedelta(days=400), actor="test", make_current=True
    )
    await seed_nominations(conn, nominations, edition_slug=slug, seed=3, progress=False)
    rows = await conn.fetch(
        "SELECT public_id, category FROM nominations WHERE edition_id=$1 AND status='accepted'"
        " ORDER BY public_id",
        edition_id,
    )
    by_category: dict[str, list[str]] = {}
    for r in rows:
        by_category.setdefault(r["category"], []).append(r["public_id"])
    return edition, edition_id, by_category


async def move_to(conn: asyncpg.Connection, edition_id: int, stage: str) -> None:
    """Time passes: give the edition the calendar of `stage` (tests only)."""
    now = datetime.now(UTC)
    for name, (opens, closes) in STAGES[stage].items():
        await conn.execute(
            "UPDATE phases SET opens_at=$3, closes_at=$4 WHERE edition_id=$1 AND name=$2",
            edition_id,
            name,
            now + _offset(opens),
            now + _offset(closes),
        )


def _offset(text: str) -> timedelta:
    return timedelta(days=int(text.removesuffix("d")))


async def add_votes(
    conn: asyncpg.Connection,
    edition_id: int,
    votes: list[tuple[str, str, str, str]],
    *,
    cast_at: datetime | None = None,
) -> dict[tuple[str, str], str]:
    """Ledger votes (voter, category, nomination, verdict); returns their receipts."""
    when = cast_at or datetime.now(UTC) - timedelta(days=25)
    receipts = {(v, c): new_receipt() for v, c, _, _ in votes}
    await conn.executemany(
        "INSERT INTO votes (edition_id, voter_id, category, nomination, receipt, cast_at,"
        " stream_id, verdict) VALUES ($1, $2, $3, $4, $5, $6, '0-1', $7)",
        [
            (edition_id, v, c, n, receipts[(v, c)], when + timedelta(seconds=i), verdict)
            for i, (v, c, n, verdict) in enumerate(votes)
        ],
    )
    return receipts


def spread(category: str, counts: dict[str, int], prefix: str = "v") -> list[tuple]:
    """`counts[nomination]` counted votes, each from its own voter."""
    votes = []
    for nomination, n in counts.items():
        for i in range(n):
            votes.append((f"{prefix}-{category}-{nomination}-{i}", category, nomination, "counted"))
    return votes


async def expert(conn: asyncpg.Connection, email: str, role: str = "expert") -> int:
    return (await accounts.grant(conn, email, role)).id


async def assign(conn: asyncpg.Connection, edition_id: int, user_id: int, *categories: str) -> None:
    await conn.executemany(
        "INSERT INTO expert_assignments (edition_id, user_id, category, assigned_by)"
        " VALUES ($1, $2, $3, 'test')",
        [(edition_id, user_id, c) for c in categories],
    )


async def score(
    conn: asyncpg.Connection,
    edition_id: int,
    user_id: int,
    nomination: str,
    impact: int,
    innovation: int,
    comment: str = "",
) -> None:
    """A review straight into the tables (the expert review must be open)."""
    await conn.execute(
        "INSERT INTO expert_reviews (edition_id, user_id, nomination, comment)"
        " VALUES ($1, $2, $3, $4)",
        edition_id,
        user_id,
        nomination,
        comment,
    )
    await conn.executemany(
        "INSERT INTO expert_scores (edition_id, user_id, nomination, criterion, score)"
        " VALUES ($1, $2, $3, $4, $5)",
        [
            (edition_id, user_id, nomination, "impact", impact),
            (edition_id, user_id, nomination, "innovation", innovation),
        ],
    )


async def scored_edition(conn: asyncpg.Connection, stage: str = "expert_review") -> dict[str, Any]:
    """Votes in every category, two experts who scored every shortlisted nomination."""
    edition, edition_id, noms = await results_edition(conn, "expert_review")
    votes = []
    for category, ids in noms.items():
        for rank, nomination in enumerate(ids):
            # 9, 6 and 3 votes for the three nominations of each category.
            votes += [
                (f"v{rank}-{i}", category, nomination, "counted") for i in range(9 - rank * 3)
            ]
    votes += [("held", "C1", noms["C1"][0], "quarantined"), ("void", "C2", noms["C2"][0], "voided")]
    receipts = await add_votes(conn, edition_id, votes)
    judges = [await expert(conn, f"judge{i}@example.org") for i in (1, 2)]
    for judge in judges:
        await assign(conn, edition_id, judge, "C1", "C2", "C3")
    for ids in noms.values():
        for position, nomination in enumerate(ids[:2]):
            for judge in judges:
                await score(conn, edition_id, judge, nomination, 5 + position, 5 + judge % 3)
    committee = [await expert(conn, f"member{i}@example.org", "committee") for i in (1, 2, 3)]
    if stage != "expert_review":
        await move_to(conn, edition_id, stage)
    return {
        "edition": edition
        if stage == "expert_review"
        else await reload_edition(conn, edition.slug),
        "edition_id": edition_id,
        "noms": noms,
        "receipts": receipts,
        "votes": votes,
        "committee": committee,
    }


async def reload_edition(conn: asyncpg.Connection, slug: str) -> Edition | None:
    return await edition_store.get_edition(conn, slug)
