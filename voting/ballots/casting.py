"""Every rule of one vote, in one place, with no HTTP in it.

`POST /api/votes` (web/edge.py) and the ballot page's form (web/voting.py `cast_form`)
both come here: the body is read into a `VoteRequest` (`read_vote`), the nomination,
its category and the edition it is voted in are resolved from the in-process catalog,
the signed form token is checked and the risk scored (antifraud.risk), a middle-band
vote must bring a solved challenge (428 otherwise), the vote script runs once
(`Ballot.cast`, restoring a lost window from the ledger first when Redis came back
empty), and the outcome becomes either a `VoteAccepted` or a `VoteRefusal`.

A refusal carries an untranslated template and its parameters; the transport words it
in the voter's language where it writes the answer (`VoteRefusal.text`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Protocol

import asyncpg
import msgspec
import orjson
import redis.exceptions

from .. import ledger, metrics
from ..antifraud.challenge import FIELD as CHALLENGE_FIELD
from ..antifraud.challenge import Challenges
from ..antifraud.risk import MIDDLE, Risk, assess_vote, may_step_up, quarantine_reasons
from ..antifraud.signals import FormCheck
from ..ballot import Ballot, Limits, Outcome
from ..clock import Clock
from ..contest import GENEVA
from ..errors import NO_NUL, Refusal, holds_nul
from ..i18n import N_, format_instant, gettext
from ..redis_batch import AnswerLost
from ..security import Tokens
from ..voters import Voter

log = logging.getLogger(__name__)

WEBDRIVER_FIELD = "webdriver"  # the ballot page's script reports navigator.webdriver here
MAX_NOMINATION = 64
# The fields of the body the vote reads; whatever else a client sends is ignored, and may
# hold anything (a NUL is refused only in these, as no text column would hold one).
READ_FIELDS = ("nomination", "category", "form_token")

# The two 503s of a vote: `unavailable`, the request never reached Redis and nothing was
# recorded; `outcome_unknown`, it was sent and the answer lost, so it may have been.
UNAVAILABLE = "unavailable"
OUTCOME_UNKNOWN = "outcome_unknown"
CHALLENGE_REQUIRED = "challenge_required"
CHALLENGE_FAILED = "challenge_failed"


# -- the shapes ---------------------------------------------------------------------------


class VoteRequest(msgspec.Struct, frozen=True):
    """The body of `POST /api/votes`, as read (`read_vote`). `nomination` is "" when
    the body named none (or not as a text): the cast refuses it, and counts that."""

    # The annotations state the body's shape for the OpenAPI document (web/openapi.py);
    # `read_vote` reads it more leniently, to word each refusal itself.
    nomination: Annotated[str, msgspec.Meta(min_length=1, pattern=NO_NUL)]
    category: Annotated[str, msgspec.Meta(pattern=NO_NUL)] | None = None
    form_token: (
        Annotated[str, msgspec.Meta(pattern=NO_NUL, description="From GET /api/ballot/{category}")]
        | None
    ) = None
    webdriver: Annotated[
        bool, msgspec.Meta(description="navigator.webdriver, as a page reports it")
    ] = False
    solution: (
        Annotated[str, msgspec.Meta(pattern=NO_NUL, description="A solved challenge (after a 428)")]
        | None
    ) = msgspec.field(default=None, name=CHALLENGE_FIELD)


class VoteAccepted(msgspec.Struct, frozen=True):
    """The 202's body: the receipt, and whether the vote counts now or is held."""

    receipt: str
    edition: str
    category: str
    nomination: str
    cast_at: datetime
    counted: bool

    def json(self) -> bytes:
        # orjson, as every other JSON answer of the engine: the same bytes (datetimes
        # with +00:00) as before the vote had a type.
        return orjson.dumps(
            {
                "receipt": self.receipt,
                "edition": self.edition,
                "category": self.category,
                "nomination": self.nomination,
                "cast_at": self.cast_at,
                "counted": self.counted,
            }
        )


class VoteRefusal(Refusal):
    """A vote refused, with what the answer adds beside the message (`extra`: the
    receipt of the vote already cast, the challenge to solve, ...). A parameter may be a
    function of the language (an instant, a word to translate): it is called with the
    language the refusal is worded in."""

    def __init__(
        self,
        status: int,
        code: str,
        template: str,
        /,
        *,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        **params: Any,
    ) -> None:
        self.extra = extra or {}
        super().__init__(status, code, template, fields=fields, headers=headers, **params)

    @property
    def message(self) -> str:
        return self.text("en")

    def text(self, lang: str | None = None) -> str:
        params = {k: v(lang) if callable(v) else v for k, v in self.params.items()}
        return gettext(self.template, lang).format(**params)

    def body(self, lang: str | None = None) -> dict[str, Any]:
        body = super().body(lang)
        body["error"].update(self.extra)
        return body


