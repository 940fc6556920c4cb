"""The nomination workflow in PostgreSQL: drafts, submissions, the organizers' decisions.

    draft ──submit──> submitted ──accept──> accepted
                        │   ▲ └──reject──> rejected   (final)
                   return   └─submit─┐
                        ▼            │
                      returned ──────┘

    draft, submitted, returned or accepted ──withdraw (nominator, before voting)──> withdrawn

Nominators create, edit and submit only while the edition's nominations phase is open
(half-open, in the edition's zone: the close instant itself is late). Organizers decide
until public voting opens; from then on the list voters see is fixed. Each state change
is in the append-only audit log (who, when, why) and the nominator is told by mail
through the outbox, in the same transaction.

Submission rules, checked under a per-organization advisory lock so that two submissions
racing from two accounts of one organization cannot both pass:
- the same project (same title from the same organization, compared after normalizing
  case, accents, spacing and punctuation) is submitted once per edition, whatever its fate
  but withdrawal (the nominator's own choice, before voting opens);
- an organization has at most `nominations_per_organization_per_category` projects in
  a category (submitted, returned or accepted: a rejected or withdrawn one no longer
  counts).
"""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

import asyncpg

from .. import mail
from ..accounts import User
from ..contest import GENEVA, Edition, to_local
from ..edition_store import audit, edition_id
from ..errors import Refusal
from ..i18n import N_, current_language, gettext
from .fields import (
    OTHER_LANGUAGES,
    TRANSLATED,
    Fields,
    Problem,
    country_name,
    language_name,
    problem,
    validate,
)

__all__ = [
    "STATUSES",
    "Decision",
    "Nomination",
    "NominationError",
    "clean_idempotency_key",
    "create",
    "decide",
    "geneva_wall",
    "get",
    "issue_public_ids",
    "nominations_problem",
    "normalize_public_id",
    "review_problem",
    "submit",
    "update",
    "validate_decision",
    "withdraw",
    "withdraw_problem",
]

STATUSES = ("draft", "submitted", "returned", "accepted", "rejected", "withdrawn")
WITHDRAWABLE = ("draft", "submitted", "returned", "accepted")
EDITABLE = ("draft", "returned")
# Statuses that use up the organization's place in a category.
_COUNTS_FOR_LIMIT = ("submitted", "returned", "accepted")
# Statuses that make a second submission of the same project a duplicate.
_COUNTS_FOR_DUPLICATE = ("submitted", "returned", "accepted", "rejected")

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CROCKFORD_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})
PUBLIC_ID_LENGTH = 8
REASON_MIN, REASON_MAX = 10, 2000
IDEMPOTENCY_KEY_MAX = 100

_DECISIONS = {"accept": "accepted", "reject": "rejected", "return": "returned"}


# The HTTP status of each refusal's code (409 for a state that forbids the change).
STATUS_OF = {
    "invalid": 422,
    "not_found": 404,
    "nominations_closed": 409,
    "nominations_not_open": 409,
    "review_closed": 409,
    "final": 409,
    "not_editable": 409,
    "not_in_review": 409,
}


class NominationError(Refusal):
    """A refusal: `code` for programs, `problem` for people, `problems` per field (each
    worded in the reader's language where the answer is written, like the problem)."""

    def __init__(
        self, code: str, found: Problem, fields: Mapping[str, Problem] | None = None
    ) -> None:
        self.problem = found
        self.problems = dict(fields or {})
        super().__init__(
            STATUS_OF.get(code, 409),
            code,
            found.template,
            fields={name: p.text() for name, p in self.problems.items()} or None,
            **dict(found.params),
        )

    def field_texts(self, lang: str | None = None) -> dict[str, str]:
        lang = lang or current_language()
        return {name: p.text(lang) for name, p in self.problems.items()}

    def body(self, lang: str | None = None) -> dict[str, Any]:
        body = super().body(lang)
        if self.problems:
            body["error"]["fields"] = self.field_texts(lang)
        return body


# -- public ids --------------------------------------------------------------------------------


