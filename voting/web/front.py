"""The voter's side of the public front door, around the vote (never on its path).

- `POST /vote/as-account`: a nominator or staff member signed in by an email link has
  proved that mailbox already; a voter session starts from it, without a second link.
- `POST /receipts/email`: mails the voter the receipts of their votes. The address is
  not kept with the vote (only a pseudonym is), so the voter types it again, and it must
  be the mailbox they confirmed: a voter can mail only themselves.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import edition_store, mail
from ..antifraud.risk import HIGH, header_signals, score_signin
from ..antifraud.verification import MailLimits, VerificationLimiter, VerificationRefused
from ..antifraud.verification import check_domain as refuse_throwaway
from ..emails import InvalidEmail
from ..i18n import gettext
from ..voters import Voter, identify
from .auth import current_user
from .context import runtime, snapshot
from .csrf import check_csrf
from .deps import services
from .nextpath import safe_next
from .responses import ApiError
from .templating import language_of, pages
from .voting import admit_voter, session_voter

# At most this many receipt mails an hour to one mailbox: enough to ask again, not a
# way to fill someone's inbox (and only one's own mailbox can be asked for anyway).
RECEIPT_MAIL_LIMITS = MailLimits(per_address_per_hour=3, per_network_per_hour=30)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def vote_as_account(request: Request) -> Response:
    """Start a voter session from the signed-in account's proven address."""
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    user = await current_user(request)
    if user is None:
        raise ApiError(401, "not_signed_in", gettext("Sign in first."))
    snap = await snapshot(request)
    svc = services(request)
    if not snap.edition.phase("voting").contains(svc.clock.now()):
        raise ApiError(
            409, "voting_closed", gettext("Public online voting is not open at this time.")
        )
    wanted = safe_next(form.get("next"), "/vote")
    risk = score_signin(
        snap.thresholds, network_over_limit=False, **header_signals(request.headers.get)
    )
    if risk.band == HIGH:
        # A script's traces: the account's own sign-in asked for no challenge, so this
        # voter goes through the voters' sign-in, which asks for one (admit_signin).
        return RedirectResponse(f"/vote?next={quote(wanted, safe='')}", status_code=303)
    try:
        voter_id, address = identify(svc.settings.secret_key, user.email)
        refuse_throwaway(address)
    except InvalidEmail as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    except VerificationRefused as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    voter = Voter(voter_id, address.domain, snap.edition.slug)
    async with svc.db.acquire() as conn, conn.transaction():
        edition_id = await edition_store.edition_id(conn, voter.edition)
        if edition_id is None:
            raise ApiError(404, "no_edition", gettext("No edition is loaded yet."))
        # As after a confirmed link: recorded, and a fresh session.
        await admit_voter(request, conn, edition_id, voter)
    return RedirectResponse(wanted, status_code=303)


async def _titles(request: Request, ids: list[str]) -> dict[str, str]:
    async with services(request).db.acquire() as conn:
        rows = await conn.fetch(
            "SELECT public_id, title FROM nominations WHERE public_id = ANY($1::text[])", ids
        )
    return {r["public_id"]: r["title"] for r in rows}


async def email_receipts(request: Request) -> Response:
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    voter = session_voter(request)
    if voter is None:
        raise ApiError(
            401, "not_signed_in", gettext("Confirm your email address to see your receipts.")
        )
    svc = services(request)
    lang = language_of(request)
    try:
        voter_id, address = identify(svc.settings.secret_key, form.get("email", ""))
    except InvalidEmail as exc:
        return _sent_page(request, error=str(exc), typed=form.get("email", ""), status=422)
    if voter_id != voter.id:
        return _sent_page(
            request,
            error=gettext(
                "This is not the address you confirmed to vote. Give the same address: the"
                " receipts are mailed only to it."
            ),
            typed=form.get("email", ""),
            status=422,
        )
    try:
        await VerificationLimiter(
            svc.r, svc.settings.redis_prefix, kind="rm", secret=svc.settings.secret_key
        ).take_address(address, RECEIPT_MAIL_LIMITS)
    except VerificationRefused as exc:
        response = _sent_page(request, error=exc.message, status=exc.status)
        if exc.retry_after_s:
            response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    snap = await snapshot(request)
    ballot = await runtime(request).ballot.ballot_of(voter.edition, voter.id)
    titles = await _titles(request, [nomination for _, nomination in ballot.values()])
    lines = []
    for category in snap.edition.categories:
        if category.code in ballot:
            receipt, nomination = ballot[category.code]
            lines.append(
                f"{category.code} · {category.name}\n  {titles.get(nomination, nomination)}"
                f" ({nomination})\n  {gettext('Receipt', lang)}: {receipt}"
            )
    body = gettext(
        "Your receipts for the votes you cast in the WSIS Prizes:\n\n{receipts}\n\n"
        "Check any of them at {link}",
        lang,
    ).format(
        receipts="\n\n".join(lines) or gettext("You have not voted yet.", lang),
        link=f"{svc.settings.base_url}/receipts",
    )
    async with svc.db.acquire() as conn:
        await mail.enqueue(
            conn, address.normalized, gettext("Your WSIS Prizes voting receipts", lang), body
        )
    return _sent_page(request, email=address.normalized, count=len(lines))


def _sent_page(
    request: Request,
    *,
    error: str = "",
    email: str = "",
    count: int = 0,
    typed: str = "",
    status: int = 200,
) -> Response:
    """The answer to "email me my receipts": sent, or what was wrong, the address kept."""
    context: dict[str, Any] = {"error": error, "email": email, "count": count, "typed": typed}
    return pages(request).render(request, "voting/receipts_sent.html", context, status=status)


class AccountInScope:
    """Every page shows who is signed in, whether or not its handler asked: for a GET of
    a page (not the API, not a static file) whose session names an account, the account
    is looked up (and checked against its session generation) before the handler runs.
    Sessions without an account, and so every voter's vote, pay nothing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and "uid" in scope.get("session", {})
            and not scope["path"].startswith(("/api/", "/static/"))
        ):
            await current_user(Request(scope))
        await self.app(scope, receive, send)


# Before the voting routes: `/vote/{code}` would take `/vote/as-account` otherwise.
routes = [
    Route("/vote/as-account", vote_as_account, methods=["POST"]),
    Route("/receipts/email", email_receipts, methods=["POST"]),
]
