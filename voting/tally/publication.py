"""Committee sign-offs and the publication of results.

Publication needs (1) the results phase to have opened, (2) every shortlisted nomination
that the rule needs experts for to have an expert figure, and (3) `signoffs_required`
distinct committee members to have signed the digest of the results as they stand
(`EditionResults.digest`): a signature given before a score or a fraud decision changed
is for another state and does not count. Once published, results never change: the
publication keeps the figures, the rule snapshot, the Merkle root and the leaves, so the
export and every receipt's inclusion proof stay those of the day of publication.
Publishing again returns the same publication.

The committee's page signs with `sign_off_and_publish`; the page's publish button and
`voting results publish` both call `publish`. Both take the instant from the engine's
clock (given by the caller), which also dates the signature and the publication.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from ..clock import Clock
from ..contest import Edition, to_local
from ..edition_store import audit
from ..errors import Refusal
from ..i18n import N_
from .merkle import level_sizes, sibling_positions
from .results import EditionResults, compute
from .verify import EXPORT_FORMAT, PROOF_FORMAT, receipt_digest


class PublicationRefused(Refusal):
    pass


@dataclass(frozen=True)
class Publication:
    id: int
    edition_id: int
    published_at: datetime
    published_by: str
    digest: str
    merkle_root: str
    leaf_count: int
    signers: tuple[str, ...]
    rules: dict[str, Any]
    results: dict[str, Any]


def _publication(row: asyncpg.Record) -> Publication:
    return Publication(
        id=row["id"],
        edition_id=row["edition_id"],
        published_at=row["published_at"],
        published_by=row["published_by"],
        digest=row["digest"],
        merkle_root=row["merkle_root"],
        leaf_count=row["leaf_count"],
        signers=tuple(row["signers"]),
        rules=row["rules"],
        results=row["results"],
    )


async def get_publication(conn: asyncpg.Connection, edition_id: int) -> Publication | None:
    row = await conn.fetchrow("SELECT * FROM publications WHERE edition_id=$1", edition_id)
    return None if row is None else _publication(row)


async def signers(conn: asyncpg.Connection, edition_id: int, digest: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT u.email FROM result_signoffs s JOIN users u ON u.id=s.user_id"
        " WHERE s.edition_id=$1 AND s.digest=$2 AND 'committee' = ANY(u.roles)"
        " ORDER BY s.signed_at, u.email",
        edition_id,
        digest,
    )
    return [r["email"] for r in rows]


def _geneva(instant: datetime, edition: Edition) -> datetime:
    # Worded where the refusal is read, in the reader's language (voting/errors.py).
    return to_local(instant, edition.tz)


def _stale() -> PublicationRefused:
    return PublicationRefused(
        409,
        "stale",
        N_(
            "The results changed since this page was loaded (a score or a decision on"
            " votes). Review them again, then sign."
        ),
    )


def _unscored_problem(results: EditionResults) -> PublicationRefused | None:
    if not results.unscored:
        return None
    return PublicationRefused(
        409,
        "unscored",
        N_("No expert score yet for shortlisted nomination(s) {nominations}; the rule needs one."),
        nominations=", ".join(results.unscored),
    )


async def sign_off(
    conn: asyncpg.Connection,
    edition: Edition,
    edition_id: int,
    *,
    user_id: int,
    email: str,
    digest: str,
    now: datetime,
) -> list[str]:
    """Sign the results whose digest is `digest`; returns who has signed that state.
    Only the signature: `sign_off_and_publish` is the committee's act."""
    voting = edition.phase("voting")
    if now < voting.closes_at:
        raise PublicationRefused(
            409,
            "voting_open",
            N_("Results can be signed once voting closes ({when})."),
            when=_geneva(voting.closes_at, edition),
        )
    if await get_publication(conn, edition_id) is not None:
        raise PublicationRefused(409, "published", N_("These results are already published."))
    results = await compute(conn, edition, edition_id)
    if results.digest() != digest:
        raise _stale()
    problem = _unscored_problem(results)
    if problem is not None:
        raise problem
    async with conn.transaction():
        added = await conn.fetchval(
            "INSERT INTO result_signoffs (edition_id, user_id, digest, signed_at)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
            edition_id,
            user_id,
            digest,
            now,
        )
        if added:
            await audit(
                conn,
                actor=f"user:{email}",
                action="results.signoff",
                edition=edition.slug,
                detail={"digest": digest},
            )
    return await signers(conn, edition_id, digest)


