"""Starlette internals the vote's fast transport relies on.

Checked against TESTED (pinned in pyproject.toml); tests/test_compat.py fails when
Starlette stores a request's body, looks up exception handlers or writes the session
cookie otherwise.
"""

from __future__ import annotations

from base64 import b64decode
from typing import Any

import orjson
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request, cookie_parser

TESTED = ">=1.0,<1.11"

__all__ = [
    "TESTED",
    "cookie_parser",
    "handler_for",
    "session_payload",
    "set_body",
    "use_signer",
]

# cookie_parser (starlette.requests): how Starlette itself reads a Cookie header, so the
# vote front finds the session cookie exactly where SessionMiddleware would. Undocumented.


def set_body(request: Request, body: bytes) -> None:
    """Give `request` a body read outside it: `await request.body()` (and `.json()`,
    `.form()`) then return it, and its stream counts as consumed, as after Starlette read
    it itself. (Request.body() reads through an async generator: 6% of the vote handler's
    time.)"""
    request._body = body
    request._stream_consumed = True


def handler_for(handlers: dict[Any, Any], exc: Exception) -> Any:
    """The registered handler for the exception's class or its nearest base, as
    Starlette's ExceptionMiddleware looks it up (starlette._exception_handler)."""
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None


def use_signer(middleware: SessionMiddleware, signer: Any) -> None:
    """Make SessionMiddleware check and sign its cookies with `signer` (an itsdangerous
    TimestampSigner or one answering as it does): it keeps the one it builds in its
    undocumented `signer` attribute and calls its `unsign` and `sign`."""
    middleware.signer = signer


def session_payload(value: bytes) -> Any:
    """The session dict inside a session cookie's verified value: SessionMiddleware
    writes base64 of the session's JSON, then signs it."""
    return orjson.loads(b64decode(value))
