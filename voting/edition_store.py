"""Editions in PostgreSQL: load from a parsed file, read back, choose the current one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from .ballot import micros
from .contest import PHASES, Category, Edition, EditionRules, Phase, localize
from .errors import Refusal
from .i18n import N_


class EditionLocked(Refusal):
    """The edition's voting has opened: the rules that decide a vote may no longer change."""


async def audit(
    conn: asyncpg.Connection,
    *,
    actor: str,
    action: str,
    edition: str | None = None,
    subject: str | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO audit_log (actor, action, edition, subject, reason, detail)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        actor,
        action,
        edition,
        subject,
        reason,
        detail or {},
    )


async def save_edition(
    conn: asyncpg.Connection,
    edition: Edition,
    *,
    now: datetime,
    actor: str,
    make_current: bool | None = None,
) -> int:
    """Insert or replace an edition. Returns its id.

    Replacing is refused once its voting phase has opened: from then on categories,
    rules and the calendar are locked, and only `extend_voting` may move the close.
    `make_current=None` makes it current only when no edition is current yet.
    """
    async with conn.transaction():
        existing = await conn.fetchrow(
            "SELECT e.id, p.opens_at FROM editions e"
            " LEFT JOIN phases p ON p.edition_id = e.id AND p.name = 'voting'"
            " WHERE e.slug = $1 FOR UPDATE OF e",
            edition.slug,
        )
        if existing is not None:
            if existing["opens_at"] is not None and existing["opens_at"] <= now:
                raise EditionLocked(
                    409,
                    "edition_locked",
                    N_(
                        "Edition {slug} is locked: its voting opened at {when}; only the"
                        " voting close may move."
                    ),
                    slug=edition.slug,
                    when=existing["opens_at"].isoformat(),
                )
            edition_id = existing["id"]
            await conn.execute(
                "UPDATE editions SET name=$2, timezone=$3, rules=$4, is_rehearsal=$5,"
                " translations=$6 WHERE id=$1",
                edition_id,
                edition.name,
                edition.timezone,
                edition.rules.to_json(),
                edition.is_rehearsal,
                edition.translations,
            )
            await conn.execute("DELETE FROM phases WHERE edition_id=$1", edition_id)
            await conn.execute("DELETE FROM categories WHERE edition_id=$1", edition_id)
            await _touch(conn, edition_id)
        else:
            edition_id = await conn.fetchval(
                "INSERT INTO editions (slug, name, timezone, rules, is_rehearsal, translations)"
                " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                edition.slug,
                edition.name,
                edition.timezone,
                edition.rules.to_json(),
                edition.is_rehearsal,
                edition.translations,
            )
        await conn.executemany(
            "INSERT INTO phases (edition_id, name, opens_at, closes_at) VALUES ($1, $2, $3, $4)",
            [(edition_id, p.name, p.opens_at, p.closes_at) for p in edition.phases],
        )
        await conn.executemany(
            "INSERT INTO categories"
            " (edition_id, code, name, facilitator, position, description, translations)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            [
                (
                    edition_id,
                    c.code,
                    c.name,
                    c.facilitator,
                    c.position,
                    c.description,
                    c.translations,
                )
                for c in edition.categories
            ],
        )
        if make_current is None:
            make_current = not await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM editions WHERE is_current)"
            )
        if make_current:
            await set_current(conn, edition.slug)
        await audit(
            conn,
            actor=actor,
            action="edition.load" if existing is None else "edition.replace",
            edition=edition.slug,
            detail={"phases": [p.to_dict(edition.tz) for p in edition.phases]},
        )
    return int(edition_id)


async def set_current(conn: asyncpg.Connection, slug: str) -> None:
    async with conn.transaction():
        found = await conn.fetchval("SELECT id FROM editions WHERE slug=$1", slug)
        if found is None:
            raise LookupError(f"no edition {slug!r}")
        await conn.execute(
            "UPDATE editions SET is_current=false WHERE is_current AND slug<>$1", slug
        )
        await conn.execute("UPDATE editions SET is_current=true WHERE slug=$1", slug)


async def _touch(conn: asyncpg.Connection, edition_id: int) -> None:
    """A new revision for the edition, always later than the one before it (even if the
    server's clock stepped back), so its voting window replaces the older one in Redis."""
    await conn.execute(
        "UPDATE editions SET updated_at ="
        " greatest(now(), updated_at + interval '1 microsecond') WHERE id=$1",
        edition_id,
    )


async def _build(conn: asyncpg.Connection, row: asyncpg.Record) -> Edition:
    phase_rows = await conn.fetch(
        "SELECT name, opens_at, closes_at FROM phases WHERE edition_id=$1", row["id"]
    )
    by_name = {r["name"]: Phase(r["name"], r["opens_at"], r["closes_at"]) for r in phase_rows}
    category_rows = await conn.fetch(
        "SELECT code, name, facilitator, position, description, translations"
        " FROM categories WHERE edition_id=$1 ORDER BY position, code",
        row["id"],
    )
    categories = []
    for r in category_rows:
        texts = localize({"name": r["name"], "description": r["description"]}, r["translations"])
        categories.append(
            Category(
                r["code"], texts["name"], r["facilitator"], r["position"], texts["description"]
            )
        )
    return Edition(
        slug=row["slug"],
        name=localize({"name": row["name"]}, row["translations"])["name"],
        timezone=row["timezone"],
        categories=tuple(categories),
        phases=tuple(by_name[name] for name in PHASES if name in by_name),
        rules=EditionRules.from_stored(row["rules"]),
        is_rehearsal=row["is_rehearsal"],
        revision=micros(row["updated_at"]),
    )


async def get_edition(conn: asyncpg.Connection, slug: str) -> Edition | None:
    row = await conn.fetchrow("SELECT * FROM editions WHERE slug=$1", slug)
    return None if row is None else await _build(conn, row)


async def current_edition(conn: asyncpg.Connection) -> Edition | None:
    row = await conn.fetchrow("SELECT * FROM editions WHERE is_current")
    return None if row is None else await _build(conn, row)


async def edition_id(conn: asyncpg.Connection, slug: str) -> int | None:
    return await conn.fetchval("SELECT id FROM editions WHERE slug=$1", slug)


async def list_editions(conn: asyncpg.Connection) -> list[Edition]:
    rows = await conn.fetch("SELECT * FROM editions ORDER BY created_at, slug")
    return [await _build(conn, r) for r in rows]


async def lock_voting_calendar(conn: asyncpg.Connection, slug: str) -> asyncpg.Record | None:
    """In a transaction: lock the edition's row; its id, the voting phase's opening and
    close, and the expert review's close (`x_closes`). None when there is no such edition.
    The rules of a move are voting/contest/actions.py's."""
    return await conn.fetchrow(
        "SELECT e.id, v.opens_at, v.closes_at, x.closes_at AS x_closes"
        " FROM editions e JOIN phases v ON v.edition_id=e.id AND v.name='voting'"
        " JOIN phases x ON x.edition_id=e.id AND x.name='expert_review'"
        " WHERE e.slug=$1 FOR UPDATE OF e",
        slug,
    )


async def move_voting_close(conn: asyncpg.Connection, edition_id: int, new_close: datetime) -> None:
    """In a transaction: the new voting close, and a new revision of the edition.

    The calendar is the owner's: the application moves the close only through this
    database function, which moves it later and never touches the expert review's close
    (0011_least_privilege.sql), so a frozen expert review stays closed."""
    await conn.execute("SELECT extend_voting_close($1, $2)", edition_id, new_close)
    await _touch(conn, edition_id)
