"""Write ledger rows and voter registrations directly: the detectors' input."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import asyncpg

from tests.conftest import TEST_SECRET
from voting.antifraud.minimise import address_key, at_the_door
from voting.antifraud.simulator import AGENTS

# The key the suite's engine hashes addresses under (its settings' secret): scans of rows
# written here are given it, as the engine's own scans are given the engine's.
KEY = address_key(TEST_SECRET)


def browser(i: int) -> str:
    """The i-th of 17 people's browsers (the simulator's: real families, versions and
    platforms, which the agent summary tells apart). An agent of no known family is
    summarised as `other`, so invented agent names would all be one agent to `cluster`."""
    return AGENTS[i % 17]


async def add_voter(
    conn: asyncpg.Connection,
    edition_id: int,
    voter_id: str,
    *,
    verified_at: datetime,
    ip: str,
    domain: str = "example.org",
) -> None:
    # As voters.record_verification writes it: minimised at the door.
    door = at_the_door(KEY, ip, None)
    await conn.execute(
        "INSERT INTO voters (edition_id, voter_id, domain, ip_hash, ip_prefix, network,"
        " verified_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        edition_id,
        voter_id,
        domain,
        door.address or None,
        door.prefix or None,
        door.network or None,
        verified_at,
    )


async def add_vote(
    conn: asyncpg.Connection,
    edition_id: int,
    voter_id: str,
    category: str,
    nomination: str,
    *,
    at: datetime,
    ip: str,
    agent: str = "Mozilla/5.0",
    domain: str = "example.org",
    verdict: str = "counted",
    form_ms: int | None = None,
) -> str:
    receipt = uuid.uuid4().hex[:19]
    # As the vote script and the flusher write it: minimised at the door.
    door = at_the_door(KEY, ip, agent)
    await conn.execute(
        "INSERT INTO votes (edition_id, voter_id, category, nomination, receipt, cast_at,"
        " stream_id, ip_hash, ip_prefix, agent, email_domain, network, verdict, form_age_ms)"
        " VALUES ($1, $2, $3, $4, $5, $6, '0-0', $7, $8, $9, $10, $11, $12, $13)",
        edition_id,
        voter_id,
        category,
        nomination,
        receipt,
        at,
        door.address or None,
        door.prefix or None,
        door.agent or None,
        domain,
        door.network or None,
        verdict,
        form_ms,
    )
    return receipt


async def organic(
    conn: asyncpg.Connection,
    edition_id: int,
    start: datetime,
    n: int,
    nominations: dict[str, list[str]],
) -> None:
    """n voters from n networks, each voting in every category with human timing."""
    for i in range(n):
        ip = f"10.{i // 250}.{i % 250}.9"
        vid = f"organic{i}"
        verified = start + timedelta(minutes=7 * i)
        await add_voter(conn, edition_id, vid, verified_at=verified, ip=ip)
        for j, (category, noms) in enumerate(sorted(nominations.items())):
            await add_vote(
                conn,
                edition_id,
                vid,
                category,
                noms[i % len(noms)],
                at=verified + timedelta(minutes=3 + 2 * j),
                ip=ip,
                agent=browser(i),
                domain=("gmail.com", "outlook.com", "example.org")[i % 3],
                form_ms=4000 + (i * 7919 + j * 104729) % 40000,
            )
