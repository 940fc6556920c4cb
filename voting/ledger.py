"""The durable ledger: the flusher that drains vote streams into PostgreSQL, and
reconciliation between the Redis counters and the ledger.

The flusher reads each shard's stream through a consumer group, writes a batch of new
entries with one COPY into votes, and a batch that may hold votes the ledger has (a
reclaimed or retried one, or a new one whose COPY hit the unique key) with COPY into a
temporary staging table and `INSERT ... SELECT ... ON CONFLICT DO NOTHING` (plain COPY
cannot skip duplicates); it acknowledges the entries only after the commit. A crashed
flusher's pending entries are reclaimed with XAUTOCLAIM by any other; the stream is trimmed
only below entries already committed. An entry XAUTOCLAIM reports as deleted before it was
flushed is a lost vote: it raises an alarm (log, `ledger_alarms` row, and `voting
reconcile` fails).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import RedisCluster

from .antifraud.minimise import agent_summary, kept_prefix
from .ballot import SHARDS, Keys, from_micros
from .contest.rules import EditionRules
from .redis_batch import packable, packed_command, xack_packed

log = logging.getLogger(__name__)

GROUP = "flushers"
_COLUMNS = (
    "edition_id",
    "voter_id",
    "category",
    "nomination",
    "receipt",
    "cast_at",
    "stream_id",
    "held_at_cast",
    "ip_hash",
    "agent",
    "form_age_ms",
    "email_domain",
    "network",
    "form_nonce",
    "verdict",
    "verdict_reasons",
    "ip_prefix",
)


# The fields of a stream entry in the order the vote script writes them (ballot.py): the
# address's keyed hash (ah), the agent's summary (ag) and the kept prefix (px), never the
# full address nor agent (antifraud/minimise.py).
STREAM_FIELDS = ("v", "c", "n", "r", "t", "st", "ah", "ag", "fa", "d", "net", "q", "fn", "px")
_STREAM_KEYS = [name.encode() for name in STREAM_FIELDS]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _row(edition_id: int, entry_id: str, fields: Any) -> tuple[Any, ...]:
    """A ledger row from a stream entry's fields: a dict of bytes or of texts (redis-py's
    XREADGROUP, XAUTOCLAIM), or the flat list of names and values of a raw reply."""
    if type(fields) is list:
        if fields[0::2] == _STREAM_KEYS:
            # The script's own order: values by position, no dict per entry (the dicts
            # were a fifth of the flusher's time).
            return _assemble(edition_id, entry_id, *[value.decode() for value in fields[1::2]])
        fields = dict(zip(fields[0::2], fields[1::2], strict=True))
    try:
        # Bytes, as redis-py hands them out: decoded directly, with no call per field.
        f = {k.decode(): v.decode() for k, v in fields.items()}
    except AttributeError:  # a client that decodes replies itself gives texts
        f = {_text(k): _text(v) for k, v in fields.items()}
    # Voter, category, nomination, receipt and instant are never absent from an entry the
    # script wrote: one without them raises rather than makes a row.
    required = [f[name] for name in STREAM_FIELDS[:5]]
    if "ip" in f or "ua" in f:
        # An entry the script wrote before minimisation (0020), still in a stream at the
        # upgrade: its prefix and agent are kept, its full address and agent are not. Its
        # address's hash cannot be made here (the flusher holds no key), so it has none.
        f["px"] = kept_prefix(f.pop("ip", ""))
        f["ag"] = agent_summary(f.pop("ua", ""))
    return _assemble(edition_id, entry_id, *required, *[f.get(n, "") for n in STREAM_FIELDS[5:]])


def _assemble(
    edition_id: int,
    entry_id: str,
    voter: str,
    category: str,
    nomination: str,
    receipt: str,
    micros: str,
    state: str,
    address: str,
    agent: str,
    form_age: str,
    domain: str,
    network: str,
    reasons: str,
    nonce: str,
    prefix: str = "",
) -> tuple[Any, ...]:
    age = int(form_age or -1)
    # Reasons found inline (honeypot, form token) send the vote straight to quarantine.
    found = [r for r in reasons.split(",") if r]
    return (
        edition_id,
        voter,
        category,
        nomination,
        receipt,
        from_micros(micros),
        entry_id,
        state == "held",
        address or None,
        agent or None,
        age if age >= 0 else None,
        domain or None,
        network or None,
        nonce or None,
        "quarantined" if found else "counted",
        found,
        prefix or None,
    )


@dataclass
class FlushStats:
    read: int = 0
    inserted: int = 0
    reclaimed: int = 0
    lost: list[str] = field(default_factory=list)


class Flusher:
    """Drains every registered edition's streams. Several may run at once."""

    def __init__(
        self,
        redis: aioredis.Redis,
        pool: asyncpg.Pool,
        prefix: str,
        *,
        consumer: str | None = None,
        batch: int = 5000,
        claim_idle_ms: int = 30_000,
        shards: int = SHARDS,
        parallel: int = 2,
    ) -> None:
        self.redis = redis
        self.pool = pool
        self.prefix = prefix
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        # Entries a read takes from one stream: 5000 drained 5% faster than 2000 (two
        # flushers, 100,000 votes), about 2 MB a batch.
        self.batch = batch
        self.claim_idle_ms = claim_idle_ms
        self.shards = shards
        # Streams drained at once, each on a PostgreSQL connection of its own: one batch's
        # COPY and INSERT overlap the next stream's read and the other's commit (the pool
        # needs this many connections free).
        self.parallel = max(1, parallel)
        self._edition_ids: dict[str, int] = {}
        self._groups_ready: set[str] = set()
        # Entries this consumer read but could not acknowledge (Redis or PostgreSQL went
        # away mid-batch) are taken up again by the first pass after it, not left for
        # someone's XAUTOCLAIM once they are claim_idle_ms old.
        self._own_pending_first = True

    async def editions(self) -> list[str]:
        members = await self.redis.smembers(Keys(self.prefix, "_", self.shards).registry())
        return sorted(_text(m) for m in members)

    async def _edition_id(self, slug: str) -> int | None:
        if slug not in self._edition_ids:
            async with self.pool.acquire() as conn:
                found = await conn.fetchval("SELECT id FROM editions WHERE slug=$1", slug)
            if found is None:
                return None
            self._edition_ids[slug] = int(found)
        return self._edition_ids[slug]

    async def _ensure_group(self, stream: str) -> None:
        if stream in self._groups_ready:
            return
        try:
            await self.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups_ready.add(stream)

    async def flush_once(self, *, reclaim: bool = True) -> FlushStats:
        """One pass over every stream: reclaim stale pending entries, read new ones, commit,
        acknowledge, trim. Returns what it did."""
        stats = FlushStats()
        for slug in await self.editions():
            edition_id = await self._edition_id(slug)
            if edition_id is None:
                continue
            keys = Keys(self.prefix, slug, self.shards)
            gate = asyncio.Semaphore(self.parallel)

            async def drain(
                stream: str,
                slug: str = slug,
                edition_id: int = edition_id,
                gate: asyncio.Semaphore = gate,
            ) -> None:
                async with gate:
                    await self._drain_stream(slug, edition_id, stream, stats, reclaim=reclaim)

            # Every stream runs to its end before an error is raised: none is left
            # half-way in the background while the caller retries (a stream is only ever
            # drained by one pass of this flusher at a time).
            results = await asyncio.gather(
                *(drain(stream) for stream in self._order(keys.all_streams())),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        self._own_pending_first = False
        return stats

    def _order(self, streams: list[str]) -> list[str]:
        """The streams in the order this flusher drains them (`spread`): on a cluster, the
        drains running at once are on different nodes; and each flusher starts at a
        stream of its own, so that the flushers of several workers begin apart."""
        if isinstance(self.redis, RedisCluster):
            cluster = self.redis

            def node_of(stream: str) -> str:
                node = cluster.get_node_from_key(stream)
                return node.name if node is not None else ""
        else:

            def node_of(stream: str) -> str:
                return ""

        return spread(streams, node_of, zlib.crc32(self.consumer.encode()))

    async def _drain_stream(
        self, slug: str, edition_id: int, stream: str, stats: FlushStats, *, reclaim: bool
    ) -> None:
        try:
            await self._drain_stream_once(slug, edition_id, stream, stats, reclaim=reclaim)
        except redis.exceptions.ResponseError as exc:
            if not _group_gone(exc):
                raise
            # The consumer group (or the whole stream) is gone although this flusher made
            # it: Redis lost its data (a restart without its files, a failover to an empty
            # replica, FLUSHALL) or someone destroyed the group. Forget it and make it
            # again from id 0, so every entry the stream holds now is read, the ones
            # written since the loss included; then drain at once. Its pending list went
            # with the old group: an entry of it still in the stream is delivered again as
            # new, and one the ledger has already is skipped by the unique key (_insert).
            log.warning("flusher: %s lost its consumer group (%s); creating it again", stream, exc)
            self._groups_ready.discard(stream)
            await self._drain_stream_once(slug, edition_id, stream, stats, reclaim=reclaim)

    async def _drain_stream_once(
        self, slug: str, edition_id: int, stream: str, stats: FlushStats, *, reclaim: bool
    ) -> None:
        await self._ensure_group(stream)
        if reclaim:
            await self._reclaim(slug, edition_id, stream, stats)
        if self._own_pending_first:
            await self._retry_own(edition_id, stream, stats)
        while True:
            entries = await self._read(stream, ">")
            if not entries:
                break
            await self._commit(edition_id, stream, entries, stats, fresh=True)
            if len(entries) < self.batch:
                break
        await self._trim(stream)

    async def _read(self, stream: str, start: str) -> list[Any]:
        """A batch of the group's entries from `start` (">": never delivered), each an id
        and its fields: raw from hiredis where it can (see packed_command), else by
        redis-py. An entry deleted since it was delivered has no fields."""
        args = ("XREADGROUP", "GROUP", GROUP, self.consumer, "COUNT", self.batch)
        args += ("STREAMS", stream, start)
        if packable(self.redis, args):
            reply = await packed_command(self.redis, args)
        else:
            reply = await self.redis.xreadgroup(
                GROUP, self.consumer, {stream: start}, count=self.batch
            )
        return _entries(reply)

    async def _retry_own(self, edition_id: int, stream: str, stats: FlushStats) -> None:
        start = "0"
        while True:
            entries = await self._read(stream, start)
            if not entries:
                return
            start = _text(entries[-1][0])
            # An entry deleted since it was read comes back without fields: _reclaim's
            # lost-vote alarm deals with those.
            await self._commit(edition_id, stream, [e for e in entries if e[1]], stats)

    async def _reclaim(self, slug: str, edition_id: int, stream: str, stats: FlushStats) -> None:
        start = "0-0"
        while True:
            reply = await self.redis.xautoclaim(
                stream, GROUP, self.consumer, self.claim_idle_ms, start_id=start, count=self.batch
            )
            start = _text(reply[0])
            claimed = [(eid, fields) for eid, fields in reply[1] if eid is not None and fields]
            # Redis 7 lists entries that were deleted before anyone flushed them; Redis 6.2
            # returns them as empty entries without their id, so look those up.
            deleted = [_text(e) for e in reply[2]] if len(reply) > 2 else []
            if any(eid is None or not fields for eid, fields in reply[1]):
                deleted += await self._missing_pending(stream)
            deleted = sorted(set(deleted), key=_id_key)
            if deleted:
                await self._alarm(slug, stream, deleted, stats)
                await self.redis.xack(stream, GROUP, *deleted)
            if claimed:
                stats.reclaimed += len(claimed)
                await self._commit(edition_id, stream, claimed, stats)
            if start == "0-0":
                break

    async def _missing_pending(self, stream: str) -> list[str]:
        """Ids this group still has pending whose entries are gone from the stream."""
        missing = []
        pending = await self.redis.xpending_range(stream, GROUP, min="-", max="+", count=10_000)
        for item in pending:
            entry_id = _text(item["message_id"])
            if not await self.redis.xrange(stream, min=entry_id, max=entry_id):
                missing.append(entry_id)
        return missing

    async def _alarm(self, slug: str, stream: str, entry_ids: list[str], stats: FlushStats) -> None:
        stats.lost.extend(entry_ids)
        log.error(
            "LOST VOTES: stream %s entries %s were deleted before they were flushed",
            stream,
            ", ".join(entry_ids),
        )
        async with self.pool.acquire() as conn:
            await conn.executemany(
                "INSERT INTO ledger_alarms (edition, stream_key, entry_id, kind)"
                " VALUES ($1, $2, $3, 'deleted-before-flush') ON CONFLICT DO NOTHING",
                [(slug, stream, e) for e in entry_ids],
            )

    async def _commit(
        self,
        edition_id: int,
        stream: str,
        entries: Iterable[tuple[Any, Any]],
        stats: FlushStats,
        *,
        fresh: bool = False,
    ) -> None:
        rows = []
        ids = []
        for entry_id, fields in entries:
            eid = _text(entry_id)
            ids.append(eid)
            rows.append(_row(edition_id, eid, fields))
        if not rows:
            return
        async with self.pool.acquire() as conn:
            inserted = await _insert(conn, rows, fresh=fresh)
        stats.read += len(rows)
        stats.inserted += inserted
        # Acknowledge only after the commit: a crash in between leaves the entries pending,
        # and whoever reclaims them inserts nothing twice (ON CONFLICT DO NOTHING).
        await self._ack(stream, ids)

    async def _ack(self, stream: str, ids: list[str]) -> None:
        await xack_packed(self.redis, stream, GROUP, ids)

    async def _trim(self, stream: str) -> None:
        """Trim below the oldest entry not yet committed (pending or never delivered)."""
        groups = await self.redis.xinfo_groups(stream)
        group = next((g for g in groups if _text(g["name"]) == GROUP), None)
        if group is None:
            return
        floor = _text(group["last-delivered-id"])
        pending = await self.redis.xpending(stream, GROUP)
        if pending and pending.get("pending"):
            floor = min(floor, _text(pending["min"]), key=_id_key)
            await self.redis.xtrim(stream, minid=floor, approximate=False)
            return
        # Everything delivered is committed: keep only what comes after it.
        ms, seq = _id_key(floor)
        await self.redis.xtrim(stream, minid=f"{ms}-{seq + 1}", approximate=False)

    async def run(self, interval: float = 0.05) -> None:
        """Flush forever (the background task and `voting flush`)."""
        idle = 0
        while True:
            try:
                stats = await self.flush_once(reclaim=idle % 20 == 0)
                idle = 0 if stats.read else idle + 1
            except (redis.exceptions.RedisError, asyncpg.PostgresError, OSError) as exc:
                # PostgreSQL or Redis away: the stream keeps the votes; try again soon.
                log.warning("flusher: %s; retrying", exc)
                self._own_pending_first = True
                stats = FlushStats()
                await asyncio.sleep(1)
            if not stats.read:
                await asyncio.sleep(interval)


def spread(streams: list[str], node_of: Callable[[str], str], start: int) -> list[str]:
    """`streams` reordered to take turns over the nodes that hold them: one stream of each
    node, then another of each, ... A flusher drains `parallel` streams at once in this
    order, so on a cluster they are on as many nodes, not queued on one node's single
    thread while the others idle. `start` turns both the nodes and each node's streams, so
    that flushers with different starts begin on different streams (and nodes). On one
    Redis every stream is on the one node and only the turn applies."""
    if not streams:
        return []
    by_node: dict[str, list[str]] = {}
    for stream in streams:
        by_node.setdefault(node_of(stream), []).append(stream)
    columns = [by_node[node] for node in sorted(by_node)]
    turn = start % len(columns)
    columns = [
        column[start % len(column) :] + column[: start % len(column)]
        for column in columns[turn:] + columns[:turn]
    ]
    return [
        column[i]
        for i in range(max(len(column) for column in columns))
        for column in columns
        if i < len(column)
    ]


async def _insert(conn: asyncpg.Connection, rows: list[tuple[Any, ...]], *, fresh: bool) -> int:
    """Write a batch to the ledger; how many rows were new.

    Entries never delivered before (`fresh`) are COPYed straight into votes: none of them
    can be in the ledger yet unless someone else wrote it, and the staging table costs
    PostgreSQL a third more work a vote. Should one be there after all, the COPY fails
    whole and the batch goes the staging way. Entries read again (reclaimed, retried)
    go that way at once: COPY into a temporary table, then INSERT ... ON CONFLICT DO
    NOTHING, since plain COPY cannot skip a row the ledger has already."""
    if fresh:
        try:
            async with conn.transaction():
                await conn.copy_records_to_table("votes", records=rows, columns=_COLUMNS)
            return len(rows)
        except asyncpg.UniqueViolationError:
            log.info("flusher: a fresh batch held votes the ledger has; inserting the new ones")
    async with conn.transaction():
        await conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS votes_staging"
            " (LIKE votes INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        await conn.copy_records_to_table("votes_staging", records=rows, columns=_COLUMNS)
        cols = ", ".join(_COLUMNS)
        result = await conn.execute(
            f"INSERT INTO votes ({cols}) SELECT {cols} FROM votes_staging"  # noqa: S608
            " ON CONFLICT DO NOTHING"
        )
    return int(result.split()[-1])


def _entries(reply: Any) -> list[Any]:
    """The entries of a one-stream XREADGROUP reply, in any of the shapes it comes in:
    RESP2 `[[stream, entries]]`, RESP3 `{stream: entries}` (raw, or redis-py's unified
    parsing), redis-py's RESP3 parsing `{stream: [entries]}`, or nothing."""
    if not reply:
        return []
    found = next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]
    # An entry is [id, fields]: a first item that is itself a list (or none) means the
    # entries came wrapped in one more list.
    if (
        found
        and isinstance(found[0], list)
        and (not found[0] or type(found[0][0]) in (list, tuple))
    ):
        return found[0]
    return found


