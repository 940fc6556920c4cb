"""The expert panel in PostgreSQL: assignments, conflicts of interest, reviews.

Organizers assign experts (users with the `expert` role) to categories. An expert reviews
the shortlisted nominations of their categories: a score per criterion of the edition
and a comment, changeable while the expert review phase is open and frozen after it
(the database refuses too, see migration 0005). A declared conflict of interest recuses
the expert from that nomination for good. Every change is written to the audit log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

import asyncpg

from ..contest import Edition, to_local
from ..edition_store import audit
from ..errors import Refusal
from ..i18n import N_
from .rules import ResultRules
from .scoring import Review


class ExpertError(Refusal):
    pass


@dataclass(frozen=True)
class Expert:
    id: int
    email: str
    categories: tuple[str, ...]


def _geneva(instant: datetime, edition: Edition) -> datetime:
    # Worded where the refusal is read, in the reader's language (voting/errors.py).
    return to_local(instant, edition.tz)


def review_window_problem(edition: Edition, now: datetime) -> ExpertError | None:
    phase = edition.phase("expert_review")
    if now < phase.opens_at:
        return ExpertError(
            409,
            "review_not_open",
            N_("The expert review opens on {when}, when voting closes."),
            when=_geneva(phase.opens_at, edition),
        )
    if now >= phase.closes_at:
        return ExpertError(
            409,
            "review_closed",
            N_("The expert review closed on {when}; scores are frozen."),
            when=_geneva(phase.closes_at, edition),
        )
    return None


async def _expert_user(conn: asyncpg.Connection, email: str) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT id, email, roles FROM users WHERE email=$1", email)
    if row is None or "expert" not in row["roles"]:
        raise ExpertError(
            422,
            "not_an_expert",
            N_(
                "{email} has no expert account; invite them first on the staff accounts page"
                " (/organizer/staff) or with: voting users add --role expert."
            ),
            fields={"email": "not an expert"},
            email=email,
        )
    return row


def _check_categories(edition: Edition, categories: Iterable[str]) -> list[str]:
    codes = sorted(set(categories))
    unknown = [c for c in codes if edition.category(c) is None]
    if unknown or not codes:
        if unknown:
            raise ExpertError(
                422,
                "no_such_category",
                N_("Unknown category {codes}."),
                fields={"categories": "unknown"},
                codes=", ".join(unknown),
            )
        raise ExpertError(
            422, "no_such_category", N_("Choose a category."), fields={"categories": "required"}
        )
    return codes


async def assign(
    conn: asyncpg.Connection,
    edition: Edition,
    edition_id: int,
    email: str,
    categories: Iterable[str],
    *,
    actor: str,
) -> list[str]:
    """Assign an expert to categories; returns the categories newly assigned."""
    return await _change_assignments(
        conn,
        edition,
        edition_id,
        email,
        categories,
        actor=actor,
        action="expert.assign",
        sql="INSERT INTO expert_assignments (edition_id, user_id, category, assigned_by)"
        " SELECT $1, $2, c, $4 FROM unnest($3::text[]) AS c"
        " ON CONFLICT DO NOTHING RETURNING category",
        extra=(actor,),
    )


async def unassign(
    conn: asyncpg.Connection,
    edition: Edition,
    edition_id: int,
    email: str,
    categories: Iterable[str],
    *,
    actor: str,
) -> list[str]:
    """Take an expert off categories; returns the categories they were taken off."""
    return await _change_assignments(
        conn,
        edition,
        edition_id,
        email,
        categories,
        actor=actor,
        action="expert.unassign",
        sql="DELETE FROM expert_assignments WHERE edition_id=$1 AND user_id=$2"
        " AND category = ANY($3::text[]) RETURNING category",
    )


async def _change_assignments(
    conn: asyncpg.Connection,
    edition: Edition,
    edition_id: int,
    email: str,
    categories: Iterable[str],
    *,
    actor: str,
    action: str,
    sql: str,
    extra: tuple[Any, ...] = (),
) -> list[str]:
    """Run `sql` ($1 edition, $2 user, $3 categories, then `extra`) returning the categories
    it changed, and put those on the record, in one transaction."""
    codes = _check_categories(edition, categories)
    async with conn.transaction():
        user = await _expert_user(conn, email)
        rows = await conn.fetch(sql, edition_id, user["id"], codes, *extra)
        changed = sorted(r["category"] for r in rows)
        if changed:
            await audit(
                conn,
                actor=actor,
                action=action,
                edition=edition.slug,
                subject=email,
                detail={"categories": changed},
            )
    return changed


async def experts(conn: asyncpg.Connection, edition_id: int) -> list[Expert]:
    """Every user with the expert role, with their categories in this edition."""
    rows = await conn.fetch(
        "SELECT u.id, u.email, coalesce(array_agg(a.category ORDER BY a.category)"
        "   FILTER (WHERE a.category IS NOT NULL), '{}') AS categories"
        " FROM users u LEFT JOIN expert_assignments a ON a.user_id=u.id AND a.edition_id=$1"
        " WHERE 'expert' = ANY(u.roles) GROUP BY u.id ORDER BY u.email",
        edition_id,
    )
    return [Expert(r["id"], r["email"], tuple(r["categories"])) for r in rows]


async def categories_of(conn: asyncpg.Connection, edition_id: int, user_id: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT category FROM expert_assignments WHERE edition_id=$1 AND user_id=$2",
        edition_id,
        user_id,
    )
    return [r["category"] for r in rows]


async def assigned_by_category(conn: asyncpg.Connection, edition_id: int) -> dict[str, set[str]]:
    rows = await conn.fetch(
        "SELECT a.category, u.email FROM expert_assignments a JOIN users u ON u.id=a.user_id"
        " WHERE a.edition_id=$1",
        edition_id,
    )
    found: dict[str, set[str]] = {}
    for r in rows:
        found.setdefault(r["category"], set()).add(r["email"])
    return found


async def conflicts(conn: asyncpg.Connection, edition_id: int) -> set[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT u.email, c.nomination FROM expert_conflicts c JOIN users u ON u.id=c.user_id"
        " WHERE c.edition_id=$1",
        edition_id,
    )
    return {(r["email"], r["nomination"]) for r in rows}


async def reviews(
    conn: asyncpg.Connection, edition_id: int
) -> tuple[list[Review], dict[tuple[str, str], str]]:
    """Every review (scores by criterion) and its comment, keyed by (expert email, nomination)."""
    rows = await conn.fetch(
        "SELECT u.email, r.nomination, r.comment,"
        " coalesce(jsonb_object_agg(s.criterion, s.score::text)"
        "   FILTER (WHERE s.criterion IS NOT NULL), '{}') AS scores"
        " FROM expert_reviews r JOIN users u ON u.id=r.user_id"
        " LEFT JOIN expert_scores s USING (edition_id, user_id, nomination)"
        " WHERE r.edition_id=$1 GROUP BY u.email, r.nomination, r.comment",
        edition_id,
    )
    found = [
        Review(r["email"], r["nomination"], {k: Fraction(v) for k, v in r["scores"].items()})
        for r in rows
    ]
    comments = {(r["email"], r["nomination"]): r["comment"] for r in rows}
    return found, comments


def parse_scores(rules: ResultRules, raw: Mapping[str, Any]) -> dict[str, int]:
    """A whole score (on the edition's scale) for every criterion, or an ExpertError."""
    scores: dict[str, int] = {}
    problems: dict[str, str] = {}
    for criterion in rules.criteria:
        value = raw.get(criterion.code)
        if isinstance(value, str):
            value = value.strip()
            value = int(value) if value.lstrip("-").isdigit() else value
        if isinstance(value, bool) or not isinstance(value, int):
            problems[criterion.code] = "required" if value in (None, "") else "a whole number"
        elif not rules.score_min <= value <= rules.score_max:
            problems[criterion.code] = f"from {rules.score_min} to {rules.score_max}"
        else:
            scores[criterion.code] = value
    if problems:
        names = {c.code: c.name for c in rules.criteria}
        listed = ", ".join(f"{names[k]} ({v})" for k, v in problems.items())
        raise ExpertError(
            422,
            "invalid_scores",
            N_("Give every criterion a whole score from {low} to {high}: {listed}."),
            fields=problems,
            low=rules.score_min,
            high=rules.score_max,
            listed=listed,
        )
    return scores


async def _check_reviewable(
    conn: asyncpg.Connection,
    edition: Edition,
    edition_id: int,
    user_id: int,
    nomination: str,
    shortlisted: Iterable[str],
    now: datetime,
) -> None:
    problem = review_window_problem(edition, now)
    if problem is not None:
        raise problem
    category = await conn.fetchval(
        "SELECT category FROM nominations WHERE edition_id=$1 AND public_id=$2"
        " AND status='accepted'",
        edition_id,
        nomination,
    )
    if category is None or category not in await categories_of(conn, edition_id, user_id):
        raise ExpertError(
            404,
            "not_yours",
            N_("Nomination {nomination} is not in one of your categories."),
            nomination=nomination,
        )
    if nomination not in set(shortlisted):
        raise ExpertError(
            409,
            "not_shortlisted",
            N_("Nomination {nomination} is not on the shortlist."),
            nomination=nomination,
        )


def _frozen(exc: asyncpg.PostgresError) -> ExpertError:
    return ExpertError(409, "review_closed", N_("The expert review is closed; scores are frozen."))


async def save_review(
    conn: asyncpg.Connection,
    edition: Edition,
    edition_id: int,
    *,
    user_id: int,
    email: str,
    nomination: str,
    scores: Mapping[str, Any],
    comment: str,
    shortlisted: Iterable[str],
    now: datetime,
) -> dict[str, int]:
    rules = edition.rules.results
    await _check_reviewable(conn, edition, edition_id, user_id, nomination, shortlisted, now)
    parsed = parse_scores(rules, scores)
    if len(comment) > 5000:
        raise ExpertError(
            422,
            "invalid",
            N_("Keep the comment under 5000 characters."),
            fields={"comment": "too long"},
        )
    if await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM expert_conflicts WHERE edition_id=$1 AND user_id=$2"
        " AND nomination=$3)",
        edition_id,
        user_id,
        nomination,
    ):
        raise ExpertError(
            409, "recused", N_("You declared a conflict of interest with this nomination.")
        )
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO expert_reviews (edition_id, user_id, nomination, comment)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (edition_id, user_id, nomination)"
                " DO UPDATE SET comment=EXCLUDED.comment, updated_at=now()",
                edition_id,
                user_id,
                nomination,
                comment.strip(),
            )
            await conn.executemany(
                "INSERT INTO expert_scores (edition_id, user_id, nomination, criterion, score)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (edition_id, user_id, nomination,"
                " criterion) DO UPDATE SET score=EXCLUDED.score",
                [(edition_id, user_id, nomination, k, v) for k, v in parsed.items()],
            )
            await audit(
                conn,
                actor=f"user:{email}",
                action="expert.score",
                edition=edition.slug,
                subject=nomination,
                detail={"scores": parsed},
            )
    except asyncpg.CheckViolationError as exc:
        raise _frozen(exc) from None
    return parsed