def new_public_id() -> str:
    return "N" + "".join(secrets.choice(CROCKFORD) for _ in range(PUBLIC_ID_LENGTH))


def normalize_public_id(raw: str) -> str | None:
    """The canonical form of a public id as a person may type it (n1abc-defg, O for 0)."""
    text = raw.strip().upper().replace("-", "")
    if len(text) != PUBLIC_ID_LENGTH + 1 or not text.startswith("N"):
        return None
    body = text[1:].translate(_CROCKFORD_ALIASES)
    if not all(ch in CROCKFORD for ch in body):
        return None
    return "N" + body


async def issue_public_ids(conn: asyncpg.Connection, count: int) -> list[str]:
    """Fresh public ids, recorded forever in issued_public_ids so none is ever reused."""
    issued: list[str] = []
    while len(issued) < count:
        wanted = {new_public_id() for _ in range(count - len(issued))}
        rows = await conn.fetch(
            "INSERT INTO issued_public_ids (public_id) SELECT unnest($1::text[])"
            " ON CONFLICT DO NOTHING RETURNING public_id",
            sorted(wanted),
        )
        issued += [r["public_id"] for r in rows]
    return issued


# -- time rules --------------------------------------------------------------------------------


def geneva_wall(instant: datetime, tz: Any = GENEVA) -> str:
    """An instant as people in the edition's zone read it, with the zone said in full."""
    local = to_local(instant, tz)
    clock = f"{local:%H:%M}"
    if local.second or local.microsecond:
        clock += f":{local:%S}"
    if local.microsecond:
        clock += f".{local.microsecond:06d}"
    offset = local.utcoffset()
    assert offset is not None
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    utc = f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    zone = "Geneva time" if getattr(tz, "key", None) == "Europe/Zurich" else tz.key
    return f"{local.day} {local:%B %Y}, {clock} {zone} ({local.tzname()}, {utc})"


def nominations_problem(edition: Edition, now: datetime) -> Problem | None:
    """Why a nominator may not create, edit or submit now; None while the phase is open."""
    phase = edition.phase("nominations")
    if now < phase.opens_at:
        return problem(
            "nominations_not_open",
            N_("Nominations open on {opens}."),
            opens=geneva_wall(phase.opens_at, edition.tz),
        )
    if now >= phase.closes_at:
        return problem(
            "nominations_closed",
            N_("Nominations closed on {closes}: late submissions and changes are refused."),
            closes=geneva_wall(phase.closes_at, edition.tz),
        )
    return None


def review_problem(edition: Edition, now: datetime) -> Problem | None:
    """Organizers decide until public voting opens; after that the list is fixed."""
    voting = edition.phase("voting")
    if now >= voting.opens_at:
        return problem(
            "review_closed",
            N_("Decisions closed when public voting opened on {opens}: the list is fixed."),
            opens=geneva_wall(voting.opens_at, edition.tz),
        )
    return None


# -- the nomination as stored ------------------------------------------------------------------


