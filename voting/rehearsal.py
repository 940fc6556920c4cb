"""Rehearsal editions: a copy of an edition's accepted nominations, open to votes now, for
load tests that must never touch the real edition's votes.

`voting rehearsal create` clones the current edition (categories, rules, accepted
nominations under new public ids) into an edition marked `is_rehearsal`, whose voting
window is open from now for a few hours; it is never made the current edition, so the
public site goes on showing the real one. `voting rehearsal mint-voters` signs voter
tokens for it, in bulk: each carries a pseudonymous voter id and is signed for the
REHEARSAL_VOTER purpose, which no other kind of token passes for; the engine exchanges one
for a voter session only for an edition whose `is_rehearsal` is true
(POST /api/rehearsal/session). `voting rehearsal drop` removes the edition, its votes,
voters and nominations (the public ids stay issued, never reused) and its Redis keys.
Every step is written to the audit log.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from . import edition_store
from .ballot import Ballot
from .contest import Edition, Phase
from .nominations import issue_public_ids
from .security import REHEARSAL_VOTER, Tokens, pseudonym

# Minted voters' email domain (RFC 2606: never a real one). It is added to the rehearsal's
# exempt domains: thousands of voters of one domain would otherwise trip the per-domain
# limit, which a real crowd spread over many providers does not.
REHEARSAL_DOMAIN = "rehearsal.invalid"
# A minted token is good this long: a rehearsal is prepared, run and dropped within days.
TOKEN_MAX_AGE = 7 * 24 * 60 * 60
DEFAULT_HOURS = 6.0

# The nomination columns a clone copies (everything a voter or a page reads).
_COPIED = (
    "category, status, owner_id, title, title_key, organization, organization_key,"
    " stakeholder_type, country, website, start_date, contact_email, summary, description,"
    " partners, languages, search_text, submitted_at, decided_at, translations"
)


class RehearsalError(ValueError):
    """A rehearsal command refused: the message says why."""


@dataclass(frozen=True)
class Rehearsal:
    slug: str
    source: str
    nominations: int
    opens_at: datetime
    closes_at: datetime


def rehearsal_edition(source: Edition, slug: str, now: datetime, hours: float) -> Edition:
    """The source edition's categories and rules, marked a rehearsal, voting open now.

    The earlier phases are put in the past and the later ones after the close, so the
    edition is in its voting phase from the first second to the last."""
    opens = now - timedelta(minutes=1)
    closes = now + timedelta(hours=hours)
    day = timedelta(days=1)
    phases = (
        Phase("nominations", opens - 3 * day, opens - 2 * day),
        Phase("review", opens - 2 * day, opens),
        Phase("voting", opens, closes),
        Phase("expert_review", closes, closes + day),
        Phase("results", closes + day, closes + 2 * day),
    )
    fraud = source.rules.fraud
    rules = replace(
        source.rules,
        fraud=replace(fraud, domain_exempt=(*fraud.domain_exempt, REHEARSAL_DOMAIN)),
    )
    return replace(
        source,
        slug=slug,
        name=f"Rehearsal of {source.name}",
        phases=phases,
        rules=rules,
        is_rehearsal=True,
    )


async def create(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    prefix: str,
    *,
    now: datetime,
    source_slug: str | None = None,
    slug: str | None = None,
    hours: float = DEFAULT_HOURS,
    actor: str = "cli",
) -> Rehearsal:
    """Clone an edition (default: the current one) into a rehearsal open to votes now."""
    if not 0 < hours <= 24 * 7:
        raise RehearsalError("a rehearsal's voting window lasts from a minute to 7 days")
    source = (
        await edition_store.get_edition(conn, source_slug)
        if source_slug
        else await edition_store.current_edition(conn)
    )
    if source is None:
        raise RehearsalError(
            f"no edition {source_slug!r}" if source_slug else "no current edition to rehearse"
        )
    if source.is_rehearsal:
        raise RehearsalError(f"{source.slug!r} is itself a rehearsal; clone the real edition")
    slug = slug or f"rehearsal-{now:%Y%m%d-%H%M%S}"
    if await edition_store.edition_id(conn, slug) is not None:
        raise RehearsalError(f"an edition {slug!r} exists already")
    edition = rehearsal_edition(source, slug, now, hours)
    async with conn.transaction():
        edition_id = await edition_store.save_edition(
            conn, edition, now=now, actor=actor, make_current=False
        )
        source_id = await edition_store.edition_id(conn, source.slug)
        originals = await conn.fetch(
            "SELECT id FROM nominations WHERE edition_id=$1 AND status='accepted' ORDER BY id",
            source_id,
        )
        ids = await issue_public_ids(conn, len(originals))
        await conn.execute(
            f"INSERT INTO nominations (public_id, edition_id, {_COPIED})"  # noqa: S608
            f" SELECT c.public_id, $1, {_COPIED}"
            " FROM unnest($2::bigint[], $3::text[]) AS c(original, public_id)"
            " JOIN nominations n ON n.id = c.original",
            edition_id,
            [r["id"] for r in originals],
            ids,
        )
        await edition_store.audit(
            conn,
            actor=actor,
            action="rehearsal.create",
            edition=slug,
            detail={"source": source.slug, "nominations": len(ids), "hours": hours},
        )
    # The script reads the window from Redis: write it, as every calendar change does
    # (the stored edition: its revision is the one later writes compare with).
    stored = await edition_store.get_edition(conn, slug)
    await Ballot(redis, prefix).sync_window(stored or edition)
    voting = edition.phase("voting")
    return Rehearsal(slug, source.slug, len(ids), voting.opens_at, voting.closes_at)


async def rehearsal_or_refuse(conn: asyncpg.Connection, slug: str) -> Edition:
    edition = await edition_store.get_edition(conn, slug)
    if edition is None:
        raise RehearsalError(f"no edition {slug!r}")
    if not edition.is_rehearsal:
        raise RehearsalError(f"{slug!r} is a real edition, not a rehearsal: refused")
    return edition


def voter_tokens(tokens: Tokens, secret: str, slug: str, count: int, start: int = 0) -> list[str]:
    """`count` voter tokens for the rehearsal `slug`: voter n's id is the pseudonym of a
    mailbox of its own, as a real voter's is, so the ids spread over the shards alike."""
    minted = []
    for n in range(start, start + count):
        mailbox = f"voter{n}.{slug}@{REHEARSAL_DOMAIN}"
        payload = {"v": pseudonym(secret, mailbox), "d": REHEARSAL_DOMAIN, "e": slug}
        minted.append(tokens.dumps(REHEARSAL_VOTER, payload))
    return minted


