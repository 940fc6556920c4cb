"""Declared mobilisation: the nominator's page and API, the organizers' queue.

The rules are in voting/antifraud/declarations.py. A nominator declares only for its own
nomination (another's answers 404, like a missing one); only organizers decide. Forms
carry the session's CSRF token; the JSON API takes it in the X-CSRF-Token header.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..antifraud import declarations
from ..antifraud.declarations import DeclarationError
from ..contest import GENEVA
from ..i18n import N_, gettext
from .auth import current_user, pages, require_role, require_user
from .context import snapshot
from .csrf import check_csrf
from .deps import services
from .numbers import path_id
from .responses import JSON, ApiError
from .shapes import (
    NO_NUL,
    NOT_BLANK,
    Answer,
    AnyObject,
    CsrfHeader,
    Operation,
    Text,
    Words,
    read_body,
)

LOCAL_TIME = "ISO 8601; no offset: Geneva time"


def _error(exc: DeclarationError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message, fields=exc.fields or None)


async def _own_nomination(request: Request) -> tuple[Any, Any, dict[str, Any]]:
    """(user, snapshot, nomination) for the signed-in owner, else 401/404."""
    user = await require_user(request)
    snap = await snapshot(request)
    async with services(request).db.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT public_id, title, owner_id, edition_id, status FROM nominations"
            " WHERE public_id = $1",
            request.path_params["public_id"],
        )
    if row is None or row["owner_id"] != user.id or row["edition_id"] != snap.edition_id:
        raise ApiError(404, "not_found", gettext("There is no such nomination of yours."))
    return user, snap, dict(row)


def _window(snap: Any) -> tuple[Any, Any]:
    phase = snap.edition.phase("voting")
    return phase.opens_at, phase.closes_at


async def _declare(
    request: Request, raw: dict[str, Any], owned: tuple[Any, Any, dict[str, Any]] | None = None
) -> dict[str, Any]:
    user, snap, nomination = owned or await _own_nomination(request)
    opens, closes = _window(snap)
    if services(request).clock.now() >= closes:
        raise ApiError(409, "voting_closed", gettext("Voting has closed: nothing to declare."))
    if nomination["status"] == "rejected":
        raise ApiError(
            409, "rejected", gettext("This nomination was rejected: nothing to declare.")
        )
    declaration = declarations.validate(raw, voting_opens=opens, voting_closes=closes)
    async with services(request).db.acquire() as conn:
        return await declarations.declare(
            conn,
            edition_id=snap.edition_id,
            edition_slug=snap.edition.slug,
            nomination=nomination["public_id"],
            user_id=user.id,
            user_email=user.email,
            declaration=declaration,
        )


# -- the nominator's page ------------------------------------------------------------------


async def _page(
    request: Request,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    general: str = "",
    notice: str = "",
    status: int = 200,
) -> Response:
    _, snap, nomination = await _own_nomination(request)
    async with services(request).db.acquire() as conn:
        mine = await declarations.of_nomination(conn, snap.edition_id, nomination["public_id"])
    opens, closes = _window(snap)
    return pages(request).render(
        request,
        "mobilisation/declare.html",
        {
            "n": nomination,
            "declarations": mine,
            "values": values or {},
            "errors": errors or {},
            "general_error": general,
            "notice": notice,
            "opens": opens,
            "closes": closes,
            "local": lambda instant: instant.astimezone(GENEVA).strftime("%Y-%m-%dT%H:%M"),
            "min_prefix": declarations.MIN_PREFIX,
        },
        status=status,
    )


async def declare_page(request: Request) -> Response:
    if await current_user(request) is None:
        target = request.url.path
        return RedirectResponse(f"/signin?next={target}", status_code=303)
    done = request.query_params.get("done", "")
    notice = gettext("Your declaration is with the organizers.") if done == "declared" else ""
    return await _page(request, notice=notice)


async def declare_form(request: Request) -> Response:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    check_csrf(request, values.get("csrf_token"))
    try:
        await _declare(request, values)
    except DeclarationError as exc:
        return await _page(
            request,
            values=values,
            errors=exc.fields,
            general="" if exc.fields else exc.message,
            status=exc.status,
        )
    except ApiError as exc:
        if exc.status == 409:
            return await _page(request, values=values, general=exc.message, status=409)
        raise
    public_id = request.path_params["public_id"]
    return RedirectResponse(f"/nominations/{public_id}/mobilisation?done=declared", 303)


# -- the nominator's API ---------------------------------------------------------------------


async def declare_api(request: Request) -> JSON:
    check_csrf(request)
    # Who asks and for which nomination before what is asked: a stranger learns 401/404,
    # never which fields a declaration needs.
    owned = await _own_nomination(request)
    body = await read_body(request, Declaration)
    given = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not UNSET}
    try:
        return JSON(await _declare(request, given, owned), 201)
    except DeclarationError as exc:
        raise _error(exc) from None


async def list_api(request: Request) -> JSON:
    """The nomination's declarations: its owner or an organizer."""
    user = await require_user(request)
    snap = await snapshot(request)
    public_id = request.path_params["public_id"]
    async with services(request).db.acquire() as conn:
        owner = await conn.fetchval(
            "SELECT owner_id FROM nominations WHERE public_id = $1 AND edition_id = $2",
            public_id,
            snap.edition_id,
        )
        if owner is None or (owner != user.id and not user.has("organizer")):
            raise ApiError(404, "not_found", gettext("There is no such nomination of yours."))
        rows = await declarations.of_nomination(conn, snap.edition_id, public_id)
    return JSON({"nomination": public_id, "declarations": [declarations.as_dict(r) for r in rows]})