@dataclass(frozen=True)
class Nomination:
    id: int
    public_id: str
    edition_id: int
    edition_slug: str
    category: str
    status: str
    owner_id: int
    owner_email: str
    title: str
    organization: str
    stakeholder_type: str | None
    country: str
    website: str | None
    start_date: date | None
    contact_email: str | None
    summary: str
    description: str
    partners: tuple[str, ...]
    languages: tuple[str, ...]
    earlier_winner: bool
    earlier_winner_marked: bool
    decision_reason: str | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    decided_at: datetime | None
    # The title and summary in other languages: {lang: {"title", "summary"}}.
    translations: dict[str, dict[str, str]] = field(default_factory=dict, hash=False)

    def in_language(self, lang: str) -> Nomination:
        """The nomination as a reader of `lang` sees it: the title and summary in that
        language where its nominator gave them, else the English ones."""
        there = self.translations.get(lang, {})
        if not there:
            return self
        return replace(
            self,
            title=there.get("title") or self.title,
            summary=there.get("summary") or self.summary,
        )

    @property
    def editable(self) -> bool:
        return self.status in EDITABLE

    def form_values(self, *, as_text: bool = True) -> dict[str, Any]:
        """The stored content in the shape a form (`as_text`) or a JSON body gives it."""
        return {
            "category": self.category,
            "title": self.title,
            "organization": self.organization,
            "stakeholder_type": self.stakeholder_type or "",
            "country": self.country,
            "website": self.website or "",
            "start_date": self.start_date.isoformat() if self.start_date else "",
            "contact_email": self.contact_email or "",
            "summary": self.summary,
            "description": self.description,
            "partners": "\n".join(self.partners) if as_text else list(self.partners),
            "languages": ", ".join(self.languages) if as_text else list(self.languages),
            "earlier_winner": self.earlier_winner,
            **(
                {
                    f"{name}_{lang}": self.translations.get(lang, {}).get(name, "")
                    for lang in OTHER_LANGUAGES
                    for name in TRANSLATED
                }
                if as_text
                else {"translations": self.translations}
            ),
        }

    def public_dict(self) -> dict[str, Any]:
        """What anyone may see of an accepted nomination (never the contact address)."""
        return {
            "public_id": self.public_id,
            "edition": self.edition_slug,
            "category": self.category,
            "title": self.title,
            "organization": self.organization,
            "stakeholder_type": self.stakeholder_type,
            "country": self.country,
            "country_name": country_name(self.country) if self.country else None,
            "website": self.website,
            "start_date": self.start_date.isoformat() if self.start_date else None,
            "summary": self.summary,
            "description": self.description,
            "partners": list(self.partners),
            "languages": list(self.languages),
            "language_names": [language_name(code) for code in self.languages],
            "translations": self.translations,
            "url": f"/nominations/{self.public_id}",
        }

    def owner_dict(self) -> dict[str, Any]:
        """What the nominator (and organizers) see: status, reason, contact, timestamps."""
        return {
            **self.public_dict(),
            "status": self.status,
            "contact_email": self.contact_email,
            "earlier_winner": self.earlier_winner,
            "earlier_winner_marked": self.earlier_winner_marked,
            "decision_reason": self.decision_reason,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "submitted_at": self.submitted_at,
            "decided_at": self.decided_at,
        }


SELECT = (
    "SELECT n.*, e.slug AS edition_slug, u.email AS owner_email FROM nominations n"
    " JOIN editions e ON e.id = n.edition_id JOIN users u ON u.id = n.owner_id"
)


