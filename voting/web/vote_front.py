"""POST /api/votes in one pass, for the vote that goes right.

Every request crosses six middleware (request id and metrics, security headers, header
and body size limits, the session cookie, the vote route) and Starlette's Request and
Response objects before and after its handler. For the one request that comes by the
thousand per second, this middleware does the same work in a single pass: it sits just
inside the proxy-header middleware, reads the headers once, the body once, verifies the
session and the CSRF token, casts the vote with the same `Ballot.cast`, and writes the
202 answer with the same bytes and headers the full stack writes.

It answers only an accepted vote. Anything else goes to the full stack, which answers as
it always has (tests compare the two, header by header):

- before the cast (no session, a bad token, bad JSON, an unknown nomination, a vote
  whose risk score asks for a challenge, ...): the request goes on untouched, its body
  replayed;
- after the cast (already voted, closed, rate limited, Redis away): the request goes on
  with the cast's result in the scope (`PRECAST`), and the handler takes that result
  instead of casting again, so the refusal is explained in the voter's language by the
  same code as before and the vote script never runs twice for one request. (Its
  latency in the metrics then starts after the cast, and its request id is the one the
  stack gives, unless the client sent one.)
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Coroutine
from typing import Any

import orjson
from itsdangerous import BadSignature
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import metrics
from ..antifraud.risk import MIDDLE, Risk, quarantine_reasons
from ..antifraud.risk import assess_vote as risk_of_vote
from ..antifraud.signals import FormCheck, network_of
from ..ballot import Ballot, Limits, Outcome
from ..clock import Clock
from ..compat.starlette import cookie_parser, session_payload
from ..logs import request_id
from ..security import Tokens
from ..voters import Voter
from .context import runtime_of
from .middleware import HSTS, SECURITY_HEADERS
from .observability import SANE_ID, access_log
from .sessions import RememberingSigner

PATH = "/api/votes"
PRECAST = "wsis.precast"
_PATH_BYTES = PATH.encode()
# The headers the vote reads (the first of each, as Starlette's Headers.get takes it).
_READ = frozenset(
    {
        b"cookie",
        b"x-csrf-token",
        b"content-length",
        b"x-request-id",
        b"user-agent",
        b"accept-language",
        b"sec-fetch-site",
        b"sec-fetch-mode",
    }
)

log = logging.getLogger(__name__)


class Precast:
    """The result of the cast this middleware made: an Outcome, or the exception the
    cast raised. The handler takes it once, in place of its own call to Redis."""

    __slots__ = ("error", "outcome")

    def __init__(self, outcome: Any = None, error: BaseException | None = None) -> None:
        self.outcome = outcome
        self.error = error

    @property
    def status(self) -> str:
        return "error" if self.error is not None else str(self.outcome.status)

    def take(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.outcome


class VoteFront:
    def __init__(
        self,
        app: ASGIApp,
        *,
        secret_key: str,
        session_cookie: str,
        max_age: int,
        max_header_bytes: int,
        max_body_bytes: int,
    ) -> None:
        self.app = app
        self.signer = RememberingSigner(secret_key)
        self.session_cookie = session_cookie
        self.max_age = max_age
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        # The application's parts, taken once: Starlette's State answers each attribute
        # through a caught AttributeError.
        self._parts: tuple[Any, Any, Any] | None = None  # (voting runtime, tokens, clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != PATH
            or scope.get("raw_path") != _PATH_BYTES
            or scope.get("query_string")
        ):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # One pass over the headers, taking the first of each as Starlette's Headers.get
        # does, and adding up their size as HeaderSizeLimit does.
        size = len(_PATH_BYTES)
        first: dict[bytes, bytes] = {}
        lengths = 0
        for name, value in scope["headers"]:
            size += len(name) + len(value) + 4
            if name in _READ and name not in first:
                first[name] = value
            if name == b"content-length":
                lengths += 1
        cookie = first.get(b"cookie")
        csrf = first.get(b"x-csrf-token")
        length = first.get(b"content-length", b"")
        if (
            size > self.max_header_bytes
            or cookie is None
            or csrf is None
            or lengths != 1
            or not length.isdigit()
            or int(length) > self.max_body_bytes
        ):
            await self.app(scope, receive, send)
            return
        body, messages = await _read_body(receive, self.max_body_bytes)
        if body is None:
            await self.app(scope, _replay(messages, receive), send)
            return
        incoming = first.get(b"x-request-id")
        text_id = incoming.decode("latin-1") if incoming is not None else None
        rid = text_id if text_id and SANE_ID.fullmatch(text_id) else secrets.token_hex(16)
        rid_token = request_id.set(rid)
        try:
            cast = await self._cast(scope, cookie, csrf, body, first)
        except Exception:
            # What Observability does for an error in a handler: log it, count a 500.
            log.exception("unhandled error on POST %s", PATH)
            metrics.request_done("POST", PATH, 500, time.perf_counter() - started)
            request_id.reset(rid_token)
            raise
        if cast is None or cast[0].status != "accepted":
            request_id.reset(rid_token)
            if cast is not None:
                scope[PRECAST] = cast[0]
            await self.app(scope, _replay(messages, receive), send)
            return
        try:
            await self._accepted(scope, send, cast, rid, started)
        finally:
            request_id.reset(rid_token)

    async def _accepted(
        self, scope: Scope, send: Send, cast: tuple[Any, ...], rid: str, started: float
    ) -> None:
        """The 202 the full stack writes: the handler's JSON, then the headers each
        middleware adds on its way out, in their order."""
        precast, snap, category, nomination = cast
        outcome = precast.outcome
        metrics.vote_accepted(category, outcome.state or "counted", outcome.reasons)
        payload = orjson.dumps(
            accepted_body(outcome, snap, category, nomination), option=orjson.OPT_NON_STR_KEYS
        )
        headers = [
            (b"content-length", b"%d" % len(payload)),
            (b"content-type", b"application/json"),
            (b"vary", b"Cookie"),  # Sessions: the session was read
            *SECURITY_HEADERS,
        ]
        if scope.get("scheme") == "https":
            headers.append(HSTS)
        headers.append((b"x-request-id", rid.encode("latin-1")))
        status = 500
        try:
            await send({"type": "http.response.start", "status": 202, "headers": headers})
            status = 202
            await send({"type": "http.response.body", "body": payload})
        finally:
            elapsed = time.perf_counter() - started
            metrics.request_done("POST", PATH, status, elapsed)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s %s %s",
                    "POST",
                    PATH,
                    status,
                    extra={
                        "method": "POST",
                        "path": PATH,
                        "route": PATH,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                        "client": network_of((scope.get("client") or ("", 0))[0]),
                    },
                )

    async def _cast(
        self, scope: Scope, cookie: bytes, csrf: bytes, body: bytes, first: dict[bytes, bytes]
    ) -> tuple[Precast, Any, str, str] | None:
        """(the cast's Precast, snapshot, category, nomination), or None when the request
        is not a vote to cast here: the full stack then answers it from the start, having
        seen nothing happen."""
        signed = cookie_parser(cookie.decode("latin-1")).get(self.session_cookie)
        if not signed:
            return None
        try:
            raw = self.signer.unsign(signed.encode("utf-8"), max_age=self.max_age)
            session = session_payload(raw)
        except (BadSignature, ValueError):  # binascii and JSON errors are ValueErrors
            return None
        if not isinstance(session, dict):
            return None
        voter = Voter.from_session(session.get("voter"))
        expected = session.get("csrf")
        if (
            voter is None
            or not expected
            or not hmac.compare_digest(str(expected).encode(), csrf)
            or not body
            or b"\\u0000" in body
        ):
            return None
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict):
            return None
        nomination = data.get("nomination")
        wanted = data.get("category")
        form_token = data.get("form_token")
        if (
            not isinstance(nomination, str)
            or not nomination
            or len(nomination) > 64
            or (wanted is not None and not isinstance(wanted, str))
        ):
            return None
        parts = self._parts
        if parts is None:
            state = scope["app"].state
            parts = self._parts = (runtime_of(scope["app"]), state.tokens, state.services.clock)
        rt, tokens, clock = parts
        try:
            snap = await rt.catalog.current()
            if snap is not None and voter.edition != snap.edition.slug:
                snap = await rt.catalog.rehearsal(voter.edition)
        except Exception:  # PostgreSQL away before the first snapshot: the stack says so
            return None
        if snap is None:
            return None
        category = snap.nominations.get(nomination)
        if category is None or (wanted is not None and wanted != category):
            return None
        ip = scope["client"][0] if scope.get("client") else ""
        user_agent = first.get(b"user-agent", b"").decode("latin-1")
        form, risk = assess_vote(
            tokens,
            clock,
            snap,
            voter.id,
            form_token if isinstance(form_token, str) and form_token else None,
            category=category,
            nomination=nomination,
            user_agent=user_agent,
            accept_language=bool(first.get(b"accept-language")),
            fetch_metadata=bool(first.get(b"sec-fetch-site") or first.get(b"sec-fetch-mode")),
            webdriver=data.get("webdriver") is True,
        )
        if risk.band == MIDDLE:
            return None  # a challenge to ask for, or a solution to check: the handler's
        try:
            outcome = await cast_vote(
                rt.ballot,
                snap,
                voter,
                category,
                nomination,
                ip=ip,
                user_agent=user_agent,
                form=form,
                risk=risk,
            )
        except Exception as exc:  # the handler answers it (503, and what it means)
            return Precast(error=exc), snap, category, nomination
        return Precast(outcome), snap, category, nomination


def accepted_body(outcome: Outcome, snap: Any, category: str, nomination: str) -> dict[str, Any]:
    """The 202's JSON, the same from the front and from the handler."""
    return {
        "receipt": outcome.receipt,
        "edition": snap.edition.slug,
        "category": category,
        "nomination": nomination,
        "cast_at": outcome.cast_at,
        "counted": outcome.state != "held",
    }


def assess_vote(
    tokens: Tokens,
    clock: Clock,
    snap: Any,
    voter_id: str,
    token: str | None,
    *,
    category: str,
    nomination: str,
    user_agent: str,
    accept_language: bool,
    fetch_metadata: bool,
    webdriver: bool,
    honeypot: str | None = None,
) -> tuple[FormCheck, Risk]:
    """antifraud.risk.assess_vote by the edition's rules and the engine's clock, the same
    from the front and from the handler: a token may name the vote's category (a ballot)
    or its nomination (the nomination's page)."""
    return risk_of_vote(
        tokens,
        token,
        voter_id,
        snap.thresholds,
        now=clock.now().timestamp(),
        places=(category, nomination),
        user_agent=user_agent,
        accept_language=accept_language,
        fetch_metadata=fetch_metadata,
        webdriver=webdriver,
        honeypot=honeypot,
    )


def cast_vote(
    ballot: Ballot,
    snap: Any,
    voter: Voter,
    category: str,
    nomination: str,
    *,
    ip: str,
    user_agent: str,
    form: FormCheck,
    risk: Risk,
    limits: Limits | None = None,
) -> Coroutine[Any, Any, Outcome]:
    """The vote script's call, the same from the front and from the handler. Only a
    vote in the high band carries reasons, which put it in quarantine (the script adds
    `form_replayed` of its own when the form's nonce was used before); a low-band vote,
    or a middle-band one whose challenge was solved, counts."""
    return ballot.cast(
        snap.edition.slug,
        voter.id,
        category,
        nomination,
        ip=ip,
        user_agent=user_agent,
        form_age_ms=form.age_ms,
        domain=voter.domain,
        network=network_of(ip),
        reasons=quarantine_reasons(risk),
        form_nonce=form.nonce,
        limits=snap.limits if limits is None else limits,
    )


async def _read_body(receive: Receive, limit: int) -> tuple[bytes | None, list[Message]]:
    """(the whole body, the messages it came in); None for the body when it passed the
    limit or the client left first: the full stack then answers, from the same messages."""
    messages: list[Message] = []
    seen = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None, messages
        seen += len(message.get("body", b""))
        if seen > limit:
            return None, messages
        if not message.get("more_body", False):
            if len(messages) == 1:
                return message.get("body", b""), messages
            return b"".join(m.get("body", b"") for m in messages), messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that gives back the messages already read, then what follows them."""
    pending = messages[::-1]

    async def replayed() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replayed
