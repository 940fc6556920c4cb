"""Privacy by design (issue 20): the retention policy and the purge that applies it.

What the engine keeps about a voter, and for how long, is an edition rule
(`[rules.privacy]` in the edition file), locked when voting opens with the other rules:

- `outbox_hours` (24): a mail (the sign-in link and the address it went to) is deleted
  this many hours after it was delivered, or after it was written when the sender gave
  up on it (MAX_ATTEMPTS); mail still being retried stays.
- `signals_days_after_publication` (30): the fraud signals stored on each vote (full
  address, network, agent, email domain, form timing and nonce) and on each voter (the
  address, network, agent and email domain they confirmed from) are erased this many
  days after the edition's results are published: the period in which a nominator may
  ask the committee to look again at its held votes. Before publication they are the
  evidence the detectors and the committee work on, so they stay.

What stays for good: a vote's receipt, voter pseudonym, category, nomination, instant,
verdict and its reasons, which are what the published result, its Merkle root and every
receipt's proof are made of (publication_leaves keep their own copy of the leaves).

The purge (`voting privacy purge`, and every ten minutes in `serve`) erases what is due
in batches, each batch its own transaction, under an advisory lock so that two workers
never purge at once, and writes one audit row per run with the counts (never a value).
The erasure itself runs in SECURITY DEFINER functions (0013_privacy.sql) that decide
what is due from the database's own clock and the edition's stored rules: the
application role cannot erase a signal early, nor touch any other column of a vote.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

# The rules, their defaults and their check: voting/privacy_rules.py (the edition
# parser's too); an edition's are `edition.rules.privacy`.
from .contest.rules import EditionRules
from .mail import MAX_ATTEMPTS

log = logging.getLogger(__name__)

# The advisory-lock key space of purges (detectors use 7717, ledger repairs 7718).
PRIVACY_LOCK = 7721
BATCH = 5000

# The columns the purge erases, for the README, the data page and the tests.
VOTE_SIGNALS = ("ip", "network", "user_agent", "email_domain", "form_age_ms", "form_nonce")
VOTER_SIGNALS = ("ip", "network", "user_agent", "domain")


@dataclass
class PurgeReport:
    vote_signals: int = 0
    voter_signals: int = 0
    outbox_mails: int = 0
    skipped: bool = False  # another process held the lock

    def total(self) -> int:
        return self.vote_signals + self.voter_signals + self.outbox_mails


# The same rule as purge_signals, asked of the same SQL function (0019).
_DUE_VOTES = """
SELECT count(*) FROM votes v
WHERE v.edition_id IN (SELECT id FROM editions WHERE privacy_signals_due(id))
  AND (v.ip, v.network, v.user_agent, v.email_domain, v.form_age_ms, v.form_nonce)
      IS DISTINCT FROM (NULL, NULL, NULL, NULL, NULL, NULL)
"""
_DUE_VOTERS = """
SELECT count(*) FROM voters v
WHERE v.edition_id IN (SELECT id FROM editions WHERE privacy_signals_due(id))
  AND (v.ip IS NOT NULL OR v.network IS NOT NULL OR v.user_agent IS NOT NULL OR v.domain <> '')
"""
_DUE_OUTBOX = """
SELECT count(*) FROM outbox
WHERE coalesce(sent_at, CASE WHEN attempts >= $1 THEN created_at END)
      + make_interval(hours => privacy_outbox_hours()) <= now()