def _group_gone(exc: redis.exceptions.ResponseError) -> bool:
    """Whether Redis refused a command because the group or its stream no longer exists:
    NOGROUP (XREADGROUP, XAUTOCLAIM, XPENDING) or "no such key" (XINFO GROUPS)."""
    text = str(exc)
    return text.startswith("NOGROUP") or "no such key" in text


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


# -- reconciliation ---------------------------------------------------------------------


async def ledger_counts(
    conn: asyncpg.Connection, edition_id: int, *, completeness: bool, ncat: int
) -> dict[str, int]:
    """Votes that count per nomination, from the ledger, by the edition's rule.

    Under the completeness rule a vote counts only once its voter has voted in every
    category; whether it does is derived from the ledger itself, so the answer does not
    depend on the order in which flushers committed a voter's votes.
    """
    if completeness:
        rows = await conn.fetch(
            "SELECT v.nomination, count(*) AS n FROM votes v"
            " JOIN (SELECT voter_id FROM votes WHERE edition_id=$1"
            "       GROUP BY voter_id HAVING count(*) >= $2) full_ballots USING (voter_id)"
            " WHERE v.edition_id=$1 GROUP BY v.nomination",
            edition_id,
            ncat,
        )
    else:
        rows = await conn.fetch(
            "SELECT nomination, count(*) AS n FROM votes WHERE edition_id=$1 GROUP BY nomination",
            edition_id,
        )
    return {r["nomination"]: int(r["n"]) for r in rows}


