"""A PostgreSQL or Redis outage is a 503 with Retry-After, never a 500.

The vote itself already answers Redis trouble with 503 (voting/web/voting.py `cast`); this
covers every other handler: a page or API call that needs a server that is down or
restarting says so, and the load balancer and the voter know to come back.
"""

from __future__ import annotations

import logging

import asyncpg
import redis.exceptions
from starlette.requests import Request
from starlette.responses import Response

from ..i18n import gettext
from .responses import error_response
from .templating import language_of

log = logging.getLogger(__name__)

# What a lost or refused connection looks like: asyncpg raises OSError subclasses when it
# cannot connect (a refused TCP port, a missing Unix socket while PostgreSQL restarts) and
# TimeoutError when the pool cannot hand out a connection in time.
OUTAGES: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    OSError,
)
RETRY_AFTER = "5"


async def unavailable(request: Request, exc: Exception) -> Response:
    log.warning("%s %s: a server is unavailable: %r", request.method, request.url.path, exc)
    message = gettext(
        "The service is briefly unavailable. Nothing was changed; try again in a moment.",
        language_of(request),
    )
    headers = {"Retry-After": RETRY_AFTER}
    wants_json = request.url.path.startswith("/api/") or "application/json" in (
        request.headers.get("accept", "")
    )
    if wants_json:
        return error_response(503, "unavailable", message, headers=headers)
    response = request.app.state.pages.render(
        request, "error.html", {"status": 503, "message": message}, 503
    )
    response.headers.update(headers)
    return response  # type: ignore[no-any-return]
