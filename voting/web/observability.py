"""Pure ASGI middleware that sees every request: its id, its language, its metrics.

A thin adapter over web/policy.py (the vote's edge, web/edge.py, calls the same
functions). For each HTTP request it

- takes the `X-Request-ID` a proxy sent (when it is short and plain) or makes one, sends it
  back, and makes it the request id of every log line written while serving it;
- sets the language of the request (`?lang=`, the `lang` cookie, Accept-Language), so
  messages made deep in the rules come out in the visitor's language;
- records the request in the latency histogram and counter, by route template;
- writes one JSON access line (`voting.access`) when that logger is on.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..i18n import reset_language, use_language
from ..logs import request_id
from . import policy
from .policy import language

log = logging.getLogger(__name__)


def route_of(scope: Scope) -> str:
    """The route template that served the request ("/vote/{code}"), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    return "unmatched"


class Observability:
    APPLIES = ("request_id", "observe", "language")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = policy.request_id(policy.header(scope, b"x-request-id"))
        rid_token = request_id.set(rid)
        lang_token = use_language(language(scope))
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", rid.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            status = 500
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            raise
        finally:
            policy.observe(
                scope.get("method", "GET"),
                scope.get("path", ""),
                route_of(scope),
                status,
                time.perf_counter() - started,
                scope.get("client"),
            )
            reset_language(lang_token)
            request_id.reset(rid_token)
