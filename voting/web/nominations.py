"""Nomination pages and API: the public list, the nominator's forms, the organizers' queue.

Thin on purpose: parsing, status codes and templates here; every rule lives in
`voting.nominations`. Forms carry the session's CSRF token (checked on every POST) and the
JSON API takes it in the X-CSRF-Token header. A nominator's request for another's
nomination gets the same 404 as a missing one; organizer routes need the organizer role.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import quote, urlencode

import asyncpg
import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType, field
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from .. import edition_store
from .. import nominations as noms
from ..accounts import User
from ..contest import GENEVA, Edition
from ..i18n import N_, current_language, gettext, localized
from ..nominations import Nomination, NominationError, PublicQuery
from .auth import current_user, pages, require_role, require_user
from .csrf import check_csrf, csrf_token
from .deps import current_edition, services
from .email_typo import EmailQuestion, email_question
from .numbers import BIGINT_MAX, number_problem
from .responses import ApiError, Typed
from .shapes import (
    NO_NUL,
    Answer,
    Instant,
    Operation,
    Text,
    Words,
    query_refusal,
    read_body,
    read_query,
    text,
)
from .templating import LANGUAGE_NAMES, language_of
from .voting import vote_box

STATUS_LABELS = {
    "draft": N_("Draft"),
    "submitted": N_("Submitted, waiting for review"),
    "returned": N_("Sent back for changes"),
    "accepted": N_("Accepted"),
    "rejected": N_("Rejected"),
    "withdrawn": N_("Withdrawn"),
}
HISTORY_LABELS = {
    "nomination.create": N_("Created"),
    "nomination.submit": N_("Submitted"),
    "nomination.resubmit": N_("Submitted again"),
    "nomination.accept": N_("Accepted"),
    "nomination.reject": N_("Rejected"),
    "nomination.return": N_("Sent back for changes"),
}
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_QUERY = 200


# -- helpers -----------------------------------------------------------------------------------


def _api_error(request: Request, error: NominationError) -> ApiError:
    lang = language_of(request)
    return ApiError(
        error.status, error.code, error.problem.text(lang), fields=error.field_texts(lang) or None
    )


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _signin(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?next={quote(target)}", status_code=303)


async def _edition_of(conn: asyncpg.Connection, nomination: Nomination) -> Edition:
    edition = await edition_store.get_edition(conn, nomination.edition_slug)
    if edition is None:  # the row's foreign key makes this impossible
        raise ApiError(404, "no_edition", gettext("This nomination's edition is gone."))
    return edition


async def _edition_id(conn: asyncpg.Connection, edition: Edition) -> int:
    found = await edition_store.edition_id(conn, edition.slug)
    if found is None:
        raise ApiError(404, "no_edition", gettext("No edition is loaded yet."))
    return int(found)


def _can_see(user: User | None, nomination: Nomination) -> bool:
    if nomination.status == "accepted":
        return True
    return user is not None and (user.id == nomination.owner_id or user.has("organizer"))


def _phase_context(edition: Edition, now: Any) -> dict[str, Any]:
    closed = noms.nominations_problem(edition, now)
    return {
        "nominations_phase": edition.phase("nominations"),
        "nominations_open": closed is None,
        "nominations_closed_message": closed.text() if closed else "",
        # Until public voting opens a nominator may withdraw (README, "Privacy").
        "withdraw_open": noms.withdraw_problem(edition, now) is None,
    }


# -- public pages ------------------------------------------------------------------------------


def _search(request: Request) -> tuple[NominationSearch, dict[str, str]]:
    return read_query(request.query_params, NominationSearch)


def _public_query(
    found: tuple[NominationSearch, dict[str, str]], edition: Edition, category: str | None
) -> PublicQuery:
    """The search of a page or the API: the parameters as their type (`NominationSearch`,
    the one the document states) and the edition's own rules (its categories, the
    countries); anything wrong is one 422 naming every parameter at fault."""
    search, problems = found
    problems = dict(problems)
    q = " ".join(search.q.split()) if isinstance(search.q, str) else ""
    if category is None and isinstance(search.category, str) and search.category:
        known = edition.category(search.category)
        if known is None:
            problems["category"] = gettext("There is no such category in this edition.")
        else:
            category = known.code
    country = search.country.strip().upper() if isinstance(search.country, str) else ""
    if country and country not in dict(noms.countries()):
        problems["country"] = gettext("Choose a country (an ISO 3166-1 two-letter code like RW).")
    limit = search.limit if isinstance(search.limit, int) else PAGE_SIZE
    offset = search.offset if isinstance(search.offset, int) else 0
    if isinstance(search.page, int):
        # The page's offset must fit PostgreSQL's bigint too.
        if search.page > BIGINT_MAX // limit:
            problems["page"] = number_problem(1, BIGINT_MAX // limit)
        offset = (search.page - 1) * limit
    if problems:
        raise query_refusal(problems)
    return PublicQuery(
        category=category, country=country or None, q=q or None, limit=limit, offset=offset
    )


async def categories_page(request: Request) -> Response:
    svc = services(request)
    await current_user(request)
    edition = await current_edition(request)
    query = _public_query(_search(request), edition, None)
    async with svc.db.acquire() as conn:
        eid = await _edition_id(conn, edition)
        counts = await noms.category_counts(conn, eid)
        searching = bool(query.q or query.country or query.category)
        total, found = await noms.public_list(conn, eid, query) if searching else (0, [])
        countries = await noms.public_countries(conn, eid)
    return pages(request).render(
        request,
        "nominations/categories.html",
        {
            "edition": edition,
            "counts": counts,
            "searching": searching,
            "total": total,
            "results": [n.in_language(language_of(request)) for n in found],
            "query": query,
            "countries": [(c, noms.country_name(c, language_of(request))) for c in countries],
            **_display_context(),
            **_phase_context(edition, svc.clock.now()),
        },
    )


async def category_page(request: Request) -> Response:
    svc = services(request)
    await current_user(request)
    edition = await current_edition(request)
    category = edition.category(request.path_params["code"])
    if category is None:
        raise ApiError(404, "not_found", gettext("There is no such category in this edition."))
    query = _public_query(_search(request), edition, category.code)
    async with svc.db.acquire() as conn:
        eid = await _edition_id(conn, edition)
        total, found = await noms.public_list(conn, eid, query)
        countries = await noms.public_countries(conn, eid, category.code)
    page = query.offset // query.limit + 1
    base = {k: v for k, v in (("q", query.q), ("country", query.country)) if v}
    return pages(request).render(
        request,
        "nominations/category.html",
        {
            "edition": edition,
            "category": category,
            "total": total,
            "results": [n.in_language(language_of(request)) for n in found],
            "query": query,
            "countries": [(c, noms.country_name(c, language_of(request))) for c in countries],
            **_display_context(),
            "voting_open": edition.phase("voting").contains(svc.clock.now()),
            "previous_url": (
                f"?{urlencode({**base, 'page': page - 1})}" if query.offset > 0 else None
            ),
            "next_url": (
                f"?{urlencode({**base, 'page': page + 1})}"
                if query.offset + query.limit < total
                else None
            ),
        },
    )


async def nomination_page(request: Request) -> Response:
    svc = services(request)
    user = await current_user(request)
    async with svc.db.acquire() as conn:
        nomination = await noms.get(conn, request.path_params["public_id"])
        if nomination is None or not _can_see(user, nomination):
            raise ApiError(404, "not_found", gettext("There is no such nomination."))
        edition = await _edition_of(conn, nomination)
        owner_view = user is not None and (user.id == nomination.owner_id or user.has("organizer"))
        history = await noms.history(conn, nomination.public_id) if owner_view else []
    vote = await vote_box(
        request, edition, nomination.public_id, nomination.category, nomination.status
    )
    return pages(request).render(
        request,
        "nominations/nomination.html",
        {
            "vote": vote,
            "edition": edition,
            # Title and summary in the reader's language where the nominator gave them.
            "n": nomination.in_language(language_of(request)),
            "category": edition.category(nomination.category),
            "owner_view": owner_view,
            "is_owner": user is not None and user.id == nomination.owner_id,
            "history": history,
            "notice": request.query_params.get("done", ""),
            **_display_context(),
            **_phase_context(edition, svc.clock.now()),
        },
    )


def _display_context() -> dict[str, Any]:
    # Country and language names in the page's language (CLDR through Babel), read when
    # the template renders, inside the request's language.
    return {
        "status_labels": STATUS_LABELS,
        "history_labels": HISTORY_LABELS,
        "stakeholder_types": noms.STAKEHOLDER_TYPES,
        "country_name": lambda code: noms.country_name(code, current_language()),
        "language_name": lambda code: noms.language_name(code, current_language()),
    }


# -- the nominator's pages ---------------------------------------------------------------------


async def dashboard(request: Request) -> Response:
    svc = services(request)
    user = await current_user(request)
    if user is None:
        return _signin(request)
    edition = await current_edition(request)
    async with svc.db.acquire() as conn:
        mine = await noms.for_owner(conn, user.id)
    return pages(request).render(
        request,
        "nominations/dashboard.html",
        {
            "edition": edition,
            "mine": mine,
            **_display_context(),
            **_phase_context(edition, svc.clock.now()),
        },
    )


def _render_form(
    request: Request,
    edition: Edition,
    *,
    values: dict[str, Any],
    nomination: Nomination | None = None,
    error: NominationError | None = None,
    idempotency_key: str = "",
    status: int = 200,
    draft_saved: bool = False,
    contact_question: EmailQuestion | None = None,
) -> Response:
    lang = language_of(request)
    now = services(request).clock.now()
    errors = error.field_texts(lang) if error else {}
    general = error.problem.text(lang) if error and not error.problems else ""
    return pages(request).render(
        request,
        "nominations/form.html",
        {
            "edition": edition,
            "nomination": nomination,
            "values": values,
            "errors": errors,
            "general_error": general,
            "idempotency_key": idempotency_key,
            "action": f"/nominations/{nomination.public_id}/edit"
            if nomination
            else "/nominations/new",
            "draft_saved": draft_saved,
            "contact_question": contact_question,
            # The date picker's bound: the project must have started (Geneva's today).
            "today": now.astimezone(GENEVA).date().isoformat(),
            "countries": noms.countries(lang),
            "category_choices": [
                (c.code, f"{c.code}: {localized(c.name, lang)}") for c in edition.categories
            ],
            "stakeholder_choices": [
                (code, gettext(label, lang)) for code, label in noms.STAKEHOLDER_TYPES.items()
            ],
            "order": [f for f in (*noms.FIELDS, *noms.TRANSLATION_KEYS) if f in errors],
            "translations_open": any(values.get(k) for k in noms.TRANSLATION_KEYS)
            or any(k in errors for k in (*noms.TRANSLATION_KEYS, "translations")),
            "other_languages": [(lang, LANGUAGE_NAMES[lang]) for lang in noms.OTHER_LANGUAGES],
            **_display_context(),
            **_phase_context(edition, now),
        },
        status=status,
    )


async def new_form(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _signin(request)
    edition = await current_edition(request)
    values = {"category": request.query_params.get("category", "")}
    return _render_form(request, edition, values=values, idempotency_key=secrets.token_urlsafe(16))


async def create_page(request: Request) -> Response:
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    user = await require_user(request)
    edition = await current_edition(request)
    key = form.get("idempotency_key", "")

    async def save(conn: Any, submit: bool) -> Nomination:
        return (await _create(request, conn, edition, user, form, key=key, submit=submit))[0]

    return await _save_from_page(request, edition, form, save, idempotency_key=key)


async def _create(
    request: Request,
    conn: Any,
    edition: Edition,
    user: User,
    values: dict[str, Any],
    *,
    key: str | None,
    submit: bool,
) -> tuple[Nomination, bool]:
    """noms.create at the service's clock and address (the page and the API alike)."""
    svc = services(request)
    return await noms.create(
        conn,
        edition,
        user,
        values,
        now=svc.clock.now(),
        base_url=svc.settings.base_url,
        idempotency_key=key,
        submit=submit,
    )


