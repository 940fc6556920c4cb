"""The vote hot path: one atomic Lua script, one Redis round trip per vote.

Key layout (why): a voter's whole ballot, the window the script checks, a shard of the
counters and a shard of the stream all share one Redis Cluster slot, chosen by the hash
tag `{<edition>.<shard>}` where the shard is derived from the voter id. So one script
touches keys of one slot only and runs unchanged on Redis Cluster; the load spreads over
`SHARDS` slots (and so over the masters of a cluster); readers sum counters over shards.
Each shard keeps its own copy of the voting window, written together by `sync_window`,
so the script never reads a key outside its slot.

    {p}:{<e>.<s>}:w           hash  opens, closes (µs since epoch), ncat, complete
    {p}:{<e>.<s>}:b:<voter>   hash  category -> "receipt|nomination"   (the ballot)
    {p}:{<e>.<s>}:c           hash  nomination -> counted votes
    {p}:{<e>.<s>}:h           hash  nomination -> held votes (completeness rule)
    {p}:{<e>.<s>}:s           stream of accepted votes, drained into PostgreSQL

The cutoff is decided by Redis `TIME` inside the script: one clock for every worker, and
exactly one instant separates the last accepted vote from the first refused one.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from .contest import Edition

SHARDS = 16

# KEYS: 1 window, 2 ballot, 3 counts, 4 held, 5 stream
# ARGV: 1 voter, 2 category, 3 nomination, 4 receipt, 5 ip, 6 user agent, 7 form age ms
CAST_SCRIPT = """
local w = redis.call('HMGET', KEYS[1], 'opens', 'closes', 'ncat', 'complete')
if not w[1] then return {'nowindow'} end
local t = redis.call('TIME')
-- Microseconds since the epoch stay exact in Lua's doubles (below 2^53) until 2255.
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local nowstr = string.format('%.0f', now)
if now < tonumber(w[1]) then return {'early', w[1]} end
if now >= tonumber(w[2]) then return {'closed', w[2]} end
local prev = redis.call('HGET', KEYS[2], ARGV[2])
if prev then return {'duplicate', prev} end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[4] .. '|' .. ARGV[3])
local state = 'counted'
if w[4] == '1' then
  if redis.call('HLEN', KEYS[2]) < tonumber(w[3]) then
    state = 'held'
    redis.call('HINCRBY', KEYS[4], ARGV[3], 1)
  else
    -- This vote completes the ballot: every vote of it counts, at once.
    state = 'completes'
    local this = ARGV[4] .. '|' .. ARGV[3]
    local all = redis.call('HVALS', KEYS[2])
    for i = 1, #all do
      local nom = string.match(all[i], '|(.*)$')
      redis.call('HINCRBY', KEYS[3], nom, 1)
      if all[i] ~= this then redis.call('HINCRBY', KEYS[4], nom, -1) end
    end
  end
else
  redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
end
local id = redis.call('XADD', KEYS[5], '*', 'v', ARGV[1], 'c', ARGV[2], 'n', ARGV[3],
  'r', ARGV[4], 't', nowstr, 'st', state, 'ip', ARGV[5], 'ua', ARGV[6], 'fa', ARGV[7])
