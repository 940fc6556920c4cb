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

import functools
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import RedisCluster

from .antifraud.config import FraudRules
from .antifraud.minimise import at_the_door
from .contest import Edition
from .redis_batch import BatchedScript
from .redis_cluster_batch import ClusterBatchedScript
from .security import pooled

SHARDS = 16
_NOSCRIPT_TRIES = 5

# KEYS: 1 window, 2 ballot, 3 counts, 4 held, 5 stream,
#       6 rate: address (its keyed hash), 7 rate: network, 8 rate: email domain, 9 form nonce
# ARGV: 1 voter, 2 category, 3 nomination, 4 receipt, 5 the address's keyed hash, 6 the
#       agent's summary, 7 form age ms, 8 email domain, 9 network, 10 quarantine reasons
#       (comma list), 11 form nonce, 12..17 GCRA emission interval and tolerance (µs) for
#       address, network, domain (interval 0: no limit), 18 simulated now (µs, honoured
#       only for a simulation edition), 19 how long a form nonce is remembered (s),
#       20 the address's kept prefix (/24 or /64)
# Never the full address nor the full agent (antifraud/minimise.py): the stream entry and
# the rate key hold only what the ledger keeps.
CAST_SCRIPT = """
local w = redis.call('HMGET', KEYS[1], 'opens', 'closes', 'ncat', 'complete', 'sim')
if not w[1] then return {'nowindow'} end
local now
if w[5] == '1' then
  now = tonumber(ARGV[18])
else
  local t = redis.call('TIME')
  -- Microseconds since the epoch stay exact in Lua's doubles (below 2^53) until 2255.
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local nowstr = string.format('%.0f', now)
if now < tonumber(w[1]) then return {'early', w[1]} end
if now >= tonumber(w[2]) then return {'closed', w[2]} end
local prev = redis.call('HGET', KEYS[2], ARGV[2])
if prev then return {'duplicate', prev} end
-- Rate limits (GCRA) count voters who start a ballot: a voter's later votes are bounded
-- already, one per category. All three must pass before any of them is charged.
local names = {'address', 'network', 'domain'}
local tats = {}
local first = redis.call('EXISTS', KEYS[2]) == 0
for i = 1, 3 do
  local interval = tonumber(ARGV[10 + 2 * i])
  if first and interval > 0 then
    local tau = tonumber(ARGV[11 + 2 * i])
    local tat = tonumber(redis.call('GET', KEYS[5 + i])) or now
    if tat < now then tat = now end
    if tat - tau > now then
      return {'limited', names[i], string.format('%.0f', tat - tau - now)}
    end
    tats[i] = tat + interval
  end
end
for i = 1, 3 do
  if tats[i] then
    redis.call('SET', KEYS[5 + i], string.format('%.0f', tats[i]),
      'PX', math.floor((tats[i] - now) / 1000) + 1000)
  end
end
local reasons = ARGV[10]
if ARGV[11] ~= '' then
  if not redis.call('SET', KEYS[9], '1', 'NX', 'EX', tonumber(ARGV[19])) then
    reasons = (reasons == '' and '' or reasons .. ',') .. 'form_replayed'
  end
end
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
  'r', ARGV[4], 't', nowstr, 'st', state, 'ah', ARGV[5], 'ag', ARGV[6], 'fa', ARGV[7],
  'd', ARGV[8], 'net', ARGV[9], 'q', reasons, 'fn', ARGV[11], 'px', ARGV[20])
return {'accepted', nowstr, id, state, reasons}
"""


_RECEIPTS_PER_DRAW = 64


# KEYS[1] a shard's window; ARGV: revision, opens, closes, ncat, complete, sim.
# Writes unless the window there is of a later revision; an equal one is written again
# (the same edition synced twice, or a test moving a file edition's window).
SYNC_WINDOW_SCRIPT = """
local current = tonumber(redis.call('HGET', KEYS[1], 'rev') or '-1')
if current > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'rev', ARGV[1], 'opens', ARGV[2], 'closes', ARGV[3],
  'ncat', ARGV[4], 'complete', ARGV[5], 'sim', ARGV[6])
return 1
"""


# A byte's base32 letter by its low five bits: 256 is 8 x 32, so a random byte gives each
# of the 32 letters alike, and a receipt's 16 letters carry its 80 random bits.
_LETTER = bytes(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[b & 31] for b in range(256))


def _draw_receipts() -> list[str]:
    """80 random bits each, Crockford-like base32 in four groups: easy to read out and type.

    Drawn 64 at a time: one urandom read and one translate in C (base64.b32encode, pure
    Python, was 1.5 us a receipt; the per-receipt draw before it 4% of a vote's CPU)."""
    raw = secrets.token_bytes(16 * _RECEIPTS_PER_DRAW).translate(_LETTER).decode()
    return [
        f"{raw[i : i + 4]}-{raw[i + 4 : i + 8]}-{raw[i + 8 : i + 12]}-{raw[i + 12 : i + 16]}"
        for i in range(0, len(raw), 16)
    ]


