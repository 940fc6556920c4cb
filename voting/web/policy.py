"""What every HTTP request is put through, as plain functions.

Two transports call these: the middleware stack (web/middleware.py, web/observability.py,
web/sessions.py and the handlers' CSRF check in web/csrf.py, thin adapters each) for every
request, and the vote's one-pass edge (web/edge.py) for `POST /api/votes`. Each adapter
declares the policies it applies (`APPLIES`, names from `POLICIES`); a test holds the
edge's list equal to the stack's and to `POLICIES`, so a policy added here and to the
stack and forgotten in the edge fails the tests.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
from base64 import b64encode
from collections import OrderedDict
from http.cookies import SimpleCookie
from typing import Any, NamedTuple
from urllib.parse import parse_qs

import orjson
from itsdangerous import BadSignature, TimestampSigner
from starlette.types import Scope

from .. import metrics
from ..antifraud.signals import network_of
from ..compat.itsdangerous import unsign_fast
from ..compat.starlette import cookie_parser, session_payload
from ..i18n import LANGUAGES, negotiate
from ..security import pooled
from .numbers import whole_number

# Every policy, by name. The stack applies each of them to every request (through the
# middleware's and the CSRF check's APPLIES), the edge to every vote (Edge.APPLIES).
POLICIES = (
    "request_id",  # the X-Request-ID taken or made, sent back, in every log line
    "observe",  # the latency histogram, the request counter, the access line
    "language",  # ?lang=, the lang cookie, Accept-Language
    "security_headers",  # nosniff, CSP, frame and referrer policies, HSTS over TLS
    "header_limit",  # 431 past the headers' size, 400 for a NUL in the address
    "body_limit",  # 400 for a bad Content-Length, 413 past the body's size
    "session",  # the signed session cookie, read (and written when it changed)
    "csrf",  # the session's CSRF token in X-CSRF-Token (or the form)
)

# -- request id -------------------------------------------------------------------------------

SANE_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
_IDS_PER_DRAW = 64


def _draw_ids() -> list[str]:
    raw = secrets.token_hex(16 * _IDS_PER_DRAW)
    return [raw[i : i + 32] for i in range(0, len(raw), 32)]


# 32 hex digits (128 random bits) as token_hex(16) gave, without a urandom read (a system
# call) for every request.
_new_id = pooled(_draw_ids)


def request_id(incoming: str | None) -> str:
    """The id a proxy sent, when it is short and plain, else a new one (32 hex digits as
    uuid4().hex gave)."""
    return incoming if incoming and SANE_ID.fullmatch(incoming) else _new_id()


# -- metrics and the access line ---------------------------------------------------------------

access_log = logging.getLogger("voting.access")


def observe(method: str, path: str, route: str, status: int, elapsed: float, client: Any) -> None:
    """Count the request, by route template, and write its access line when that logger
    is on. The client is written as its network (/24, /48), never the full address."""
    metrics.request_done(method, route, status, elapsed)
    if access_log.isEnabledFor(logging.INFO):
        access_log.info(
            "%s %s %s",
            method,
            path,
            status,
            extra={
                "method": method,
                "path": path,
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 3),
                "client": network_of((client or ("", 0))[0]),
            },
        )


# -- language ---------------------------------------------------------------------------------


def header(scope: Scope, name: bytes) -> str | None:
    """The first header of that (lower-case) name, as Starlette's Headers.get takes it."""
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None


def language(scope: Scope) -> str:
    """The request's language: `?lang=`, else the `lang` cookie, else Accept-Language
    (the same choice as templating.language_of makes from a Request)."""
    query = scope.get("query_string", b"")
    if b"lang=" in query:
        chosen = parse_qs(query.decode("latin-1")).get("lang", [""])[0]
        if chosen in LANGUAGES:
            return chosen
    cookie = header(scope, b"cookie")
    if cookie and "lang=" in cookie:
        try:
            jar = SimpleCookie(cookie)
        except Exception:  # a malformed Cookie header must not fail the request
            jar = SimpleCookie()
        if "lang" in jar and jar["lang"].value in LANGUAGES:
            return jar["lang"].value
    return negotiate(header(scope, b"accept-language"))


