"""HTML pages of the foundation: the edition's home page and the development mailbox."""

from __future__ import annotations

import ipaddress
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import edition_store
from ..i18n import gettext
from ..tally import publication as pub
from ..tally.results import public_view
from .auth import current_user, pages
from .deps import client_ip, services
from .responses import ApiError


async def home(request: Request) -> Response:
    """The front door. It leads with what a visitor can do now: vote (with the time
    left), wait for the results (and when), or read the winners once published."""
    svc = services(request)
    winners: list[dict[str, Any]] | None = None
    async with svc.db.acquire() as conn:
        edition = await edition_store.current_edition(conn)
        if edition is not None:
            edition_id = await edition_store.edition_id(conn, edition.slug)
            publication = (
                await pub.get_publication(conn, edition_id) if edition_id is not None else None
            )
            if publication is not None:
                winners = [
                    {
                        "code": c["code"],
                        "name": c["name"],
                        "winners": [e for e in c["entries"] if e.get("winner")],
                    }
                    for c in public_view(publication.results)["categories"]
                ]
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
            "results_phase": edition.phase("results") if edition else None,
            "winners": winners,
            "user": await current_user(request),
        },
    )


def is_loopback(host: str) -> bool:
    """127.0.0.0/8 or ::1 (also as ::ffff:127.x.y.z); False for anything else or no address.
    The address is the one the app takes as the client's: behind trusted proxies, the
    proxied client's (ProxyHeaders), never the proxy's own."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


async def dev_mail(request: Request) -> Response:
    """Development only: the last messages the outbox holds, so a link can be clicked."""
    svc = services(request)
    if svc.settings.production or not is_loopback(client_ip(request)):
        # Links in it sign people in: only for whoever sits at this machine, even when a
        # development server listens beyond loopback.
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