async def declare_conflict(
    conn: asyncpg.Connection,
    edition: Edition,
    edition_id: int,
    *,
    user_id: int,
    email: str,
    nomination: str,
    reason: str,
    shortlisted: Iterable[str],
    now: datetime,
) -> None:
    await _check_reviewable(conn, edition, edition_id, user_id, nomination, shortlisted, now)
    reason = reason.strip()
    if not reason:
        raise ExpertError(
            422,
            "invalid",
            N_("Say what the conflict of interest is."),
            fields={"reason": "required"},
        )
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO expert_conflicts (edition_id, user_id, nomination, reason)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                edition_id,
                user_id,
                nomination,
                reason[:2000],
            )
            await audit(
                conn,
                actor=f"user:{email}",
                action="expert.conflict",
                edition=edition.slug,
                subject=nomination,
                reason=reason[:2000],
            )
    except asyncpg.CheckViolationError as exc:
        raise _frozen(exc) from None


@dataclass(frozen=True)
class Progress:
    expert: Expert
    required: int  # shortlisted nominations of their categories, less recusals
    done: int  # complete reviews among them
    recused: int

    @property
    def finished(self) -> bool:
        return self.done >= self.required


def progress(
    panel: Iterable[Expert],
    shortlists: Mapping[str, list[str]],
    reviews_done: Iterable[Review],
    recusals: set[tuple[str, str]],
    rules: ResultRules,
) -> list[Progress]:
    """Who has finished: every shortlisted nomination of their categories reviewed or recused."""
    complete = {
        (r.expert, r.nomination)
        for r in reviews_done
        if all(c.code in r.scores for c in rules.criteria)
    }
    report = []
    for expert in panel:
        todo = [n for c in expert.categories for n in shortlists.get(c, [])]
        recused = [n for n in todo if (expert.email, n) in recusals]
        required = [n for n in todo if (expert.email, n) not in recusals]
        done = [n for n in required if (expert.email, n) in complete]
        report.append(Progress(expert, len(required), len(done), len(recused)))
    return report