@dataclass
class Reconciliation:
    redis_counts: dict[str, int]
    ledger_counts: dict[str, int]
    pending: int
    alarms: int

    @property
    def differences(self) -> dict[str, tuple[int, int]]:
        names = set(self.redis_counts) | set(self.ledger_counts)
        return {
            n: (self.redis_counts.get(n, 0), self.ledger_counts.get(n, 0))
            for n in sorted(names)
            if self.redis_counts.get(n, 0) != self.ledger_counts.get(n, 0)
        }

    @property
    def ok(self) -> bool:
        return not self.differences and self.alarms == 0


async def stream_backlog(redis: aioredis.Redis, keys: Keys) -> int:
    """Entries not yet committed to the ledger: pending, or not yet delivered."""
    total = 0
    for stream in keys.all_streams():
        if not await redis.exists(stream):
            continue
        total += await redis.xlen(stream)
    return total


async def reconcile(
    redis: aioredis.Redis, conn: asyncpg.Connection, prefix: str, slug: str
) -> Reconciliation:
    from .ballot import Ballot

    row = await conn.fetchrow(
        "SELECT e.id, e.rules, (SELECT count(*) FROM categories c WHERE c.edition_id=e.id) ncat"
        " FROM editions e WHERE slug=$1",
        slug,
    )
    if row is None:
        raise LookupError(f"no edition {slug!r}")
    ballot = Ballot(redis, prefix)
    live = await ballot.live_counts(slug)
    ledger = await ledger_counts(
        conn,
        row["id"],
        completeness=EditionRules.from_stored(row["rules"]).results.completeness_rule,
        ncat=int(row["ncat"]),
    )
    alarms = await conn.fetchval("SELECT count(*) FROM ledger_alarms WHERE edition=$1", slug)
    return Reconciliation(live, ledger, await stream_backlog(redis, ballot.keys(slug)), alarms)