def from_row(row: asyncpg.Record) -> Nomination:
    return Nomination(
        id=row["id"],
        public_id=row["public_id"],
        edition_id=row["edition_id"],
        edition_slug=row["edition_slug"],
        category=row["category"],
        status=row["status"],
        owner_id=row["owner_id"],
        owner_email=row["owner_email"],
        title=row["title"],
        organization=row["organization"],
        stakeholder_type=row["stakeholder_type"],
        country=row["country"],
        website=row["website"],
        start_date=row["start_date"],
        contact_email=row["contact_email"],
        summary=row["summary"],
        description=row["description"],
        partners=tuple(row["partners"]),
        languages=tuple(row["languages"]),
        earlier_winner=row["earlier_winner"],
        earlier_winner_marked=row["earlier_winner_marked"],
        decision_reason=row["decision_reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        submitted_at=row["submitted_at"],
        decided_at=row["decided_at"],
        translations=dict(row["translations"] or {}),
    )


async def get(conn: asyncpg.Connection, public_id: str, *, lock: bool = False) -> Nomination | None:
    canonical = normalize_public_id(public_id)
    if canonical is None:
        return None
    row = await conn.fetchrow(
        SELECT + " WHERE n.public_id = $1" + (" FOR UPDATE OF n" if lock else ""), canonical
    )
    return None if row is None else from_row(row)


def _not_found() -> NominationError:
    return NominationError("not_found", problem("not_found", N_("There is no such nomination.")))


async def _own(conn: asyncpg.Connection, owner: User, public_id: str) -> Nomination:
    """The owner's nomination, locked; another's looks exactly like a missing one."""
    found = await get(conn, public_id, lock=True)
    if found is None or found.owner_id != owner.id:
        raise _not_found()
    return found


# -- nominator actions -------------------------------------------------------------------------


def _content_args(fields: Fields) -> list[Any]:
    return [
        fields.category,
        fields.title,
        fields.title_key,
        fields.organization,
        fields.organization_key,
        fields.stakeholder_type,
        fields.country or "",
        fields.website,
        fields.start_date,
        fields.contact_email,
        fields.summary,
        fields.description,
        list(fields.partners),
        list(fields.languages),
        fields.earlier_winner,
        fields.search_text,
        fields.translations,
    ]


_CONTENT_COLUMNS = (
    "category, title, title_key, organization, organization_key, stakeholder_type, country,"
    " website, start_date, contact_email, summary, description, partners, languages,"
    " earlier_winner, search_text, translations"
)
# Built from the constant column list above, never from input.
_INSERT = (
    f"INSERT INTO nominations (public_id, edition_id, owner_id, idempotency_key,"  # noqa: S608
    f" status, created_at, updated_at, {_CONTENT_COLUMNS})"
    " VALUES ($1, $2, $3, $4, 'draft', $5, $5,"
    " $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
    " ON CONFLICT (owner_id, idempotency_key) DO NOTHING RETURNING id"
)
_UPDATE = (
    f"UPDATE nominations SET ({_CONTENT_COLUMNS}, updated_at) ="  # noqa: S608
    " ($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
    " WHERE id = $1"
)


def _today(edition: Edition, now: datetime) -> date:
    return to_local(now, edition.tz).date()


def _check_open(edition: Edition, now: datetime) -> None:
    closed = nominations_problem(edition, now)
    if closed is not None:
        raise NominationError(closed.code, closed)


def _check_fields(
    raw: Mapping[str, Any], edition: Edition, now: datetime, *, complete: bool
) -> Fields:
    result = validate(raw, edition=edition, today=_today(edition, now), complete=complete)
    if result.fields is None:
        raise NominationError(
            "invalid", problem("invalid", N_("Some fields need attention.")), result.errors
        )
    return result.fields


def clean_idempotency_key(raw: object) -> str | None:
    if not isinstance(raw, str):
        return None
    key = raw.strip()
    if not key or len(key) > IDEMPOTENCY_KEY_MAX or not key.isascii() or not key.isprintable():
        return None
    return key


async def create(
    conn: asyncpg.Connection,
    edition: Edition,
    owner: User,
    raw: Mapping[str, Any],
    *,
    now: datetime,
    base_url: str,
    idempotency_key: str | None = None,
    submit: bool = False,
) -> tuple[Nomination, bool]:
    """A new draft (submitted at once when `submit`). Returns it and whether it is new.

    The same idempotency key from the same owner gives back the nomination the first
    request made: a double click on the form's button creates one nomination.
    """
    key = clean_idempotency_key(idempotency_key)
    if key is not None:
        existing = await _by_key(conn, owner, key)
        if existing is not None:
            return existing, False
    _check_open(edition, now)
    fields = _check_fields(raw, edition, now, complete=submit)
    async with conn.transaction():
        eid = await edition_id(conn, edition.slug)
        if eid is None:
            raise _not_found()
        [public_id] = await issue_public_ids(conn, 1)
        new_id = await conn.fetchval(
            _INSERT,
            public_id,
            eid,
            owner.id,
            key,
            now,
            *_content_args(fields),
        )
        if new_id is None:  # the same key committed by a concurrent request
            existing = await _by_key(conn, owner, key or "")
            if existing is None:
                raise _not_found()
            return existing, False
        await audit(
            conn,
            actor=f"user:{owner.id}",
            action="nomination.create",
            edition=edition.slug,
            subject=public_id,
        )
        nomination = await get(conn, public_id, lock=True)
        assert nomination is not None
        if submit:
            nomination = await _submit(conn, edition, nomination, fields, now, base_url)
    return nomination, True


async def _by_key(conn: asyncpg.Connection, owner: User, key: str) -> Nomination | None:
    row = await conn.fetchrow(
        SELECT + " WHERE n.owner_id = $1 AND n.idempotency_key = $2", owner.id, key
    )
    return None if row is None else from_row(row)


async def update(
    conn: asyncpg.Connection,
    edition: Edition,
    owner: User,
    public_id: str,
    raw: Mapping[str, Any],
    *,
    now: datetime,
    base_url: str,
    submit: bool = False,
) -> Nomination:
    """Replace a draft's or a returned nomination's content; submit it when asked."""
    async with conn.transaction():
        nomination = await _own(conn, owner, public_id)
        if submit and nomination.status == "submitted":
            return nomination  # the form's submit button clicked twice
        _check_open(edition, now)
        _check_editable(nomination)
        fields = _check_fields(raw, edition, now, complete=submit)
        await conn.execute(
            _UPDATE,
            nomination.id,
            *_content_args(fields),
            now,
        )
        nomination = await get(conn, nomination.public_id, lock=True)
        assert nomination is not None
        if submit:
            nomination = await _submit(conn, edition, nomination, fields, now, base_url)
    return nomination


def _check_editable(nomination: Nomination) -> None:
    if nomination.status == "rejected":
        raise NominationError(
            "final",
            problem(
                "final", N_("This nomination was rejected; it cannot be changed or resubmitted.")
            ),
        )
    if nomination.status not in EDITABLE:
        raise NominationError(
            "not_editable",
            problem(
                "not_editable",
                N_(
                    "This nomination is {status}; it can only be changed while it is a draft"
                    " or sent back."
                ),
                status=nomination.status,
            ),
        )


async def submit(
    conn: asyncpg.Connection,
    edition: Edition,
    owner: User,
    public_id: str,
    *,
    now: datetime,
    base_url: str,
) -> Nomination:
    """Submit a draft or a returned nomination as stored. Submitting twice is harmless."""
    async with conn.transaction():
        nomination = await _own(conn, owner, public_id)
        if nomination.status == "submitted":
            return nomination  # a double click
        _check_open(edition, now)
        _check_editable(nomination)
        fields = _check_fields(nomination.form_values(as_text=False), edition, now, complete=True)
        return await _submit(conn, edition, nomination, fields, now, base_url)


async def _submit(
    conn: asyncpg.Connection,
    edition: Edition,
    nomination: Nomination,
    fields: Fields,
    now: datetime,
    base_url: str,
) -> Nomination:
    """The submission rules, then the change of state; inside the caller's transaction."""
    org_key = fields.organization_key
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        f"nomination-organization:{nomination.edition_id}:{org_key}",
    )
    errors: dict[str, Problem] = {}
    duplicate = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM nominations WHERE edition_id = $1"
        " AND organization_key = $2 AND title_key = $3 AND id <> $4 AND status = ANY($5))",
        nomination.edition_id,
        org_key,
        fields.title_key,
        nomination.id,
        list(_COUNTS_FOR_DUPLICATE),
    )
    if duplicate:
        errors["title"] = problem(
            "duplicate",
            N_("{organization} has already submitted a project with this title."),
            organization=fields.organization,
        )
    limit = edition.rules.nominations.nominations_per_organization_per_category
    taken = await conn.fetchval(
        "SELECT count(*) FROM nominations WHERE edition_id = $1 AND organization_key = $2"
        " AND category = $3 AND id <> $4 AND status = ANY($5)",
        nomination.edition_id,
        org_key,
        fields.category,
        nomination.id,
        list(_COUNTS_FOR_LIMIT),
    )
    if taken >= limit:
        errors["category"] = problem(
            "organization_limit",
            N_(
                "{organization} already has {taken} project(s) in this category;"
                " each organization may submit {limit}."
            ),
            organization=fields.organization,
            taken=taken,
            limit=limit,
        )
    if errors:
        raise NominationError(
            "invalid", problem("invalid", N_("Some fields need attention.")), errors
        )
    await conn.execute(
        "UPDATE nominations SET status = 'submitted', submitted_at = $2, updated_at = $2"
        " WHERE id = $1",
        nomination.id,
        now,
    )
    await audit(
        conn,
        actor=f"user:{nomination.owner_id}",
        action="nomination.resubmit" if nomination.status == "returned" else "nomination.submit",
        edition=edition.slug,
        subject=nomination.public_id,
        detail={"category": fields.category, "title": fields.title},
    )
    link = f"{base_url}/nominations/{nomination.public_id}"
    await mail.enqueue(
        conn,
        nomination.owner_email,
        gettext("We received your nomination {public_id}").format(public_id=nomination.public_id),
        gettext(
            "Your nomination “{title}” ({public_id}) is submitted in category {category}.\n\n"
            "The organizers will review it and tell you their decision by email. "
            "You can follow it here:\n\n{link}\n"
        ).format(
            title=fields.title,
            public_id=nomination.public_id,
            category=fields.category,
            link=link,
        ),
    )
    submitted = await get(conn, nomination.public_id)
    assert submitted is not None
    return submitted


