"""Starlette internals the session codec relies on (web/policy.py, read by the vote's
edge and by the Sessions middleware alike).

Checked against TESTED (pinned in pyproject.toml); tests/test_compat.py fails when
Starlette parses cookies or writes the session cookie otherwise.
"""

from __future__ import annotations

from base64 import b64decode
from typing import Any

import orjson
from starlette.requests import cookie_parser

TESTED = ">=1.0,<1.11"

__all__ = ["TESTED", "cookie_parser", "session_payload"]

# cookie_parser (starlette.requests): how Starlette itself reads a Cookie header, so the
# session codec finds the session cookie exactly where SessionMiddleware would. Undocumented.


def session_payload(value: bytes) -> Any:
    """The session dict inside a session cookie's verified value: SessionMiddleware
    writes base64 of the session's JSON, then signs it."""
    return orjson.loads(b64decode(value))