# The advisory-lock key space of repairs: (REPAIR_LOCK, hashtext(edition slug)).
REPAIR_LOCK = 7718


async def repair_if_lost(
    redis: aioredis.Redis, conn: asyncpg.Connection, prefix: str, slug: str, voter_id: str
) -> int | None:
    """Repair an edition whose window Redis lost, unless another process is repairing it
    (None: try again shortly) or has just done so (0). For the vote path: the window is
    the key every vote needs, and `repair` writes it last."""
    from .ballot import Ballot

    async with conn.transaction():
        if not await conn.fetchval(
            "SELECT pg_try_advisory_xact_lock($1, hashtext($2))", REPAIR_LOCK, slug
        ):
            return None
        keys = Ballot(redis, prefix).keys(slug)
        if await redis.exists(keys.window(keys.shard_of(voter_id))):
            return 0
        return await repair(redis, conn, prefix, slug)


async def repair(redis: aioredis.Redis, conn: asyncpg.Connection, prefix: str, slug: str) -> int:
    """Rebuild the ballots and counters of an edition in Redis from the ledger.

    For after a Redis loss: the ballots come back too, so a voter who already voted is
    still refused a second vote (a ballot's votes still in Redis and not yet in the ledger
    stay: they are merged, not replaced); and last the voting window, written from the
    stored edition (a window of a later revision already there stays), with the edition
    back on the flushers' list. One repair of an edition at a time (an advisory lock that
    the vote path's `repair_if_lost` shares). Returns the number of votes replayed.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", REPAIR_LOCK, slug)
        return await _repair(redis, conn, prefix, slug)


async def _repair(redis: aioredis.Redis, conn: asyncpg.Connection, prefix: str, slug: str) -> int:
    from . import edition_store
    from .ballot import Ballot

    row = await conn.fetchrow(
        "SELECT e.id, e.rules, (SELECT count(*) FROM categories c WHERE c.edition_id=e.id) ncat"
        " FROM editions e WHERE slug=$1",
        slug,
    )
    if row is None:
        raise LookupError(f"no edition {slug!r}")
    keys = Ballot(redis, prefix).keys(slug)
    completeness = EditionRules.from_stored(row["rules"]).results.completeness_rule
    ncat = int(row["ncat"])
    for shard in range(keys.shards):
        await redis.delete(keys.counts(shard), keys.held(shard))
    ballots: dict[str, list[tuple[str, str, str]]] = {}
    replayed = 0
    cursor = conn.cursor(
        "SELECT voter_id, category, receipt, nomination FROM votes WHERE edition_id=$1",
        row["id"],
    )
    async for vote in cursor:
        ballots.setdefault(vote["voter_id"], []).append(
            (vote["category"], vote["receipt"], vote["nomination"])
        )
    async with redis.pipeline(transaction=False) as pipe:
        for voter_id, votes in ballots.items():
            shard = keys.shard_of(voter_id)
            ballot_key = keys.ballot(shard, voter_id)
            pipe.hset(ballot_key, mapping={c: f"{receipt}|{nom}" for c, receipt, nom in votes})
            counted = not completeness or len(votes) >= ncat
            target = keys.counts(shard) if counted else keys.held(shard)
            for _, _, nomination in votes:
                pipe.hincrby(target, nomination, 1)
            replayed += len(votes)
            if len(pipe) > 5000:
                await pipe.execute()
        await pipe.execute()
    edition = await edition_store.get_edition(conn, slug)
    if edition is not None:
        await Ballot(redis, prefix).sync_window(edition)
    return replayed
