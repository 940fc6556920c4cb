"""Operations metrics in Prometheus form (prometheus-client), for /metrics and /organizer/ops.

Two kinds:

- Counted as they happen, in each worker: votes accepted, refused and quarantined (by
  category and reason), HTTP requests and their latency. Under `voting serve` every worker
  writes them to files in PROMETHEUS_MULTIPROC_DIR (under the data dir; `serve` empties it
  at start) and a scrape sums them over the workers, whichever worker answers it.
- Read at scrape time from the shared state, so every worker reports the same value: the
  vote streams' length and the flusher's lag (Redis), the mail outbox's backlog and the
  open fraud flags (PostgreSQL), and whether each server answered.

Label values are bounded: categories come from the edition, reasons from fixed lists,
routes are route templates (never raw paths), so a crafted URL cannot grow the series.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import math
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from .compat.prometheus import multiprocess_values, observe_many

# The `_created` series double every counter for no use on these dashboards.
disable_created_metrics()

# Metrics kept in this process when there is no multiprocess directory (tests, one worker
# started without `serve`). Never the global default registry: tests build many apps.
REGISTRY = CollectorRegistry(auto_describe=True)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

VOTES_ACCEPTED = Counter(
    "wsis_votes_accepted",
    "Votes accepted with a receipt (state: counted at once, or held by the completeness rule)",
    ["category", "state"],
    registry=REGISTRY,
)
VOTES_REFUSED = Counter(
    "wsis_votes_refused",
    "Votes refused (reason: the error code the voter got); all recorded nothing but"
    " outcome_unknown, a 503 whose vote may have been recorded",
    ["category", "reason"],
    registry=REGISTRY,
)
VOTES_QUARANTINED = Counter(
    "wsis_votes_quarantined",
    "Votes accepted into quarantine at the door, per reason (a vote may have several)",
    ["category", "reason"],
    registry=REGISTRY,
)
REQUESTS = Counter(
    "wsis_http_requests",
    "HTTP requests answered, by route template and status",
    ["method", "route", "status"],
    registry=REGISTRY,
)
# A vote takes about a millisecond; a page tens of them; anything past a second hurts.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LATENCY = Histogram(
    "wsis_http_request_duration_seconds",
    "Time from a request's arrival to its response's last byte",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)

# Bounded label values: anything else is folded into "other".
REFUSAL_REASONS = frozenset(
    {
        "invalid",
        "no_edition",
        "not_signed_in",
        "no_such_nomination",
        "wrong_category",
        "already_voted",
        "rate_limited",
        "voting_closed",
        "voting_not_open",
        "unavailable",
        "outcome_unknown",
        "csrf",
        "challenge_required",
        "challenge_failed",
    }
)
QUARANTINE_REASONS = frozenset(
    {
        "form_missing",
        "form_invalid",
        "form_expired",
        "form_other_voter",
        "form_too_fast",
        "form_replayed",
        "form_other_category",
        "honeypot",
        "webdriver",
        "agent_headless",
        "agent_script",
        "agent_missing",
        "no_accept_language",
        "no_fetch_metadata",
    }
)


def _bounded(value: str, allowed: frozenset[str]) -> str:
    return value if value in allowed else "other"


def _category(category: str | None) -> str:
    # Category codes are short and come from the edition; a longer one is not a category.
    if not category or len(category) > 24:
        return "none"
    return category


def multiprocess() -> bool:
    """Whether this process writes its metrics to the shared directory.

    Decided by prometheus-client when it was first imported (its value class), which is
    what matters: the environment variable alone may have been set too late."""
    return multiprocess_values() and bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


# -- the vote hooks (voting/web/voting.py) ------------------------------------------------

P = ParamSpec("P")
R = TypeVar("R")


def observe_cast(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Wraps the vote handler's `cast`: counts what it accepts, and what it refuses by
    raising (bad input, unknown nomination, Redis away). Refusals that come back as an
    outcome (already voted, closed, rate limited) are counted by `vote_refused`."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            result = await fn(*args, **kwargs)
        except Exception as exc:
            code = getattr(exc, "code", None)
            if isinstance(code, str):
                expected = kwargs.get("expected_category")
                if expected is None and len(args) > 4:
                    expected = args[4]
                vote_refused(expected if isinstance(expected, str) else None, code)
            raise
        outcome, _, category = result  # type: ignore[misc]
        if outcome.status == "accepted":
            vote_accepted(category, outcome.state or "counted", outcome.reasons)
        return result

    return wrapper


# Labelled children, kept: `.labels()` costs more than the increment it leads to, and this
# runs on every vote. The keys are bounded label values, so the dicts stay small.
_children: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


# -- counts gathered in the process, written out together -----------------------------------
#
# In multiprocess mode each increment is a locked write to a memory-mapped file after a
# getpid(): four of them per vote were 6% of its CPU in the profile. The hot path adds to
# plain dicts instead; `flush()` writes the sums at most FLUSH_AFTER_S later, before every
# scrape (so a scrape of this worker is exact) and when the application stops. Another
# worker's last FLUSH_AFTER_S of counts may be missing from a scrape; never lost. (A timer
# set on an event loop that closes before it fires, as in tests, leaves the counts to the
# next scrape or stop, which flush too.)

FLUSH_AFTER_S = 0.5
_counts: dict[tuple[Any, tuple[str, ...]], float] = {}
# (method, route) -> [sum of seconds, observations per bucket]
_latency: dict[tuple[str, str], list[Any]] = {}
_flush_loop: Any = None


def _add(metric: Any, labels: tuple[str, ...], amount: float = 1) -> None:
    key = (metric, labels)
    _counts[key] = _counts.get(key, 0) + amount
    if _flush_loop is None:
        _schedule()


def _schedule() -> None:
    global _flush_loop
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # called outside an event loop: nothing would flush it later
        flush()
        return
    _flush_loop = loop
    loop.call_later(FLUSH_AFTER_S, flush)


def flush() -> None:
    """Write what the hot path gathered into the metrics (and their shared files)."""
    global _flush_loop
    _flush_loop = None
    counts, latency = dict(_counts), dict(_latency)
    _counts.clear()
    _latency.clear()
    for (metric, labels), amount in counts.items():
        _child(metric, *labels).inc(amount)
    for labels, (total, buckets) in latency.items():
        observe_many(_child(LATENCY, *labels), total, buckets)


_BOUNDS = (*LATENCY_BUCKETS, math.inf)  # the buckets' upper bounds, +Inf last


def vote_accepted(category: str, state: str, reasons: Iterable[str] = ()) -> None:
    cat = _category(category)
    _add(VOTES_ACCEPTED, (cat, "held" if state == "held" else "counted"))
    for reason in reasons:
        _add(VOTES_QUARANTINED, (cat, _bounded(reason, QUARANTINE_REASONS)))


def vote_refused(category: str | None, reason: str) -> None:
    _add(VOTES_REFUSED, (_category(category), _bounded(reason, REFUSAL_REASONS)))


def request_done(method: str, route: str, status: int, seconds: float) -> None:
    method = method if method in {"GET", "POST", "PUT", "DELETE", "HEAD"} else "OTHER"
    _add(REQUESTS, (method, route, str(status)))
    key = (method, route)
    entry = _latency.get(key)
    if entry is None:
        entry = _latency[key] = [0.0, [0] * len(_BOUNDS)]
    entry[0] += seconds
    entry[1][bisect.bisect_left(_BOUNDS, seconds)] += 1
    if _flush_loop is None:
        _schedule()


# -- reading the shared state at scrape time -----------------------------------------------


async def vote_stream_state(redis: Any, prefix: str, edition: str) -> tuple[int, float]:
    """(votes waiting in the edition's streams, age in seconds of the oldest of them).

    The flusher trims each stream below what it committed, so what a stream still holds
    is what the ledger does not have yet; its oldest entry's id is its arrival time in
    milliseconds (Redis TIME, the clock the cast script uses too)."""
    from .ballot import Keys

    streams = Keys(prefix, edition).all_streams()
    async with redis.pipeline(transaction=False) as pipe:
        for stream in streams:
            pipe.xlen(stream)
            pipe.xrange(stream, count=1)
        pipe.time()
        replies = await pipe.execute()
    seconds, micros = replies[-1]
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    length = 0
    oldest_ms: int | None = None
    for index in range(len(streams)):
        length += int(replies[2 * index])
        first = replies[2 * index + 1]
        if first:
            entry_id = first[0][0]
            entry_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            ms = int(entry_id.split("-")[0])
            oldest_ms = ms if oldest_ms is None else min(oldest_ms, ms)
    lag = max(0.0, (now_ms - oldest_ms) / 1000) if oldest_ms is not None else 0.0
    return length, lag


@dataclass
class SharedState:
    """What every worker reads alike, at the instant of a scrape."""

    redis_up: bool = False
    postgres_up: bool = False
    edition: str | None = None
    stream_length: int | None = None
    flusher_lag_s: float | None = None
    outbox_backlog: int | None = None
    outbox_oldest_s: float | None = None
    open_flags: dict[str, int] = field(default_factory=dict)


async def read_shared_state(services: Any) -> SharedState:
    """Stream length and flusher lag from Redis, outbox and flags from PostgreSQL.

    Each server is asked on its own: one that is down is reported as down (and its
    figures left out) rather than failing the whole scrape."""
    import asyncpg
    import redis.exceptions

    from . import edition_store

    state = SharedState()
    edition_id = None
    try:
        async with services.db.acquire(timeout=2) as conn:
            edition = await edition_store.current_edition(conn)
            if edition is not None:
                state.edition = edition.slug
                edition_id = await edition_store.edition_id(conn, edition.slug)
            row = await conn.fetchrow(
                "SELECT count(*) AS n, extract(epoch FROM now() - min(created_at)) AS age"
                " FROM outbox WHERE sent_at IS NULL"
            )
            state.outbox_backlog = int(row["n"])
            state.outbox_oldest_s = float(row["age"]) if row["age"] is not None else 0.0
            if edition_id is not None:
                flags = await conn.fetch(
                    "SELECT detector, count(*) AS n FROM fraud_flags"
                    " WHERE edition_id=$1 AND status='open' GROUP BY detector",
                    edition_id,
                )
                state.open_flags = {r["detector"]: int(r["n"]) for r in flags}
        state.postgres_up = True
    except (OSError, asyncpg.PostgresError, TimeoutError):
        state.postgres_up = False
    try:
        if state.edition is not None:
            length, lag = await vote_stream_state(
                services.r, services.settings.redis_prefix, state.edition
            )
            state.stream_length, state.flusher_lag_s = length, lag
        else:
            await services.r.ping()
        state.redis_up = True
    except (OSError, redis.exceptions.RedisError):
        state.redis_up = False
    return state


class _SharedCollector:
    """Hands prometheus-client the figures read for this scrape."""

    def __init__(self, state: SharedState) -> None:
        self.state = state

    def collect(self) -> Iterable[Metric]:
        s = self.state
        up = GaugeMetricFamily(
            "wsis_up", "Whether the server answered this scrape", labels=["server"]
        )
        up.add_metric(["redis"], 1 if s.redis_up else 0)
        up.add_metric(["postgres"], 1 if s.postgres_up else 0)
        yield up
        if s.stream_length is not None and s.edition:
            length = GaugeMetricFamily(
                "wsis_vote_stream_length",
                "Votes in the Redis streams not yet trimmed (flushed entries are trimmed)",
                labels=["edition"],
            )
            length.add_metric([s.edition], s.stream_length)
            yield length
        if s.flusher_lag_s is not None and s.edition:
            lag = GaugeMetricFamily(
                "wsis_flusher_lag_seconds",
                "Age of the oldest vote not yet in the PostgreSQL ledger (0: none waiting)",
                labels=["edition"],
            )
            lag.add_metric([s.edition], s.flusher_lag_s)
            yield lag
        if s.outbox_backlog is not None:
            yield GaugeMetricFamily(
                "wsis_outbox_backlog", "Mail messages not yet sent", value=s.outbox_backlog
            )
            yield GaugeMetricFamily(
                "wsis_outbox_oldest_seconds",
                "Age of the oldest unsent mail message (0: none waiting)",
                value=s.outbox_oldest_s or 0.0,
            )
        flags = GaugeMetricFamily(
            "wsis_fraud_flags_open", "Open fraud flags of the current edition", labels=["detector"]
        )
        for detector, n in sorted(s.open_flags.items()):
            flags.add_metric([detector], n)
        yield flags


def scrape_registry(state: SharedState | None = None) -> CollectorRegistry:
    """The registry one scrape reads: every worker's counters, plus the shared state."""
    flush()
    if multiprocess():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_Forward(REGISTRY))
    if state is not None:
        registry.register(_SharedCollector(state))
    return registry


