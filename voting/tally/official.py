"""The official tally, from the PostgreSQL ledger. Redis counters are only the live view.

A nomination's official count is the number of its ledger votes whose verdict is
`counted` or `released`; when the edition's `completeness_rule` is on, only votes of
voters who have a ledger vote (whatever its verdict) in every category of the edition.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

# One statement, so the figures are one consistent snapshot of the ledger. The complete
# ballots are only computed when the rule is on: the rule comes from an uncorrelated
# sub-select, which PostgreSQL evaluates once and uses as a one-time filter, so with the
# rule off that branch never scans the votes. With it on, the voters come in primary-key
# order (edition, voter, category), so counting ballots needs no sort.
OFFICIAL_TALLY_SQL = """
WITH edition AS (
    SELECT coalesce((e.rules->>'completeness_rule')::boolean, false) AS complete_rule,
           (SELECT count(*) FROM categories c WHERE c.edition_id = e.id) AS ncat
    FROM editions e WHERE e.id = $1
),
complete AS (
    SELECT voter_id FROM votes
    WHERE edition_id = $1
      AND (SELECT complete_rule FROM edition)
    GROUP BY voter_id
    HAVING count(*) >= (SELECT ncat FROM edition)
)
SELECT v.nomination,
       min(v.category) AS category,
       count(*) FILTER (WHERE v.verdict = 'counted') AS counted,
       count(*) FILTER (WHERE v.verdict = 'released') AS released,
       count(*) FILTER (WHERE v.verdict = 'quarantined') AS quarantined,
       count(*) FILTER (WHERE v.verdict = 'voided') AS voided,
       count(*) FILTER (WHERE v.verdict IN ('counted', 'released')
                        AND (NOT (SELECT complete_rule FROM edition)
                             OR c.voter_id IS NOT NULL)) AS official
FROM votes v
LEFT JOIN complete c ON c.voter_id = v.voter_id
WHERE v.edition_id = $1
GROUP BY v.nomination
"""

_FIELDS = ("counted", "released", "quarantined", "voided", "official")


async def official_tally(conn: asyncpg.Connection, edition_id: int) -> dict[str, dict]:
    """Per nomination (public id) that has any ledger vote: its votes by verdict, and
    `official`, the votes that count. Also `category`. One query."""
    rows = await conn.fetch(OFFICIAL_TALLY_SQL, edition_id)
    return {
        r["nomination"]: {"category": r["category"], **{f: int(r[f]) for f in _FIELDS}}
        for r in rows
    }


def bucket_for(span: timedelta, buckets: int = 120) -> timedelta:
    """A round bucket width that cuts a span into at most about `buckets` pieces."""
    for minutes in (1, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080):
        width = timedelta(minutes=minutes)
        if span / width <= buckets:
            return width
    return timedelta(days=7)


async def votes_over_time(
    conn: asyncpg.Connection,
    edition_id: int,
    nominations: list[str],
    *,
    origin: datetime,
    bucket: timedelta,
) -> dict[str, list[tuple[datetime, int, int]]]:
    """Per nomination: (bucket start, votes cast, official-verdict votes) in time order.

    Every vote cast, whatever its verdict, shows when it arrived (a burst that fraud
    checks quarantined is still a burst); the second figure counts those that are
    counted or released.
    """
    rows = await conn.fetch(
        "SELECT nomination, date_bin($4::interval, cast_at, $3) AS bucket, count(*) AS cast,"
        " count(*) FILTER (WHERE verdict IN ('counted', 'released')) AS kept"
        " FROM votes WHERE edition_id = $1 AND nomination = ANY($2::text[])"
        " GROUP BY 1, 2 ORDER BY 1, 2",
        edition_id,
        nominations,
        origin,
        bucket,
    )
    series: dict[str, list[tuple[datetime, int, int]]] = {n: [] for n in nominations}
    for r in rows:
        series[r["nomination"]].append((r["bucket"], int(r["cast"]), int(r["kept"])))
    return series
