"""Organised mobilisation is allowed but must be visible.

Per nomination: the share of its votes by email domain, by network and by hour of the
day (Geneva time), beside the same shares over its whole category. A ministry's staff
voting en bloc shows up as one domain and one network holding most of a project's votes
in a few hours; the committee sees it and decides on the record.
"""

from __future__ import annotations

from typing import Any

import asyncpg

TOP = 5


async def profile(conn: asyncpg.Connection, edition_id: int, category: str) -> dict[str, Any]:
    rows = await conn.fetch(
        "SELECT nomination, 'domain' AS kind, coalesce(email_domain, '?') AS k, count(*) AS n"
        " FROM votes WHERE edition_id = $1 AND category = $2 GROUP BY 1, 3"
        " UNION ALL"
        " SELECT nomination, 'network', coalesce(network, '?'), count(*)"
        " FROM votes WHERE edition_id = $1 AND category = $2 GROUP BY 1, 3"
        " UNION ALL"
        " SELECT nomination, 'hour',"
        "  extract(hour FROM cast_at AT TIME ZONE 'Europe/Zurich')::int::text, count(*)"
        " FROM votes WHERE edition_id = $1 AND category = $2 GROUP BY 1, 3",
        edition_id,
        category,
    )
    per: dict[str, dict[str, dict[str, int]]] = {}
    whole: dict[str, dict[str, int]] = {"domain": {}, "network": {}, "hour": {}}
    for r in rows:
        kinds = per.setdefault(r["nomination"], {"domain": {}, "network": {}, "hour": {}})
        kinds[r["kind"]][r["k"]] = int(r["n"])
        whole[r["kind"]][r["k"]] = whole[r["kind"]].get(r["k"], 0) + int(r["n"])
    category_total = sum(whole["domain"].values()) or 1

    def shares(kind: str, counts: dict[str, int], total: int) -> list[dict[str, Any]]:
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
        return [
            {
                "key": k,
                "votes": n,
                "share": round(n / total, 3),
                "category_share": round(whole[kind].get(k, 0) / category_total, 3),
            }
            for k, n in top
        ]

    out: dict[str, Any] = {}
    for nomination, kinds in per.items():
        total = sum(kinds["domain"].values()) or 1
        hours = [kinds["hour"].get(str(h), 0) for h in range(24)]
        out[nomination] = {
            "votes": total,
            "domains": shares("domain", kinds["domain"], total),
            "networks": shares("network", kinds["network"], total),
            "hours": [round(h / total, 3) for h in hours],
        }
    out["_category"] = {
        "votes": category_total,
        "hours": [round(whole["hour"].get(str(h), 0) / category_total, 3) for h in range(24)],
    }
    return out