def _translated(message: str) -> Callable[[str | None], str]:
    return lambda lang: gettext(message, lang)


def _instant(when: datetime | None) -> Callable[[str | None], str]:
    return lambda lang: format_instant(when, GENEVA, lang)


# -- reading the body ---------------------------------------------------------------------


def read_vote(raw: bytes) -> VoteRequest:
    """The body's vote, or a VoteRefusal saying what is wrong with it (400 for what is
    no JSON object at all, 422 for a field of the wrong kind)."""
    if not raw:
        raise VoteRefusal(400, "empty_body", N_("The request needs a JSON object body."))
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise VoteRefusal(
            400, "bad_json", N_("The body is not valid JSON: {detail}"), detail=str(exc)
        ) from None
    if not isinstance(data, dict):
        raise VoteRefusal(422, "not_an_object", N_("The body must be a JSON object."))
    nomination = data.get("nomination")
    category = data.get("category")
    form_token = data.get("form_token")
    if b"\\u0000" in raw and any(holds_nul(data[name]) for name in READ_FIELDS if name in data):
        raise VoteRefusal(422, "invalid", N_("Text may not contain the NUL character (\\u0000)."))
    if category is not None and not isinstance(category, str):
        raise VoteRefusal(
            422, "invalid", N_("category must be a text."), fields={"category": "text"}
        )
    solution = data.get(CHALLENGE_FIELD)
    if solution is not None and not isinstance(solution, str):
        raise VoteRefusal(
            422,
            "invalid",
            N_("{field} must be a text."),
            fields={CHALLENGE_FIELD: "text"},
            field=CHALLENGE_FIELD,
        )
    return VoteRequest(
        nomination if isinstance(nomination, str) else "",
        category,
        form_token if isinstance(form_token, str) and form_token else None,
        data.get(WEBDRIVER_FIELD) is True,
        solution or None,
    )


# -- casting ------------------------------------------------------------------------------


class CatalogLike(Protocol):
    """What casting reads of the in-process catalog (voting/catalog.py, a layer above)."""

    async def current(self) -> Any: ...

    async def rehearsal(self, slug: str) -> Any: ...


class Signals(msgspec.Struct, frozen=True):
    """What the request's transport tells the risk score: the client's address and the
    headers a browser sends."""

    ip: str
    user_agent: str = ""
    accept_language: bool = False
    fetch_metadata: bool = False
    honeypot: str | None = None


class Cast(msgspec.Struct, frozen=True):
    """A vote the script answered: its outcome, the edition's snapshot, the category."""

    outcome: Outcome
    snap: Any
    category: str
    nomination: str


