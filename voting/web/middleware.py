"""Pure ASGI middleware: security headers and the request's size limits, thin adapters
over web/policy.py (which the vote's edge, web/edge.py, calls too).

Pure ASGI rather than BaseHTTPMiddleware: it adds no task per request.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import policy
from .policy import HSTS, SECURITY_HEADERS, Rejection

__all__ = ["HSTS", "SECURITY_HEADERS", "BodySizeLimit", "HeaderSizeLimit", "SecurityHeaders"]


class SecurityHeaders:
    APPLIES = ("security_headers",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = policy.security_headers(list(message.get("headers", [])), tls)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class HeaderSizeLimit:
    """Refuse a request whose headers (and target) together pass the limit, with 431,
    before anything reads them (no session cookie is unsigned, no handler runs), and a
    NUL character in the path or query with 400 (policy.header_limit)."""

    APPLIES = ("header_limit",)

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refused = policy.header_limit(scope, self.max_bytes)
            if refused is not None:
                await _reject(send, refused)
                return
        await self.app(scope, receive, send)


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """Refuse bodies over the limit with 413 before the handler reads them all."""

    APPLIES = ("body_limit",)

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = policy.body_limit(scope, self.max_bytes)
        if refused is not None:
            await _reject(send, refused)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _reject(send, policy.too_large(self.max_bytes))


async def _reject(send: Send, refused: Rejection) -> None:
    headers, body = refused.answer()
    await send({"type": "http.response.start", "status": refused.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