# -- organizer decisions -----------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    decision: str  # accept | reject | return
    reason: str
    earlier_winner: bool

    @property
    def status(self) -> str:
        return _DECISIONS[self.decision]


def validate_decision(raw: Mapping[str, Any]) -> tuple[Decision | None, dict[str, Problem]]:
    """An organizer's decision from a form or a body; per-field problems, never raises."""
    errors: dict[str, Problem] = {}
    decision = raw.get("decision")
    if not isinstance(decision, str) or decision.strip() not in _DECISIONS:
        errors["decision"] = problem("required", N_("Choose accept, send back or reject."))
        decision = ""
    decision = decision.strip()
    reason = raw.get("reason")
    if reason is None:
        reason = ""
    if not isinstance(reason, str):
        errors["reason"] = problem("type", N_("Enter text here."))
        reason = ""
    reason = reason.strip()
    if any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in "\n\r\t" for ch in reason):
        errors["reason"] = problem("control", N_("This contains invisible control characters."))
    if "reason" not in errors:
        if decision in ("reject", "return") and len(reason) < REASON_MIN:
            errors["reason"] = problem(
                "required",
                N_("Tell the nominator why, in at least {min} characters."),
                min=REASON_MIN,
            )
        elif len(reason) > REASON_MAX:
            errors["reason"] = problem(
                "too_long", N_("Use at most {max} characters."), max=REASON_MAX
            )
    flag = raw.get("earlier_winner")
    earlier = flag is True or (
        isinstance(flag, str) and flag.strip().lower() in ("1", "on", "true", "yes")
    )
    if earlier and decision in ("accept", "return"):
        errors["earlier_winner"] = problem(
            "earlier_winner",
            N_("An earlier edition's winner is not eligible: reject it."),
        )
    if errors:
        return None, errors
    return Decision(decision, reason, earlier), {}