class Casting:
    """The parts a vote needs, taken once per process: the ballot, the catalog, the
    signed tokens, the clock, the challenges, and PostgreSQL to restore a lost window."""

    def __init__(
        self,
        ballot: Ballot,
        catalog: CatalogLike,
        tokens: Tokens,
        clock: Clock,
        challenges: Challenges,
        db: Any,
        prefix: str,
    ) -> None:
        self.ballot = ballot
        self.catalog = catalog
        self.tokens = tokens
        self.clock = clock
        self.challenges = challenges
        self.db = db
        self.prefix = prefix

    async def cast(self, voter: Voter, vote: VoteRequest, signals: Signals) -> Cast:
        """Resolve, check, cast: the script's outcome, whatever it is (accepted,
        duplicate, closed, limited: `answer` turns it into the reply). Raises a
        VoteRefusal for a vote refused before or around the script; every refusal is
        counted in the votes-refused metric under its code."""
        # One coroutine for the whole vote (no awaited helper on the accepted path but
        # the catalog and the script): this runs thousands of times a second.
        try:
            nomination = vote.nomination
            if not nomination or len(nomination) > MAX_NOMINATION:
                raise VoteRefusal(
                    422,
                    "invalid",
                    N_("Say which nomination you vote for."),
                    fields={"nomination": "required"},
                )
            snap = await self.catalog.current()
            if snap is None or voter.edition != snap.edition.slug:
                snap = await self.snapshot_for(voter, snap)
            category = snap.nominations.get(nomination)
            if category is None:
                raise VoteRefusal(
                    404,
                    "no_such_nomination",
                    N_("There is no nomination {nomination!r} open to votes."),
                    nomination=nomination,
                )
            if vote.category is not None and vote.category != category:
                raise VoteRefusal(
                    422,
                    "wrong_category",
                    N_("Nomination {nomination} is in category {category}, not {expected}."),
                    fields={"category": f"must be {category}"},
                    nomination=nomination,
                    category=category,
                    expected=vote.category,
                )
            form, risk = self.assess(snap, voter.id, vote, category, signals)
            solved = False
            if risk.band == MIDDLE:
                await self.step_up(snap, voter, category, vote.solution)
                solved = True

            def attempt(limits: Limits | None = None) -> Any:
                return self.ballot.cast(
                    snap.edition.slug,
                    voter.id,
                    category,
                    nomination,
                    ip=signals.ip,
                    user_agent=signals.user_agent,
                    form_age_ms=form.age_ms,
                    domain=voter.domain,
                    # (No network: the ballot takes the address's from the client's door,
                    # which it parses and keeps anyway; network_of gives the same for
                    # any address without surrounding spaces (the door strips them,
                    # network_of refuses them), tests/antifraud/test_minimise.py.)
                    # Only a high-band vote carries reasons, which hold it in quarantine (the
                    # script adds `form_replayed` of its own for a nonce used before).
                    reasons=quarantine_reasons(risk),
                    form_nonce=form.nonce,
                    limits=snap.limits if limits is None else limits,
                )

            try:
                outcome = await attempt()
                if outcome.status == "nowindow":
                    # Redis lost its copy of the window (a wipe): restore it from PostgreSQL.
                    await self.restore_window(snap, voter.id)
                    outcome = await attempt()
                if may_step_up(outcome.status, snap.limits.bucket):
                    # A crowd behind one address: each person solves a challenge and votes.
                    if not solved:
                        await self.step_up(snap, voter, category, vote.solution)
                    outcome = await attempt(snap.limits.stepped_up(snap.thresholds.limit_step_up))
            except (AnswerLost, redis.exceptions.TimeoutError) as exc:
                # Sent, but Redis went away before answering: the script may have run. Say
                # what we know, no more; the retry settles it (202, or 409 with the receipt).
                raise VoteRefusal(
                    503,
                    OUTCOME_UNKNOWN,
                    N_(
                        "Voting is briefly unavailable and the answer to your vote was lost: it"
                        " may or may not have been recorded. Send it again in a moment: that is"
                        " safe, since you have one vote per category; if it was recorded, you"
                        " will be shown its receipt."
                    ),
                    headers={"Retry-After": "2"},
                ) from exc
            except redis.exceptions.ConnectionError as exc:
                # Never sent: no connection to be had (refused, the pool's wait ran out).
                raise not_recorded() from exc
            except redis.exceptions.ResponseError as exc:
                if isinstance(exc, redis.exceptions.OutOfMemoryError) or str(exc).startswith("OOM"):
                    raise VoteRefusal(
                        503,
                        UNAVAILABLE,
                        N_(
                            "Voting is briefly unavailable; your vote was NOT recorded."
                            " Try again soon."
                        ),
                        headers={"Retry-After": "5"},
                    ) from exc
                raise
            if outcome.status == "accepted":
                metrics.vote_accepted(category, outcome.state or "counted", outcome.reasons)
            return Cast(outcome, snap, category, nomination)
        except Refusal as exc:
            metrics.vote_refused(vote.category, exc.code)
            raise

    async def snapshot_for(self, voter: Voter, snap: Any) -> Any:
        """The edition the voter votes in, given the current one (`snap`): it, or the
        rehearsal the voter was minted for (a rehearsal's voters vote in it beside the
        current edition; any other edition is voted in only while it is the current
        one)."""
        if snap is None:
            raise VoteRefusal(404, "no_edition", N_("No edition is loaded yet."))
        if voter.edition != snap.edition.slug:
            rehearsal = await self.catalog.rehearsal(voter.edition)
            if rehearsal is None:
                raise VoteRefusal(
                    401,
                    "not_signed_in",
                    N_("Your voter session is for another edition; sign in again."),
                )
            snap = rehearsal
        return snap

    def assess(
        self, snap: Any, voter_id: str, vote: VoteRequest, category: str, signals: Signals
    ) -> tuple[FormCheck, Risk]:
        """antifraud.risk.assess_vote by the edition's rules and the engine's clock: a
        form token may name the vote's category (a ballot) or its nomination (the
        nomination's page)."""
        return assess_vote(
            self.tokens,
            vote.form_token,
            voter_id,
            snap.thresholds,
            now=self.clock.now().timestamp(),
            places=(category, vote.nomination),
            user_agent=signals.user_agent,
            accept_language=signals.accept_language,
            fetch_metadata=signals.fetch_metadata,
            webdriver=vote.webdriver,
            honeypot=signals.honeypot,
        )

    def new_challenge(self, snap: Any, purpose: str, subject: str) -> dict[str, Any]:
        rules = snap.thresholds
        return self.challenges.issue(
            purpose,
            subject,
            max_number=rules.challenge_max_number,
            expires_s=rules.challenge_expires_s,
        )

    async def step_up(self, snap: Any, voter: Voter, category: str, solution: str | None) -> None:
        """Let a middle-band vote through with a solved challenge, else refuse it with
        428 and a fresh challenge to solve."""
        subject = f"{voter.id}|{category}"
        code = CHALLENGE_REQUIRED
        if solution:
            verdict = await self.challenges.verify(solution, "vote", subject)
            if verdict.ok:
                return
            code = CHALLENGE_FAILED
        raise VoteRefusal(
            428,
            code,
            N_(
                "Before we record this vote, please confirm you are a person: tick the box"
                " and wait a few seconds while your browser does a small calculation."
            )
            if code == CHALLENGE_REQUIRED
            else N_(
                "That confirmation did not work or was already used. Tick the box again;"
                " your vote was NOT recorded yet."
            ),
            extra={"challenge": self.new_challenge(snap, "vote", subject)},
        )

    async def restore_window(self, snap: Any, voter_id: str) -> None:
        """Redis lost this edition's window (it came back empty): repair the edition
        from the ledger before anyone votes again, then write the window.

        Without the ballots a voter who already voted would be let vote again in the
        same category and get a 202 whose vote the ledger then skips; so the window, the
        one key every vote needs, is written last, by `ledger.repair`, after the ballots
        and counters are back. One process repairs, under an advisory lock; a vote
        arriving meanwhile is refused as unavailable, with nothing recorded, and its
        retry goes through once the window is back. While PostgreSQL is away nothing can
        be repaired, so voting waits for it: a wiped Redis alone cannot prove who voted."""
        slug = snap.edition.slug
        try:
            async with self.db.acquire(timeout=2) as conn:
                replayed = await ledger.repair_if_lost(
                    self.ballot.redis, conn, self.prefix, slug, voter_id
                )
            if replayed is not None:
                if replayed:
                    log.warning("Redis had lost edition %s: %d votes restored", slug, replayed)
                return
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("edition %s cannot be repaired while PostgreSQL is away (%s)", slug, exc)
        raise not_recorded()