# -- security headers -------------------------------------------------------------------------

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
    # Name no server software: granian adds `server: granian` to an answer that has no
    # Server header (it has no switch for it, unlike uvicorn's server_header=False).
    (b"server", b""),
]
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
_SECURITY_NAMES = frozenset(name for name, _ in SECURITY_HEADERS)


def security_headers(headers: list[tuple[bytes, bytes]], tls: bool) -> list[tuple[bytes, bytes]]:
    """`headers` with each security header the answer did not set itself, and HSTS when
    the request came over TLS (directly, or behind a proxy that says so)."""
    for name, _ in headers:
        if name in _SECURITY_NAMES or name.lower() in _SECURITY_NAMES:
            present = {name.lower() for name, _ in headers}
            headers.extend(pair for pair in SECURITY_HEADERS if pair[0] not in present)
            break
    else:  # (the usual case: the answer set none of them)
        headers.extend(SECURITY_HEADERS)
    if tls:
        headers.append(HSTS)
    return headers


# -- size limits ------------------------------------------------------------------------------


class Rejection(NamedTuple):
    """A request refused before anything reads it: status, code, message (in English:
    no language is chosen yet, and no handler ran)."""

    status: int
    code: str
    message: str

    def answer(self) -> tuple[list[tuple[bytes, bytes]], bytes]:
        """(headers, body) of the refusal, the connection closed after it."""
        body = orjson.dumps({"error": {"code": self.code, "message": self.message}})
        return [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ], body


def headers_size(scope: Scope) -> int:
    """What the headers weigh, as header_limit counts them (a name, a value, 4 more)."""
    size = 0
    for name, value in scope.get("headers", []):
        size += len(name) + len(value) + 4
    return size


def header_limit(scope: Scope, max_bytes: int, size: int | None = None) -> Rejection | None:
    """431 when the headers (`size`, from headers_size when the caller has not counted
    them in its own pass) and the target together pass the limit (the server's parser
    bounds one line; this bounds what a client can make every worker hold); 400 for a
    NUL in the path or query, which no PostgreSQL text can hold."""
    raw_path = scope.get("raw_path") or b""
    query = scope.get("query_string") or b""
    size = len(raw_path) + len(query) + (headers_size(scope) if size is None else size)
    if size > max_bytes:
        return Rejection(
            431, "headers_too_large", f"the request headers are larger than {max_bytes} bytes"
        )
    if b"%00" in raw_path or b"\x00" in raw_path or b"%00" in query or b"\x00" in query:
        return Rejection(400, "bad_request", "the address contains a NUL character (%00)")
    return None


def too_large(max_bytes: int) -> Rejection:
    return Rejection(413, "too_large", f"the request body is larger than {max_bytes} bytes")


def body_limit(scope: Scope, max_bytes: int) -> Rejection | None:
    """What a declared Content-Length says before the body is read: 400 when it is no
    number, 413 when it passes the limit. (The body as read is counted by the reader.)"""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return declared_limit(value, max_bytes)
    return None


def declared_limit(value: bytes | None, max_bytes: int) -> Rejection | None:
    """body_limit for the first Content-Length header's value (None: there is none),
    for a caller that took it in its own pass over the headers (the edge)."""
    if value is None:
        return None
    declared = whole_number(value)
    if declared is None and not value.isdigit():  # (bytes: ASCII digits only)
        return Rejection(400, "bad_request", "Content-Length is not a number")
    if declared is None or declared > max_bytes:  # None: past bigint
        return too_large(max_bytes)
    return None


# -- the session cookie -----------------------------------------------------------------------


