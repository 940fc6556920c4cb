"""Helpers for the voting tests: an edition whose window is set against Redis TIME."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import redis.asyncio as aioredis

from tests.helpers import edition_data
from voting import edition_store
from voting.ballot import Ballot
from voting.contest import Edition, Phase, parse_edition


async def redis_now(redis: aioredis.Redis) -> datetime:
    seconds, micros = await redis.time()
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=micros)


def with_window(edition: Edition, opens: datetime, closes: datetime) -> Edition:
    """The same edition with its voting phase replaced (other phases moved out of the way)."""
    phases = []
    for phase in edition.phases:
        if phase.name == "voting":
            phases.append(Phase("voting", opens, closes))
        elif phase.name in ("nominations", "review"):
            phases.append(
                Phase(
                    phase.name,
                    opens - timedelta(days=60 if phase.name == "nominations" else 30),
                    opens - timedelta(days=30 if phase.name == "nominations" else 0),
                )
            )
        else:
            offset = timedelta(days=10 if phase.name == "expert_review" else 20)
            phases.append(Phase(phase.name, closes + offset - timedelta(days=10), closes + offset))
    from dataclasses import replace

    return replace(edition, phases=tuple(phases))


async def voting_edition(
    conn: asyncpg.Connection,
    ballot: Ballot,
    now: datetime,
    *,
    completeness: bool = False,
    slug: str = "test-edition",
) -> tuple[Edition, int]:
    data = edition_data()
    data["slug"] = slug
    data["rules"] = {"completeness_rule": completeness}
    edition = parse_edition(data, now=now)
    edition_id = await edition_store.save_edition(
        conn, edition, now=now - timedelta(days=400), actor="test", make_current=True
    )
    await ballot.sync_window(edition)
    return edition, edition_id


def voter(n: int) -> str:
    """A voter id for test voter number n."""
    from voting.security import pseudonym

    return pseudonym("k", f"voter{n}@example.org")
