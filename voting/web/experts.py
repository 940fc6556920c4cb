"""The expert panel's pages: experts review the shortlist, organizers assign experts.

Thin: the rules (who may score what, when, on which scale) are in voting/tally/experts.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from .. import edition_store
from ..accounts import User
from ..contest import Edition, EditionFileError, local_to_utc
from ..errors import Refusal
from ..i18n import format_instant, gettext
from ..tally import expert_review as review
from ..tally import experts as panel
from ..tally.results import accepted_nominations, shortlists
from .auth import pages, require_role
from .csrf import check_csrf
from .deps import current_edition, services
from .responses import ApiError
from .templating import language_of


def refused(request: Request, refusal: Refusal) -> ApiError:
    return ApiError(
        refusal.status, refusal.code, refusal.text(language_of(request)), fields=refusal.fields
    )


async def edition_and_id(request: Request) -> tuple[Edition, int]:
    edition = await current_edition(request)
    async with services(request).db.acquire() as conn:
        edition_id = await edition_store.edition_id(conn, edition.slug)
    assert edition_id is not None
    return edition, edition_id


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


# -- the expert's own pages ----------------------------------------------------------------


async def _expert_state(
    request: Request, user: User, edition: Edition, edition_id: int
) -> dict[str, Any]:
    now = services(request).clock.now()
    async with services(request).db.acquire() as conn:
        mine = await panel.categories_of(conn, edition_id, user.id)
        voting_closed = now >= edition.phase("voting").closes_at
        short = await shortlists(conn, edition, edition_id) if voting_closed else {}
        nominations = await accepted_nominations(conn, edition_id)
        reviews, comments = await panel.reviews(conn, edition_id)
        recusals = await panel.conflicts(conn, edition_id)
    return {
        "edition": edition,
        "now": now,
        "categories": [edition.category(c) for c in sorted(mine) if edition.category(c)],
        "shortlists": short,
        "nominations": nominations,
        "reviews": {r.nomination: r for r in reviews if r.expert == user.email},
        "comments": {n: c for (e, n), c in comments.items() if e == user.email},
        "recused": {n for e, n in recusals if e == user.email},
        "rules": edition.rules.results,
        "window_problem": panel.review_window_problem(edition, now),
        "voting_closed": voting_closed,
    }


async def expert_home(request: Request) -> Response:
    user = await require_role(request, "expert")
    edition, edition_id = await edition_and_id(request)
    state = await _expert_state(request, user, edition, edition_id)
    problem = state["window_problem"]
    state["window_message"] = problem.text(language_of(request)) if problem else ""
    return pages(request).render(request, "results/expert_home.html", state)


async def _review_page(
    request: Request,
    *,
    errors: dict[str, str] | None = None,
    message: str = "",
    done: str = "",
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    user = await require_role(request, "expert")
    edition, edition_id = await edition_and_id(request)
    public_id = request.path_params["public_id"]
    state = await _expert_state(request, user, edition, edition_id)
    nomination = state["nominations"].get(public_id)
    if nomination is None or nomination.category not in {c.code for c in state["categories"]}:
        raise ApiError(
            404,
            "not_yours",
            gettext(
                "Nomination {nomination} is not in one of your categories.", language_of(request)
            ).format(nomination=public_id),
        )
    async with services(request).db.acquire() as conn:
        summary = await conn.fetchval(
            "SELECT summary FROM nominations WHERE public_id=$1", public_id
        )
    review = state["reviews"].get(public_id)
    if values is None:
        values = {k: str(int(v)) for k, v in (review.scores if review else {}).items()}
        values["comment"] = state["comments"].get(public_id, "")
    problem = state["window_problem"]
    state.update(
        {
            "n": nomination,
            "summary": summary,
            "shortlisted": public_id in state["shortlists"].get(nomination.category, []),
            "is_recused": public_id in state["recused"],
            "errors": errors or {},
            "message": message,
            "done": done,
            "values": values,
            "window_message": problem.text(language_of(request)) if problem else "",
        }
    )
    return pages(request).render(request, "results/expert_review.html", state, status=status)


async def review_form(request: Request) -> Response:
    return await _review_page(request)


async def _expert_post(
    request: Request, act: Callable[..., Awaitable[None]], *, keep_values: bool
) -> Response | None:
    """One of an expert's form posts on a nomination: None when `act` succeeded, else the
    review page again saying what was wrong (an unknown nomination is a 404)."""
    user = await require_role(request, "expert")
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    edition, edition_id = await edition_and_id(request)
    svc = services(request)
    try:
        async with svc.db.acquire() as conn:
            short = await shortlists(conn, edition, edition_id)
            await act(
                conn,
                edition,
                edition_id,
                form,
                user_id=user.id,
                email=user.email,
                nomination=request.path_params["public_id"],
                shortlisted=[n for names in short.values() for n in names],
                now=svc.clock.now(),
            )
    except panel.ExpertError as exc:
        if exc.status == 404:
            raise refused(request, exc) from None
        return await _review_page(
            request,
            errors=exc.fields or {},
            message=exc.text(language_of(request)),
            values=form if keep_values else None,
            status=exc.status,
        )
    return None


async def save_review(request: Request) -> Response:
    async def act(
        conn: Any, edition: Edition, edition_id: int, form: dict[str, str], **kw: Any
    ) -> None:
        await panel.save_review(
            conn,
            edition,
            edition_id,
            scores={k[6:]: v for k, v in form.items() if k.startswith("score_")},
            comment=form.get("comment", ""),
            **kw,
        )

    problem = await _expert_post(request, act, keep_values=True)
    if problem is not None:
        return problem
    return await _review_page(request, done=gettext("Your scores are saved.", language_of(request)))


async def declare_conflict(request: Request) -> Response:
    async def act(
        conn: Any, edition: Edition, edition_id: int, form: dict[str, str], **kw: Any
    ) -> None:
        await panel.declare_conflict(conn, edition, edition_id, reason=form.get("reason", ""), **kw)

    problem = await _expert_post(request, act, keep_values=False)
    return problem or RedirectResponse("/experts", status_code=303)


# -- the organizer's assignment page -------------------------------------------------------


async def _organizer_page(
    request: Request,
    *,
    message: str = "",
    done: str = "",
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    await require_role(request, "organizer")
    edition, edition_id = await edition_and_id(request)
    now = services(request).clock.now()
    drawn = now >= edition.phase("voting").closes_at
    async with services(request).db.acquire() as conn:
        everyone = await panel.experts(conn, edition_id)
        short = await shortlists(conn, edition, edition_id) if drawn else {}
        reviews, _ = await panel.reviews(conn, edition_id)
        recusals = await panel.conflicts(conn, edition_id)
        covered, titles = await review.coverage_now(conn, edition, edition_id, now)
    rules = edition.rules.results
    report = panel.progress(everyone, short, reviews, recusals, rules)
    phase = edition.phase("expert_review")
    return pages(request).render(
        request,
        "results/organizer_experts.html",
        {
            "edition": edition,
            "progress": report,
            "coverage": covered,
            "warnings": [c for c in covered if c.warn],
            "titles": titles,
            "voting_closed": drawn,
            "review_phase": phase,
            "review_open": phase.opens_at <= now < phase.closes_at,
            "review_closed": now >= phase.closes_at,
            "rules": rules,
            "message": message,
            "done": done,
            "errors": errors or {},
            "values": values or {},
        },
        status=status,
    )


async def organizer_experts(request: Request) -> Response:
    return await _organizer_page(request)


async def organizer_assign(request: Request) -> Response:
    user = await require_role(request, "organizer")
    form = await request.form()
    check_csrf(request, form.get("csrf_token") if isinstance(form.get("csrf_token"), str) else "")
    edition, edition_id = await edition_and_id(request)
    email = str(form.get("email") or "").strip().lower()
    categories = [c for c in form.getlist("category") if isinstance(c, str)]
    lang = language_of(request)
    try:
        async with services(request).db.acquire() as conn:
            if form.get("action") == "unassign":
                changed = await panel.unassign(
                    conn, edition, edition_id, email, categories, actor=f"user:{user.email}"
                )
                done = gettext("Removed {email} from: {categories}.", lang)
            else:
                changed = await panel.assign(
                    conn, edition, edition_id, email, categories, actor=f"user:{user.email}"
                )
                done = gettext("Assigned {email} to: {categories}.", lang)
    except panel.ExpertError as exc:
        return await _organizer_page(request, message=exc.text(lang), status=exc.status)
    return await _organizer_page(
        request, done=done.format(email=email, categories=", ".join(changed) or "—")
    )


async def organizer_extend_review(request: Request) -> Response:
    """Move the expert review's close later, on the record (tally/expert_review.py)."""
    user = await require_role(request, "organizer")
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    edition, edition_id = await edition_and_id(request)
    lang = language_of(request)
    raw = f"{form.get('close_date', '').strip()} {form.get('close_time', '').strip()}"
    try:
        local = datetime.strptime(raw, "%Y-%m-%d %H:%M")
        new_close = local_to_utc(local, edition.tz)
    except (ValueError, EditionFileError):
        return await _organizer_page(
            request,
            message=gettext(
                "Give the new close as a date and a time (hours and minutes), Geneva time;"
                " a time the clocks skip or show twice is refused.",
                lang,
            ),
            errors={"close": "invalid"},
            values=form,
            status=422,
        )
    try:
        async with services(request).db.acquire() as conn:
            old, new = await review.extend_review(
                conn,
                edition,
                edition_id,
                new_close,
                now=services(request).clock.now(),
                actor=f"user:{user.email}",
                reason=form.get("reason", ""),
            )
    except review.ReviewChangeRefused as exc:
        return await _organizer_page(
            request, message=exc.text(lang), errors=exc.fields or {}, values=form, status=exc.status
        )
    return await _organizer_page(
        request,
        done=gettext("The expert review now closes on {when} (it closed on {old}).", lang).format(
            when=_local(new, edition), old=_local(old, edition)
        ),
    )