async def mint_voters(
    conn: asyncpg.Connection,
    tokens: Tokens,
    secret: str,
    slug: str,
    count: int,
    *,
    start: int = 0,
    actor: str = "cli",
) -> list[str]:
    await rehearsal_or_refuse(conn, slug)
    if count < 1:
        raise RehearsalError("mint at least one voter")
    minted = voter_tokens(tokens, secret, slug, count, start)
    await edition_store.audit(
        conn,
        actor=actor,
        action="rehearsal.mint",
        edition=slug,
        detail={"voters": count, "first": start},
    )
    return minted


def load_voter_token(tokens: Tokens, token: str) -> dict[str, str] | None:
    """A minted token's payload (voter id, domain, edition), or None if it is not one."""
    from .security import TokenError

    try:
        payload = tokens.loads(REHEARSAL_VOTER, token, TOKEN_MAX_AGE)
    except TokenError:
        return None
    if not isinstance(payload, dict) or not {"v", "d", "e"} <= payload.keys():
        return None
    if not all(isinstance(payload[k], str) for k in ("v", "d", "e")):
        return None
    return {"v": payload["v"], "d": payload["d"], "e": payload["e"]}


async def drop(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    prefix: str,
    slug: str,
    *,
    actor: str = "cli",
) -> dict[str, int]:
    """Remove a rehearsal edition, all its votes and its Redis keys. Refuses a real one."""
    await rehearsal_or_refuse(conn, slug)
    keys = Ballot(redis, prefix).keys(slug)
    # Off the flushers' list first, so none recreates a stream of it meanwhile.
    await redis.srem(keys.registry(), slug)
    removed_keys = 0
    for shard in range(keys.shards):
        batch = [k async for k in redis.scan_iter(match=f"{keys.tag(shard)}:*", count=1000)]
        for start in range(0, len(batch), 1000):
            removed_keys += await redis.delete(*batch[start : start + 1000])
    async with conn.transaction():
        edition_id = await edition_store.edition_id(conn, slug)
        # Refuses a real edition in the database too, whichever role runs this: the
        # application may delete no edition, vote or voter otherwise (0011).
        votes = await conn.fetchval("SELECT drop_rehearsal_edition($1)", edition_id)
        await edition_store.audit(
            conn,
            actor=actor,
            action="rehearsal.drop",
            edition=slug,
            detail={"votes": int(votes), "redis_keys": removed_keys},
        )
    return {"votes": int(votes), "redis_keys": removed_keys}