# The pool belongs to one process (security.pooled empties a forked child's): a child
# never hands out a receipt its parent also holds. (It was a getpid() a vote, a system
# call, before.)
new_receipt = pooled(_draw_receipts)


def micros(instant: datetime) -> int:
    return int(instant.timestamp()) * 1_000_000 + instant.microsecond


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_micros(value: int | str) -> datetime:
    """The UTC instant of a count of microseconds since the epoch. By timedelta: the same
    instant as fromtimestamp().replace(microsecond=...) at less than half its cost (once
    per vote in the handler, once more in the flusher); tests hold the two equal."""
    return _EPOCH + timedelta(microseconds=int(value))


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

    def rate(self, shard: int, kind: str, value: str, bucket: str = "rl") -> str:
        """GCRA state of one address, network or domain, kept per shard (see Limits)."""
        return f"{self.tag(shard)}:{bucket}:{kind}:{value}"

    def nonce(self, shard: int, nonce: str) -> str:
        return f"{self.tag(shard)}:fn:{nonce}"

    def all_streams(self) -> list[str]:
        return [self.stream(s) for s in range(self.shards)]

    def registry(self) -> str:
        """The set of editions whose streams the flushers drain (no hash tag needed)."""
        return f"{self.prefix}:editions"


@dataclass(frozen=True)
class Limits:
    """The inline rate limits, as the script applies them: per shard.

    A limit counts voters who start a ballot from an address, network or email domain (a
    voter's further votes are bounded already: one per category). An address's voters land
    on every shard (voter ids are hashed), so a limit of L per period becomes L/shards per
    shard, with the burst split the same way. The keys then
    share the voter's slot and the vote still costs one round trip on Redis Cluster; the
    price is that the limit holds on average rather than to the vote (DESIGN.md).
    """

    address: tuple[int, int] = (0, 0)  # (emission interval µs, tolerance µs); 0: off
    network: tuple[int, int] = (0, 0)
    domain: tuple[int, int] = (0, 0)
    exempt_domains: frozenset[str] = frozenset()
    nonce_ttl_s: int = 7200
    # Whose counts: "rl" the limits; "rlx" the stepped-up ones (stepped_up), counted
    # apart so that the voters who passed a challenge are not refused on the counts of
    # the limit they were let past.
    bucket: str = "rl"

    def stepped_up(self, factor: int) -> Limits:
        """The limits a voter meets after solving a challenge: `factor` times as many
        voters per period from one address, network or domain, counted apart."""

        def wider(rate: tuple[int, int]) -> tuple[int, int]:
            interval, tau = rate
            if not interval:
                return rate
            return max(1, interval // factor), tau

        return replace(
            self,
            address=wider(self.address),
            network=wider(self.network),
            domain=wider(self.domain),
            bucket="rlx",
        )

    @classmethod
    def from_thresholds(cls, t: FraudRules, shards: int = SHARDS) -> Limits:
        def gcra(limit: int, period_s: float, burst: int) -> tuple[int, int]:
            interval = int(period_s * 1_000_000 * shards / limit)
            per_shard_burst = max(1, -(-burst // shards))
            return interval, interval * (per_shard_burst - 1)

        return cls(
            address=gcra(t.ip_limit, t.ip_period_s, t.ip_burst),
            network=gcra(t.net_limit, t.net_period_s, t.net_burst),
            domain=gcra(t.domain_limit, t.domain_period_s, t.domain_burst),
            exempt_domains=frozenset(t.domain_exempt),
            nonce_ttl_s=int(t.form_max_age_s),
        )


NO_LIMITS = Limits()


@dataclass
class Outcome:
    status: str  # accepted | duplicate | early | closed | limited | nowindow
    receipt: str | None = None
    nomination: str | None = None
    cast_at: datetime | None = None
    boundary: datetime | None = None  # the opening or closing instant that refused it
    stream_id: str | None = None
    state: str | None = None  # counted | held | completes
    reasons: tuple[str, ...] = ()  # why an accepted vote goes into quarantine
    limited: str | None = None  # which rate limit refused it: address | network | domain
    retry_after_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Ballot:
    """Casts votes and reads the live view, for one engine (one key prefix)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        prefix: str,
        shards: int = SHARDS,
        *,
        address_key: bytes | None = None,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.shards = shards
        # The key client addresses are hashed under (antifraud.minimise.address_key): a
        # Ballot that casts votes with addresses needs it; one that only reads or writes
        # windows does not.
        self.address_key = address_key
        # A client's door, computed once for its votes in every category (and a crowd's
        # behind one address): the hash and the agent's summary are per vote otherwise.
        # Held in this process's memory only, as the request itself is, never stored.
        self._door = functools.lru_cache(maxsize=4096)(
            functools.partial(at_the_door, address_key or b"")
        )
        # Votes cast in the same loop tick share one pipeline (voting/redis_batch.py); on
        # NOSCRIPT (an empty script cache after a restart or failover) it loads the script
        # and retries, as redis-py's Script does: never a 500 for that.
        # Two pipelines under way at a time (redis_batch.InFlight): the votes that come
        # meanwhile go together in the next.
        # On a Redis Cluster, one pipeline per node at a time, the calls of the ticks
        # meanwhile sent together after it (voting/redis_cluster_batch.py).
        self._cast: BatchedScript | ClusterBatchedScript = (
            ClusterBatchedScript(redis, CAST_SCRIPT)
            if isinstance(redis, RedisCluster)
            else BatchedScript(redis, CAST_SCRIPT)
        )
        self._sync = redis.register_script(SYNC_WINDOW_SCRIPT)
        self._tags: dict[tuple[str, int], str] = {}

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
        domain: str = "",
        network: str = "",
        reasons: tuple[str, ...] = (),
        form_nonce: str = "",
        limits: Limits = NO_LIMITS,
        simulated_now: datetime | None = None,
    ) -> Outcome:
        shard = int(voter_id[:8], 16) % self.shards  # Keys.shard_of
        tag = self._tags.get((edition, shard))
        if tag is None:
            tag = self._tags[(edition, shard)] = self.keys(edition).tag(shard)
        receipt = receipt or new_receipt()
        if ip and self.address_key is None:
            raise ValueError("a Ballot casting votes with addresses needs the address key")
        # What the vote keeps of its client, here, before anything reaches Redis.
        door = self._door(ip, user_agent)
        network = network or door.network
        domain_rate = (0, 0) if domain in limits.exempt_domains or not domain else limits.domain
        # The names Keys gives (window, ballot, counts, held, stream, rate, nonce), spelled
        # out here: this runs on every vote (test_ballot holds the two equal).
        reply = await self._run_cast(
            keys=[
                f"{tag}:w",
                f"{tag}:b:{voter_id}",
                f"{tag}:c",
                f"{tag}:h",
                f"{tag}:s",
                f"{tag}:{limits.bucket}:a:{door.address}",
                f"{tag}:{limits.bucket}:n:{network}",
                f"{tag}:{limits.bucket}:d:{domain}",
                f"{tag}:fn:{form_nonce}",
            ],
            args=[
                voter_id,
                category,
                nomination,
                receipt,
                door.address,
                door.agent,
                form_age_ms,
                domain,
                network,
                ",".join(reasons),
                form_nonce,
                *(limits.address if door.address else (0, 0)),
                *(limits.network if network else (0, 0)),
                *domain_rate,
                micros(simulated_now) if simulated_now else 0,
                limits.nonce_ttl_s,
                door.prefix,
            ],
        )
        status = _text(reply[0])
        if status == "accepted":
            given = _text(reply[4])
            return Outcome(
                status,
                receipt=receipt,
                nomination=nomination,
                cast_at=from_micros(_text(reply[1])),
                stream_id=_text(reply[2]),
                state=_text(reply[3]),
                reasons=tuple(r for r in given.split(",") if r),
            )
        if status == "duplicate":
            earlier_receipt, _, earlier_nomination = _text(reply[1]).partition("|")
            return Outcome(status, receipt=earlier_receipt, nomination=earlier_nomination)
        if status in {"early", "closed"}:
            return Outcome(status, boundary=from_micros(_text(reply[1])))
        if status == "limited":
            return Outcome(
                status, limited=_text(reply[1]), retry_after_s=int(_text(reply[2])) / 1e6
            )
        return Outcome(status)

    async def _run_cast(self, keys: list[str], args: list[Any]) -> Any:
        # The script object answers NOSCRIPT by loading the script and sending it once
        # more; a SCRIPT FLUSH or a Redis restart between the two still fails. NOSCRIPT
        # means the script did not run at all, so sending it again is safe.
        for attempt in range(_NOSCRIPT_TRIES):
            try:
                return await self._cast(keys=keys, args=args)
            except redis.exceptions.NoScriptError:
                if attempt == _NOSCRIPT_TRIES - 1:
                    raise
        raise AssertionError("unreachable")

    async def sync_window(self, edition: Edition, *, simulated: bool = False) -> None:
        """Write the voting window (and the rules the script applies) to every shard.

        `simulated` is for the fraud simulator's own editions only: their script takes
        the instant from the caller, so a voting period can be replayed in seconds."""
        keys = self.keys(edition.slug)
        voting = edition.phase("voting")
        args = [
            edition.revision,
            micros(voting.opens_at),
            micros(voting.closes_at),
            len(edition.categories),
            "1" if edition.rules.results.completeness_rule else "0",
            "1" if simulated else "0",
        ]
        # Shard by shard (one key per script call, so it runs on Redis Cluster too); a
        # window of a later revision already there stays: a worker that read the edition
        # just before an extension committed cannot put the old close back.
        for shard in range(self.shards):
            await self._sync(keys=[keys.window(shard)], args=args)
        await self.redis.sadd(keys.registry(), edition.slug)

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
