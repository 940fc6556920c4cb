"""The session cookie of every request but the vote's edge: a thin adapter over
web/policy.py's SessionCodec, which the edge (web/edge.py) uses too.

The cookie is Starlette's (base64 of the session's JSON, signed with a timestamp, the
same flags), and the session is Starlette's `Session` dict, which notes when it was read
(`Vary: Cookie` then) and changed (`Set-Cookie` only then). The codec's signer remembers
the cookies it has verified: a voter sends the same one with every request, and its
HMAC is checked once (policy.RememberingSigner).
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.middleware.sessions import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import policy
from .policy import RememberingSigner, SessionCodec

__all__ = ["RememberingSigner", "Sessions"]


class Sessions:
    """SessionMiddleware's arguments and cookies, over the shared codec."""

    APPLIES = ("session",)

    def __init__(
        self,
        app: ASGIApp,
        secret_key: str,
        session_cookie: str = "session",
        max_age: int | None = 14 * 24 * 60 * 60,
        same_site: str = "lax",
        https_only: bool = False,
        **kwargs: Any,
    ) -> None:
        self.app = app
        self.codec = SessionCodec(
            secret_key, session_cookie, max_age, same_site=same_site, https_only=https_only
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        data = self.codec.decode(policy.header(scope, b"cookie"))
        scope["session"] = Session(data or {})
        was_empty = data is None

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                session: Session = scope["session"]
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                if session.accessed:
                    headers.add_vary_header("Cookie")
                if session.modified and session:
                    headers.append("Set-Cookie", self.codec.encode(session))
                elif session.modified and not was_empty:
                    headers.append("Set-Cookie", self.codec.clear())
            await send(message)

        await self.app(scope, receive, send_wrapper)