"""


async def due(conn: asyncpg.Connection) -> PurgeReport:
    """What a purge would erase now (the dry run): counts only."""
    return PurgeReport(
        vote_signals=await conn.fetchval(_DUE_VOTES),
        voter_signals=await conn.fetchval(_DUE_VOTERS),
        outbox_mails=await conn.fetchval(_DUE_OUTBOX, MAX_ATTEMPTS),
    )


async def purge(
    pool: asyncpg.Pool, *, dry_run: bool = False, batch: int = BATCH, actor: str = "rule:privacy"
) -> PurgeReport:
    """Erase what the retention policy says is due (or, dry, count it)."""
    async with pool.acquire() as conn:
        if dry_run:
            return await due(conn)
        return await purge_on(conn, batch=batch, actor=actor)


async def purge_on(
    conn: asyncpg.Connection, *, batch: int = BATCH, actor: str = "rule:privacy"
) -> PurgeReport:
    """The purge on one connection: in batches (each its own transaction, or savepoint),
    under the purge lock; one audit row with the counts when anything was erased."""
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1, 0)", PRIVACY_LOCK):
        return PurgeReport(skipped=True)
    try:
        report = PurgeReport()
        while True:
            async with conn.transaction():
                row = await conn.fetchrow("SELECT * FROM purge_signals($1)", batch)
            assert row is not None
            report.vote_signals += row["votes"]
            report.voter_signals += row["voters"]
            if row["votes"] < batch and row["voters"] < batch:
                break
        while True:
            async with conn.transaction():
                deleted = await conn.fetchval("SELECT purge_outbox($1)", batch)
            report.outbox_mails += deleted
            if deleted < batch:
                break
        if report.total():
            detail = {k: v for k, v in asdict(report).items() if k != "skipped"}
            await conn.execute(
                "INSERT INTO audit_log (actor, action, reason, detail)"
                " VALUES ($1, 'privacy.purge', 'retention policy', $2)",
                actor,
                detail,
            )
        return report
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1, 0)", PRIVACY_LOCK)


async def purge_task(pool: asyncpg.Pool, interval: float = 600.0) -> None:
    """`serve`'s background purge: every `interval` seconds; workers take turns (a worker
    that finds the lock taken skips that round)."""
    while True:
        try:
            report = await purge(pool)
            if report.total():
                log.info(
                    "privacy purge: %d vote signals, %d voter signals, %d mails erased",
                    report.vote_signals,
                    report.voter_signals,
                    report.outbox_mails,
                )
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("privacy purge: %s", exc)
        await asyncio.sleep(interval)


def _iso(instant: datetime | None) -> datetime | None:
    """Instants stay datetimes for the page; to_json writes them in ISO 8601, UTC."""
    return instant


def to_json(data: dict[str, Any]) -> bytes:
    """The download: instants as ISO 8601 in UTC ("...Z")."""

    def default(value: object) -> str:
        if isinstance(value, datetime):
            return value.isoformat().replace("+00:00", "Z")
        if isinstance(value, date):
            return value.isoformat()
        raise TypeError(f"not JSON: {type(value).__name__}")

    return json.dumps(data, ensure_ascii=False, indent=2, default=default).encode()


async def voter_data(
    conn: asyncpg.Connection,
    *,
    edition_slug: str,
    voter_id: str,
    pending: dict[str, tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """Everything the engine holds about one voter in one edition, and when each part
    goes: the voter page and its JSON download show this. `pending` is the voter's
    ballot in Redis (category -> (receipt, nomination)): votes answered but not yet
    flushed into the ledger."""
    edition = await conn.fetchrow("SELECT id, rules FROM editions WHERE slug=$1", edition_slug)
    if edition is None:
        return {"edition": edition_slug, "voter": None, "votes": [], "retention": None}
    policy = EditionRules.from_stored(edition["rules"]).privacy
    published_at = await conn.fetchval(
        # As purge_signals counts (0019): from the later of the stated and the real instant.
        "SELECT greatest(published_at, recorded_at) FROM publications WHERE edition_id=$1",
        edition["id"],
    )
    erased_at = policy.signals_erased_at(published_at)
    voter = await conn.fetchrow(
        "SELECT verified_at, domain, ip, network, user_agent FROM voters"
        " WHERE edition_id=$1 AND voter_id=$2",
        edition["id"],
        voter_id,
    )
    rows = await conn.fetch(
        "SELECT category, nomination, receipt, cast_at, verdict, verdict_reasons,"
        " ip, network, user_agent, email_domain, form_age_ms, form_nonce"
        " FROM votes WHERE edition_id=$1 AND voter_id=$2 ORDER BY category",
        edition["id"],
        voter_id,
    )
    votes: list[dict[str, Any]] = []
    for r in rows:
        signals = {c: r[c] for c in VOTE_SIGNALS}
        votes.append(
            {
                "category": r["category"],
                "nomination": r["nomination"],
                "receipt": r["receipt"],
                "cast_at": _iso(r["cast_at"]),
                "verdict": r["verdict"],
                "reasons": list(r["verdict_reasons"]),
                "recorded": True,
                # form_nonce is an internal replay check: said to be there, not shown.
                "signals": {
                    **{c: v for c, v in signals.items() if c != "form_nonce"},
                    "form_nonce": "(stored)" if signals["form_nonce"] is not None else None,
                },
                "signals_erased": all(v is None for v in signals.values()),
                "signals_erased_at": _iso(erased_at),
            }
        )
    recorded = {v["category"] for v in votes}
    for category, (receipt, nomination) in sorted((pending or {}).items()):
        if category not in recorded:
            votes.append(
                {
                    "category": category,
                    "nomination": nomination,
                    "receipt": receipt,
                    "recorded": False,
                }
            )
    return {
        "edition": edition_slug,
        "voter": {
            "pseudonym": voter_id,
            "confirmed_at": _iso(voter["verified_at"]) if voter else None,
            "email_domain": (voter["domain"] or None) if voter else None,
            "ip": voter["ip"] if voter else None,
            "network": voter["network"] if voter else None,
            "user_agent": voter["user_agent"] if voter else None,
        },
        "votes": votes,
        "retention": {
            "outbox_hours": policy.outbox_hours,
            "signals_days_after_publication": policy.signals_days_after_publication,
            "results_published_at": _iso(published_at),
            "signals_erased_at": _iso(erased_at),
            "kept_for_good": [
                "pseudonym",
                "category",
                "nomination",
                "receipt",
                "cast_at",
                "verdict",
                "reasons",
            ],
        },
    }


async def account_data(conn: asyncpg.Connection, user_id: int) -> dict[str, Any]:
    """What the engine holds about a signed-in account (a nominator, a staff member): the
    address and roles, its nominations with their contact details, and the campaigns it
    declared. Kept while the account and its nominations are (README, "Privacy"); a
    nomination withdrawn before voting opens loses its contact address."""
    from .nominations import for_owner

    user = await conn.fetchrow("SELECT email, roles, created_at FROM users WHERE id=$1", user_id)
    if user is None:
        return {}
    declared = await conn.fetch(
        "SELECT m.nomination, e.slug AS edition, m.declared_at, m.domains, m.networks,"
        " m.expected_votes, m.starts_at, m.ends_at, m.note, m.status, m.decision_reason"
        " FROM mobilisations m JOIN editions e ON e.id = m.edition_id"
        " WHERE m.declared_by=$1 ORDER BY m.id",
        user_id,
    )
    return {
        "email": user["email"],
        "roles": sorted(user["roles"]),
        "created_at": user["created_at"],
        "nominations": [n.owner_dict() for n in await for_owner(conn, user_id)],
        "mobilisations": [
            {**dict(m), "networks": [str(n) for n in m["networks"]], "domains": list(m["domains"])}
            for m in declared
        ],
    }
