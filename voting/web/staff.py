"""The staff desk: each staff role's landing page, and staff invitations.

After sign-in a staff member lands on `/staff`, which shows, for each of their roles,
what needs doing now: the organizers' queues (nominations to decide, campaigns to
decide, categories the expert review does not cover), the committee's (open fraud
flags, held votes, review requests, sign-offs), the expert's (nominations left to
score), and the time left in the phase under way. Organizers invite experts and
committee members at `/organizer/staff` (voting/staff_accounts.py: the same change as
`voting users add`, on the record). Every staff page links the others through the
staff navigation (templates/staff/_nav.html).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from .. import audit_wording, edition_store, staff_accounts
from ..accounts import User
from ..contest import Edition
from ..i18n import N_, gettext
from ..tally import expert_review as review
from ..tally import experts as panel
from ..tally import publication as pub
from ..tally.results import compute, shortlists
from .auth import pages, require_user
from .csrf import check_csrf
from .deps import current_edition, services
from .email_typo import EmailQuestion, email_question
from .responses import ApiError
from .templating import language_of

STAFF_ROLES = ("organizer", "committee", "expert")
ROLE_NAMES = {
    "organizer": N_("organizer"),
    "committee": N_("prize committee member"),
    "expert": N_("expert"),
}


def time_left(now: datetime, close: datetime, lang: str) -> str:
    """'2 d 3 h 5 min' until `close` (whole minutes, rounded down)."""
    left = max(close - now, timedelta(0))
    minutes = int(left.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    return gettext("{days} d {hours} h {minutes} min", lang).format(
        days=days, hours=hours, minutes=minutes
    )


def _phase_now(edition: Edition, now: datetime, lang: str) -> dict[str, Any] | None:
    current = edition.current_phase(now)
    if current is None:
        return None
    return {"phase": current, "left": time_left(now, current.closes_at, lang)}


async def _organizer(conn: Any, edition: Edition, edition_id: int, now: datetime) -> dict:
    covered, _titles = await review.coverage_now(conn, edition, edition_id, now)
    return {
        "to_decide": await conn.fetchval(
            "SELECT count(*) FROM nominations WHERE edition_id=$1 AND status='submitted'",
            edition_id,
        ),
        "campaigns": await conn.fetchval(
            "SELECT count(*) FROM mobilisations WHERE edition_id=$1 AND status='pending'",
            edition_id,
        ),
        "open_flags": await _open_flags(conn, edition_id),
        "uncovered": [c for c in covered if c.warn],
        "staff": len(await staff_accounts.staff(conn)),
    }


async def _open_flags(conn: Any, edition_id: int) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM fraud_flags WHERE edition_id=$1 AND status='open'", edition_id
        )
    )


async def _committee(conn: Any, edition: Edition, edition_id: int, now: datetime) -> dict:
    found: dict[str, Any] = {
        "open_flags": await _open_flags(conn, edition_id),
        "held_votes": await conn.fetchval(
            "SELECT count(*) FROM votes WHERE edition_id=$1 AND verdict='quarantined'",
            edition_id,
        ),
        "requests": await conn.fetchval(
            "SELECT count(*) FROM vote_review_requests WHERE edition_id=$1 AND answered_at IS NULL",
            edition_id,
        ),
        "published": await pub.get_publication(conn, edition_id) is not None,
        "voting_closed": now >= edition.phase("voting").closes_at,
    }
    if found["voting_closed"] and not found["published"]:
        results = await compute(conn, edition, edition_id)
        found["signed"] = len(await pub.signers(conn, edition_id, results.digest()))
        found["needed"] = results.rules.signoffs_required
        found["blocked"] = [
            edition.category(c.category) or c.category for c in results.categories if c.unscored
        ]
    return found


async def _expert(
    conn: Any, user: User, edition: Edition, edition_id: int, now: datetime, lang: str
) -> dict[str, Any]:
    mine = sorted(await panel.categories_of(conn, edition_id, user.id))
    drawn = now >= edition.phase("voting").closes_at
    short = await shortlists(conn, edition, edition_id) if drawn else {}
    reviews, _ = await panel.reviews(conn, edition_id)
    report = panel.progress(
        [panel.Expert(user.id, user.email, tuple(mine))],
        short,
        reviews,
        await panel.conflicts(conn, edition_id),
        edition.rules.results,
    )[0]
    phase = edition.phase("expert_review")
    return {
        "categories": [edition.category(c) for c in mine if edition.category(c)],
        "drawn": drawn,
        "required": report.required,
        "done": report.done,
        "review": phase,
        "review_open": phase.opens_at <= now < phase.closes_at,
        "review_left": time_left(now, phase.closes_at, lang),
    }


async def desk(request: Request) -> Response:
    user = await require_user(request)
    roles = [r for r in STAFF_ROLES if user.has(r)]
    if not roles:
        # A nominator's own page is the dashboard.
        return RedirectResponse("/dashboard", status_code=303)
    edition = await current_edition(request)
    lang = language_of(request)
    now = services(request).clock.now()
    async with services(request).db.acquire() as conn:
        edition_id = await edition_store.edition_id(conn, edition.slug)
        assert edition_id is not None
        sections: dict[str, Any] = {}
        if user.has("organizer"):
            sections["organizer"] = await _organizer(conn, edition, edition_id, now)
        if user.has("committee"):
            sections["committee"] = await _committee(conn, edition, edition_id, now)
        if user.has("expert"):
            sections["expert"] = await _expert(conn, user, edition, edition_id, now, lang)
    return pages(request).render(
        request,
        "staff/desk.html",
        {
            "edition": edition,
            "now": now,
            "roles": roles,
            "sections": sections,
            "phase_now": _phase_now(edition, now, lang),
            "voting": edition.phase("voting"),
            "voting_left": time_left(now, edition.phase("voting").closes_at, lang),
        },
    )


# -- invitations ------------------------------------------------------------------------


async def _require_organizer(request: Request) -> User:
    user = await require_user(request)
    if not user.has("organizer"):
        raise ApiError(
            403,
            "forbidden",
            gettext("This needs the {role} role.", language_of(request)).format(role="organizer"),
        )
    return user


async def _staff_page(
    request: Request,
    *,
    done: str = "",
    message: str = "",
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
    question: EmailQuestion | None = None,
) -> Response:
    await _require_organizer(request)
    async with services(request).db.acquire() as conn:
        people = await staff_accounts.staff(conn)
    return pages(request).render(
        request,
        "staff/accounts.html",
        {
            "people": people,
            "role_names": ROLE_NAMES,
            "done": done,
            "message": message,
            "errors": errors or {},
            "values": values or {},
            "question": question,
        },
        status=status,
    )


async def staff_accounts_page(request: Request) -> Response:
    return await _staff_page(request)


async def invite(request: Request) -> Response:
    user = await _require_organizer(request)
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    check_csrf(request, fields.get("csrf_token"))
    lang = language_of(request)
    # A slip in a webmail domain would grant the role to a stranger's address (or none).
    question = email_question(form.multi_items())
    if question is not None:
        return await _staff_page(request, values=fields, question=question)
    try:
        async with services(request).db.acquire() as conn:
            invited = await staff_accounts.invite(
                conn, fields.get("email", ""), fields.get("role", ""), actor=f"user:{user.email}"
            )
    except staff_accounts.InviteRefused as exc:
        return await _staff_page(
            request,
            message=exc.text(lang),
            errors=exc.fields or {},
            values=fields,
            status=exc.status,
        )
    role = fields.get("role", "")
    return await _staff_page(
        request,
        done=gettext(
            "{email} now has the {role} role and signs in at /signin with that address.", lang
        ).format(email=invited.email, role=gettext(ROLE_NAMES[role], lang)),
    )


# -- the record -------------------------------------------------------------------------


async def record(request: Request) -> Response:
    """The audit log of the current edition (and staff accounts), newest first, in words:
    organizers and the committee."""
    user = await require_user(request)
    lang = language_of(request)
    if not (user.has("organizer") or user.has("committee")):
        raise ApiError(
            403,
            "forbidden",
            gettext("This needs the {role} role.", lang).format(role="organizer, committee"),
        )
    kind = request.query_params.get("kind", "")
    if kind and kind not in audit_wording.KINDS:
        raise ApiError(
            422,
            "invalid_kind",
            gettext("Unknown kind of entry {kind}; choose one from the list.", lang).format(
                kind=kind[:40]
            ),
        )
    prefixes = list(audit_wording.KINDS.get(kind, ()))
    edition = await current_edition(request)
    async with services(request).db.acquire() as conn:
        rows = await conn.fetch(
            "SELECT at, actor, action, subject, reason FROM audit_log"
            " WHERE (edition = $1 OR (edition IS NULL AND action LIKE 'user.%'))"
            " AND (cardinality($2::text[]) = 0"
            "      OR action LIKE ANY (SELECT p || '%' FROM unnest($2::text[]) AS p))"
            " ORDER BY at DESC, id DESC LIMIT 300",
            edition.slug,
            prefixes,
        )
    entries = [
        {
            "at": r["at"],
            "who": audit_wording.actor_words(r["actor"], lang),
            "what": audit_wording.action_words(r["action"], lang),
            "code": r["action"],
            "subject": r["subject"] or "",
            "reason": r["reason"] or "",
        }
        for r in rows
    ]
    return pages(request).render(
        request,
        "staff/record.html",
        {
            "edition": edition,
            "entries": entries,
            "kind": kind,
            "kinds": [(k, gettext(v, lang)) for k, v in audit_wording.KIND_NAMES.items()],
        },
    )


routes = [
    Route("/staff", desk, methods=["GET"]),
    Route("/staff/record", record, methods=["GET"]),
    Route("/organizer/staff", staff_accounts_page, methods=["GET"]),
    Route("/organizer/staff", invite, methods=["POST"]),
]
