"""Never stuck at the end: the expert review's coverage, its extension and replacements.

A category whose shortlist no expert can score blocks the results (voting/tally/merge.py,
3.) unless the edition's `no_expert_scores` rule ranks it by public votes alone. So the
organizers see, per category and from the moment a shortlist exists, who is assigned,
what is scored and where conflicts leave a nomination without any expert
(`coverage`), and can act on the record: extend the expert review (`extend_review`, only
later, with a reason, like `edition_store.extend_voting`) and put a replacement expert in
an absent or recused one's place (`replace_expert`). Page and CLI call the same functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from ..contest import Edition, to_local
from ..edition_store import audit
from ..errors import Refusal
from ..i18n import N_
from . import experts as panel
from .rules import ResultRules
from .scoring import Review


class ReviewChangeRefused(Refusal):
    """A change to the expert review the rules refuse (only forward, on the record)."""


# What stands in a category's way, worst first.
NO_EXPERT = "no_expert"  # nominations to score and nobody assigned
ALL_RECUSED = "all_recused"  # a shortlisted nomination every assigned expert is recused from
UNSCORED = "unscored"  # shortlisted nominations still without a complete score
COVERED = "covered"


@dataclass(frozen=True)
class CategoryCoverage:
    code: str
    name: str
    experts: tuple[str, ...]
    # Accepted nominations before voting closes; the shortlist after.
    to_score: tuple[str, ...]
    scored: tuple[str, ...]  # with at least one complete score by an assigned, unrecused expert
    unscored: tuple[str, ...]
    conflicts: int  # declared conflicts of interest on the nominations to score
    nobody_left: tuple[str, ...] = field(default=())  # every assigned expert recused
    shortlist_drawn: bool = False

    @property
    def state(self) -> str:
        if self.to_score and not self.experts:
            return NO_EXPERT
        if self.nobody_left:
            return ALL_RECUSED
        if self.shortlist_drawn and self.unscored:
            return UNSCORED
        return COVERED

    @property
    def warn(self) -> bool:
        return self.state != COVERED


def coverage(
    edition: Edition,
    assigned: Mapping[str, set[str]],
    to_score: Mapping[str, list[str]],
    reviews: Iterable[Review],
    conflicts: set[tuple[str, str]],
    rules: ResultRules,
    *,
    shortlist_drawn: bool,
) -> list[CategoryCoverage]:
    """Per category of the edition: its experts, what they score, what is done and what is
    not. `to_score` is each category's shortlist once drawn, else its accepted
    nominations (so a category without an expert is flagged before voting closes)."""
    complete = {
        (r.expert, r.nomination) for r in reviews if all(c.code in r.scores for c in rules.criteria)
    }
    report = []
    for category in edition.categories:
        experts = tuple(sorted(assigned.get(category.code, set())))
        names = tuple(to_score.get(category.code, []))
        scored = tuple(
            n for n in names if any((e, n) in complete and (e, n) not in conflicts for e in experts)
        )
        nobody = tuple(n for n in names if experts and all((e, n) in conflicts for e in experts))
        report.append(
            CategoryCoverage(
                code=category.code,
                name=category.name,
                experts=experts,
                to_score=names,
                scored=scored,
                unscored=tuple(n for n in names if n not in scored),
                conflicts=sum(1 for e, n in conflicts if n in names and e in experts),
                nobody_left=nobody,
                shortlist_drawn=shortlist_drawn,
            )
        )
    return report


async def coverage_now(
    conn: asyncpg.Connection, edition: Edition, edition_id: int, now: datetime
) -> tuple[list[CategoryCoverage], dict[str, str]]:
    """The coverage as it stands at `now` (the shortlists once voting has closed, else
    the accepted nominations), with every accepted nomination's title by public id."""
    from .results import accepted_nominations, shortlists

    drawn = now >= edition.phase("voting").closes_at
    nominations = await accepted_nominations(conn, edition_id)
    if drawn:
        to_score = await shortlists(conn, edition, edition_id)
    else:
        to_score = {}
        for n in nominations.values():
            to_score.setdefault(n.category, []).append(n.public_id)
    reviews, _ = await panel.reviews(conn, edition_id)
    report = coverage(
        edition,
        await panel.assigned_by_category(conn, edition_id),
        to_score,
        reviews,
        await panel.conflicts(conn, edition_id),
        edition.rules.results,
        shortlist_drawn=drawn,
    )
    return report, {k: v.title for k, v in nominations.items()}


