"""Review requests: a nominator asks the prize committee to look again at the votes the
fraud checks held for their nomination, once voting has closed; the committee answers,
once, on the record.

Each state change is one function (the rule by the clock it is given, the transaction,
the audit record) that the pages call; a refusal is a `ReviewRefused` (voting/errors.py).
Who owns the nomination is the caller's check (web/fraud.py answers 404 for another's).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from ..clock import Clock
from ..contest import Edition
from ..edition_store import audit
from ..errors import Refusal
from ..i18n import N_

MAX_MESSAGE = 4000


class ReviewRefused(Refusal):
    """A refused review request or answer."""


@dataclass(frozen=True)
class Answered:
    request_id: int
    nomination: str
    answered_at: datetime


def _voting_closed(edition: Edition, now: datetime) -> None:
    if now < edition.phase("voting").closes_at:
        raise ReviewRefused(
            403, "voting_open", N_("A review can be asked for once voting has closed.")
        )


def checked_message(message: str) -> str:
    """The request's text as recorded: stripped, not empty, at most MAX_MESSAGE long."""
    message = message.strip()
    if not message or len(message) > MAX_MESSAGE:
        raise ReviewRefused(
            422,
            "invalid",
            N_("Say what you want the committee to look at (up to {limit} characters)."),
            fields={"message": "required" if not message else "too long"},
            limit=MAX_MESSAGE,
        )
    return message


async def ask_review(
    conn: asyncpg.Connection,
    edition: Edition,
    edition_id: int,
    nomination: str,
    *,
    user_id: int,
    email: str,
    message: str,
    clock: Clock,
) -> int:
    """Record a nominator's request about `nomination` (which they own); its id."""
    now = clock.now()
    _voting_closed(edition, now)
    message = checked_message(message)
    async with conn.transaction():
        request_id: int = await conn.fetchval(
            "INSERT INTO vote_review_requests (edition_id, nomination, asked_by, asked_at,"
            " message) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            edition_id,
            nomination,
            user_id,
            now,
            message,
        )
        await audit(
            conn,
            actor=f"user:{email}",
            action="fraud.review_asked",
            edition=edition.slug,
            subject=f"nomination:{nomination}",
            reason=message,
        )
    return request_id


async def answer_review(
    conn: asyncpg.Connection,
    edition: Edition,
    edition_id: int,
    request_id: int,
    *,
    email: str,
    answer: str,
    clock: Clock,
) -> Answered:
    """The committee's answer to a request of this edition; a request is answered once."""
    answer = answer.strip()
    if not answer:
        raise ReviewRefused(
            422,
            "invalid",
            N_("Write the committee's answer."),
            fields={"answer": "required"},
        )
    now = clock.now()
    async with conn.transaction():
        nomination = await conn.fetchval(
            "UPDATE vote_review_requests SET answered_at=$3, answered_by=$4, answer=$5"
            " WHERE id=$1 AND edition_id=$2 AND answered_at IS NULL RETURNING nomination",
            request_id,
            edition_id,
            now,
            f"user:{email}",
            answer,
        )
        if nomination is None:
            raise ReviewRefused(
                409, "answered", N_("That request is already answered, or not there.")
            )
        await audit(
            conn,
            actor=f"user:{email}",
            action="fraud.review_answered",
            edition=edition.slug,
            subject=f"nomination:{nomination}",
            reason=answer,
        )
    return Answered(request_id, nomination, now)


async def requests_for(
    conn: asyncpg.Connection, edition_id: int, nomination: str
) -> list[asyncpg.Record]:
    """A nomination's requests and their answers, oldest first (the nominator's page)."""
    return await conn.fetch(
        "SELECT asked_at, message, answered_at, answer FROM vote_review_requests"
        " WHERE edition_id=$1 AND nomination=$2 ORDER BY asked_at",
        edition_id,
        nomination,
    )


async def all_requests(conn: asyncpg.Connection, edition_id: int) -> list[asyncpg.Record]:
    """Every request of the edition, the open ones first (the committee's page)."""
    return await conn.fetch(
        "SELECT r.id, r.nomination, r.asked_at, r.message, r.answered_at, r.answered_by,"
        " r.answer, n.title FROM vote_review_requests r"
        " LEFT JOIN nominations n ON n.public_id = r.nomination"
        " WHERE r.edition_id=$1 ORDER BY r.answered_at IS NOT NULL, r.asked_at",
        edition_id,
    )
