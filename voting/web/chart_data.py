"""The figures behind the committee's charts, read from the ledger, and the charts made
of them for /committee/live and /committee/fraud/{category}.

Votes are counted in time buckets with `date_bin`, from the voting opening to now (or
to the close): the bucket is the shortest of a few round sizes that gives at most 120
points, so a three-week vote and a one-hour rehearsal both read well. Every vote in the
ledger is drawn, whatever its verdict, so a burst shows where it happened even when the
fraud checks held it; the tables beside the charts give the verdicts.

The live page refreshes itself every few seconds for every committee member watching:
each worker keeps a chart's figures for `CACHE_SECONDS`, so PostgreSQL reads the
(large) ledger at most that often per worker, not once per viewer per refresh.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from markupsafe import Markup

from ..antifraud.wording import detector_words
from ..contest import Edition
from ..i18n import current_language, gettext, localized
from .charts import Series, others_of, timeline_chart
from .context import snapshot

CACHE_SECONDS = 20.0
BUCKETS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(days=1),
)
MAX_POINTS = 120

_cache: dict[tuple[Any, ...], tuple[float, Any]] = {}


def bucket_for(start: datetime, end: datetime) -> timedelta:
    span = end - start
    for size in BUCKETS:
        if span / size <= MAX_POINTS:
            return size
    return BUCKETS[-1]


def window(edition: Edition, now: datetime) -> tuple[datetime, datetime] | None:
    """From the voting opening to now, or to the close once voting is over."""
    voting = edition.phase("voting")
    if now <= voting.opens_at:
        return None
    return voting.opens_at, min(now, voting.closes_at)


async def _cached(key: tuple[Any, ...], load: Any) -> Any:
    hit = _cache.get(key)
    now = time.monotonic()
    if hit is not None and now - hit[0] < CACHE_SECONDS:
        return hit[1]
    value = await load()
    if len(_cache) > 256:  # editions x categories: small; bounded all the same
        _cache.clear()
    _cache[key] = (now, value)
    return value


async def vote_buckets(
    conn: asyncpg.Connection, edition_id: int, start: datetime, end: datetime, size: timedelta
) -> list[tuple[str, str, datetime, int]]:
    """(category, nomination, bucket start, votes) over the window, every verdict."""
    rows = await conn.fetch(
        "SELECT category, nomination, date_bin($2::interval, cast_at, $3) AS bucket,"
        " count(*) AS n FROM votes WHERE edition_id = $1 AND cast_at >= $3 AND cast_at < $4"
        " GROUP BY 1, 2, 3",
        edition_id,
        size,
        start,
        end + size,
    )
    return [(r["category"], r["nomination"], r["bucket"], int(r["n"])) for r in rows]


async def flag_buckets(
    conn: asyncpg.Connection,
    edition_id: int,
    category: str,
    start: datetime,
    end: datetime,
    size: timedelta,
) -> list[tuple[str, datetime, int]]:
    """(detector, bucket start, flags raised) for the flags that touch `category`."""
    rows = await conn.fetch(
        "SELECT f.detector, date_bin($3::interval, f.created_at, $4) AS bucket,"
        " count(*) AS n FROM fraud_flags f"
        " WHERE f.edition_id = $1 AND f.created_at >= $4 AND f.created_at < $5"
        " AND (f.category = $2 OR (f.category IS NULL AND EXISTS ("
        "   SELECT 1 FROM fraud_flag_votes fv WHERE fv.flag_id = f.id AND fv.category = $2)))"
        " GROUP BY 1, 2",
        edition_id,
        category,
        size,
        start,
        end + size,
    )
    return [(r["detector"], r["bucket"], int(r["n"])) for r in rows]


async def ledger_voters(pool: asyncpg.Pool, edition_id: int) -> int:
    """How many voters have a vote in the ledger: the live page's summary. Cached like the
    charts' figures, since a distinct count reads the edition's whole ledger."""

    async def load() -> int:
        async with pool.acquire() as conn:
            return int(
                await conn.fetchval(
                    "SELECT count(DISTINCT voter_id) FROM votes WHERE edition_id = $1",
                    edition_id,
                )
            )

    return int(await _cached(("voters", edition_id, int(time.time() // CACHE_SECONDS)), load))


def _series(groups: dict[str, dict[datetime, int]], labels: dict[str, str]) -> list[Series]:
    return [
        Series(key, labels.get(key, key), tuple(sorted(points.items())))
        for key, points in groups.items()
    ]


async def live_charts(
    pool: asyncpg.Pool, edition: Edition, edition_id: int, now: datetime, titles: dict[str, str]
) -> dict[str, Markup]:
    """The live page's charts: "overall" (votes per category) and one per category
    (votes per nomination), keyed by category code. `titles`: public id -> title."""
    span = window(edition, now)
    if span is None:
        return {}
    start, end = span
    size = bucket_for(start, end)

    async def load() -> list[tuple[str, str, datetime, int]]:
        async with pool.acquire() as conn:
            return await vote_buckets(conn, edition_id, start, end, size)

    rows = await _cached(("votes", edition_id, start, size, int(end.timestamp() // 60)), load)
    per_category: dict[str, dict[datetime, int]] = {}
    per_nomination: dict[str, dict[str, dict[datetime, int]]] = {}
    for category, nomination, bucket, n in rows:
        c = per_category.setdefault(category, {})
        c[bucket] = c.get(bucket, 0) + n
        nom = per_nomination.setdefault(category, {}).setdefault(nomination, {})
        nom[bucket] = nom.get(bucket, 0) + n
    # Legends name categories in the reader's language, as the page's headings do.
    names = {c.code: localized(c.name) for c in edition.categories}
    charts = {
        "overall": timeline_chart(
            _series(per_category, names),
            start=start,
            end=end,
            title=gettext("Votes over time, per category"),
            description=gettext(
                "Running total of the votes in the ledger, any verdict, for the busiest "
                "categories, from the opening of voting to now."
            ),
            value_label=gettext("Votes (running total)"),
            others=others_of("{n} other category", "{n} other categories"),
        )
    }
    for category in edition.categories:
        charts[category.code] = timeline_chart(
            _series(per_nomination.get(category.code, {}), titles),
            start=start,
            end=end,
            title=gettext("Votes over time in {code}, per nomination").format(code=category.code),
            description=gettext(
                "Running total of each nomination's votes in the ledger, any verdict, "
                "from the opening of voting to now."
            ),
            value_label=gettext("Votes (running total)"),
            others=others_of("{n} other nomination", "{n} other nominations"),
        )
    return charts


async def fraud_charts(
    pool: asyncpg.Pool,
    edition: Edition,
    edition_id: int,
    category: str,
    now: datetime,
    titles: dict[str, str],
) -> dict[str, Markup]:
    """The fraud page's charts for one category: votes per nomination, flags per detector."""
    span = window(edition, now)
    if span is None:
        return {}
    start, end = span
    size = bucket_for(start, end)

    async def load() -> tuple[list[Any], list[Any]]:
        async with pool.acquire() as conn:
            votes = await vote_buckets(conn, edition_id, start, end, size)
            flags = await flag_buckets(conn, edition_id, category, start, end, size)
        return votes, flags

    votes, flags = await _cached(
        ("fraud", edition_id, category, start, size, int(end.timestamp() // 60)), load
    )
    per_nomination: dict[str, dict[datetime, int]] = {}
    for cat, nomination, bucket, n in votes:
        if cat == category:
            points = per_nomination.setdefault(nomination, {})
            points[bucket] = points.get(bucket, 0) + n
    per_detector: dict[str, dict[datetime, int]] = {}
    for detector, bucket, n in flags:
        points = per_detector.setdefault(detector, {})
        points[bucket] = points.get(bucket, 0) + n
    return {
        "votes": timeline_chart(
            _series(per_nomination, titles),
            start=start,
            end=end,
            title=gettext("Votes over time in {code}, per nomination").format(code=category),
            description=gettext(
                "Running total of each nomination's votes in the ledger, whatever their "
                "verdict: a sudden climb is a burst worth a look."
            ),
            value_label=gettext("Votes (running total)"),
            others=others_of("{n} other nomination", "{n} other nominations"),
        ),
        "flags": timeline_chart(
            _series(per_detector, {d: detector_words(d, current_language()) for d in per_detector}),
            start=start,
            end=end,
            title=gettext("Fraud flags over time in {code}, per detector").format(code=category),
            description=gettext(
                "Running total of the fraud flags raised in this category, by the detector "
                "that raised them."
            ),
            value_label=gettext("Flags (running total)"),
            others=others_of("{n} other detector", "{n} other detectors"),
        ),
    }


async def fraud_chart_view(request: Any, view: dict[str, Any]) -> dict[str, Markup]:
    """fraud_charts for the fraud page's view (voting/web/fraud.py's _category_view)."""
    svc = request.app.state.services
    snap = await snapshot(request)
    titles = {n["nomination"]: n["title"] for n in view["nominations"]}
    return await fraud_charts(
        svc.db, snap.edition, snap.edition_id, view["category"].code, svc.clock.now(), titles
    )


def merged_ranking_chart(table: dict[str, Any], blend: bool) -> Markup:
    """The ranking of one category's shortlist as bars (voting/tally's result table).

    Once experts have scored, the bars are the merged figures, split into the public and
    expert parts under the blend rule; before that, the official votes that rank it."""
    from .charts import RankEntry, ranking_chart

    shortlist = [e for e in table["entries"] if e["shortlisted"]]
    # A category no expert scored, ranked by votes alone (`no_expert_scores`), is drawn
    # as the votes that rank it, not as a merged figure.
    merged = not table.get("public_votes_only") and any(e["merged"] is not None for e in shortlist)

    def order(e: dict[str, Any]) -> tuple[int, int, str]:
        rank = e["rank"] if merged and e["rank"] is not None else e["public_rank"]
        return (rank if rank is not None else 10**9, -e["official_votes"], e["nomination"])

    entries = []
    for e in sorted(shortlist, key=order):
        note = gettext("winner") if e["winner"] else ""
        if merged:
            parts: tuple[float, ...] = ()
            if blend and e["public_part"] is not None and e["expert_part"] is not None:
                parts = (float(e["public_part"]), float(e["expert_part"]))
            entries.append(RankEntry(e["title"], float(e["merged"] or 0), parts, note))
        else:
            entries.append(RankEntry(e["title"], float(e["official_votes"]), (), note))
    code = table["code"]
    if merged:
        return ranking_chart(
            entries,
            title=gettext("Merged ranking in {code}").format(code=code),
            description=gettext(
                "The shortlist in rank order, each bar the merged figure of public votes "
                "and expert scores."
            ),
            value_label=gettext("Merged figure"),
            part_labels=(gettext("Public part"), gettext("Expert part")) if blend else (),
            decimals=3,
        )
    return ranking_chart(
        entries,
        title=gettext("Shortlist ranking in {code}, by official votes").format(code=code),
        description=gettext(
            "No expert score yet: the shortlist in order of official votes, the public side "
            "of the merge."
        ),
        value_label=gettext("Official votes"),
    )