async def _save_from_page(
    request: Request,
    edition: Edition,
    form: dict[str, Any],
    save: Callable[[Any, bool], Awaitable[Nomination]],
    *,
    nomination: Nomination | None = None,
    idempotency_key: str = "",
) -> Response:
    """Run a create or an update; on to the nomination's page, or the form again with
    what was wrong (an unknown nomination is a 404 page instead).

    A submission refused for its content is not lost work: what was typed is saved as a
    draft when a draft can hold it (a category and a title), and the form comes back
    with every field as typed, the problems marked, and a word that the draft is safe."""
    submit = form.get("action") == "submit"
    # A slip in the contact address's webmail domain would send the organizers' mail
    # nowhere: asked once before submitting (web/email_typo.py), the draft saved.
    question = email_question(form.items(), "contact_email") if submit else None
    if question is not None:
        try:
            async with services(request).db.acquire() as conn:
                draft: Nomination | None = await save(conn, False)
        except NominationError:
            draft = None
        return _render_form(
            request,
            edition,
            values=form,
            nomination=draft or nomination,
            idempotency_key="" if draft else idempotency_key,
            contact_question=question,
            draft_saved=draft is not None,
        )
    try:
        async with services(request).db.acquire() as conn:
            saved = await save(conn, submit)
    except NominationError as error:
        if error.code == "not_found":
            raise _api_error(request, error) from None
        draft = None
        if submit and error.fields:
            try:
                async with services(request).db.acquire() as conn:
                    draft = await save(conn, False)
            except NominationError:
                draft = None
        return _render_form(
            request,
            edition,
            values=form,
            nomination=draft or nomination,
            error=error,
            idempotency_key="" if draft else idempotency_key,
            status=error.status,
            draft_saved=draft is not None,
        )
    done = "submitted" if saved.status == "submitted" else "saved"
    return RedirectResponse(f"/nominations/{saved.public_id}?done={done}", status_code=303)


