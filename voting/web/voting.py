"""Public online voting over HTTP: voter sign-in, the ballot pages, the vote API.

The vote's rules are in voting/ballots/casting.py; `POST /api/votes` is answered by the
edge (web/edge.py), the ballot page's form (`cast_form`) here, both by those rules.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import quote

from msgspec import UNSET, Meta, Struct, UnsetType
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from .. import edition_store, mail
from ..antifraud.challenge import FIELD as CHALLENGE_FIELD
from ..antifraud.challenge import Challenges
from ..antifraud.minimise import address_key
from ..antifraud.refusals import CHALLENGED, record_refusal
from ..antifraud.risk import header_signals
from ..antifraud.signals import HONEYPOT_FIELD, network_of, new_form_token
from ..antifraud.verification import (
    StepUpRequired,
    VerificationLimiter,
    VerificationRefused,
    admit_signin,
)
from ..ballots.casting import (
    CHALLENGE_FAILED,
    CHALLENGE_REQUIRED,
    WEBDRIVER_FIELD,
    Signals,
    VoteAccepted,
    VoteRefusal,
    VoteRequest,
    refusal_of,
)
from ..catalog import Snapshot
from ..emails import InvalidEmail
from ..i18n import N_, gettext
from ..security import VOTER_LINK
from ..voters import Voter, identify, record_verification
from .auth import current_user, require_role
from .chart_data import ledger_voters, live_charts
from .context import runtime, snapshot
from .csrf import check_csrf, check_same_origin, csrf_token
from .deps import client_ip, require_json, services
from .edge import vote_endpoint
from .email_typo import EmailQuestion, email_question
from .links import Link
from .nextpath import safe_next
from .responses import JSON, ApiError
from .shapes import (
    NO_NUL,
    Answer,
    AnyObject,
    CsrfHeader,
    Operation,
    Text,
    Words,
    read_body,
)
from .templating import language_of, pages

log = logging.getLogger(__name__)


def session_voter(request: Request) -> Voter | None:
    return Voter.from_session(request.session.get("voter"))


def shuffled(voter_key: str, nominations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An order per voter, stable for that voter, unrelated to votes or names."""

    def rank(nomination: dict[str, Any]) -> str:
        return hashlib.sha256(f"{voter_key}|{nomination['public_id']}".encode()).hexdigest()

    return sorted(nominations, key=rank)


# -- sign-in ---------------------------------------------------------------------------


