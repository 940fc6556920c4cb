"""What the hot path needs to know without asking PostgreSQL: the current edition and
its votable nominations, cached in-process and refreshed every few seconds.

Once voting opens, an edition's categories and votable nominations are locked, so the
cache can only be stale before voting opens, when every vote is refused anyway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import asyncpg

from . import edition_store, nominations
from .antifraud.config import FraudRules
from .ballot import Limits
from .contest import Edition

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    edition: Edition
    edition_id: int
    # public id -> category code
    nominations: dict[str, str]
    # The anti-fraud thresholds in force, and the inline limits the script applies.
    thresholds: FraudRules
    limits: Limits


async def votable_nominations(conn: asyncpg.Connection, edition_id: int) -> dict[str, str]:
    """Public id -> category of the nominations open to votes."""
    rows = await nominations.votable_nominations(conn, edition_id)
    return {r["public_id"]: r["category"] for r in rows}


class Catalog:
    def __init__(self, pool: asyncpg.Pool, ttl: float = 5.0) -> None:
        self.pool = pool
        self.ttl = ttl
        self._snapshot: Snapshot | None = None
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()
        self._rehearsals: dict[str, tuple[float, Snapshot | None]] = {}
        self._rehearsal_lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._loaded_at = 0.0
        self._rehearsals.clear()

    async def rehearsal(self, slug: str) -> Snapshot | None:
        """A rehearsal edition's snapshot (voting/rehearsal.py): its minted voters vote in
        it beside the current edition. None for an edition that is not a rehearsal: a real
        edition is voted in only while it is the current one."""
        cached = self._rehearsals.get(slug)
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        async with self._rehearsal_lock:
            cached = self._rehearsals.get(slug)
            if cached is not None and time.monotonic() - cached[0] < self.ttl:
                return cached[1]
            snap = None
            async with self.pool.acquire() as conn:
                edition = await edition_store.get_edition(conn, slug)
                if edition is not None and edition.is_rehearsal:
                    edition_id = await edition_store.edition_id(conn, slug)
                    assert edition_id is not None
                    found = edition.rules.fraud
                    snap = Snapshot(
                        edition,
                        edition_id,
                        await votable_nominations(conn, edition_id),
                        found,
                        Limits.from_thresholds(found),
                    )
            self._rehearsals[slug] = (time.monotonic(), snap)
            return snap

    async def current(self) -> Snapshot | None:
        if self._snapshot is not None and time.monotonic() - self._loaded_at < self.ttl:
            return self._snapshot
        if self._snapshot is not None and self._lock.locked():
            # Another request is refreshing: the hot path does not queue behind it.
            return self._snapshot
        async with self._lock:
            if self._snapshot is not None and time.monotonic() - self._loaded_at < self.ttl:
                return self._snapshot
            try:
                await self._load()
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                if self._snapshot is None:
                    raise
                # PostgreSQL is away: voting goes on from the last snapshot (the streams
                # buffer the votes); try again in a second rather than on every request.
                log.warning("catalog: PostgreSQL unavailable (%s); serving the last snapshot", exc)
                self._loaded_at = time.monotonic() - self.ttl + 1.0
            return self._snapshot

    async def _load(self) -> None:
        async with self.pool.acquire(timeout=2) as conn:
            edition = await edition_store.current_edition(conn)
            if edition is None:
                self._snapshot = None
            else:
                edition_id = await edition_store.edition_id(conn, edition.slug)
                assert edition_id is not None
                found = edition.rules.fraud
                self._snapshot = Snapshot(
                    edition,
                    edition_id,
                    await votable_nominations(conn, edition_id),
                    found,
                    Limits.from_thresholds(found),
                )
        self._loaded_at = time.monotonic()
