"""Reading nominations: the public list and search, the nominator's own, the review queue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from .fields import normalize_key
from .workflow import SELECT, Nomination, from_row

__all__ = [
    "PublicQuery",
    "category_counts",
    "for_owner",
    "history",
    "public_countries",
    "public_list",
    "queue",
    "status_counts",
    "votable_nominations",
]

MAX_SEARCH_WORDS = 8


def tsquery(q: str) -> str | None:
    """A prefix query for every word of `q` ("rwan minis" finds "Ministry ... Rwanda").

    Words go through the same normalization as the stored search text, which leaves only
    letters and digits, and are quoted as lexemes: nothing typed can be tsquery syntax.
    """
    words = normalize_key(q).split()[:MAX_SEARCH_WORDS]
    if not words:
        return None
    return " & ".join(f"'{word}':*" for word in words)


@dataclass(frozen=True)
class PublicQuery:
    category: str | None = None
    country: str | None = None
    q: str | None = None
    limit: int = 50
    offset: int = 0


async def public_list(
    conn: asyncpg.Connection, edition_id: int, query: PublicQuery
) -> tuple[int, list[Nomination]]:
    """Accepted nominations, by category then title; the total before paging."""
    where = ["n.edition_id = $1", "n.status = 'accepted'"]
    args: list[Any] = [edition_id]
    if query.category:
        args.append(query.category)
        where.append(f"n.category = ${len(args)}")
    if query.country:
        args.append(query.country)
        where.append(f"n.country = ${len(args)}")
    terms = tsquery(query.q or "")
    if terms:
        args.append(terms)
        where.append(f"n.search @@ to_tsquery('simple', ${len(args)})")
    condition = " AND ".join(where)
    total = await conn.fetchval(f"SELECT count(*) FROM nominations n WHERE {condition}", *args)  # noqa: S608
    args += [query.limit, query.offset]
    rows = await conn.fetch(
        SELECT + " JOIN categories c ON c.edition_id = n.edition_id AND c.code = n.category"
        f" WHERE {condition} ORDER BY c.position, n.title_key, n.public_id"
        f" LIMIT ${len(args) - 1} OFFSET ${len(args)}",
        *args,
    )
    return int(total), [from_row(r) for r in rows]


async def category_counts(conn: asyncpg.Connection, edition_id: int) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT category, count(*) AS n FROM nominations"
        " WHERE edition_id = $1 AND status = 'accepted' GROUP BY category",
        edition_id,
    )
    return {r["category"]: int(r["n"]) for r in rows}


async def public_countries(
    conn: asyncpg.Connection, edition_id: int, category: str | None = None
) -> list[str]:
    """The countries that accepted nominations come from (for the search form's choices)."""
    rows = await conn.fetch(
        "SELECT DISTINCT country FROM nominations WHERE edition_id = $1"
        " AND status = 'accepted' AND ($2::text IS NULL OR category = $2) ORDER BY country",
        edition_id,
        category,
    )
    return [r["country"] for r in rows]


async def for_owner(
    conn: asyncpg.Connection, owner_id: int, edition_id: int | None = None
) -> list[Nomination]:
    rows = await conn.fetch(
        SELECT + " WHERE n.owner_id = $1 AND ($2::integer IS NULL OR n.edition_id = $2)"
        " ORDER BY n.created_at DESC, n.id DESC",
        owner_id,
        edition_id,
    )
    return [from_row(r) for r in rows]


async def queue(
    conn: asyncpg.Connection, edition_id: int, status: str = "submitted"
) -> list[Nomination]:
    """The organizers' queue: oldest submission first, so nothing waits forever."""
    rows = await conn.fetch(
        SELECT + " WHERE n.edition_id = $1 AND n.status = $2"
        " ORDER BY n.submitted_at NULLS LAST, n.id",
        edition_id,
        status,
    )
    return [from_row(r) for r in rows]


async def status_counts(conn: asyncpg.Connection, edition_id: int) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM nominations WHERE edition_id = $1 GROUP BY status",
        edition_id,
    )
    return {r["status"]: int(r["n"]) for r in rows}


async def history(conn: asyncpg.Connection, public_id: str) -> list[dict[str, Any]]:
    """The nomination's record from the audit log, oldest first."""
    rows = await conn.fetch(
        "SELECT at, actor, action, reason, detail FROM audit_log"
        " WHERE subject = $1 AND action LIKE 'nomination.%' ORDER BY id",
        public_id,
    )
    return [dict(r) for r in rows]


async def votable_nominations(conn: asyncpg.Connection, edition_id: int) -> list[dict[str, Any]]:
    """The accepted nominations of an edition, for the vote hot path to cache.

    Each: public_id, category, title, organization, country; ordered by category
    position, then public id (stable; the voting pages choose their own display order).
    """
    rows = await conn.fetch(
        "SELECT n.public_id, n.category, n.title, n.organization, n.country"
        " FROM nominations n JOIN categories c"
        " ON c.edition_id = n.edition_id AND c.code = n.category"
        " WHERE n.edition_id = $1 AND n.status = 'accepted'"
        " ORDER BY c.position, n.public_id",
        edition_id,
    )
    return [dict(r) for r in rows]