class SigninChallenge(Exception):
    """A sign-in that must solve a challenge first (428), with the challenge."""

    def __init__(self, code: str, message: str, challenge: dict[str, Any], wait_s: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.challenge = challenge
        self.wait_s = wait_s


async def _send_voter_link(
    request: Request, raw_email: str, solution: str | None = None, next_path: str = "/vote"
) -> str:
    """Mail a confirmation link, or refuse. A sign-in from a network past its hourly
    limit, or whose risk score is high (automation traces), must first solve a challenge
    (SigninChallenge); past the network's hard ceiling it is refused (429) all the same;
    the per-mailbox limit is a 429 whatever the score."""
    svc = services(request)
    snap = await snapshot(request)
    voter_id, address = identify(svc.settings.secret_key, raw_email)
    network = network_of(client_ip(request))

    async def solve() -> bool | None:
        if not solution:
            return None
        return (await challenges(request).verify(solution, "signin", network)).ok

    try:
        await admit_signin(
            VerificationLimiter(svc.r, svc.settings.redis_prefix, secret=svc.settings.secret_key),
            address,
            network,
            snap.thresholds,
            signals=header_signals(request.headers.get),
            solve=solve,
        )
    except StepUpRequired as exc:
        log.info("sign-in challenge: score %d %s", exc.risk.score, exc.risk.names)
        raise SigninChallenge(
            CHALLENGE_FAILED if exc.failed else CHALLENGE_REQUIRED,
            gettext(
                "That confirmation did not work or was already used. Tick the box again;"
                " no link was sent yet."
            )
            if exc.failed
            else gettext(
                "Many people have asked for links from your network in the last hour. To"
                " go on, confirm you are a person: tick the box and wait a few seconds"
                " while your browser does a small calculation."
            ),
            new_challenge(request, snap, "signin", network),
            exc.wait_s,
        ) from None
    # Each link carries its own nonce (Link.issue): each works once.
    payload = {"v": voter_id, "d": address.domain, "e": snap.edition.slug}
    if next_path != "/vote":
        payload["to"] = next_path  # where the voter started: back there once confirmed
    token = LINK.issue(request, payload)
    link = f"{svc.settings.base_url}/vote/confirm?token={quote(token)}"
    lang = language_of(request)
    async with svc.db.acquire() as conn:
        await mail.enqueue(
            conn,
            address.normalized,
            gettext("Confirm your email address to vote in the WSIS Prizes", lang),
            gettext(
                "Open this link within one hour to confirm your address and vote:\n\n{link}\n\n"
                "If you did not ask for it, ignore this message.",
                lang,
            ).format(link=link),
        )
    return address.normalized


async def voter_signin_form(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, _str(form.get("csrf_token")))
    raw = _str(form.get("email")) or ""
    next_path = safe_next(request.query_params.get("next") or _str(form.get("next")), "/vote")
    # A slip in a webmail domain would send the link nowhere: asked once, before sending.
    question = email_question(form.multi_items())
    if question is not None:
        return await _vote_home(request, email=raw, question=question)
    try:
        email = await _send_voter_link(request, raw, _opt_str(form.get(CHALLENGE_FIELD)), next_path)
    except InvalidEmail as exc:
        return await _vote_home(request, error=str(exc), status=422)
    except VerificationRefused as exc:
        await record_refusal(services(request).db, client_ip(request), form.get("email"), exc.code)
        return await _vote_home(request, error=exc.message, status=exc.status)
    except SigninChallenge as exc:
        await record_refusal(
            services(request).db, client_ip(request), form.get("email"), CHALLENGED
        )
        return await _vote_home(
            request,
            error=exc.message,
            status=428,
            challenge=exc.challenge,
            email=raw,
            wait_minutes=max(1, (exc.wait_s + 59) // 60),
        )
    return pages(request).render(request, "signin_sent.html", {"email": email})


async def voter_signin_api(request: Request) -> JSON:
    # No session is needed to ask for a link, so no CSRF token is either; a page on
    # another site must still not make a visitor's browser ask (security.py).
    check_same_origin(request, services(request).settings.base_url)
    require_json(request)
    body = await read_body(request, SignIn)
    email = body.email
    try:
        await _send_voter_link(request, email, None if body.altcha is UNSET else body.altcha)
    except InvalidEmail as exc:
        raise ApiError(422, "invalid", str(exc), fields={"email": str(exc)}) from None
    except SigninChallenge as exc:
        await record_refusal(services(request).db, client_ip(request), email, CHALLENGED)
        raise ApiError(428, exc.code, exc.message, extra={"challenge": exc.challenge}) from None
    except VerificationRefused as exc:
        await record_refusal(services(request).db, client_ip(request), email, exc.code)
        headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s else None
        raise ApiError(
            exc.status, exc.code, exc.message, fields={"email": exc.message}, headers=headers
        ) from None
    return JSON({"status": "sent", "message": gettext("A confirmation link is on its way.")}, 202)


LINK = Link(VOTER_LINK, frozenset({"v", "d", "e"}), again="/vote")


async def voter_confirm_form(request: Request) -> Response:
    payload = await LINK.unused(request, request.query_params.get("token", ""))
    if isinstance(payload, Response):
        return payload
    return pages(request).render(
        request, "voting/confirm.html", {"token": request.query_params["token"]}
    )


async def voter_confirm(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, _str(form.get("csrf_token")))
    token = _str(form.get("token")) or ""
    payload = LINK.load(request, token)
    if isinstance(payload, str):
        return LINK.problem(request, payload)
    voter = Voter(payload["v"], payload["d"], payload["e"])
    svc = services(request)
    async with svc.db.acquire() as conn, conn.transaction():
        edition_id = await edition_store.edition_id(conn, voter.edition)
        if edition_id is None:
            return LINK.problem(request, "invalid")
        if not await LINK.use(conn, payload):
            return LINK.problem(request, "used")
        await admit_voter(request, conn, edition_id, voter)
    return RedirectResponse(safe_next(payload.get("to"), "/vote"), status_code=303)


async def admit_voter(request: Request, conn: Any, edition_id: int, voter: Voter) -> None:
    """A proven address becomes a voter: recorded (as the fraud checks read every voter,
    after a confirmed link or from a signed-in account's own address) and given a fresh
    session (session fixation): no CSRF token, shuffle or earlier voter survives. Only a
    staff sign-in in the same browser stays; it was itself started afresh, and every
    request checks it against its account's session generation."""
    await record_verification(
        conn,
        edition_id,
        voter,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        address_key=address_key(services(request).settings.secret_key),
    )
    staff = {key: request.session[key] for key in ("uid", "gen") if key in request.session}
    request.session.clear()
    request.session.update(staff)
    request.session["voter"] = voter.to_session()
    csrf_token(request)


# -- casting: the rules in voting/ballots/casting.py, POST /api/votes in web/edge.py -----


def challenges(request: Request) -> Challenges:
    svc = services(request)
    return Challenges(svc.settings.secret_key, svc.r, svc.settings.redis_prefix)


def new_challenge(request: Request, snap: Snapshot, purpose: str, subject: str) -> dict[str, Any]:
    rules = snap.thresholds
    return challenges(request).issue(
        purpose,
        subject,
        max_number=rules.challenge_max_number,
        expires_s=rules.challenge_expires_s,
    )


async def my_votes_api(request: Request) -> JSON:
    voter = session_voter(request)
    if voter is None:
        raise ApiError(401, "not_signed_in", gettext("Confirm your email address first."))
    ballot = await runtime(request).ballot.ballot_of(voter.edition, voter.id)
    return JSON(
        {
            "edition": voter.edition,
            "csrf_token": csrf_token(request),
            "votes": [
                {"category": c, "receipt": r, "nomination": n}
                for c, (r, n) in sorted(ballot.items())
            ],
        }
    )


async def session_api(request: Request) -> JSON:
    voter = session_voter(request)
    # The form token of a vote comes with its ballot (GET /api/ballot/{category}).
    return JSON({"voter": voter is not None, "csrf_token": csrf_token(request)})


async def ballot_api(request: Request) -> JSON:
    """What the ballot page shows, for API clients: the category's nominations in the
    voter's own order, and a form token bound to the voter and to this category. The
    minimum reading time counts from this call, as from the page's."""
    voter = session_voter(request)
    if voter is None:
        raise ApiError(401, "not_signed_in", gettext("Confirm your email address before voting."))
    snap = await snapshot(request)
    code = request.path_params["category"]
    category = snap.edition.category(code)
    if category is None:
        raise ApiError(
            404, "no_such_category", gettext("There is no category {code!r}.").format(code=code)
        )
    nominations = shuffled(voter.id, await _nominations_of(request, snap, code))
    ballot = await runtime(request).ballot.ballot_of(voter.edition, voter.id)
    voted = ballot.get(code)
    return JSON(
        {
            "edition": snap.edition.slug,
            "category": code,
            "name": category.name,
            "nominations": [
                {k: n[k] for k in ("public_id", "title", "organization", "country")}
                for n in nominations
            ],
            "voted": {"receipt": voted[0], "nomination": voted[1]} if voted else None,
            "form_token": new_form_token(
                request.app.state.tokens,
                voter.id,
                code,
                now=services(request).clock.now().timestamp(),
            ),
            "csrf_token": csrf_token(request),
        }
    )


async def live_counts_api(request: Request) -> JSON:
    snap = await snapshot(request)
    if not snap.edition.rules.voting.show_live_counts:
        await require_role(request, "committee")
    counts = await runtime(request).ballot.live_counts(snap.edition.slug)
    held = await runtime(request).ballot.held_counts(snap.edition.slug)
    return JSON(
        {
            "edition": snap.edition.slug,
            "note": "Live counts are not the final count of eligible votes.",
            "nominations": [
                {
                    "nomination": n,
                    "category": snap.nominations.get(n),
                    "counted": counts.get(n, 0),
                    "held": held.get(n, 0),
                }
                for n in sorted(set(counts) | set(held))
            ],
        }
    )


# -- pages -----------------------------------------------------------------------------


async def _nominations_of(request: Request, snap: Snapshot, category: str) -> list[dict[str, Any]]:
    async with services(request).db.acquire() as conn:
        rows = await conn.fetch(
            "SELECT public_id, title, organization, country, summary FROM nominations"
            " WHERE edition_id=$1 AND category=$2 AND status='accepted'",
            snap.edition_id,
            category,
        )
    return [dict(r) for r in rows]


async def _vote_home(
    request: Request,
    *,
    error: str = "",
    status: int = 200,
    challenge: dict[str, Any] | None = None,
    email: str = "",
    wait_minutes: int = 0,
    question: EmailQuestion | None = None,
) -> Response:
    snap = await snapshot(request)
    voter = session_voter(request)
    ballot: dict[str, tuple[str, str]] = {}
    if voter is not None and voter.edition == snap.edition.slug:
        ballot = await runtime(request).ballot.ballot_of(voter.edition, voter.id)
    now = services(request).clock.now()
    return pages(request).render(
        request,
        "voting/home.html",
        {
            "edition": snap.edition,
            "voting": snap.edition.phase("voting"),
            "now": now,
            "voter": voter,
            "ballot": ballot,
            "error": error,
            "user": await current_user(request),
            "challenge": challenge,
            "challenge_field": CHALLENGE_FIELD,
            "email": email,
            "wait_minutes": wait_minutes,
            "question": question,
            "signin_action": request.url.path
            + (f"?{request.url.query}" if request.url.query else ""),
        },
        status=status,
    )


async def vote_home(request: Request) -> Response:
    return await _vote_home(request)


async def category_ballot(request: Request) -> Response:
    return await _ballot_page(request)


async def _ballot_page(
    request: Request,
    *,
    challenge: dict[str, Any] | None = None,
    chosen: str = "",
    form_token: str | None = None,
    error: str = "",
    status: int = 200,
) -> Response:
    snap = await snapshot(request)
    code = request.path_params["code"]
    category = snap.edition.category(code)
    if category is None:
        raise ApiError(
            404, "no_such_category", gettext("There is no category {code!r}.").format(code=code)
        )
    voter = session_voter(request)
    key = voter.id if voter else request.session.setdefault("shuffle", csrf_token(request))
    nominations = shuffled(key, await _nominations_of(request, snap, code))
    ballot = {}
    if voter is not None:
        ballot = await runtime(request).ballot.ballot_of(voter.edition, voter.id)
    return pages(request).render(
        request,
        "voting/category.html",
        {
            "edition": snap.edition,
            "category": category,
            "nominations": nominations,
            "voter": voter,
            "voted": ballot.get(code),
            "voting": snap.edition.phase("voting"),
            "now": services(request).clock.now(),
            "form_token": form_token
            or new_form_token(
                request.app.state.tokens,
                voter.id if voter else None,
                code,
                now=services(request).clock.now().timestamp(),
            ),
            "honeypot": HONEYPOT_FIELD,
            "webdriver_field": WEBDRIVER_FIELD,
            "challenge_field": CHALLENGE_FIELD,
            "challenge": challenge,
            "challenge_wait_minutes": 60,
            "chosen": chosen,
            "error": error,
        },
        status=status,
    )


async def cast_form(request: Request) -> Response:
    """The ballot page's form: the same rules as POST /api/votes (ballots/casting.py),
    answered with the receipt page (a 409 shows the receipt of the vote already cast)."""
    form = await request.form()
    check_csrf(request, _str(form.get("csrf_token")))
    voter = session_voter(request)
    if voter is None:
        raise ApiError(401, "not_signed_in", gettext("Confirm your email address before voting."))
    nomination = _str(form.get("nomination")) or ""
    form_token = _str(form.get("form_token"))
    vote = VoteRequest(
        nomination,
        request.path_params["code"],
        form_token or None,
        _str(form.get(WEBDRIVER_FIELD)) in {"1", "true"},
        _opt_str(form.get(CHALLENGE_FIELD)),
    )
    signals = Signals(
        client_ip(request),
        honeypot=_str(form.get(HONEYPOT_FIELD)),
        **header_signals(request.headers.get),
    )
    try:
        cast = await runtime(request).casting.cast(voter, vote, signals)
    except VoteRefusal as exc:
        if exc.code not in {CHALLENGE_REQUIRED, CHALLENGE_FAILED}:
            raise
        # The ballot again, the choice kept, with the challenge to solve before confirming.
        return await _ballot_page(
            request,
            challenge=exc.extra["challenge"],
            chosen=nomination,
            form_token=form_token,
            error=exc.text(language_of(request)),
            status=exc.status,
        )
    outcome = cast.outcome
    problem = refusal_of(outcome, cast.category)
    if problem is not None and outcome.status != "duplicate":
        raise problem
    return pages(request).render(
        request,
        "voting/receipt.html",
        {
            "outcome": outcome,
            "category": cast.snap.edition.category(cast.category),
            "project": await _project_of(request, outcome.nomination or nomination),
            "duplicate": outcome.status == "duplicate",
            "held": outcome.state == "held",
        },
        status=202 if outcome.status == "accepted" else 409,
    )


async def _project_of(request: Request, public_id: str) -> dict[str, Any] | None:
    """The project a receipt is for, named on the receipt page (after the vote: not on
    the vote's path)."""
    async with services(request).db.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT public_id, title, organization FROM nominations WHERE public_id=$1",
            public_id,
        )
    return dict(row) if row is not None else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _solution(body: dict[str, Any]) -> str | None:
    """A JSON body's challenge solution: absent, or a text (the ALTCHA payload)."""
    value = body.get(CHALLENGE_FIELD)
    if value is not None and not isinstance(value, str):
        raise ApiError(
            422,
            "invalid",
            gettext("{field} must be a text.").format(field=CHALLENGE_FIELD),
            fields={CHALLENGE_FIELD: "text"},
        )
    return value or None


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


routes = [
    Route("/vote", vote_home, methods=["GET"]),
    Route("/my-votes", vote_home, methods=["GET"]),
    Route("/vote/signin", voter_signin_form, methods=["POST"]),
    Route("/vote/confirm", voter_confirm_form, methods=["GET"]),
    Route("/vote/confirm", voter_confirm, methods=["POST"]),
    Route("/vote/{code}", category_ballot, methods=["GET"]),
    Route("/vote/{code}", cast_form, methods=["POST"]),
    Route("/api/voters/signin", voter_signin_api, methods=["POST"]),
    Route("/api/session", session_api, methods=["GET"]),
    Route("/api/ballot/{category}", ballot_api, methods=["GET"]),
    # Answered by the edge (web/edge.py) in front of the stack; here for the router and
    # the OpenAPI document, and for an application built without the edge.
    Route("/api/votes", vote_endpoint, methods=["POST"]),
    Route("/api/votes/mine", my_votes_api, methods=["GET"]),
    Route("/api/live-counts", live_counts_api, methods=["GET"]),
]


class SignIn(Struct):
    email: Annotated[str, Meta(pattern=NO_NUL, extra_json_schema={"format": "email"})]
    altcha: (
        Annotated[str, Meta(pattern=NO_NUL, description="A solved challenge (after a 428)")]
        | UnsetType
    ) = UNSET

    words: ClassVar[dict[str, Words]] = {
        "email": Words(N_("Give an email address."), code="required"),
        CHALLENGE_FIELD: Words(N_("{field} must be a text."), code="text"),
    }


class LinkSent(Struct):
    status: str
    message: str


class Session(Struct):
    voter: bool
    csrf_token: str


class CategoryPath(Struct):
    category: Text


class BallotPage(Struct):
    category: str
    nominations: list[AnyObject]
    form_token: str
    csrf_token: str
    edition: str | UnsetType = UNSET
    name: str | UnsetType = UNSET
    voted: AnyObject | UnsetType | None = UNSET


class ChallengeDetail(Struct):
    code: Literal["challenge_required", "challenge_failed"]
    message: str
    challenge: AnyObject


class Challenge(Struct):
    error: ChallengeDetail


class VoteUnavailableDetail(Struct):
    code: Literal["unavailable", "outcome_unknown"]
    message: str


class VoteUnavailable(Struct):
    error: VoteUnavailableDetail


CHALLENGE_ANSWER = Answer(
    "A challenge to solve first (`error.code` `challenge_required`, or `challenge_failed`"
    " when the solution sent was wrong, expired or already used): `error.challenge` is an"
    " ALTCHA (v2) challenge; solve it and send the request again with the solution's"
    " base64 payload in the `altcha` field",
    Challenge,
)
NO_VOTER = "No voter session"
API = [
    Operation(
        "POST",
        "/api/voters/signin",
        "Send a voter a confirmation link by email",
        {
            202: Answer("The link is on its way", LinkSent),
            400: "Malformed body",
            403: "Sent by a page of another site (code cross_site): Sec-Fetch-Site must"
            " be same-origin or none, or Origin this site's, or X-CSRF-Token the"
            " session's",
            404: "No edition is loaded",
            415: "The body is not declared as application/json",
            422: "Not an email address, or not one that can receive mail",
            428: CHALLENGE_ANSWER,
            429: "Too many links for this mailbox, or the network past its hard ceiling;"
            " Retry-After says when",
        },
        body=SignIn,
    ),
    Operation(
        "GET",
        "/api/session",
        "Whether a voter session is open, and the CSRF token for API calls",
        {200: Answer("The session", Session)},
    ),
    Operation(
        "GET",
        "/api/ballot/{category}",
        "Open a category's ballot: its nominations in the voter's own order and"
        " the form token to vote with (the reading time counts from here)",
        {
            200: Answer("The ballot", BallotPage),
            401: NO_VOTER,
            404: "No such category, or no edition is loaded",
        },
        path_params=CategoryPath,
    ),
    Operation(
        "POST",
        "/api/votes",
        "Cast a vote for a nomination (one per voter per category, final)",
        {
            202: Answer("Accepted, with its receipt", VoteAccepted),
            400: "Malformed body",
            401: NO_VOTER,
            403: "Outside the voting window, or no CSRF token",
            404: "No such nomination open to votes",
            409: "Already voted in this category (the body has the receipt)",
            422: "Invalid fields",
            428: CHALLENGE_ANSWER,
            429: "Too many new voters from this address, network or domain; Retry-After says when",
            503: Answer(
                "Voting briefly unavailable, with Retry-After. `error.code` says what"
                " became of the vote: `unavailable`, nothing was recorded (Redis was not"
                " reached); `outcome_unknown`, it was sent and the answer was lost, so it"
                " may have been recorded. Either way send it again: a recorded vote"
                " answers 409 with its receipt",
                VoteUnavailable,
            ),
        },
        body=VoteRequest,
        headers=CsrfHeader,
    ),
    Operation(
        "GET",
        "/api/votes/mine",
        "The signed-in voter's votes with their receipts",
        {200: Answer("The voter's votes", AnyObject), 401: NO_VOTER},
    ),
    Operation(
        "GET",
        "/api/live-counts",
        "Live counts per nomination (committee only unless the edition shows them)",
        {
            200: Answer("Counted and held votes", AnyObject),
            401: "Not signed in",
            403: "Not the committee",
            404: "No edition is loaded",
        },
    ),
]


# -- committee pages -----------------------------------------------------


async def committee_live(request: Request) -> Response:
    await require_role(request, "committee")
    snap = await snapshot(request)
    rt = runtime(request)
    counts = await rt.ballot.live_counts(snap.edition.slug)
    held = await rt.ballot.held_counts(snap.edition.slug)
    async with services(request).db.acquire() as conn:
        rows = await conn.fetch(
            "SELECT public_id, title, organization, category FROM nominations"
            " WHERE edition_id=$1 AND status='accepted' ORDER BY category, title",
            snap.edition_id,
        )
    by_category: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        entry = dict(r)
        entry["counted"] = counts.get(r["public_id"], 0)
        entry["held"] = held.get(r["public_id"], 0)
        by_category.setdefault(r["category"], []).append(entry)
    for entries in by_category.values():
        entries.sort(key=lambda e: (-e["counted"], e["public_id"]))
    now = services(request).clock.now()
    voting = snap.edition.phase("voting")
    return pages(request).render(
        request,
        "voting/live.html",
        {
            "edition": snap.edition,
            "by_category": by_category,
            "now": now,
            "voting": voting,
            # The figures the page opens with: the whole edition at a glance.
            "summary": {
                "counted": sum(counts.values()),
                "held": sum(held.values()),
                "voters": await ledger_voters(services(request).db, snap.edition_id),
                "open": voting.contains(now),
                "closed": now >= voting.closes_at,
            },
            "category_totals": {
                code: (sum(e["counted"] for e in entries), sum(e["held"] for e in entries))
                for code, entries in by_category.items()
            },
            "charts": await live_charts(
                services(request).db,
                snap.edition,
                snap.edition_id,
                services(request).clock.now(),
                {r["public_id"]: r["title"] for r in rows},
            ),
        },
    )


routes += [
    Route("/committee/live", committee_live, methods=["GET"]),
]


async def vote_box(
    request: Request, edition: Any, public_id: str, category: str, status: str
) -> dict[str, Any]:
    """What a nomination's page needs for its vote button (voting/_vote_box.html)."""
    now = services(request).clock.now()
    voting = edition.phase("voting")
    box: dict[str, Any] = {"show": status == "accepted" and voting.contains(now)}
    if not box["show"]:
        return box
    voter = session_voter(request)
    box["voter"] = voter is not None and voter.edition == edition.slug
    box["voted"] = None
    if box["voter"]:
        assert voter is not None
        ballot = await runtime(request).ballot.ballot_of(voter.edition, voter.id)
        box["voted"] = ballot.get(category)
    box["form_token"] = new_form_token(
        request.app.state.tokens,
        voter.id if voter else None,
        public_id,
        now=services(request).clock.now().timestamp(),
    )
    box["honeypot"] = HONEYPOT_FIELD
    box["closes_at"] = voting.closes_at
    return box