@dataclass(frozen=True)
class SignedOff:
    signers: list[str]
    # The publication, when this signature was the last one needed and the results
    # phase is open (another member publishing at the same instant: theirs); else None.
    publication: Publication | None


async def sign_off_and_publish(
    conn: asyncpg.Connection,
    edition: Edition,
    edition_id: int,
    *,
    user_id: int,
    email: str,
    digest: str,
    clock: Clock,
    publish_now: bool = True,
) -> SignedOff:
    """A committee member signs the results as they stand; the signature that completes
    the rule's `signoffs_required`, once the results phase has opened, publishes them
    (in that member's name) when `publish_now`. The committee's page asks the last
    signer to look at the preview first and passes False from any other form, so going
    public is always a step of its own; `publish` does it later otherwise."""
    now = clock.now()
    signed = await sign_off(
        conn, edition, edition_id, user_id=user_id, email=email, digest=digest, now=now
    )
    required = edition.rules.results.signoffs_required
    if not publish_now or len(signed) < required or now < edition.phase("results").opens_at:
        return SignedOff(signed, None)
    publication, _ = await publish(
        conn, edition, edition_id, now=now, actor=f"user:{email}", digest=digest
    )
    return SignedOff(signed, publication)


def preview(results: EditionResults, signed: list[str], actor: str, now: datetime) -> Publication:
    """The publication these results would make, not stored: the committee's preview of
    the public page renders it with the very template and body builder of the public
    page. The body goes through JSON as the stored one goes through jsonb, so the
    preview shows what the stored publication will read back, to the character."""
    assert results.fingerprint is not None
    body = orjson.loads(orjson.dumps(results.to_dict()))
    return Publication(
        id=0,
        edition_id=results.edition_id,
        published_at=now,
        published_by=actor,
        digest=results.digest(),
        merkle_root=results.fingerprint.root,
        leaf_count=results.fingerprint.leaf_count,
        signers=tuple(signed),
        rules=body["rules"],
        results=body,
    )


async def publish(
    conn: asyncpg.Connection,
    edition: Edition,
    edition_id: int,
    *,
    now: datetime,
    actor: str,
    digest: str | None = None,
) -> tuple[Publication, bool]:
    """Publish, or return the publication there is. (publication, newly published?)

    `digest`, when given, is the state the publisher looked at (the preview): results
    that changed since are refused as stale rather than published unseen."""
    existing = await get_publication(conn, edition_id)
    if existing is not None:
        return existing, False
    opens = edition.phase("results").opens_at
    if now < opens:
        raise PublicationRefused(
            409,
            "too_early",
            N_("Results can be published from {when}, when the results phase opens."),
            when=_geneva(opens, edition),
        )
    try:
        async with conn.transaction(isolation="repeatable_read"):
            # One publisher at a time per edition; a second waits here, then fails the
            # unique edition_id and returns the first one's publication below.
            await conn.execute("SELECT 1 FROM editions WHERE id=$1 FOR UPDATE", edition_id)
            results = await compute(conn, edition, edition_id)
            problem = _unscored_problem(results)
            if problem is not None:
                raise problem
            if digest is not None and results.digest() != digest:
                raise _stale()
            digest = results.digest()
            signed = await signers(conn, edition_id, digest)
            needed = results.rules.signoffs_required
            if len(signed) < needed:
                raise PublicationRefused(
                    409,
                    "needs_signoffs",
                    N_(
                        "{signed} of the {needed} committee sign-offs needed are given for"
                        " the results as they stand."
                    ),
                    signed=len(signed),
                    needed=needed,
                )
            publication = await _store(conn, results, digest, signed, actor, now)
    except asyncpg.UniqueViolationError:
        found = await get_publication(conn, edition_id)
        assert found is not None
        return found, False
    return publication, True


