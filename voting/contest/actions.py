"""The organizers' actions on an edition: each one function that the page, the API and
the command line call alike.

An action does the whole change: its rules (with the clock it is given, never the
database's `now()`), the transaction, the audit record, and the side effects every
worker must see (the voting window in Redis, this process's catalog). Callers parse
their input, call, and word the answer; a refusal is a `Refusal` (voting/errors.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import asyncpg

from .. import edition_store
from ..clock import Clock
from ..errors import Refusal
from ..i18n import N_
from . import Edition, EditionFileError, local_to_utc

if TYPE_CHECKING:
    from ..ballot import Ballot


class ExtensionRefused(Refusal):
    """A refused extension of a phase."""


class LoadRefused(Refusal):
    """A refused edition file (a replacement the stored nominations forbid)."""


class Invalidates(Protocol):
    """What holds an edition in memory (voting/catalog.py's Catalog)."""

    def invalidate(self) -> None: ...


@dataclass(frozen=True)
class Extension:
    edition: Edition  # as stored after the change, at its new revision
    old_close: datetime
    new_close: datetime


def _wall(instant: datetime, edition: Edition) -> datetime:
    """An instant in the edition's time zone: the refusal writes it in the reader's
    language, the one way every staff page writes instants (voting/errors.py)."""
    return instant.astimezone(edition.tz)


def parse_wall_time(raw: str, field: str = "new_close") -> datetime:
    """ "YYYY-MM-DD HH:MM" (or with a "T", as a datetime-local input sends it): a naive
    wall time, whose zone is the edition's."""
    try:
        return datetime.strptime(raw.strip().replace("T", " "), "%Y-%m-%d %H:%M")
    except ValueError:
        raise ExtensionRefused(
            422,
            "invalid_time",
            N_("Give the new close as a date and a time, Geneva time."),
            fields={field: "YYYY-MM-DD HH:MM"},
        ) from None


def _instant(edition: Edition, new_close: datetime) -> datetime:
    """A naive wall time is the edition's own (its IANA zone, summer time included)."""
    if new_close.tzinfo is not None:
        return new_close
    try:
        return local_to_utc(new_close, edition.tz)
    except EditionFileError:
        raise ExtensionRefused(
            422,
            "ambiguous_time",
            N_(
                "{when} is not one single instant in {zone}: the clocks change then."
                " Choose another time."
            ),
            fields={"new_close": "not a single instant"},
            when=f"{new_close:%Y-%m-%d %H:%M}",
            zone=edition.timezone,
        ) from None


async def load_edition(
    conn: asyncpg.Connection,
    ballot: Ballot,
    edition: Edition,
    *,
    clock: Clock,
    actor: str,
    make_current: bool | None = None,
    catalog: Invalidates | None = None,
) -> Edition:
    """Store a parsed edition, new or replacing one whose voting has not opened (else
    `edition_store.EditionLocked`), on the record; then write its voting window to Redis
    from the stored edition (whose revision lets it replace an older window) and drop
    `catalog`. Returns the stored edition. `make_current=None`: current only when no
    edition is."""
    try:
        await edition_store.save_edition(
            conn, edition, now=clock.now(), actor=actor, make_current=make_current
        )
    except asyncpg.ForeignKeyViolationError:
        raise LoadRefused(
            409,
            "category_in_use",
            N_(
                "The file drops a category that already has nominations; keep the category"
                " or withdraw its nominations first."
            ),
        ) from None
    stored = await edition_store.get_edition(conn, edition.slug)
    assert stored is not None
    await ballot.sync_window(stored)
    if catalog is not None:
        catalog.invalidate()
    return stored


async def extend_voting(
    conn: asyncpg.Connection,
    ballot: Ballot,
    slug: str,
    new_close: datetime,
    *,
    clock: Clock,
    actor: str,
    reason: str,
    catalog: Invalidates | None = None,
) -> Extension:
    """Move an edition's voting close later, on the record, for every worker.

    `new_close` is an aware instant, or a naive wall time in the edition's own zone.
    Only while voting is open (by `clock`), only later, with a reason, and never so far
    that it swallows the expert review; the expert review, when it opened right at the
    old close, moves with it (the database function). Then the voting window is written
    to Redis, where the vote script reads it (every worker sees the new close at once),
    and `catalog`, this process's cache of the edition, is dropped.
    """
    if not reason.strip():
        raise ExtensionRefused(
            422,
            "reason_required",
            N_("An extension needs a reason, for the record."),
            fields={"reason": "required"},
        )
    edition = await edition_store.get_edition(conn, slug)
    if edition is None:
        raise ExtensionRefused(404, "no_such_edition", N_("There is no edition {slug}."), slug=slug)
    instant = _instant(edition, new_close)
    now = clock.now()
    async with conn.transaction():
        row = await edition_store.lock_voting_calendar(conn, slug)
        if row is None:
            raise ExtensionRefused(
                404, "no_such_edition", N_("There is no edition {slug}."), slug=slug
            )
        old_close = row["closes_at"]
        if not (row["opens_at"] <= now < old_close):
            raise ExtensionRefused(
                409,
                "voting_not_open",
                N_(
                    "The voting close can only move while voting is open (it closed or"
                    " closes at {when})."
                ),
                when=_wall(old_close, edition),
            )
        if instant <= old_close:
            raise ExtensionRefused(
                422,
                "not_later",
                N_("The new close must be later than the current one ({when})."),
                fields={"new_close": "not later"},
                when=_wall(old_close, edition),
            )
        if instant >= row["x_closes"]:
            raise ExtensionRefused(
                422,
                "swallows_expert_review",
                N_("The new close would swallow the whole expert review phase."),
                fields={"new_close": "too late"},
            )
        await edition_store.move_voting_close(conn, row["id"], instant)
        await edition_store.audit(
            conn,
            actor=actor,
            action="voting.extend",
            edition=slug,
            reason=reason,
            detail={"old_close": old_close.isoformat(), "new_close": instant.isoformat()},
        )
        extended = await edition_store.get_edition(conn, slug)
    assert extended is not None
    # The script reads the window from Redis. A window of a later revision already there
    # stays (Ballot.sync_window), so two extensions cannot undo each other.
    await ballot.sync_window(extended)
    if catalog is not None:
        catalog.invalidate()
    return Extension(extended, old_close, instant)


# -- the expert review -------------------------------------------------------------------
#
# `extend_expert_review` (the committee moving the expert review's close) belongs here,
# beside `extend_voting`, on the same pattern: rules by the given clock, one transaction
# with its audit record, then the side effects.
