"""`POST /api/votes`, answered in one pass: every reply, accepted or refused.

The vote is the request that comes by the thousand per second. Through the middleware
stack it would cross six layers (request id and metrics, security headers, the size
limits, the session cookie, the router) and Starlette's Request and Response objects;
`Edge`, outside every other layer (Starlette's own error middleware included, see
voting/app.py `Engine`), applies the same policies (web/policy.py, the functions the
stack's middleware are adapters over) in a single pass, takes the client's address and
scheme from the proxy headers by the proxy middleware's own function (web/proxy.py
`ProxyHeaders.apply`) when the engine is behind one, and calls the vote's rules
(voting/ballots/casting.py) for the rest:

    limits -> session -> voter? -> CSRF -> body -> read_vote -> cast -> answer

Every answer is written here: 202 with the receipt, 401 (no voter), 403 (CSRF, closed),
400/422 (the body), 404 (no such nomination), 409 (already voted, with the receipt),
413 and 431 (the limits), 428 (a challenge to solve), 429 (rate limited), 503 (Redis or
PostgreSQL away), and a JSON 500 for a fault of ours (logged). Any other request goes on
to the stack.

The route `POST /api/votes` stays registered (the OpenAPI document and the router know
it) and points at `vote_endpoint`, the same reply without the policies, which the stack
then applies: an application built without the Edge middleware answers a vote through
the stack with the same bytes (tests/web/test_edge_stack.py compares the two).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from ..ballots.casting import Casting, Signals, VoteAccepted, VoteRefusal, answer, read_vote
from ..errors import Refusal
from ..i18n import N_
from ..logs import request_id
from ..voters import Voter
from . import policy
from .context import runtime_of
from .outages import OUTAGES, RETRY_AFTER
from .proxy import ProxyHeaders

log = logging.getLogger(__name__)

PATH = "/api/votes"

Headers = list[tuple[bytes, bytes]]


class ClientGone(Exception):
    """The client left before its body was all sent: nobody to answer."""


class _TooLarge(Exception):
    """The body passed its limit while it was read: a 413."""


class Edge:
    """Middleware: `POST /api/votes` answered here, everything else passed on."""

    # Every policy of web/policy.py, each applied below (tests/web/test_edge.py holds this
    # equal to policy.POLICIES and to what the stack applies).
    APPLIES = (
        "request_id",
        "observe",
        "language",
        "security_headers",
        "header_limit",
        "body_limit",
        "session",
        "csrf",
    )

    def __init__(
        self,
        app: ASGIApp,
        *,
        secret_key: str,
        session_cookie: str,
        max_age: int,
        max_header_bytes: int,
        max_body_bytes: int,
        trusted_proxies: list[str] | str | None = None,
    ) -> None:
        self.app = app
        # Behind a load balancer (VOTING_TRUST_PROXY_HEADERS): a ProxyHeaders of its own
        # (the class the stack's proxy middleware is, same trusted list), whose change
        # (`apply`) the vote takes; its `app` is never called from here.
        self.proxy = ProxyHeaders(app, trusted_proxies) if trusted_proxies is not None else None
        # The vote never changes the session: the codec only reads it here.
        self.codec = policy.SessionCodec(secret_key, session_cookie, max_age)
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self._casting: Casting | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        if self.proxy is not None:
            self.proxy.apply(scope)
        # One pass over the headers, taking the first of each as Starlette's Headers.get
        # (the first Content-Length is body_limit's) and weighing them as
        # policy.header_limit does.
        first: dict[bytes, bytes] = {}
        size = 0
        for name, value in scope["headers"]:
            size += len(name) + len(value) + 4
            if name not in first:
                first[name] = value
        incoming = first.get(b"x-request-id")
        rid = policy.request_id(incoming.decode("latin-1") if incoming is not None else None)
        rid_token = request_id.set(rid)
        status, route = 500, PATH
        sending = False  # from the first send on, a fault is the server's to answer
        try:
            over = policy.header_limit(scope, self.max_header_bytes, size) or policy.declared_limit(
                first.get(b"content-length"), self.max_body_bytes
            )
            if over is not None:
                # Refused before the router would have matched a route (as the stack counts).
                route = "unmatched"
                headers, body = over.answer()
                sending = True
                status = await _send(scope, send, over.status, headers, body, rid)
                return
            raw = first.get(b"cookie")
            session = self.codec.decode(raw.decode("latin-1") if raw is not None else None)
            casting = self._casting
            if casting is None:
                casting = self._casting = runtime_of(scope["app"]).casting
            try:
                status, headers, body = await reply(
                    casting,
                    scope,
                    receive,
                    session or {},
                    first.get(b"x-csrf-token"),
                    first,
                    self.max_body_bytes,
                )
            except _TooLarge:
                headers, body = policy.too_large(self.max_body_bytes).answer()
                sending = True
                status = await _send(scope, send, 413, headers, body, rid)
                return
            except ClientGone:
                return
            headers.append((b"vary", b"Cookie"))  # the session was read
            sending = True
            status = await _send(scope, send, status, headers, body, rid)
        except Exception:
            log.exception("unhandled error on POST %s", PATH)
            if sending:
                raise  # the answer may have begun: the server ends the connection
            # No error middleware is outside the edge: a fault of ours before the answer
            # is answered in JSON (with nothing said of the vote that cannot be known).
            headers, body = refused(FAULT, policy.language(scope))[1:]
            status = await _send(scope, send, 500, headers, body, rid)
        finally:
            policy.observe(
                "POST", PATH, route, status, time.perf_counter() - started, scope.get("client")
            )
            request_id.reset(rid_token)


async def _send(
    scope: Scope, send: Send, status: int, headers: Headers, body: bytes, rid: str
) -> int:
    """Write the answer with the headers the stack's middleware add on its way out, in
    their order; the status the metrics record (500 until the start is sent)."""
    headers = policy.security_headers(headers, scope.get("scheme") == "https")
    headers.append((b"x-request-id", rid.encode("latin-1")))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return status


class VoteEndpoint:
    """The route's ASGI endpoint: the same reply, the policies left to the stack (its
    middleware read the session, count the request, add the headers)."""

    def __init__(self) -> None:
        self.__name__ = "vote_endpoint"  # as a handler function is named (route listings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        session = scope["session"]
        session.mark_accessed()  # as request.session does: Vary: Cookie
        first: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name not in first:
                first[name] = value
        try:
            status, headers, body = await reply(
                runtime_of(scope["app"]).casting,
                scope,
                receive,
                session,
                first.get(b"x-csrf-token"),
                first,
                None,  # BodySizeLimit counts the body as it comes
            )
        except ClientGone:
            return
        # (Any other exception goes to the stack: its body limit answers its own 413
        # from inside `receive`, and Starlette's error middleware any fault of ours.)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


vote_endpoint = VoteEndpoint()


async def reply(
    casting: Casting,
    scope: Scope,
    receive: Receive,
    session: dict[str, Any],
    csrf: bytes | None,
    first: dict[bytes, bytes],
    max_body: int | None,
) -> tuple[int, Headers, bytes]:
    """(status, headers, body) of the vote's answer, from casting's rules. The language
    (policy.language) is chosen only for an answer with words in it: a 202 has none."""
    try:
        voter = Voter.from_session(session.get("voter"))
        if voter is None:
            raise VoteRefusal(401, "not_signed_in", N_("Confirm your email address before voting."))
        if not policy.csrf_ok(session.get("csrf"), csrf):
            raise VoteRefusal(
                403,
                "csrf",
                N_(
                    "The form has expired or did not come from this site. "
                    "Reload the page and try again."
                ),
            )
        vote = read_vote(await _read_body(receive, max_body))
        client = scope.get("client")
        signals = Signals(
            client[0] if client else "",
            first.get(b"user-agent", b"").decode("latin-1"),
            bool(first.get(b"accept-language")),
            bool(first.get(b"sec-fetch-site") or first.get(b"sec-fetch-mode")),
        )
        result = answer(await casting.cast(voter, vote, signals))
    except Refusal as refusal:
        return refused(refusal, policy.language(scope))
    except OUTAGES as exc:
        # PostgreSQL or Redis away where casting does not say more (the catalog's first
        # read): what web/outages.py answers for every other handler.
        log.warning("POST %s: a server is unavailable: %r", PATH, exc)
        return refused(
            VoteRefusal(
                503,
                "unavailable",
                N_(
                    "The service is briefly unavailable. Nothing was changed; try again in a"
                    " moment."
                ),
                headers={"Retry-After": RETRY_AFTER},
            ),
            policy.language(scope),
        )
    if isinstance(result, VoteAccepted):
        body = result.json()
        return 202, [(b"content-length", b"%d" % len(body)), (b"content-type", JSON_TYPE)], body
    return refused(result, policy.language(scope))


JSON_TYPE = b"application/json"
# A fault of ours on the vote's path: whether the script ran is not known here.
FAULT = Refusal(
    500,
    "internal_error",
    N_(
        "Something went wrong on our side and your vote may or may not have been recorded."
        " Send it again: that is safe, since you have one vote per category; if it was"
        " recorded, you will be shown its receipt."
    ),
)


def refused(refusal: Refusal, lang: str) -> tuple[int, Headers, bytes]:
    """A refusal as every JSON answer of the engine writes it, worded in `lang`."""
    body = orjson.dumps(refusal.body(lang), option=orjson.OPT_NON_STR_KEYS)
    headers: Headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in (refusal.headers or {}).items()
    ]
    headers.append((b"content-length", b"%d" % len(body)))
    headers.append((b"content-type", JSON_TYPE))
    return refusal.status, headers, body


async def _read_body(receive: Receive, limit: int | None) -> bytes:
    message = await receive()
    if message["type"] != "http.request":
        raise ClientGone
    body: bytes = message.get("body", b"")
    if limit is not None and len(body) > limit:
        raise _TooLarge
    if not message.get("more_body", False):
        return body
    chunks = [body]
    seen = len(body)
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientGone
        chunk = message.get("body", b"")
        seen += len(chunk)
        if limit is not None and seen > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