return {'accepted', nowstr, id, state}
"""


def new_receipt() -> str:
    """80 random bits, Crockford-like base32 in four groups: easy to read out and type."""
    raw = base64.b32encode(secrets.token_bytes(10)).decode()
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def micros(instant: datetime) -> int:
    return int(instant.timestamp()) * 1_000_000 + instant.microsecond


def from_micros(value: int | str) -> datetime:
    us = int(value)
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


@dataclass(frozen=True)
class Keys:
    prefix: str
    edition: str
    shards: int = SHARDS

    def shard_of(self, voter_id: str) -> int:
        return int(voter_id[:8], 16) % self.shards

    def tag(self, shard: int) -> str:
        return f"{self.prefix}:{{{self.edition}.{shard}}}"

    def window(self, shard: int) -> str:
        return f"{self.tag(shard)}:w"

    def ballot(self, shard: int, voter_id: str) -> str:
        return f"{self.tag(shard)}:b:{voter_id}"

    def counts(self, shard: int) -> str:
        return f"{self.tag(shard)}:c"

    def held(self, shard: int) -> str:
        return f"{self.tag(shard)}:h"

    def stream(self, shard: int) -> str:
        return f"{self.tag(shard)}:s"

    def all_streams(self) -> list[str]:
        return [self.stream(s) for s in range(self.shards)]

    def registry(self) -> str:
        """The set of editions whose streams the flushers drain (no hash tag needed)."""
        return f"{self.prefix}:editions"


@dataclass
class Outcome:
    status: str  # accepted | duplicate | early | closed | nowindow
    receipt: str | None = None
    nomination: str | None = None
    cast_at: datetime | None = None
    boundary: datetime | None = None  # the opening or closing instant that refused it
    stream_id: str | None = None
    state: str | None = None  # counted | held | completes
    extra: dict[str, Any] = field(default_factory=dict)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Ballot:
    """Casts votes and reads the live view, for one engine (one key prefix)."""

    def __init__(self, redis: aioredis.Redis, prefix: str, shards: int = SHARDS) -> None:
        self.redis = redis
        self.prefix = prefix
        self.shards = shards
        # redis-py's Script calls EVALSHA and, on NOSCRIPT (an empty script cache after a
        # restart or failover), loads the script and retries: never a 500 for that.
        self._cast = redis.register_script(CAST_SCRIPT)

    def keys(self, edition: str) -> Keys:
        return Keys(self.prefix, edition, self.shards)

    async def cast(
        self,
        edition: str,
        voter_id: str,
        category: str,
        nomination: str,
        *,
        receipt: str | None = None,
        ip: str = "",
        user_agent: str = "",
        form_age_ms: int = -1,
    ) -> Outcome:
        keys = self.keys(edition)
        shard = keys.shard_of(voter_id)
        receipt = receipt or new_receipt()
        reply = await self._cast(
            keys=[
                keys.window(shard),
                keys.ballot(shard, voter_id),
                keys.counts(shard),
                keys.held(shard),
                keys.stream(shard),
            ],
            args=[voter_id, category, nomination, receipt, ip, user_agent[:256], form_age_ms],
        )
        status = _text(reply[0])
        if status == "accepted":
            return Outcome(
                status,
                receipt=receipt,
                nomination=nomination,
                cast_at=from_micros(_text(reply[1])),
                stream_id=_text(reply[2]),
                state=_text(reply[3]),
            )
        if status == "duplicate":
            earlier_receipt, _, earlier_nomination = _text(reply[1]).partition("|")
            return Outcome(status, receipt=earlier_receipt, nomination=earlier_nomination)
        if status in {"early", "closed"}:
            return Outcome(status, boundary=from_micros(_text(reply[1])))
        return Outcome(status)

    async def sync_window(self, edition: Edition) -> None:
        """Write the voting window (and the rules the script applies) to every shard."""
        keys = self.keys(edition.slug)
        voting = edition.phase("voting")
        mapping = {
            "opens": micros(voting.opens_at),
            "closes": micros(voting.closes_at),
            "ncat": len(edition.categories),
            "complete": "1" if edition.rules.get("completeness_rule") else "0",
        }
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in range(self.shards):
                pipe.hset(keys.window(shard), mapping=mapping)
            pipe.sadd(keys.registry(), edition.slug)
            await pipe.execute()

    async def window(self, edition: str) -> tuple[datetime, datetime] | None:
        raw = await self.redis.hmget(self.keys(edition).window(0), "opens", "closes")
        if raw[0] is None:
            return None
        return from_micros(_text(raw[0])), from_micros(_text(raw[1]))

    async def live_counts(self, edition: str) -> dict[str, int]:
        """Counted votes per nomination, summed over shards."""
        return await self._sum_hashes(edition, "counts")

    async def held_counts(self, edition: str) -> dict[str, int]:
        return await self._sum_hashes(edition, "held")

    async def _sum_hashes(self, edition: str, which: str) -> dict[str, int]:
        keys = self.keys(edition)
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in range(self.shards):
                pipe.hgetall(getattr(keys, which)(shard))
            replies = await pipe.execute()
        totals: dict[str, int] = {}
        for reply in replies:
            for nomination, count in reply.items():
                name = _text(nomination)
                totals[name] = totals.get(name, 0) + int(count)
        return {k: v for k, v in totals.items() if v}

    async def ballot_of(self, edition: str, voter_id: str) -> dict[str, tuple[str, str]]:
        """The voter's votes: category -> (receipt, nomination)."""
        keys = self.keys(edition)
        raw = await self.redis.hgetall(keys.ballot(keys.shard_of(voter_id), voter_id))
        ballot = {}
        for category, value in raw.items():
            receipt, _, nomination = _text(value).partition("|")
            ballot[_text(category)] = (receipt, nomination)
        return ballot
