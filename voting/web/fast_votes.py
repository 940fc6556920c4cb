"""POST /api/votes straight to its handler, past Starlette's router and exception layers.

The vote is the one request that comes by the thousand per second. Starlette matches it
against every route of the site in order and wraps it in two exception-handling layers
before the handler runs; profiles put that near a tenth of the vote's time. This pure
ASGI middleware sits innermost, after every other middleware (so sessions, the body-size
limit, security headers and observability apply to the vote as to any request), and calls
the same handler with the same exception handlers the application registered: the answer
is the one the router would have given, byte for byte (tests compare them).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..compat.starlette import handler_for, set_body

PATH = "/api/votes"


class VoteFastPath:
    def __init__(self, app: ASGIApp, route: Route) -> None:
        self.app = app
        self.route = route
        self.endpoint = route.endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        # What the router would have put in the scope (observability labels by route).
        scope["route"] = self.route
        scope["endpoint"] = self.endpoint
        scope["path_params"] = {}
        request = Request(scope, receive, send)
        # The body read here, by a plain loop: Starlette's Request.body() goes through an
        # async generator (6% of the handler's time) and returns what is set here.
        # Errors pass up as they would from the handler (413 from BodySizeLimit).
        set_body(request, await _read_body(receive))
        try:
            response = await self.endpoint(request)
        except Exception as exc:
            handler = handler_for(scope["app"].exception_handlers, exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


def vote_route(routes: list[Any]) -> Route:
    for route in routes:
        if isinstance(route, Route) and route.path == PATH and "POST" in (route.methods or ()):
            return route
    raise LookupError(f"no POST {PATH} route")