# -- the organizers ------------------------------------------------------------------------


async def queue_page(
    request: Request, *, error: str = "", status: int = 200, typed: dict[str, str] | None = None
) -> Response:
    if await current_user(request) is None:
        return RedirectResponse("/signin?next=/organizer/mobilisations", status_code=303)
    await require_role(request, "organizer")
    snap = await snapshot(request)
    async with services(request).db.acquire() as conn:
        rows = await declarations.queue(conn, snap.edition_id)
    return pages(request).render(
        request,
        "mobilisation/queue.html",
        {
            "declarations": rows,
            "done": request.query_params.get("done", ""),
            "error": error,
            # A refused decision comes back as the organizer made it (declaration id,
            # decision, reason), on the declaration it was for.
            "typed": typed or {},
            "edition": snap.edition,
        },
        status=status,
    )


async def _decide(request: Request, decision: str, reason: str) -> dict[str, Any]:
    organizer = await require_role(request, "organizer")
    snap = await snapshot(request)
    # One parser for numbers from outside (numbers.py): past bigint or not ASCII digits,
    # it names no declaration (int() took "١" and 2**64, then PostgreSQL gave a 500).
    declaration_id = path_id(request, "declaration_id", gettext("There is no such declaration."))
    svc = services(request)
    async with svc.db.acquire() as conn:
        return await declarations.decide(
            conn,
            edition_id=snap.edition_id,
            edition_slug=snap.edition.slug,
            declaration_id=declaration_id,
            decision=decision,
            reason=reason,
            organizer_email=organizer.email,
            base_url=svc.settings.base_url,
        )


async def decide_form(request: Request) -> Response:
    form = await request.form()
    token = form.get("csrf_token")
    check_csrf(request, token if isinstance(token, str) else None)
    decision, reason = form.get("decision"), form.get("reason")
    try:
        await _decide(
            request,
            decision if isinstance(decision, str) else "",
            reason if isinstance(reason, str) else "",
        )
    except DeclarationError as exc:
        message = "; ".join(exc.fields.values()) if exc.fields else exc.message
        typed = {
            "id": str(request.path_params.get("declaration_id", "")),
            "decision": decision if isinstance(decision, str) else "",
            "reason": reason if isinstance(reason, str) else "",
        }
        return await queue_page(request, error=message, status=exc.status, typed=typed)
    return RedirectResponse("/organizer/mobilisations?done=1", status_code=303)