async def decide(
    conn: asyncpg.Connection,
    edition: Edition,
    organizer: User,
    public_id: str,
    raw: Mapping[str, Any],
    *,
    now: datetime,
    base_url: str,
) -> Nomination:
    """Accept, reject or send back a submitted nomination, on the record, and tell its owner."""
    decision, errors = validate_decision(raw)
    if decision is None:
        raise NominationError(
            "invalid", problem("invalid", N_("Some fields need attention.")), errors
        )
    async with conn.transaction():
        nomination = await get(conn, public_id, lock=True)
        if nomination is None or nomination.edition_slug != edition.slug:
            raise _not_found()
        if nomination.status == decision.status:
            return nomination  # the same decision twice: a double click
        closed = review_problem(edition, now)
        if closed is not None:
            raise NominationError(closed.code, closed)
        if nomination.status != "submitted":
            raise NominationError(
                "not_in_review",
                problem(
                    "not_in_review",
                    N_("Only submitted nominations can be decided; this one is {status}."),
                    status=nomination.status,
                ),
            )
        await conn.execute(
            "UPDATE nominations SET status = $2, decision_reason = $3, decided_by = $4,"
            " decided_at = $5, updated_at = $5,"
            " earlier_winner_marked = earlier_winner_marked OR $6 WHERE id = $1",
            nomination.id,
            decision.status,
            decision.reason or None,
            organizer.id,
            now,
            decision.earlier_winner,
        )
        await audit(
            conn,
            actor=f"user:{organizer.id}",
            action=f"nomination.{decision.decision}",
            edition=edition.slug,
            subject=nomination.public_id,
            reason=decision.reason or None,
            detail={
                "from": nomination.status,
                "to": decision.status,
                "organizer": organizer.email,
                "earlier_winner": decision.earlier_winner,
                "decided_at": now.isoformat(),
            },
        )
        await mail.enqueue(
            conn, nomination.owner_email, *_decision_mail(edition, nomination, decision, base_url)
        )
        decided = await get(conn, nomination.public_id)
        assert decided is not None
        return decided