class _Forward:
    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterable[Metric]:
        return self.source.collect()


def exposition(state: SharedState) -> bytes:
    """The text format Prometheus scrapes."""
    return generate_latest(scrape_registry(state))  # type: ignore[no-any-return]


# -- the same figures for a person (/organizer/ops) ----------------------------------------


@dataclass
class Samples:
    """Metric samples by name: {name: [(labels, value)]}."""

    by_name: dict[str, list[tuple[dict[str, str], float]]]

    def rows(self, name: str) -> list[tuple[dict[str, str], float]]:
        return self.by_name.get(name, [])

    def total(self, name: str, **match: str) -> float:
        return sum(
            v for labels, v in self.rows(name) if all(labels.get(k) == x for k, x in match.items())
        )

    def by(self, name: str, label: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for labels, v in self.rows(name):
            key = labels.get(label, "")
            out[key] = out.get(key, 0.0) + v
        return out


def read_samples() -> Samples:
    by_name: dict[str, list[tuple[dict[str, str], float]]] = {}
    for metric in scrape_registry().collect():
        for sample in metric.samples:
            by_name.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return Samples(by_name)


def quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Estimate a quantile from cumulative histogram buckets [(upper bound, count)], by
    linear interpolation inside the bucket it falls in (as PromQL's histogram_quantile)."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if upper == float("inf"):
                return lower
            inside = count - below
            share = (rank - below) / inside if inside else 1.0
            return lower + (upper - lower) * share
        lower, below = upper, count
    return lower


@dataclass
class RouteLatency:
    method: str
    route: str
    count: int
    errors: int
    p50: float | None
    p95: float | None
    p99: float | None


def route_latencies(samples: Samples, limit: int = 12) -> list[RouteLatency]:
    """The busiest routes with their latency quantiles and server errors."""
    buckets: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for labels, value in samples.rows("wsis_http_request_duration_seconds_bucket"):
        key = (labels["method"], labels["route"])
        le = labels["le"]
        buckets.setdefault(key, []).append((float("inf") if le == "+Inf" else float(le), value))
    errors: dict[tuple[str, str], float] = {}
    for labels, value in samples.rows("wsis_http_requests_total"):
        if labels.get("status", "").startswith("5"):
            key = (labels["method"], labels["route"])
            errors[key] = errors.get(key, 0.0) + value
    found = []
    for (method, route), points in buckets.items():
        count = int(max((c for _, c in points), default=0))
        if not count:
            continue
        found.append(
            RouteLatency(
                method,
                route,
                count,
                int(errors.get((method, route), 0)),
                quantile(points, 0.5),
                quantile(points, 0.95),
                quantile(points, 0.99),
            )
        )
    found.sort(key=lambda r: (-r.count, r.route, r.method))
    return found[:limit]


class RateMeter:
    """Votes per second between two looks at the accepted-votes total.

    Kept per worker; whichever worker serves the ops page compares the shared total with
    the last it saw at least `min_gap` seconds ago."""

    def __init__(self, min_gap: float = 5.0, keep: int = 64) -> None:
        self.min_gap = min_gap
        self.keep = keep
        self.points: list[tuple[float, float]] = []

    def rate(self, total: float, now: float | None = None) -> tuple[float, float] | None:
        """(votes per second, over how many seconds), or None before a second look."""
        now = time.monotonic() if now is None else now
        self.points.append((now, total))
        self.points = self.points[-self.keep :]
        older = [p for p in self.points if now - p[0] >= self.min_gap]
        if not older:
            return None
        then, before = older[-1]
        span = now - then
        return max(0.0, total - before) / span, span


_OUTCOME_REASONS = {
    "duplicate": "already_voted",
    "limited": "rate_limited",
    "early": "voting_not_open",
    "closed": "voting_closed",
}


def outcome_refused(status: str, category: str | None) -> None:
    """Counts a cast script's refusal (anything but "accepted") under the error code the
    voter gets for it."""
    if status != "accepted":
        vote_refused(category, _OUTCOME_REASONS.get(status, "unavailable"))
