"""create_app(settings): routes, middleware and the lifespan (pools, background tasks)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from . import mail, metrics, operations, privacy
from .antifraud.minimise import address_key
from .clock import Clock, SystemClock
from .errors import Refusal
from .i18n import gettext
from .security import SESSION_MAX_AGE, Tokens
from .services import Services
from .settings import Settings, load_settings
from .web import (
    api,
    auth,
    experts,
    fraud,
    front,
    mobilisations,
    nominations,
    organizer,
    outages,
    pages,
    privacy_pages,
    results,
    voting,
)
from .web import ops as ops_web
from .web import rehearsal as rehearsal_web
from .web import staff as staff_web
from .web.edge import Edge
from .web.middleware import BodySizeLimit, HeaderSizeLimit, SecurityHeaders
from .web.observability import Observability
from .web.responses import ApiError, error_response, refusal_response
from .web.sessions import Sessions
from .web.templating import Pages, language_of

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "web" / "static"
SESSION_COOKIE = "wsis_session"

# Background tasks other modules add: each gets the Services and runs until cancelled.
BackgroundTask = Callable[[Services], Awaitable[None]]


async def stop_tasks(tasks: list[asyncio.Task[Any]], grace: float = 5.0) -> None:
    """Cancel the background tasks and wait for them, for at most `grace` seconds.

    One cancel is not always enough: a library's asyncio.wait_for can drop a cancellation
    that races with its own result (Python 3.11), and the flusher then loops on as if
    nothing happened, so a worker never finished its SIGTERM. Cancel again until they end.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    pending = set(tasks)
    while pending and loop.time() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.2)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: an error while stopping is not worth a traceback
    if pending:
        log.error("background tasks still running after %.0f s: %s", grace, pending)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get(
        "accept", ""
    )


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    background: bool | None = None,
    extra_tasks: list[BackgroundTask] | None = None,
) -> Starlette:
    settings = settings or load_settings()
    services = Services(settings=settings, clock=clock or SystemClock())
    run_background = settings.background_tasks if background is None else background
    tasks_to_run: list[BackgroundTask] = [
        lambda s: mail.sender_loop(s.db, s.settings),
        operations.flusher_task,
        operations.fraud_scan_task,
        # The purge minimises rows stored before 0020 too: under the addresses' key.
        lambda s: privacy.purge_task(s.db, address_key(s.settings.secret_key)),
        *(extra_tasks or []),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await services.open()
        await operations.start_checks(services)
        running: list[asyncio.Task[Any]] = []
        if run_background:
            running = [asyncio.create_task(task(services)) for task in tasks_to_run]
        try:
            yield
        finally:
            await stop_tasks(running)
            await services.close()
            metrics.flush()  # the counts of the last half second

    async def refused(request: Request, exc: Exception) -> Response:
        # Every refusal, a domain rule's or the HTTP layer's own, worded here, once.
        assert isinstance(exc, Refusal)
        lang = language_of(request)
        if _wants_json(request):
            return refusal_response(exc, lang)
        worded = isinstance(exc, ApiError) and exc.fields_worded
        page = app.state.pages.render(
            request,
            "error.html",
            {
                "status": exc.status,
                "message": exc.text(lang),
                "fields": exc.fields if worded else {},
            },
            exc.status,
        )
        page.headers.update(exc.headers or {})  # Retry-After, as the JSON answer has
        return page

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        messages = {
            404: gettext("There is nothing at this address."),
            405: gettext("This address does not accept that method."),
        }
        message = messages.get(exc.status_code, str(exc.detail))
        # The exception's headers stay: a 405's Allow (RFC 9110 requires it), ...
        if _wants_json(request):
            return error_response(
                exc.status_code,
                "not_found" if exc.status_code == 404 else "http_error",
                message,
                headers=exc.headers,
            )
        page = app.state.pages.render(
            request, "error.html", {"status": exc.status_code, "message": message}, exc.status_code
        )
        page.headers.update(exc.headers or {})
        return page

    routes: list[BaseRoute] = [
        *api.routes,
        *auth.routes,
        *front.routes,
        *organizer.routes,
        *voting.routes,
        *fraud.routes,
        *mobilisations.routes,
        *nominations.routes,
        *experts.routes,
        *staff_web.routes,
        *results.routes,
        *rehearsal_web.routes,
        *ops_web.routes,
        *privacy_pages.routes,
        *pages.routes,
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    middleware = [
        # POST /api/votes in one pass, every answer to it, by the same policies as the
        # middleware below apply to every other request (web/edge.py, web/policy.py).
        Middleware(
            Edge,
            secret_key=settings.secret_key,
            session_cookie=SESSION_COOKIE,
            max_age=SESSION_MAX_AGE,
            max_header_bytes=settings.max_header_bytes,
            max_body_bytes=settings.max_body_bytes,
            trusted_proxies=settings.forwarded_allow_ips if settings.trust_proxy_headers else None,
        ),
        # Its latency and request id cover everything the others do.
        Middleware(Observability),
        Middleware(SecurityHeaders),
        Middleware(HeaderSizeLimit, max_bytes=settings.max_header_bytes),
        Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes),
        Middleware(
            Sessions,  # Starlette's, verifying each distinct cookie once (web/sessions.py)
            secret_key=settings.secret_key,
            session_cookie=SESSION_COOKIE,
            max_age=SESSION_MAX_AGE,
            same_site="lax",
            https_only=settings.production,
        ),
        # The signed-in account of a page's session, for its header (web/front.py).
        Middleware(front.AccountInScope),
    ]
    if settings.trust_proxy_headers:
        from .web.proxy import ProxyHeaders

        # Behind a load balancer: the client's address and the scheme (https, so HSTS) come
        # from X-Forwarded-For/-Proto, believed only from VOTING_FORWARDED_ALLOW_IPS.
        # (The vote's edge, outside it, applies the same change itself.)
        middleware.insert(1, Middleware(ProxyHeaders, trusted_hosts=settings.forwarded_allow_ips))
    app = Engine(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            Refusal: refused,
            HTTPException: http_error,
            **dict.fromkeys(outages.OUTAGES, outages.unavailable),
        },
    )
    app.state.services = services
    app.state.tokens = Tokens(settings.secret_key, services.clock)
    app.state.pages = Pages()
    return app


class Engine(Starlette):
    """Starlette, with the vote's edge (web/edge.py) outside even the error middleware
    Starlette puts first: a vote crosses no layer but the edge (each layer is one more
    coroutine frame every await of the vote passes through), and the edge answers its
    own faults. Every other request meets the stack as Starlette builds it."""

    def build_middleware_stack(self) -> ASGIApp:
        outer = [m for m in self.user_middleware if m.cls is Edge]
        declared = self.user_middleware
        self.user_middleware = [m for m in declared if m.cls is not Edge]
        try:
            app = super().build_middleware_stack()
        finally:
            self.user_middleware = declared
        for cls, args, kwargs in reversed(outer):
            app = cls(app, *args, **kwargs)
        return app


def app_from_env() -> Starlette:
    """The factory uvicorn's workers call: settings come from the environment."""
    return create_app(load_settings())