async def _own_for_page(request: Request, user: User) -> tuple[Nomination, Edition]:
    async with services(request).db.acquire() as conn:
        nomination = await noms.get(conn, request.path_params["public_id"])
        if nomination is None or nomination.owner_id != user.id:
            raise ApiError(404, "not_found", gettext("There is no such nomination."))
        return nomination, await _edition_of(conn, nomination)


async def edit_form(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _signin(request)
    nomination, edition = await _own_for_page(request, user)
    if not nomination.editable:
        return RedirectResponse(f"/nominations/{nomination.public_id}", status_code=303)
    return _render_form(request, edition, values=nomination.form_values(), nomination=nomination)


async def edit_page(request: Request) -> Response:
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    user = await require_user(request)
    nomination, edition = await _own_for_page(request, user)
    svc = services(request)

    async def save(conn: Any, submit: bool) -> Nomination:
        return await noms.update(
            conn,
            edition,
            user,
            nomination.public_id,
            form,
            now=svc.clock.now(),
            base_url=svc.settings.base_url,
            submit=submit,
        )

    return await _save_from_page(request, edition, form, save, nomination=nomination)


async def submit_page(request: Request) -> Response:
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    user = await require_user(request)
    nomination, edition = await _own_for_page(request, user)
    svc = services(request)
    try:
        async with svc.db.acquire() as conn:
            saved = await noms.submit(
                conn,
                edition,
                user,
                nomination.public_id,
                now=svc.clock.now(),
                base_url=svc.settings.base_url,
            )
    except NominationError as error:
        if error.code == "not_found":
            raise _api_error(request, error) from None
        # Show what is missing where it can be fixed: on the form.
        return _render_form(
            request,
            edition,
            values=nomination.form_values(),
            nomination=nomination,
            error=error,
            status=error.status,
        )
    return RedirectResponse(f"/nominations/{saved.public_id}?done=submitted", status_code=303)


async def withdraw_page(request: Request) -> Response:
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    user = await require_user(request)
    nomination, edition = await _own_for_page(request, user)
    svc = services(request)
    try:
        async with svc.db.acquire() as conn:
            await noms.withdraw(conn, edition, user, nomination.public_id, now=svc.clock.now())
    except NominationError as error:
        raise _api_error(request, error) from None
    return RedirectResponse("/dashboard?done=withdrawn", status_code=303)


async def api_withdraw(request: Request) -> Typed:
    return await _api_owner_step(request, noms.withdraw)


# -- organizers --------------------------------------------------------------------------------


async def organizer_queue(request: Request) -> Response:
    if await current_user(request) is None:
        return _signin(request)
    await require_role(request, "organizer")
    svc = services(request)
    edition = await current_edition(request)
    status = request.query_params.get("status", "submitted")
    if status not in noms.STATUSES:
        raise ApiError(404, "not_found", gettext("There is no such list."))
    async with svc.db.acquire() as conn:
        eid = await _edition_id(conn, edition)
        found = await noms.queue(conn, eid, status)
        counts = await noms.status_counts(conn, eid)
    review_closed = noms.review_problem(edition, svc.clock.now())
    return pages(request).render(
        request,
        "nominations/organizer_queue.html",
        {
            "edition": edition,
            "status": status,
            "statuses": noms.STATUSES,
            "counts": counts,
            "found": found,
            "review_closed": review_closed.text(language_of(request)) if review_closed else "",
            "notice": request.query_params.get("done", ""),
            **_display_context(),
        },
    )


async def _review_page(
    request: Request,
    nomination: Nomination,
    *,
    values: dict[str, Any] | None = None,
    error: NominationError | None = None,
    status: int = 200,
) -> Response:
    svc = services(request)
    lang = language_of(request)
    async with svc.db.acquire() as conn:
        edition = await _edition_of(conn, nomination)
        history = await noms.history(conn, nomination.public_id)
    review_closed = noms.review_problem(edition, svc.clock.now())
    return pages(request).render(
        request,
        "nominations/organizer_review.html",
        {
            "edition": edition,
            # The English text: the one of record, which the organizers review.
            "n": nomination,
            "category": edition.category(nomination.category),
            "history": history,
            "values": values or {},
            "errors": error.field_texts(lang) if error else {},
            "general_error": error.problem.text(lang) if error and not error.problems else "",
            "review_closed": review_closed.text(lang) if review_closed else "",
            **_display_context(),
        },
        status=status,
    )


async def _any_nomination(request: Request) -> Nomination:
    async with services(request).db.acquire() as conn:
        nomination = await noms.get(conn, request.path_params["public_id"])
    if nomination is None:
        raise ApiError(404, "not_found", gettext("There is no such nomination."))
    return nomination


async def organizer_review(request: Request) -> Response:
    if await current_user(request) is None:
        return _signin(request)
    await require_role(request, "organizer")
    return await _review_page(request, await _any_nomination(request))


async def organizer_decide(request: Request) -> Response:
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    organizer = await require_role(request, "organizer")
    nomination = await _any_nomination(request)
    svc = services(request)
    try:
        async with svc.db.acquire() as conn:
            edition = await _edition_of(conn, nomination)
            decided = await noms.decide(
                conn,
                edition,
                organizer,
                nomination.public_id,
                form,
                now=svc.clock.now(),
                base_url=svc.settings.base_url,
            )
    except NominationError as error:
        if error.code == "not_found":
            raise _api_error(request, error) from None
        return await _review_page(
            request,
            nomination,
            values=form,
            error=error,
            status=error.status,
        )
    return RedirectResponse(
        f"/organizer?done={decided.status}&id={decided.public_id}", status_code=303
    )


# -- JSON API ----------------------------------------------------------------------------------


async def api_list(request: Request) -> Typed:
    search = _search(request)
    edition = await _api_edition(request, search[0].edition)
    query = _public_query(search, edition, None)
    async with services(request).db.acquire() as conn:
        eid = await _edition_id(conn, edition)
        total, found = await noms.public_list(conn, eid, query)
    return Typed(
        NominationsPage(
            edition=edition.slug,
            total=total,
            limit=query.limit,
            offset=query.offset,
            nominations=[public_answer(n) for n in found],
        )
    )


async def _api_edition(request: Request, slug: str | UnsetType) -> Edition:
    if not slug:
        return await current_edition(request)
    async with services(request).db.acquire() as conn:
        edition = await edition_store.get_edition(conn, slug)
    if edition is None:
        raise ApiError(
            404,
            "no_such_edition",
            gettext("There is no edition {slug}.").format(slug=slug[:64]),
        )
    return edition


async def api_get(request: Request) -> Typed:
    user = await current_user(request)
    nomination = await _any_nomination(request)
    if not _can_see(user, nomination):
        raise ApiError(404, "not_found", gettext("There is no such nomination."))
    if user is not None and (user.id == nomination.owner_id or user.has("organizer")):
        return Typed(OwnNomination(nomination=own_answer(nomination)))
    return Typed(OneNomination(nomination=public_answer(nomination)))


async def api_create(request: Request) -> Typed:
    user = await require_user(request)
    check_csrf(request)
    body = await read_body(request, NominationInput)
    key = request.headers.get("idempotency-key") or body.idempotency_key or None
    svc = services(request)
    edition = await current_edition(request)
    try:
        async with svc.db.acquire() as conn:
            nomination, created = await _create(
                request,
                conn,
                edition,
                user,
                body.content(),
                key=key,
                submit=body.submit is True,
            )
    except NominationError as error:
        raise _api_error(request, error) from None
    return Typed(
        OwnNomination(nomination=own_answer(nomination)),
        status_code=201 if created else 200,
        headers={"location": f"/api/nominations/{nomination.public_id}"},
    )


async def api_update(request: Request) -> Typed:
    user = await require_user(request)
    check_csrf(request)
    body = await read_body(request, NominationInput)
    svc = services(request)
    try:
        async with svc.db.acquire() as conn:
            nomination = await noms.get(conn, request.path_params["public_id"])
            if nomination is None or nomination.owner_id != user.id:
                raise ApiError(404, "not_found", gettext("There is no such nomination."))
            saved = await noms.update(
                conn,
                await _edition_of(conn, nomination),
                user,
                nomination.public_id,
                body.content(),
                now=svc.clock.now(),
                base_url=svc.settings.base_url,
                submit=body.submit is True,
            )
    except NominationError as error:
        raise _api_error(request, error) from None
    return Typed(OwnNomination(nomination=own_answer(saved)))


async def api_submit(request: Request) -> Typed:
    base_url = services(request).settings.base_url
    return await _api_owner_step(
        request, lambda *args, **kw: noms.submit(*args, **kw, base_url=base_url)
    )


async def _api_owner_step(request: Request, step: Any) -> Typed:
    """One workflow step on the caller's own nomination, through the JSON API: another
    owner's nomination is as absent as a missing one (404), a refusal is its 4xx."""
    user = await require_user(request)
    check_csrf(request)
    svc = services(request)
    try:
        async with svc.db.acquire() as conn:
            nomination = await noms.get(conn, request.path_params["public_id"])
            if nomination is None or nomination.owner_id != user.id:
                raise ApiError(404, "not_found", gettext("There is no such nomination."))
            saved = await step(
                conn,
                await _edition_of(conn, nomination),
                user,
                nomination.public_id,
                now=svc.clock.now(),
            )
    except NominationError as error:
        raise _api_error(request, error) from None
    return Typed(OwnNomination(nomination=own_answer(saved)))


async def api_mine(request: Request) -> Typed:
    user = await require_user(request)
    async with services(request).db.acquire() as conn:
        mine = await noms.for_owner(conn, user.id)
    # Same-origin scripts need the token for their writes; no other origin can read this.
    return Typed(
        MyNominations(csrf_token=csrf_token(request), nominations=[own_answer(n) for n in mine])
    )


routes = [
    Route("/categories", categories_page, methods=["GET"]),
    Route("/categories/{code}", category_page, methods=["GET"]),
    Route("/dashboard", dashboard, methods=["GET"]),
    Route("/nominations/new", new_form, methods=["GET"]),
    Route("/nominations/new", create_page, methods=["POST"]),
    Route("/nominations/{public_id}", nomination_page, methods=["GET"]),
    Route("/nominations/{public_id}/edit", edit_form, methods=["GET"]),
    Route("/nominations/{public_id}/edit", edit_page, methods=["POST"]),
    Route("/nominations/{public_id}/submit", submit_page, methods=["POST"]),
    Route("/nominations/{public_id}/withdraw", withdraw_page, methods=["POST"]),
    Route("/organizer", organizer_queue, methods=["GET"]),
    Route("/organizer/nominations/{public_id}", organizer_review, methods=["GET"]),
    Route("/organizer/nominations/{public_id}/decision", organizer_decide, methods=["POST"]),
    Route("/api/nominations", api_list, methods=["GET"]),
    Route("/api/nominations", api_create, methods=["POST"]),
    Route("/api/nominations/{public_id}", api_get, methods=["GET"]),
    Route("/api/nominations/{public_id}", api_update, methods=["PUT"]),
    Route("/api/nominations/{public_id}/submit", api_submit, methods=["POST"]),
    Route("/api/nominations/{public_id}/withdraw", api_withdraw, methods=["POST"]),
    Route("/api/me/nominations", api_mine, methods=["GET"]),
]


# -- OpenAPI -----------------------------------------------------------------------------------


# A nomination's content rules (lengths, word counts, codes, dates) are the domain's
# (voting/nominations/fields.py, shared with the form), worded per field there: the types
# check the JSON shape, and state those rules in the document with `text(...)`.
class NominationInput(Struct, forbid_unknown_fields=True):
    """A draft needs category and title; submitting needs every field."""

    category: Text | UnsetType = UNSET
    title: text(minLength=3, maxLength=150) | UnsetType = UNSET
    organization: text(maxLength=200) | UnsetType = UNSET
    stakeholder_type: text(enum=list(noms.STAKEHOLDER_TYPES)) | UnsetType = UNSET
    country: text("ISO 3166-1 alpha-2") | UnsetType = UNSET
    website: text(format="uri") | UnsetType = UNSET
    start_date: text(format="date") | UnsetType = UNSET
    contact_email: text(format="email") | UnsetType = UNSET
    summary: text("150 to 200 words (edition rule)") | UnsetType = UNSET
    description: text(maxLength=6000) | UnsetType = UNSET
    # A list, or one text as a form sends it (partners one a line or split by ";",
    # languages by lines, "," or ";": nominations/fields.py).
    partners: list[Text] | Text | UnsetType = UNSET
    languages: (
        Annotated[list[Text] | Text, Meta(description="ISO 639 codes or English names")] | UnsetType
    ) = UNSET
    earlier_winner: bool | UnsetType = UNSET
    translations: (
        Annotated[
            dict[Text, dict[Text, Text]],
            Meta(description="title and summary per other language (fr, es, ar, zh, ru)"),
        ]
        | UnsetType
    ) = UNSET
    submit: Annotated[bool, Meta(description="submit at once")] | UnsetType = UNSET
    idempotency_key: Annotated[str, Meta(max_length=100, pattern=NO_NUL)] | UnsetType = UNSET

    words: ClassVar[dict[str, Words]] = {
        "submit": Words(N_("Some fields need attention."), field=N_("Give true or false."))
    }

    def content(self) -> dict[str, Any]:
        """The nomination's fields given, for the domain's checks."""
        return {
            name: getattr(self, name) for name in noms.FIELDS if getattr(self, name) is not UNSET
        }


# kw_only: the fields in the order the answers have always given them (`public_dict`).
class NominationPublic(Struct, kw_only=True):
    public_id: str
    edition: str
    category: str
    title: str
    organization: str
    stakeholder_type: str | UnsetType | None = UNSET
    country: str
    country_name: str | UnsetType | None = UNSET
    website: str | UnsetType | None = UNSET
    start_date: date | UnsetType | None = UNSET
    summary: str | UnsetType = UNSET
    description: str | UnsetType = UNSET
    partners: list[str] | UnsetType = UNSET
    languages: list[str] | UnsetType = UNSET
    language_names: list[str] | UnsetType = UNSET
    translations: dict[str, dict[str, str]] | UnsetType = UNSET
    url: str | UnsetType = UNSET


class NominationOwn(NominationPublic, kw_only=True):
    status: Literal[noms.STATUSES]  # type: ignore[valid-type]
    contact_email: str | UnsetType | None = UNSET
    earlier_winner: bool | UnsetType = UNSET
    earlier_winner_marked: bool | UnsetType = UNSET
    decision_reason: str | UnsetType | None = UNSET
    created_at: Instant | UnsetType = UNSET
    updated_at: Instant | UnsetType = UNSET
    submitted_at: Instant | UnsetType | None = UNSET
    decided_at: Instant | UnsetType | None = UNSET


class OneNomination(Struct):
    nomination: NominationPublic


class OwnNomination(Struct):
    nomination: NominationOwn


class NominationsPage(Struct):
    edition: str
    total: int
    limit: int
    offset: int
    nominations: list[NominationPublic]


class MyNominations(Struct):
    csrf_token: str
    nominations: list[NominationOwn]


_INSTANTS = ("created_at", "updated_at", "submitted_at", "decided_at")


def public_answer(nomination: Nomination) -> NominationPublic:
    """The domain's public account of a nomination (`public_dict`) as the declared type: a
    field the type does not declare, or of another type, fails here and in the tests."""
    return msgspec.convert(nomination.public_dict(), NominationPublic)


def own_answer(nomination: Nomination) -> NominationOwn:
    """What its nominator sees (`owner_dict`), as the declared type."""
    seen = nomination.owner_dict()
    for name in _INSTANTS:
        # isoformat: "+00:00" as the answers always wrote it (msgspec would write "Z").
        if seen[name] is not None:
            seen[name] = seen[name].isoformat()
    return msgspec.convert(seen, NominationOwn)


class NominationSearch(Struct):
    """The search's parameters, of the API and the pages alike (`_search`)."""

    edition: Text | UnsetType = UNSET
    category: Text | UnsetType = UNSET
    country: Text | UnsetType = UNSET
    q: Annotated[str, Meta(max_length=MAX_QUERY, pattern=NO_NUL)] | UnsetType = UNSET
    limit: Annotated[int, Meta(ge=1, le=MAX_PAGE_SIZE)] | UnsetType = UNSET
    offset: Annotated[int, Meta(ge=0, le=BIGINT_MAX)] | UnsetType = UNSET
    page: (
        Annotated[
            int,
            Meta(
                ge=1,
                le=BIGINT_MAX,
                description="The page of `limit` results, from 1 (instead of offset); its"
                " offset must fit a 64-bit integer",
            ),
        ]
        | UnsetType
    ) = UNSET


class PublicIdPath(Struct):
    public_id: Annotated[
        str,
        Meta(
            pattern="^[Nn][0-9A-Za-z-]{8,9}$",
            description="The nomination's stable public id, e.g. N7Q2KX9AB",
        ),
    ]


class WriteHeaders(Struct):
    csrf: Annotated[
        str,
        Meta(
            pattern=NO_NUL,
            description="The session's CSRF token (from GET /api/me/nominations or any form)",
        ),
    ] = field(name="X-CSRF-Token")


class CreateHeaders(WriteHeaders, kw_only=True):
    idempotency_key: Text | UnsetType = field(name="Idempotency-Key", default=UNSET)


ONE_OWN = Answer("The nomination as its nominator sees it", OwnNomination)
WRITE_ERRORS: dict[int, Answer | str] = {
    401: "Not signed in",
    403: "Missing or wrong CSRF token",
    404: "No such nomination, or not yours",
    409: "Nominations are closed, or the nomination is not editable",
    422: "Per-field problems under error.fields",
}
API = [
    Operation(
        "GET",
        "/api/nominations",
        "Accepted nominations, searchable by title, organization and country",
        {
            200: Answer("A page of accepted nominations", NominationsPage),
            404: "No such edition",
            422: "Bad search parameters, per field",
        },
        query=NominationSearch,
    ),
    Operation(
        "POST",
        "/api/nominations",
        "Create a nomination (a draft, or submitted at once with submit=true)",
        {
            201: ONE_OWN,
            200: Answer("Replayed: the key was used before", OwnNomination),
            **WRITE_ERRORS,
        },
        body=NominationInput,
        headers=CreateHeaders,
    ),
    Operation(
        "GET",
        "/api/nominations/{public_id}",
        "One nomination: accepted for all; own or organizer see more",
        {
            # Its nominator and organizers see more (NominationOwn's fields): the same
            # object with more members, which this shape allows.
            200: Answer("The nomination", OneNomination),
            404: "No such nomination (or not visible to you)",
        },
        path_params=PublicIdPath,
    ),
    Operation(
        "PUT",
        "/api/nominations/{public_id}",
        "Replace a draft's or a returned nomination's content",
        {200: ONE_OWN, **WRITE_ERRORS},
        body=NominationInput,
        path_params=PublicIdPath,
        headers=WriteHeaders,
    ),
    Operation(
        "POST",
        "/api/nominations/{public_id}/submit",
        "Submit a draft or a returned nomination (again is harmless)",
        {200: ONE_OWN, **WRITE_ERRORS},
        path_params=PublicIdPath,
        headers=WriteHeaders,
    ),
    Operation(
        "POST",
        "/api/nominations/{public_id}/withdraw",
        "Withdraw one's own nomination before public voting opens (again is"
        " harmless); its contact address is erased",
        {200: ONE_OWN, **WRITE_ERRORS},
        path_params=PublicIdPath,
        headers=WriteHeaders,
    ),
    Operation(
        "GET",
        "/api/me/nominations",
        "The signed-in nominator's nominations, with status and reasons",
        {
            200: Answer("Your nominations and the CSRF token for writes", MyNominations),
            401: "Not signed in",
        },
    ),
]
