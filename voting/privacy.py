"""Privacy by design (issue 20): the retention policy and the purge that applies it.

What the engine keeps about a voter, and for how long, is an edition rule
(`[rules.privacy]` in the edition file), locked when voting opens with the other rules:

- `outbox_hours` (24): a mail (the sign-in link and the address it went to) is deleted
  this many hours after it was delivered, or after it was written when the sender gave
  up on it (MAX_ATTEMPTS); mail still being retried stays.
- `signals_days_after_publication` (30): the fraud signals stored on each vote (the
  address's kept prefix and keyed hash, network, the agent's summary, email domain, form
  timing and nonce) and on each voter (the same of where they confirmed from, and their
  email domain) are erased this many
  days after the edition's results are published: the period in which a nominator may
  ask the committee to look again at its held votes. Before publication they are the
  evidence the detectors and the committee work on, so they stay.

What stays for good: a vote's receipt, voter pseudonym, category, nomination, instant,
verdict and its reasons, which are what the published result, its Merkle root and every
receipt's proof are made of (publication_leaves keep their own copy of the leaves).

Minimised at the door (antifraud/minimise.py, 0020): no full address nor agent is
written. Rows stored before 0020 keep theirs until the purge minimises them (the first
thing each purge does, whatever the policy says: `minimise_legacy`), through SECURITY
DEFINER functions that erase both in the statement that writes the hash and summary.

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

from .antifraud.minimise import address_hash, agent_summary

# The rules, their defaults and their check: voting/privacy_rules.py (the edition
# parser's too); an edition's are `edition.rules.privacy`.
from .contest.rules import EditionRules
from .mail import MAX_ATTEMPTS

log = logging.getLogger(__name__)

# The advisory-lock key space of purges (detectors use 7717, ledger repairs 7718).
PRIVACY_LOCK = 7721
BATCH = 5000

# The columns the purge erases, for the README, the data page and the tests. `ip` and
# `user_agent` hold a value only on rows stored before minimisation (0020), until the
# purge minimises them.
VOTE_SIGNALS = (
    "ip_prefix",
    "ip_hash",
    "network",
    "agent",
    "email_domain",
    "form_age_ms",
    "form_nonce",
    "ip",
    "user_agent",
)
VOTER_SIGNALS = ("ip_prefix", "ip_hash", "network", "agent", "domain", "ip", "user_agent")
# The signals a voter's data shows as stored without their value: internal checks of
# equality (a replayed form, the same address), which say nothing read on their own.
OPAQUE = ("form_nonce", "ip_hash")


@dataclass
class PurgeReport:
    vote_signals: int = 0
    voter_signals: int = 0
    outbox_mails: int = 0
    # Rows stored before minimisation (0020) that held a full address or agent.
    minimised_votes: int = 0
    minimised_voters: int = 0
    skipped: bool = False  # another process held the lock

    def total(self) -> int:
        return (
            self.vote_signals
            + self.voter_signals
            + self.outbox_mails
            + self.minimised_votes
            + self.minimised_voters
        )


# The same rule as purge_signals, asked of the same SQL function (0019).
_DUE_VOTES = """
SELECT count(*) FROM votes v
WHERE v.edition_id IN (SELECT id FROM editions WHERE privacy_signals_due(id))
  AND (v.ip, v.network, v.user_agent, v.email_domain, v.form_age_ms, v.form_nonce,
       v.ip_hash, v.ip_prefix, v.agent)
      IS DISTINCT FROM (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
"""
_DUE_VOTERS = """
SELECT count(*) FROM voters v
WHERE v.edition_id IN (SELECT id FROM editions WHERE privacy_signals_due(id))
  AND (v.ip IS NOT NULL OR v.network IS NOT NULL OR v.user_agent IS NOT NULL OR v.domain <> ''
       OR v.ip_hash IS NOT NULL OR v.ip_prefix IS NOT NULL OR v.agent IS NOT NULL)
"""
# Rows stored before minimisation (0020) that still hold a full address or agent. Each
# of these reads the partial index votes_unminimised or voters_unminimised (0020), whose
# predicate is this WHERE word for word: a few old rows, not the whole ledger, every ten
# minutes (tests/antifraud/test_minimise.py reads the plans).
_LEGACY_VOTES = "SELECT count(*) FROM votes WHERE ip IS NOT NULL OR user_agent IS NOT NULL"
_LEGACY_VOTERS = "SELECT count(*) FROM voters WHERE ip IS NOT NULL OR user_agent IS NOT NULL"
_LEGACY_VOTE_ROWS = (
    "SELECT edition_id, voter_id, category, ip, user_agent FROM votes"
    " WHERE ip IS NOT NULL OR user_agent IS NOT NULL LIMIT $1"
)
_LEGACY_VOTER_ROWS = (
    "SELECT edition_id, voter_id, ip, user_agent FROM voters"
    " WHERE ip IS NOT NULL OR user_agent IS NOT NULL LIMIT $1"
)
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
        minimised_votes=await conn.fetchval(_LEGACY_VOTES),
        minimised_voters=await conn.fetchval(_LEGACY_VOTERS),
    )


async def purge(
    pool: asyncpg.Pool,
    *,
    address_key: bytes,
    dry_run: bool = False,
    batch: int = BATCH,
    actor: str = "rule:privacy",
) -> PurgeReport:
    """Minimise rows stored before minimisation and erase what the retention policy says
    is due (or, dry, count both). `address_key`: minimise.address_key of the engine's
    secret, which hashed every other address."""
    async with pool.acquire() as conn:
        if dry_run:
            return await due(conn)
        return await purge_on(conn, address_key=address_key, batch=batch, actor=actor)


async def minimise_legacy(
    conn: asyncpg.Connection, report: PurgeReport, *, address_key: bytes, batch: int = BATCH
) -> None:
    """Rows stored before minimisation (0020) that still hold a full address or agent:
    their hash and agent's summary made here (the key and the parser are the engine's),
    written by minimise_vote_signals and minimise_voter_signals, which erase the address
    and the agent in the same statement and take the prefix from the row itself."""
    while True:
        async with conn.transaction():
            rows = await conn.fetch(_LEGACY_VOTE_ROWS, batch)
            for edition_id, group in _by_edition(rows).items():
                report.minimised_votes += await conn.fetchval(
                    "SELECT minimise_vote_signals($1, $2, $3, $4, $5)",
                    edition_id,
                    [r["voter_id"] for r in group],
                    [r["category"] for r in group],
                    [address_hash(address_key, r["ip"] or "") for r in group],
                    [agent_summary(r["user_agent"]) for r in group],
                )
        if len(rows) < batch:
            break
    while True:
        async with conn.transaction():
            rows = await conn.fetch(_LEGACY_VOTER_ROWS, batch)
            for edition_id, group in _by_edition(rows).items():
                report.minimised_voters += await conn.fetchval(
                    "SELECT minimise_voter_signals($1, $2, $3, $4)",
                    edition_id,
                    [r["voter_id"] for r in group],
                    [address_hash(address_key, r["ip"] or "") for r in group],
                    [agent_summary(r["user_agent"]) for r in group],
                )
        if len(rows) < batch:
            break


def _by_edition(rows: list[asyncpg.Record]) -> dict[int, list[asyncpg.Record]]:
    groups: dict[int, list[asyncpg.Record]] = {}
    for r in rows:
        groups.setdefault(r["edition_id"], []).append(r)
    return groups


async def purge_on(
    conn: asyncpg.Connection,
    *,
    address_key: bytes,
    batch: int = BATCH,
    actor: str = "rule:privacy",
) -> PurgeReport:
    """The purge on one connection: in batches (each its own transaction, or savepoint),
    under the purge lock; one audit row with the counts when anything was erased."""
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1, 0)", PRIVACY_LOCK):
        return PurgeReport(skipped=True)
    try:
        report = PurgeReport()
        await minimise_legacy(conn, report, address_key=address_key, batch=batch)
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


async def purge_task(pool: asyncpg.Pool, address_key: bytes, interval: float = 600.0) -> None:
    """`serve`'s background purge: every `interval` seconds; workers take turns (a worker
    that finds the lock taken skips that round)."""
    while True:
        try:
            report = await purge(pool, address_key=address_key)
            if report.total():
                log.info(
                    "privacy purge: %d vote signals, %d voter signals, %d mails erased;"
                    " %d votes and %d voters minimised",
                    report.vote_signals,
                    report.voter_signals,
                    report.outbox_mails,
                    report.minimised_votes,
                    report.minimised_voters,
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
        "SELECT verified_at, domain, ip_prefix, ip_hash, network, agent, ip, user_agent"
        " FROM voters"
        " WHERE edition_id=$1 AND voter_id=$2",
        edition["id"],
        voter_id,
    )
    rows = await conn.fetch(
        "SELECT category, nomination, receipt, cast_at, verdict, verdict_reasons,"
        " ip_prefix, ip_hash, network, agent, email_domain, form_age_ms, form_nonce, ip,"
        " user_agent FROM votes WHERE edition_id=$1 AND voter_id=$2 ORDER BY category",
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
                # The nonce and the hash are internal checks of equality: said to be
                # there, not shown. `ip` and `user_agent` are there only on a row stored
                # before minimisation, until the purge minimises it.
                "signals": {
                    **{c: v for c, v in signals.items() if c not in OPAQUE},
                    **{c: "(stored)" if signals[c] is not None else None for c in OPAQUE},
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
            "ip_prefix": voter["ip_prefix"] if voter else None,
            "ip_hash": "(stored)" if voter and voter["ip_hash"] else None,
            "network": voter["network"] if voter else None,
            "agent": voter["agent"] if voter else None,
            "ip": voter["ip"] if voter else None,
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
