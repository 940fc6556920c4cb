"""Pure ASGI middleware: request size limit and security headers.

Pure ASGI rather than BaseHTTPMiddleware: it adds no task per request on the hot path.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .numbers import whole_number

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
    ),
    (b"cross-origin-opener-policy", b"same-origin"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # HSTS only means something over TLS (directly, or behind a proxy that says so).
        tls = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in SECURITY_HEADERS:
                    if name not in present:
                        headers.append((name, value))
                if tls:
                    headers.append(HSTS)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class HeaderSizeLimit:
    """Refuse a request whose headers (and target) together pass the limit, with 431,
    before anything reads them: no session cookie is unsigned, no handler runs. The
    server's own parser bounds a single line; this bounds the total a client can make
    every worker hold and parse. A NUL character (%00) in the path or query is refused
    here too, with 400: PostgreSQL text cannot hold one, and a handler that passed it on
    would answer 500."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
            for name, value in scope.get("headers", []):
                size += len(name) + len(value) + 4
            if size > self.max_bytes:
                await _reject(
                    send,
                    431,
                    "headers_too_large",
                    f"the request headers are larger than {self.max_bytes} bytes",
                )
                return
            target = (scope.get("raw_path") or b"") + b"?" + (scope.get("query_string") or b"")
            if b"%00" in target or b"\x00" in target:
                await _reject(
                    send, 400, "bad_request", "the address contains a NUL character (%00)"
                )
                return
        await self.app(scope, receive, send)


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """Refuse bodies over the limit with 413 before the handler reads them all."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                declared = whole_number(value)
                if declared is None and not value.isdigit():  # (bytes: ASCII digits only)
                    await _reject(send, 400, "bad_request", "Content-Length is not a number")
                    return
                if declared is None or declared > self.max_bytes:  # None: past bigint
                    await _reject(send, 413, "too_large", self._message())
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
                await _reject(send, 413, "too_large", self._message())

    def _message(self) -> str:
        return f"the request body is larger than {self.max_bytes} bytes"


async def _reject(send: Send, status: int, code: str, message: str) -> None:
    body = orjson.dumps({"error": {"code": code, "message": message}})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
