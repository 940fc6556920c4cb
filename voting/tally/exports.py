"""Exports of a results table: CSV, terminal tables, and the fraud summary of the report.

They all read the plain dictionary of `EditionResults.to_dict()` (or a publication's
stored copy of it), so a published result exports exactly as it was published.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import asyncpg

CSV_COLUMNS = (
    "edition",
    "category",
    "category_name",
    "rank",
    "winner",
    "shortlisted",
    "nomination",
    "title",
    "organization",
    "country",
    "public_rank",
    "official_votes",
    "counted",
    "released",
    "quarantined",
    "voided",
    "experts_scored",
    "experts_recused",
    "expert_figure",
    "public_part",
    "expert_part",
    "merged",
    "expert_scores",
)


def _csv_safe(value: Any) -> Any:
    # A cell starting with = + - @ is a formula to a spreadsheet: titles come from the
    # public, so neutralise them (OWASP's CSV injection advice).
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def results_csv(results: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for category in results["categories"]:
        for e in category["entries"]:
            votes = e.get("votes", {})
            experts = e.get("experts", {})
            scores = ";".join(
                f"{name}={v['weighted']}"
                + (f" (z {v['normalized']})" if v.get("normalized") is not None else "")
                for name, v in experts.items()
            )
            row = (
                results["edition"],
                category["code"],
                category["name"],
                e["rank"] if e["rank"] is not None else "",
                "yes" if e["winner"] else "",
                "yes" if e["shortlisted"] else "",
                e["nomination"],
                e["title"],
                e["organization"],
                e["country"],
                e["public_rank"],
                e["official_votes"],
                votes.get("counted", ""),
                votes.get("released", ""),
                votes.get("quarantined", ""),
                votes.get("voided", ""),
                len(experts),
                len(e.get("recused", [])),
                e["expert_figure"] or "",
                e["public_part"] or "",
                e["expert_part"] or "",
                e["merged"] or "",
                scores,
            )
            writer.writerow([_csv_safe(v) for v in row])
    return out.getvalue()


def _short(value: str | None, places: int = 3) -> str:
    if value is None:
        return "-"
    return f"{float(value):.{places}f}"


def terminal_tables(results: dict[str, Any], *, categories: list[str] | None = None) -> str:
    """The result tables as fixed-width text (`voting tally`)."""
    lines = []
    for category in results["categories"]:
        if categories and category["code"] not in categories:
            continue
        lines.append(f"{category['code']} · {category['name']}")
        lines.append(
            f"  {'rank':>4} {'nomination':11} {'official':>8} {'quar.':>6} {'void.':>6}"
            f" {'experts':>7} {'merged':>7}  title"
        )
        for e in category["entries"]:
            votes = e.get("votes", {})
            mark = "*" if e["winner"] else " "
            rank = str(e["rank"]) if e["rank"] is not None else ("s" if e["shortlisted"] else "")
            lines.append(
                f" {mark}{rank:>4} {e['nomination']:11} {e['official_votes']:>8}"
                f" {votes.get('quarantined', ''):>6} {votes.get('voided', ''):>6}"
                f" {_short(e['expert_figure']):>7} {_short(e['merged']):>7}  {e['title'][:40]}"
            )
        if category["unscored"]:
            lines.append(f"  unscored: {', '.join(category['unscored'])}")
        if category.get("public_votes_only"):
            lines.append("  no expert score: ranked by public votes alone (no_expert_scores)")
        if not category["entries"]:
            lines.append("  (no accepted nomination)")
        lines.append("")
    fingerprint = results.get("fingerprint")
    if fingerprint:
        lines.append(
            f"ledger fingerprint (Merkle root of {fingerprint['leaf_count']} counted votes):"
            f" {fingerprint['merkle_root']}"
        )
    lines.append("* winner; s shortlisted but not ranked (no expert score)")
    return "\n".join(lines)


async def fraud_summary(conn: asyncpg.Connection, edition_id: int, slug: str) -> dict[str, Any]:
    """Votes by verdict, the rules that held them, and the decisions on record."""
    verdicts = await conn.fetch(
        "SELECT verdict, count(*) AS n FROM votes WHERE edition_id=$1 GROUP BY verdict"
        " ORDER BY verdict",
        edition_id,
    )
    reasons = await conn.fetch(
        "SELECT reason, verdict, count(*) AS n FROM votes, unnest(verdict_reasons) AS reason"
        " WHERE edition_id=$1 AND verdict <> 'counted' GROUP BY 1, 2 ORDER BY 1, 2",
        edition_id,
    )
    decisions = await conn.fetch(
        "SELECT action, count(*) AS n, min(at) AS first, max(at) AS last FROM audit_log"
        " WHERE edition=$1 AND action LIKE 'fraud.%' GROUP BY action ORDER BY action",
        slug,
    )
    return {
        "verdicts": {r["verdict"]: int(r["n"]) for r in verdicts},
        "reasons": [dict(r) for r in reasons],
        "decisions": [dict(r) for r in decisions],
    }