async def decide_api(request: Request) -> JSON:
    check_csrf(request)
    await require_role(request, "organizer")  # the role before the body (401/403 first)
    body = await read_body(request, MobilisationDecision)
    try:
        return JSON(await _decide(request, body.decision, body.reason))
    except DeclarationError as exc:
        raise _error(exc) from None


routes = [
    Route("/nominations/{public_id}/mobilisation", declare_page, methods=["GET"]),
    Route("/nominations/{public_id}/mobilisation", declare_form, methods=["POST"]),
    Route("/api/nominations/{public_id}/mobilisations", list_api, methods=["GET"]),
    Route("/api/nominations/{public_id}/mobilisations", declare_api, methods=["POST"]),
    Route("/organizer/mobilisations", queue_page, methods=["GET"]),
    Route("/organizer/mobilisations/{declaration_id}", decide_form, methods=["POST"]),
    Route("/api/mobilisations/{declaration_id}/decision", decide_api, methods=["POST"]),
]


# The rules on a campaign's domains, networks and dates are the domain's
# (declarations.validate, shared with the page), worded per field there.
class Declaration(Struct):
    expected_votes: Annotated[int, Meta(ge=1, le=declarations.MAX_EXPECTED)]
    starts_at: Annotated[str, Meta(pattern=NO_NUL, description=LOCAL_TIME)]
    ends_at: Annotated[str, Meta(pattern=NO_NUL, description=LOCAL_TIME)]
    domains: list[Text] | UnsetType = UNSET
    networks: list[Text] | UnsetType = UNSET
    note: Text | UnsetType = UNSET


class MobilisationDecision(Struct):
    decision: Literal["approve", "reject"]
    reason: Annotated[str, Meta(pattern=NOT_BLANK)]

    words: ClassVar[dict[str, Words]] = {
        "decision": Words(N_("Choose approve or reject."), field=N_("Choose approve or reject.")),
        "reason": Words(
            N_("A decision needs a reason, for the record."),
            field=N_("A decision needs a reason, for the record."),
        ),
    }


class NominationPath(Struct):
    public_id: Text


class DeclarationPath(Struct):
    declaration_id: Text


NOT_SIGNED_IN = "Not signed in"
NOT_YOURS = "No such nomination of yours"
API = [
    Operation(
        "GET",
        "/api/nominations/{public_id}/mobilisations",
        "A nomination's declared campaigns (its nominator or organizers)",
        {200: Answer("The declarations", AnyObject), 401: NOT_SIGNED_IN, 404: NOT_YOURS},
        path_params=NominationPath,
    ),
    Operation(
        "POST",
        "/api/nominations/{public_id}/mobilisations",
        "Declare a campaign for one's nomination",
        {
            201: Answer("Declared, pending the organizers", AnyObject),
            400: "Malformed body",
            401: NOT_SIGNED_IN,
            403: "No CSRF token",
            404: NOT_YOURS,
            409: "Voting has closed, or the nomination is rejected",
            422: "A field is invalid (see error.fields)",
        },
        body=Declaration,
        path_params=NominationPath,
        headers=CsrfHeader,
    ),
    Operation(
        "POST",
        "/api/mobilisations/{declaration_id}/decision",
        "Approve or reject a declared campaign (organizers)",
        {
            200: Answer("Decided", AnyObject),
            400: "Malformed body",
            401: NOT_SIGNED_IN,
            403: "Not an organizer, or no CSRF token",
            404: "No such declaration",
            409: "Already decided",
            422: "Unknown decision or no reason",
        },
        body=MobilisationDecision,
        path_params=DeclarationPath,
        headers=CsrfHeader,
    ),
]