async def organizer_replace(request: Request) -> Response:
    """Put a replacement expert in another's place, on the record."""
    user = await require_role(request, "organizer")
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    check_csrf(request, fields.get("csrf_token"))
    edition, edition_id = await edition_and_id(request)
    lang = language_of(request)
    categories = [c for c in form.getlist("category") if isinstance(c, str)]
    try:
        async with services(request).db.acquire() as conn:
            changed = await review.replace_expert(
                conn,
                edition,
                edition_id,
                fields.get("expert", "").strip().lower(),
                fields.get("replacement", "").strip().lower(),
                categories,
                actor=f"user:{user.email}",
                reason=fields.get("reason", ""),
            )
    except (review.ReviewChangeRefused, panel.ExpertError) as exc:
        return await _organizer_page(
            request,
            message=exc.text(lang),
            errors=exc.fields or {},
            values=fields,
            status=exc.status,
        )
    return await _organizer_page(
        request,
        done=gettext("{new} replaces {old} in: {categories}.", lang).format(
            new=fields.get("replacement", "").strip().lower(),
            old=fields.get("expert", "").strip().lower(),
            categories=", ".join(changed),
        ),
    )


def _local(instant: datetime, edition: Edition) -> str:
    # The one way staff pages write an instant, in the page's language.
    return format_instant(instant, edition.tz)


routes = [
    Route("/experts", expert_home, methods=["GET"]),
    Route("/experts/nominations/{public_id}", review_form, methods=["GET"]),
    Route("/experts/nominations/{public_id}", save_review, methods=["POST"]),
    Route("/experts/nominations/{public_id}/conflict", declare_conflict, methods=["POST"]),
    Route("/organizer/experts", organizer_experts, methods=["GET"]),
    Route("/organizer/experts", organizer_assign, methods=["POST"]),
    Route("/organizer/experts/extend", organizer_extend_review, methods=["POST"]),
    Route("/organizer/experts/replace", organizer_replace, methods=["POST"]),
]