def not_recorded() -> VoteRefusal:
    """The 503 of a vote that never reached Redis's script: nothing was recorded."""
    return VoteRefusal(
        503,
        UNAVAILABLE,
        N_("Voting is briefly unavailable; your vote was NOT recorded. Try again in a moment."),
        headers={"Retry-After": "2"},
    )


# -- the answer ---------------------------------------------------------------------------

_LIMIT_NAMES = {"address": N_("address"), "network": N_("network"), "domain": N_("email domain")}


def refusal_of(outcome: Outcome, category: str) -> VoteRefusal | None:
    """The refusal the script's outcome means (None for an accepted vote), counted in
    the votes-refused metric."""
    metrics.outcome_refused(outcome.status, category)
    if outcome.status == "accepted":
        return None
    if outcome.status == "duplicate":
        return VoteRefusal(
            409,
            "already_voted",
            N_("You have already voted in this category; a vote is final."),
            extra={
                "receipt": outcome.receipt,
                "category": category,
                "nomination": outcome.nomination,
            },
        )
    if outcome.status == "limited":
        retry = max(1, int((outcome.retry_after_s or 1) + 0.999))
        return VoteRefusal(
            429,
            "rate_limited",
            N_(
                "Too many votes are coming from your {what} right now; your vote was NOT "
                "recorded. Try again in {seconds} seconds."
            ),
            extra={"limit": outcome.limited},
            headers={"Retry-After": str(retry)},
            what=_translated(_LIMIT_NAMES.get(outcome.limited or "", "network")),
            seconds=retry,
        )
    if outcome.status in {"early", "closed"}:
        return VoteRefusal(
            403,
            "voting_closed" if outcome.status == "closed" else "voting_not_open",
            N_("Voting is closed. It closed on {when}.")
            if outcome.status == "closed"
            else N_("Voting has not opened yet. It opens on {when}."),
            extra={"instant": outcome.boundary.isoformat() if outcome.boundary else None},
            when=_instant(outcome.boundary),
        )
    return VoteRefusal(
        503, UNAVAILABLE, N_("Voting is briefly unavailable."), headers={"Retry-After": "2"}
    )


def answer(cast: Cast) -> VoteAccepted | VoteRefusal:
    """The reply to a cast vote: its receipt (202), or the refusal its outcome means."""
    outcome = cast.outcome
    if outcome.status != "accepted":
        return refusal_of(outcome, cast.category)  # type: ignore[return-value]
    assert outcome.receipt is not None and outcome.cast_at is not None
    return VoteAccepted(
        outcome.receipt,
        cast.snap.edition.slug,
        cast.category,
        cast.nomination,
        outcome.cast_at,
        outcome.state != "held",
    )
