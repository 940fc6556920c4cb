"""The committee's fraud review, the nominators' view of held votes, and their review
requests: pages and JSON API. The rules are in voting/antifraud/."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from msgspec import UNSET, Meta, Struct, UnsetType, field
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..antifraud import declarations, mobilisation, refusals, reviews
from ..antifraud.detectors import audit_category
from ..antifraud.minimise import address_key
from ..antifraud.quarantine import decide_flag, decide_vote, reasons_of
from ..antifraud.quarantine import verdict_counts as counts_by_verdict
from ..antifraud.wording import detector_words
from ..i18n import N_, gettext
from .auth import pages, require_role, require_user
from .chart_data import fraud_chart_view
from .context import snapshot
from .csrf import check_csrf
from .deps import services
from .numbers import path_id
from .responses import JSON, ApiError
from .shapes import (
    NOT_BLANK,
    Answer,
    AnyObject,
    CsrfHeader,
    Id,
    Operation,
    Receipt,
    Text,
    Words,
    read_body,
)
from .templating import language_of


async def _category_view(request: Request, code: str) -> dict[str, Any]:
    snap = await snapshot(request)
    category = snap.edition.category(code)
    if category is None:
        raise ApiError(
            404, "no_such_category", gettext("There is no category {code!r}.").format(code=code)
        )
    async with services(request).db.acquire() as conn:
        counts = await counts_by_verdict(conn, snap.edition_id, code)
        titles = {
            r["public_id"]: r["title"]
            for r in await conn.fetch(
                "SELECT public_id, title FROM nominations WHERE edition_id=$1 AND category=$2",
                snap.edition_id,
                code,
            )
        }
        flags = await conn.fetch(
            "SELECT f.id, f.detector, f.nomination, f.evidence, f.status, f.created_at,"
            " (SELECT count(*) FROM fraud_flag_votes fv JOIN votes v USING (edition_id,"
            "   voter_id, category) WHERE fv.flag_id = f.id AND v.verdict = 'quarantined')"
            "   AS held"
            " FROM fraud_flags f WHERE f.edition_id = $1"
            " AND (f.category = $2 OR (f.category IS NULL AND EXISTS ("
            "   SELECT 1 FROM fraud_flag_votes fv WHERE fv.flag_id = f.id AND fv.category = $2)))"
            " ORDER BY f.status = 'open' DESC, f.created_at DESC LIMIT 200",
            snap.edition_id,
            code,
        )
        profile = await mobilisation.profile(conn, snap.edition_id, code)
        declared = await declarations.declared_share(
            conn,
            snap.edition_id,
            code,
            address_key=address_key(services(request).settings.secret_key),
        )
        turned_away = await refusals.summary(conn, snap.edition_id)
        audits = await audit_category(conn, snap.edition_id, code)
    nominations = [
        {
            "nomination": n,
            "title": titles.get(n, n),
            **c,
            "official": c["counted"] + c["released"],
            "audit": audits.get(n),
        }
        for n, c in sorted(counts.items(), key=lambda kv: -(kv[1]["counted"] + kv[1]["released"]))
    ]
    return {
        "edition": snap.edition,
        "category": category,
        "nominations": nominations,
        "titles": titles,
        "flags": [dict(f) for f in flags],
        "profile": profile,
        "declared": declared,
        "refusals": turned_away,
    }


async def fraud_index(request: Request) -> Response:
    await require_role(request, "committee")
    snap = await snapshot(request)
    async with services(request).db.acquire() as conn:
        rows = await conn.fetch(
            "SELECT coalesce(f.category, fv.category) AS category, count(DISTINCT f.id) AS n"
            " FROM fraud_flags f LEFT JOIN fraud_flag_votes fv ON fv.flag_id = f.id"
            " WHERE f.edition_id = $1 AND f.status = 'open' GROUP BY 1",
            snap.edition_id,
        )
    open_flags = {r["category"]: r["n"] for r in rows}
    return pages(request).render(
        request, "fraud/index.html", {"edition": snap.edition, "open_flags": open_flags}
    )


async def fraud_category(request: Request) -> Response:
    await require_role(request, "committee")
    view = await _category_view(request, request.path_params["code"])
    view["done"] = request.query_params.get("done", "")
    view["charts"] = await fraud_chart_view(request, view)
    lang = language_of(request)
    view["detector_words"] = {
        f["detector"]: detector_words(f["detector"], lang) for f in view["flags"]
    }
    return pages(request).render(request, "fraud/category.html", view)


async def _decide(
    request: Request, *, flag_id: int | None, receipt: str | None, action: str, reason: str
) -> dict[str, Any]:
    user = await require_role(request, "committee")
    snap = await snapshot(request)
    # A refusal (DecisionRefused) is the app's error answer, worded there.
    async with services(request).db.acquire() as conn:
        if flag_id is not None:
            return await decide_flag(
                conn,
                snap.edition_id,
                snap.edition.slug,
                flag_id,
                action,
                actor=f"user:{user.email}",
                reason=reason,
            )
        return await decide_vote(
            conn,
            snap.edition_id,
            snap.edition.slug,
            receipt or "",
            action,
            actor=f"user:{user.email}",
            reason=reason,
        )


async def _confirmed_void(request: Request, form: Any) -> None:
    """Voiding from a page needs its box ticked: the box's label names what it voids.
    Checked after the role, so no one else learns more than 403."""
    await require_role(request, "committee")
    if _s(form.get("action")) == "void" and _s(form.get("confirm_void")) != "yes":
        raise ApiError(
            422,
            "confirm_void",
            gettext(
                "Nothing was voided: tick the box that confirms what the void does, then"
                " press Void again.",
                language_of(request),
            ),
        )


async def decide_flag_form(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, _s(form.get("csrf_token")))
    await _confirmed_void(request, form)
    flag_id = path_id(request, "flag_id", gettext("There is no such flag."))
    await _decide(
        request,
        flag_id=flag_id,
        receipt=None,
        action=_s(form.get("action")) or "",
        reason=_s(form.get("reason")) or "",
    )
    code = _s(form.get("category")) or ""
    return RedirectResponse(f"/committee/fraud/{code}?done=flag", status_code=303)


async def decide_vote_form(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, _s(form.get("csrf_token")))
    await _confirmed_void(request, form)
    await _decide(
        request,
        flag_id=None,
        receipt=(_s(form.get("receipt")) or "").strip(),
        action=_s(form.get("action")) or "",
        reason=_s(form.get("reason")) or "",
    )
    code = _s(form.get("category")) or ""
    return RedirectResponse(f"/committee/fraud/{code}?done=vote", status_code=303)


async def fraud_api(request: Request) -> JSON:
    await require_role(request, "committee")
    view = await _category_view(request, request.path_params["code"])
    return JSON(
        {
            "category": view["category"].code,
            "nominations": view["nominations"],
            "flags": view["flags"],
            "mobilisation": view["profile"],
            "declared": view["declared"],
            "signin_refusals": view["refusals"],
        }
    )


async def decide_flag_api(request: Request) -> JSON:
    check_csrf(request)
    await require_role(request, "committee")  # the role before the body (401/403 first)
    body = await read_body(request, Decision)
    flag_id = path_id(request, "flag_id", gettext("There is no such flag."))
    return JSON(
        await _decide(
            request, flag_id=flag_id, receipt=None, action=body.action, reason=body.reason
        )
    )


async def decide_vote_api(request: Request) -> JSON:
    check_csrf(request)
    await require_role(request, "committee")  # the role before the body (401/403 first)
    body = await read_body(request, Decision)
    return JSON(
        await _decide(
            request,
            flag_id=None,
            receipt=request.path_params["receipt"],
            action=body.action,
            reason=body.reason,
        )
    )


# -- the nominator's side --------------------------------------------------------------


async def _owned_nomination(request: Request) -> tuple[Any, dict[str, Any]]:
    user = await require_user(request)
    snap = await snapshot(request)
    async with services(request).db.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT public_id, title, owner_id, edition_id FROM nominations WHERE public_id=$1",
            request.path_params["public_id"],
        )
    if row is None or row["owner_id"] != user.id or row["edition_id"] != snap.edition_id:
        raise ApiError(404, "not_found", gettext("There is no such nomination of yours."))
    return user, dict(row)


async def held_votes_page(request: Request, *, notice: str = "", status: int = 200) -> Response:
    _, nomination = await _owned_nomination(request)
    snap = await snapshot(request)
    now = services(request).clock.now()
    closed = now >= snap.edition.phase("voting").closes_at
    reasons: dict[str, dict[str, int]] = {}
    requests_: list[Any] = []
    if closed:
        async with services(request).db.acquire() as conn:
            reasons = await reasons_of(conn, snap.edition_id, nomination["public_id"])
            requests_ = await reviews.requests_for(conn, snap.edition_id, nomination["public_id"])
    return pages(request).render(
        request,
        "fraud/held_votes.html",
        {
            "n": nomination,
            "closed": closed,
            "reasons": reasons,
            "requests": requests_,
            "notice": notice,
            "closes_at": snap.edition.phase("voting").closes_at,
        },
        status=status,
    )


async def held_votes(request: Request) -> Response:
    return await held_votes_page(request)


async def ask_review(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, _s(form.get("csrf_token")))
    user, nomination = await _owned_nomination(request)
    snap = await snapshot(request)
    svc = services(request)
    try:
        async with svc.db.acquire() as conn:
            await reviews.ask_review(
                conn,
                snap.edition,
                snap.edition_id,
                nomination["public_id"],
                user_id=user.id,
                email=user.email,
                message=_s(form.get("message")) or "",
                clock=svc.clock,
            )
    except reviews.ReviewRefused as exc:
        if exc.code == "voting_open":
            raise  # the error page: there is no form to show yet
        return await held_votes_page(request, notice=exc.text(), status=exc.status)
    return await held_votes_page(request, notice=gettext("Your request is with the committee."))


async def reviews_page(request: Request) -> Response:
    await require_role(request, "committee")
    snap = await snapshot(request)
    async with services(request).db.acquire() as conn:
        rows = await reviews.all_requests(conn, snap.edition_id)
    return pages(request).render(request, "fraud/reviews.html", {"requests": rows})


async def answer_review(request: Request) -> Response:
    user = await require_role(request, "committee")
    form = await request.form()
    check_csrf(request, _s(form.get("csrf_token")))
    snap = await snapshot(request)
    request_id = path_id(request, "request_id", gettext("There is no such request."))
    svc = services(request)
    async with svc.db.acquire() as conn:
        # A refusal (no answer, answered already) is the app's error answer.
        await reviews.answer_review(
            conn,
            snap.edition,
            snap.edition_id,
            request_id,
            email=user.email,
            answer=_s(form.get("answer")) or "",
            clock=svc.clock,
        )
    return RedirectResponse("/committee/reviews", status_code=303)


def _s(value: Any) -> str | None:
    return value if isinstance(value, str) else None


routes = [
    Route("/committee/fraud", fraud_index, methods=["GET"]),
    Route("/committee/fraud/{code}", fraud_category, methods=["GET"]),
    Route("/committee/fraud/flags/{flag_id}", decide_flag_form, methods=["POST"]),
    Route("/committee/fraud-votes", decide_vote_form, methods=["POST"]),
    Route("/committee/reviews", reviews_page, methods=["GET"]),
    Route("/committee/reviews/{request_id}", answer_review, methods=["POST"]),
    Route("/nominations/{public_id}/held-votes", held_votes, methods=["GET"]),
    Route("/nominations/{public_id}/held-votes", ask_review, methods=["POST"]),
    Route("/api/fraud/{code}", fraud_api, methods=["GET"]),
    Route("/api/fraud/flags/{flag_id}", decide_flag_api, methods=["POST"]),
    Route("/api/fraud/votes/{receipt}", decide_vote_api, methods=["POST"]),
]


class Decision(Struct):
    action: Literal["release", "void"]
    reason: Annotated[str, Meta(pattern=NOT_BLANK)]

    words: ClassVar[dict[str, Words]] = {
        "action": Words(N_("The decision must be 'release' or 'void'."), code="choice"),
        "reason": Words(N_("A decision needs a reason, for the record."), code="required"),
    }


class Decided(Struct):
    to: str
    votes: int | UnsetType = UNSET
    flag: int | UnsetType = UNSET
    receipt: str | UnsetType = UNSET
    previous: str | UnsetType | None = field(name="from", default=UNSET)


class CategoryCode(Struct):
    code: Text


class FlagPath(Struct):
    flag_id: Id


class ReceiptPath(Struct):
    receipt: Receipt


DECISION_ERRORS: dict[int, Answer | str] = {
    400: "Malformed body",
    401: "Not signed in",
    403: "Not the committee, or no CSRF token",
    404: "No such vote or flag",
    409: "The vote is not in a state this decision applies to",
    422: "Unknown action or no reason",
}
API = [
    Operation(
        "GET",
        "/api/fraud/{code}",
        "Votes by verdict per nomination, fraud flags, mobilisation, declared"
        " support and refused sign-ins (committee)",
        {
            200: Answer("The category's fraud review", AnyObject),
            401: "Not signed in",
            403: "Not the committee",
            404: "No such category",
        },
        path_params=CategoryCode,
    ),
    Operation(
        "POST",
        "/api/fraud/flags/{flag_id}",
        "Release or void every vote a flag holds in quarantine",
        {200: Answer("Decided", Decided), **DECISION_ERRORS},
        body=Decision,
        path_params=FlagPath,
        headers=CsrfHeader,
    ),
    Operation(
        "POST",
        "/api/fraud/votes/{receipt}",
        "Release or void one vote",
        {200: Answer("Decided", Decided), **DECISION_ERRORS},
        body=Decision,
        path_params=ReceiptPath,
        headers=CsrfHeader,
    ),
]