def _geneva(instant: datetime, edition: Edition) -> str:
    return f"{to_local(instant, edition.tz):%d %B %Y, %H:%M %Z}"


async def extend_review(
    conn: asyncpg.Connection,
    edition: Edition,
    edition_id: int,
    new_close: datetime,
    *,
    now: datetime,
    actor: str,
    reason: str,
) -> tuple[datetime, datetime]:
    """Move the expert review's close later, on the record. Returns (old close, new close).

    Only later than the current close and than now, before the results close, never
    after publication, and with a reason. A review that had closed opens again until the
    new close (its scores were frozen; they may change again), and the results phase
    opens at the new close. Audited as `expert_review.extend`.
    """
    reason = reason.strip()
    if not reason:
        raise ReviewChangeRefused(
            422,
            "reason_required",
            N_("An extension needs a reason, for the record."),
            fields={"reason": "required"},
        )
    old_close = edition.phase("expert_review").closes_at
    results_close = edition.phase("results").closes_at
    if new_close <= max(old_close, now):
        raise ReviewChangeRefused(
            422,
            "not_later",
            N_("The new close must be later than the current one ({when}) and than now."),
            fields={"close": "not later"},
            when=_geneva(old_close, edition),
        )
    if new_close >= results_close:
        raise ReviewChangeRefused(
            422,
            "too_late",
            N_("The new close must come before the results phase closes ({when})."),
            fields={"close": "too late"},
            when=_geneva(results_close, edition),
        )
    try:
        async with conn.transaction():
            stored = await conn.fetchval(
                "SELECT extend_expert_review_close($1, $2)", edition_id, new_close
            )
            await conn.execute(
                "UPDATE editions SET updated_at ="
                " greatest(now(), updated_at + interval '1 microsecond') WHERE id=$1",
                edition_id,
            )
            await audit(
                conn,
                actor=actor,
                action="expert_review.extend",
                edition=edition.slug,
                reason=reason[:2000],
                detail={
                    "old_close": stored.isoformat(),
                    "new_close": new_close.isoformat(),
                    "reopened": stored <= now,
                },
            )
    except asyncpg.CheckViolationError as exc:
        if "published" in str(exc):
            raise ReviewChangeRefused(
                409,
                "published",
                N_("The results are published: the expert review can no longer move."),
            ) from None
        raise ReviewChangeRefused(
            409,
            "not_later",
            N_("The new close must be later than the current one ({when}) and than now."),
            when=_geneva(old_close, edition),
        ) from None
    return stored, new_close


async def replace_expert(
    conn: asyncpg.Connection,
    edition: Edition,
    edition_id: int,
    old_email: str,
    new_email: str,
    categories: Iterable[str] = (),
    *,
    actor: str,
    reason: str,
) -> list[str]:
    """Put `new_email` in `old_email`'s place in `categories` (all of theirs when none
    is named), in one transaction: the new expert is assigned, the old one taken off,
    each on the record, and an `expert.replace` row says why. Returns the categories."""
    reason = reason.strip()
    if not reason:
        raise ReviewChangeRefused(
            422,
            "reason_required",
            N_("A replacement needs a reason, for the record."),
            fields={"reason": "required"},
        )
    if old_email == new_email:
        raise ReviewChangeRefused(
            422,
            "same_expert",
            N_("Choose another expert as the replacement."),
            fields={"replacement": "same"},
        )
    codes = list(categories) or await _categories_of_email(conn, edition_id, old_email)
    if not codes:
        raise ReviewChangeRefused(
            422,
            "nothing_to_replace",
            N_("{email} is assigned to no category of this edition."),
            fields={"expert": "not assigned"},
            email=old_email,
        )
    async with conn.transaction():
        await panel.assign(conn, edition, edition_id, new_email, codes, actor=actor)
        taken = await panel.unassign(conn, edition, edition_id, old_email, codes, actor=actor)
        await audit(
            conn,
            actor=actor,
            action="expert.replace",
            edition=edition.slug,
            subject=old_email,
            reason=reason[:2000],
            detail={"replacement": new_email, "categories": sorted(codes), "taken_off": taken},
        )
    return sorted(codes)


async def _categories_of_email(conn: asyncpg.Connection, edition_id: int, email: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT a.category FROM expert_assignments a JOIN users u ON u.id=a.user_id"
        " WHERE a.edition_id=$1 AND u.email=$2 ORDER BY a.category",
        edition_id,
        email,
    )
    return [r["category"] for r in rows]