def _decision_mail(
    edition: Edition, nomination: Nomination, decision: Decision, base_url: str
) -> tuple[str, str]:
    link = f"{base_url}/nominations/{nomination.public_id}"
    names = {"public_id": nomination.public_id, "title": nomination.title}
    reason = decision.reason or gettext("(none given)")
    if decision.decision == "accept":
        subject = gettext("Your nomination {public_id} is accepted")
        body = gettext(
            "Your nomination “{title}” ({public_id}) is accepted: it will be listed for the"
            " public online vote.\n\nThe organizers' note: {reason}\n\n{link}\n"
        )
    elif decision.decision == "reject":
        subject = gettext("Your nomination {public_id} was not accepted")
        body = gettext(
            "Your nomination “{title}” ({public_id}) was not accepted.\n\n"
            "The organizers' reason: {reason}\n\n{link}\n"
        )
    else:
        subject = gettext("Your nomination {public_id} needs changes")
        body = gettext(
            "The organizers sent your nomination “{title}” ({public_id}) back for changes.\n\n"
            "Their reason: {reason}\n\nEdit it and submit it again before nominations close"
            " on {closes}:\n\n{link}/edit\n"
        )
    closes = geneva_wall(edition.phase("nominations").closes_at, edition.tz)
    return (
        subject.format(**names),
        body.format(**names, reason=reason, link=link, closes=closes),
    )


def withdraw_problem(edition: Edition, now: datetime) -> Problem | None:
    """Why a nomination can no longer be withdrawn: public voting has opened (from then on
    the list voters see is fixed), or None."""
    voting = edition.phase("voting")
    if now < voting.opens_at:
        return None
    return problem(
        "voting_open",
        N_("Public voting opened on {opened}: a nomination can no longer be withdrawn."),
        opened=geneva_wall(voting.opens_at, edition.tz),
    )


async def withdraw(
    conn: asyncpg.Connection, edition: Edition, owner: User, public_id: str, *, now: datetime
) -> Nomination:
    """The nominator withdraws its nomination before public voting opens: it leaves every
    list and its contact address is erased (README, "Privacy"); on the record. Withdrawing
    twice is harmless; a rejected nomination stays rejected."""
    async with conn.transaction():
        nomination = await _own(conn, owner, public_id)
        if nomination.status == "withdrawn":
            return nomination
        closed = withdraw_problem(edition, now)
        if closed is not None:
            raise NominationError("voting_open", closed)
        if nomination.status not in WITHDRAWABLE:
            raise NominationError(
                "final",
                problem(
                    "final",
                    N_("This nomination was rejected; it cannot be changed or resubmitted."),
                ),
            )
        await conn.execute(
            "UPDATE nominations SET status = 'withdrawn', contact_email = NULL, updated_at = $2"
            " WHERE id = $1",
            nomination.id,
            now,
        )
        await audit(
            conn,
            actor=f"user:{owner.id}",
            action="nomination.withdraw",
            edition=edition.slug,
            subject=f"nomination:{nomination.public_id}",
            detail={"from": nomination.status},
        )
        withdrawn = await get(conn, nomination.public_id)
    assert withdrawn is not None
    return withdrawn
