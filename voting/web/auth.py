"""Sign-in by email link for nominators and staff; the role checks every page uses.

The link's GET only shows a confirm button and its POST signs in: mail security scanners
open links (and some submit forms) on the recipient's behalf. Each link is signed for its
purpose, expires after an hour, and works once.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from .. import accounts, mail
from ..accounts import User
from ..antifraud.config import DEFAULTS
from ..antifraud.refusals import record_refusal
from ..antifraud.signals import network_of
from ..antifraud.verification import MailLimits, VerificationLimiter, VerificationRefused
from ..emails import InvalidEmail, parse_email
from ..i18n import gettext
from ..security import USER_LINK
from .csrf import check_csrf, csrf_token
from .deps import client_ip, services
from .email_typo import email_question
from .links import Link
from .nextpath import safe_next
from .responses import ApiError
from .templating import language_of, pages

# At most this many sign-in links an hour to one mailbox, and from one network.
STAFF_LINK_LIMITS = MailLimits(DEFAULTS.verify_per_address, DEFAULTS.verify_per_network)


async def current_user(request: Request) -> User | None:
    """The signed-in staff member or nominator, or None.

    The session names the account's session generation at sign-in: once the account has
    moved on (sign-out, sign-out everywhere, a role change) the session, and every copy
    of its cookie, is signed out."""
    if "user" in request.scope:
        return request.scope["user"]  # type: ignore[no-any-return]
    uid = request.session.get("uid")
    user = None
    if isinstance(uid, int):
        async with services(request).db.acquire() as conn:
            user = await accounts.by_id(conn, uid)
        generation = request.session.get("gen")
        if user is None or type(generation) is not int or generation != user.session_generation:
            user = None
            request.session.pop("uid", None)
            request.session.pop("gen", None)
    request.scope["user"] = user
    return user


async def require_user(request: Request) -> User:
    user = await current_user(request)
    if user is None:
        raise ApiError(401, "not_signed_in", gettext("Sign in first."))
    return user


async def require_role(request: Request, role: str) -> User:
    user = await require_user(request)
    if not user.has(role):
        raise ApiError(403, "forbidden", gettext("This needs the {role} role.").format(role=role))
    return user


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def signin_form(request: Request) -> Response:
    return pages(request).render(
        request,
        "signin.html",
        {"next": safe_next(request.query_params.get("next")), "error": "", "email": ""},
    )


async def signin_request(request: Request) -> Response:
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    next_path = safe_next(form.get("next"))
    lang = language_of(request)
    typed = form.get("email", "")
    page = {"next": next_path, "email": typed, "error": ""}
    try:
        address = parse_email(typed)
    except InvalidEmail as exc:
        return pages(request).render(request, "signin.html", page | {"error": str(exc)}, status=422)
    # A domain one slip from a webmail provider's: asked once, the person chooses
    # (the form sends `as_typed` with the address they keep).
    question = email_question(form.items())
    if question is not None:
        return pages(request).render(request, "signin.html", page | {"question": question})
    svc = services(request)
    try:
        # The voters' rule (and its defaults), counted apart from the voters' links.
        await VerificationLimiter(
            svc.r, svc.settings.redis_prefix, kind="sl", secret=svc.settings.secret_key
        ).take(address, network_of(client_ip(request)), STAFF_LINK_LIMITS)
    except VerificationRefused as exc:
        await record_refusal(svc.db, client_ip(request), address.domain, exc.code, audience="staff")
        response = pages(request).render(
            request, "signin.html", page | {"error": exc.message}, status=exc.status
        )
        if exc.retry_after_s:
            response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    token = LINK.issue(request, {"email": address.normalized, "next": next_path})
    link = f"{svc.settings.base_url}/signin/confirm?token={quote(token)}"
    async with svc.db.acquire() as conn:
        await mail.enqueue(
            conn,
            address.normalized,
            gettext("Your sign-in link for the WSIS Prizes", lang),
            gettext(
                "Open this link within one hour to sign in to the WSIS Prizes:\n\n{link}\n\n"
                "If you did not ask for it, ignore this message.",
                lang,
            ).format(link=link),
        )
    return pages(request).render(request, "signin_sent.html", {"email": address.normalized})


LINK = Link(USER_LINK, frozenset({"email"}), again="/signin")


async def confirm_form(request: Request) -> Response:
    payload = await LINK.unused(request, request.query_params.get("token", ""))
    if isinstance(payload, Response):
        return payload
    return pages(request).render(
        request,
        "signin_confirm.html",
        {"token": request.query_params["token"], "email": payload["email"]},
    )


async def confirm(request: Request) -> Response:
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    token = form.get("token", "")
    payload = LINK.load(request, token)
    if isinstance(payload, str):
        return LINK.problem(request, payload)
    async with services(request).db.acquire() as conn, conn.transaction():
        if not await LINK.use(conn, payload):
            return LINK.problem(request, "used")
        user = await accounts.get_or_create(conn, payload["email"])
    # A fresh session on sign-in: nothing from before survives (session fixation).
    request.session.clear()
    request.session["uid"] = user.id
    request.session["gen"] = user.session_generation
    csrf_token(request)
    target = safe_next(payload.get("next"))
    if target == "/dashboard" and user.roles:
        # Staff land on their own desk: what needs doing now (voting/web/staff.py).
        target = "/staff"
    return RedirectResponse(target, status_code=303)


async def _end_sessions(request: Request) -> None:
    user = await current_user(request)
    if user is not None:
        async with services(request).db.acquire() as conn:
            await accounts.end_sessions(conn, user.id)
    request.session.clear()


async def signout(request: Request) -> Response:
    """Sign out; the account's generation moves on, so a copy of this cookie (or any
    other session of the account) no longer signs anyone in."""
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    await _end_sessions(request)
    return RedirectResponse("/", status_code=303)


async def signout_everywhere(request: Request) -> Response:
    """Sign the account out on every device, this one included."""
    form = await _form(request)
    check_csrf(request, form.get("csrf_token"))
    await require_user(request)
    await _end_sessions(request)
    return RedirectResponse("/signin", status_code=303)


routes = [
    Route("/signin", signin_form, methods=["GET"]),
    Route("/signin", signin_request, methods=["POST"]),
    Route("/signin/confirm", confirm_form, methods=["GET"]),
    Route("/signin/confirm", confirm, methods=["POST"]),
    Route("/signout", signout, methods=["POST"]),
    Route("/signout/everywhere", signout_everywhere, methods=["POST"]),
]