class RememberingSigner(TimestampSigner):
    """A TimestampSigner whose `unsign` skips the HMAC for a value it verified before.

    A voter sends the same signed cookie with every vote: the same bytes under the same
    key verify the same way, so only the age is checked again, exactly as itsdangerous
    checks it. A cookie seen for the first time is checked by the same steps as
    itsdangerous' in one function (`unsign_fast`, voting/compat/itsdangerous.py);
    whatever that would not accept goes to itsdangerous itself, which raises its own
    error."""

    def __init__(self, secret_key: str, *, remember: int = 20_000) -> None:
        super().__init__(secret_key)
        self.remember = remember
        # signed value -> (value, signing time in whole seconds), oldest first. An
        # OrderedDict: dropping a plain dict's first key again and again costs a scan past
        # every key dropped before (9 us a vote once full, against 0.25 us here).
        self._verified: OrderedDict[bytes, tuple[bytes, int]] = OrderedDict()
        self._derived: dict[bytes | None, bytes] = {}

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        # itsdangerous derives the HMAC key from the secret anew for every cookie: a
        # digest of constant inputs, kept. (Only the configured secrets come here.)
        key = secret_key.encode() if isinstance(secret_key, str) else secret_key
        derived = self._derived.get(key)
        if derived is None:
            derived = self._derived[key] = super().derive_key(secret_key)
        return derived

    def unsign(  # type: ignore[override]
        self, signed_value: str | bytes, max_age: int | None = None, return_timestamp: bool = False
    ) -> Any:
        key = signed_value.encode() if isinstance(signed_value, str) else bytes(signed_value)
        hit = self._verified.get(key)
        if hit is not None and not return_timestamp:
            value, signed_at = hit
            age = self.get_timestamp() - signed_at
            # itsdangerous' own rule: older than max_age or from the future is expired;
            # let it raise its own error for those.
            if max_age is None or 0 <= age <= max_age:
                return value
        checked = None if return_timestamp else unsign_fast(self, key, max_age)
        if checked is None:  # refused, or anything unusual: itsdangerous decides, and says why
            value, stamp = super().unsign(key, max_age=max_age, return_timestamp=True)
            checked = (value, int(stamp.timestamp()))
        if len(self._verified) >= self.remember:
            self._verified.popitem(last=False)
        self._verified[key] = checked
        return (
            (checked[0], self.timestamp_to_datetime(checked[1])) if return_timestamp else checked[0]
        )


class SessionCodec:
    """The session cookie as Starlette's SessionMiddleware writes it (base64 of the
    session's JSON, signed with a timestamp), read and written by both transports."""

    def __init__(
        self,
        secret_key: str,
        cookie: str,
        max_age: int | None,
        *,
        path: str = "/",
        same_site: str = "lax",
        https_only: bool = False,
    ) -> None:
        self.signer = RememberingSigner(str(secret_key))
        self.cookie = cookie
        self.max_age = max_age
        self.path = path
        self.flags = "httponly; samesite=" + same_site + ("; secure" if https_only else "")

    def decode(self, cookie_header: str | None) -> dict[str, Any] | None:
        """The session the Cookie header carries; None when there is none, or its
        signature is wrong or expired (a fresh, empty session then)."""
        if not cookie_header:
            return None
        signed = cookie_parser(cookie_header).get(self.cookie)
        if signed is None:
            return None
        try:
            raw = self.signer.unsign(signed.encode("utf-8"), max_age=self.max_age)
        except BadSignature:
            return None
        session = session_payload(raw)
        return session if isinstance(session, dict) else None

    def encode(self, session: dict[str, Any]) -> str:
        """The Set-Cookie value that stores `session`."""
        data = self.signer.sign(b64encode(json.dumps(session).encode("utf-8")))
        max_age = f"Max-Age={self.max_age}; " if self.max_age is not None else ""
        return f"{self.cookie}={data.decode('utf-8')}; path={self.path}; {max_age}{self.flags}"

    def clear(self) -> str:
        """The Set-Cookie value that deletes the session cookie."""
        return (
            f"{self.cookie}=null; path={self.path}; "
            f"expires=Thu, 01 Jan 1970 00:00:00 GMT; {self.flags}"
        )


# -- CSRF -------------------------------------------------------------------------------------

CSRF_HEADER = "x-csrf-token"


def csrf_ok(expected: Any, given: str | bytes | None) -> bool:
    """Whether the token sent is the session's. As bytes: compare_digest refuses text
    with non-ASCII characters (a TypeError, a 500)."""
    if not expected or not given:
        return False
    sent = given if isinstance(given, bytes) else str(given).encode()
    return hmac.compare_digest(str(expected).encode(), sent)