async def list_rehearsals(conn: asyncpg.Connection) -> list[Edition]:
    return [e for e in await edition_store.list_editions(conn) if e.is_rehearsal]


# -- the command ---------------------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    rehearsal = sub.add_parser("rehearsal", help="rehearsal editions for load tests")
    rs = rehearsal.add_subparsers(dest="rehearsal_cmd", required=True)
    create_p = rs.add_parser("create", help="clone an edition into a rehearsal open to votes")
    create_p.add_argument("--from", dest="source", help="edition to clone (default: current)")
    create_p.add_argument("--slug", help="the rehearsal's slug (default: rehearsal-<time>)")
    create_p.add_argument(
        "--hours", type=float, default=DEFAULT_HOURS, help="how long its voting stays open"
    )
    mint = rs.add_parser("mint-voters", help="sign voter tokens for a rehearsal, one a line")
    mint.add_argument("slug")
    mint.add_argument("--count", type=int, required=True)
    mint.add_argument("--start", type=int, default=0, help="first voter number")
    mint.add_argument("--out", help="file to write (default: standard output)")
    drop_p = rs.add_parser("drop", help="remove a rehearsal with all its votes and keys")
    drop_p.add_argument("slug")
    rs.add_parser("list", help="list the rehearsal editions")


async def run_command(args: argparse.Namespace, settings: Any) -> int:
    from . import db
    from .clock import SystemClock
    from .services import open_redis

    assert settings.database_url and settings.redis_url
    conn = await db.connect(settings.database_url)
    redis = open_redis(settings.redis_url)
    try:
        await db.migrate(conn)
        prefix = settings.redis_prefix
        if args.rehearsal_cmd == "create":
            made = await create(
                conn,
                redis,
                prefix,
                now=SystemClock().now(),
                source_slug=args.source,
                slug=args.slug,
                hours=args.hours,
            )
            print(
                f"rehearsal {made.slug!r} of {made.source!r}: {made.nominations} nominations,"
                f" voting open until {made.closes_at:%Y-%m-%d %H:%M} UTC"
            )
            print(made.slug)
        elif args.rehearsal_cmd == "mint-voters":
            minted = await mint_voters(
                conn,
                Tokens(settings.secret_key),
                settings.secret_key,
                args.slug,
                args.count,
                start=args.start,
            )
            text = "".join(t + "\n" for t in minted)
            if args.out:
                await asyncio.to_thread(Path(args.out).write_text, text)
                print(f"wrote {len(minted)} voter tokens for {args.slug!r} to {args.out}")
            else:
                sys.stdout.write(text)
        elif args.rehearsal_cmd == "drop":
            gone = await drop(conn, redis, prefix, args.slug)
            print(
                f"dropped rehearsal {args.slug!r}: {gone['votes']} ledger votes,"
                f" {gone['redis_keys']} Redis keys"
            )
        else:
            for edition in await list_rehearsals(conn):
                voting = edition.phase("voting")
                print(
                    f"{edition.slug:32} voting {voting.opens_at:%Y-%m-%d %H:%M} to "
                    f"{voting.closes_at:%Y-%m-%d %H:%M} UTC"
                )
        return 0
    except RehearsalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        await redis.aclose()
        await conn.close()
