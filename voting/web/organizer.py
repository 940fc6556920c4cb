"""The organizers' voting window page: the calendar, the extensions on record, and the
form that extends the voting. Thin: the extension is voting/contest/actions.py's, the same
function `voting edition extend` calls.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..contest.actions import ExtensionRefused, extend_voting, parse_wall_time
from ..i18n import gettext
from .auth import require_role
from .context import runtime, snapshot
from .csrf import check_csrf
from .deps import services
from .templating import _geneva, language_of, pages


async def organizer_voting(request: Request) -> Response:
    await require_role(request, "organizer")
    return await _page(request)


async def _page(
    request: Request, *, error: str = "", done: str = "", status: int = 200
) -> Response:
    snap = await snapshot(request)
    async with services(request).db.acquire() as conn:
        history = await conn.fetch(
            "SELECT at, actor, reason, detail FROM audit_log"
            " WHERE edition=$1 AND action='voting.extend' ORDER BY id DESC",
            snap.edition.slug,
        )
    return pages(request).render(
        request,
        "voting/organizer.html",
        {
            "edition": snap.edition,
            "voting": snap.edition.phase("voting"),
            "now": services(request).clock.now(),
            "history": history,
            "error": error,
            "done": done,
        },
        status=status,
    )


async def organizer_extend(request: Request) -> Response:
    user = await require_role(request, "organizer")
    form = await request.form()
    check_csrf(request, _str(form.get("csrf_token")))
    snap = await snapshot(request)
    svc = services(request)
    rt = runtime(request)
    try:
        new_close = parse_wall_time(_str(form.get("new_close")))
        async with svc.db.acquire() as conn:
            done = await extend_voting(
                conn,
                rt.ballot,
                snap.edition.slug,
                new_close,
                clock=svc.clock,
                actor=f"user:{user.email}",
                reason=_str(form.get("reason")).strip(),
                catalog=rt.catalog,
            )
    except ExtensionRefused as exc:
        return await _page(request, error=exc.text(language_of(request)), status=exc.status)
    return await _page(
        request,
        done=gettext("Voting now closes on {when}.").format(when=_geneva(done.new_close)),
    )


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


routes = [
    Route("/organizer/voting", organizer_voting, methods=["GET"]),
    Route("/organizer/voting/extend", organizer_extend, methods=["POST"]),
]