async def _store(
    conn: asyncpg.Connection,
    results: EditionResults,
    digest: str,
    signed: list[str],
    actor: str,
    now: datetime,
) -> Publication:
    assert results.fingerprint is not None and results.fingerprint.tree is not None
    body = results.to_dict()
    row = await conn.fetchrow(
        "INSERT INTO publications (edition_id, published_by, digest, merkle_root, leaf_count,"
        " signers, rules, results, published_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " RETURNING *",
        results.edition_id,
        actor,
        digest,
        results.fingerprint.root,
        results.fingerprint.leaf_count,
        signed,
        body["rules"],
        body,
        now,
    )
    publication = _publication(row)
    await conn.copy_records_to_table(
        "publication_leaves",
        records=(
            (publication.id, position, leaf.digest, leaf.category, leaf.nomination)
            for position, leaf in enumerate(results.fingerprint.leaves)
        ),
        columns=("publication_id", "position", "receipt_digest", "category", "nomination"),
    )
    await conn.executemany(
        "INSERT INTO publication_levels (publication_id, level, hashes) VALUES ($1, $2, $3)",
        [
            (publication.id, level, b"".join(hashes))
            for level, hashes in enumerate(results.fingerprint.tree.levels)
        ],
    )
    await audit(
        conn,
        actor=actor,
        action="results.publish",
        edition=results.edition.slug,
        detail={
            "digest": digest,
            "merkle_root": publication.merkle_root,
            "leaf_count": publication.leaf_count,
            "signers": signed,
            "winners": {c["code"]: c["winners"] for c in body["categories"]},
        },
    )
    return publication


def published_counts(publication: Publication) -> dict[str, int]:
    """Official votes per nomination as published (nominations with at least one)."""
    return {
        e["nomination"]: e["official_votes"]
        for c in publication.results["categories"]
        for e in c["entries"]
        if e["official_votes"]
    }


async def export_chunks(
    conn: asyncpg.Connection, publication: Publication, edition_slug: str, batch: int = 20_000
) -> AsyncIterator[bytes]:
    """The ledger export (JSON) in pieces, so a million leaves never sit in memory at once."""
    header = {
        "format": EXPORT_FORMAT,
        "edition": edition_slug,
        "published_at": publication.published_at.isoformat(),
        "merkle_root": publication.merkle_root,
        "leaf_count": publication.leaf_count,
        "counts": published_counts(publication),
    }
    yield orjson.dumps(header, option=orjson.OPT_SORT_KEYS)[:-1] + b',"leaves":['
    first = True
    async with conn.transaction():
        cursor = conn.cursor(
            "SELECT receipt_digest, category, nomination FROM publication_leaves"
            " WHERE publication_id=$1 ORDER BY position",
            publication.id,
        )
        rows: list[list[str]] = []
        async for r in cursor:
            rows.append([bytes(r["receipt_digest"]).hex(), r["category"], r["nomination"]])
            if len(rows) >= batch:
                yield (b"" if first else b",") + orjson.dumps(rows)[1:-1]
                first = False
                rows = []
        if rows:
            yield (b"" if first else b",") + orjson.dumps(rows)[1:-1]
    yield b"]}\n"


async def inclusion_proof(
    conn: asyncpg.Connection, publication: Publication, edition_slug: str, receipt: str
) -> dict[str, Any] | None:
    """The receipt's path to the published root, or None when it is not a published leaf."""
    leaf = await conn.fetchrow(
        "SELECT position, category, nomination FROM publication_leaves"
        " WHERE publication_id=$1 AND receipt_digest=$2",
        publication.id,
        bytes.fromhex(receipt_digest(receipt)),
    )
    if leaf is None:
        return None
    steps = sibling_positions(leaf["position"], level_sizes(publication.leaf_count))
    hashes = {}
    if steps:
        rows = await conn.fetch(
            "SELECT x.level, x.idx, substring(l.hashes FROM x.idx * 32 + 1 FOR 32) AS hash"
            " FROM unnest($2::int[], $3::int[]) AS x(level, idx)"
            " JOIN publication_levels l ON l.publication_id=$1 AND l.level=x.level",
            publication.id,
            [level for level, _, _ in steps],
            [index for _, index, _ in steps],
        )
        hashes = {(r["level"], r["idx"]): bytes(r["hash"]) for r in rows}
    return {
        "format": PROOF_FORMAT,
        "edition": edition_slug,
        "receipt": receipt,
        "category": leaf["category"],
        "nomination": leaf["nomination"],
        "leaf_index": leaf["position"],
        "leaf_count": publication.leaf_count,
        "path": [[side, hashes[(level, index)].hex()] for level, index, side in steps],
        "merkle_root": publication.merkle_root,
    }
