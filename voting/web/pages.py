"""HTML pages of the foundation: the edition's home page and the development mailbox."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import edition_store
from ..i18n import gettext
from .auth import current_user, pages
from .deps import services
from .responses import ApiError


async def home(request: Request) -> Response:
    svc = services(request)
    async with svc.db.acquire() as conn:
        edition = await edition_store.current_edition(conn)
    now = svc.clock.now()
    current = edition.current_phase(now) if edition else None
    voting = edition.phase("voting") if edition else None
    return pages(request).render(
        request,
        "home.html",
        {
            "edition": edition,
            "now": now,
            "current": current,
            "voting": voting,
            "user": await current_user(request),
        },
    )


async def dev_mail(request: Request) -> Response:
    """Development only: the last messages the outbox holds, so a link can be clicked."""
    svc = services(request)
    if svc.settings.production:
        raise ApiError(404, "not_found", gettext("There is nothing at this address."))
    async with svc.db.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id, to_addr, subject, body, created_at, sent_at FROM outbox"
            " ORDER BY id DESC LIMIT 50"
        )
    return pages(request).render(request, "dev_mail.html", {"messages": rows})


routes = [
    Route("/", home, methods=["GET"]),
    Route("/dev/mail", dev_mail, methods=["GET"]),
]
