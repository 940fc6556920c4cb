"""An edition's results, computed from PostgreSQL: gather the inputs, apply the rules.

`compute` reads the official tally, the accepted nominations, the panel's assignments,
conflicts and reviews, and runs `merge.merge_category` on each category. Its `digest`
covers everything that decides the outcome (figures, ranks, winners, the rule, the ledger
fingerprint): the committee signs that digest, so a signature is for one exact state.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any

import asyncpg
import orjson

from ..contest import Edition
from . import experts
from .merge import CategoryResult, Entry, merge_category
from .merkle import Leaf, Tree, counted_leaves
from .official import official_tally
from .rules import ResultRules
from .scoring import Review

# What the public sees of a nomination's line: no expert's own scores or comments, no
# votes by verdict.
PUBLIC_FIELDS = (
    "nomination",
    "title",
    "organization",
    "country",
    "official_votes",
    "public_rank",
    "shortlisted",
    "expert_figure",
    "public_part",
    "expert_part",
    "merged",
    "rank",
    "winner",
)


def figure(value: Fraction | None, places: int = 6) -> str | None:
    """A figure as a decimal string, rounded half-even: what is stored and shown."""
    if value is None:
        return None
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return str(exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN))


@dataclass
class Fingerprint:
    root: str
    leaf_count: int
    leaves: list[Leaf] = field(default_factory=list, repr=False)
    tree: Tree | None = field(default=None, repr=False)


@dataclass
class Nomination:
    public_id: str
    category: str
    title: str
    organization: str
    country: str


@dataclass
class EditionResults:
    edition: Edition
    edition_id: int
    rules: ResultRules
    categories: list[CategoryResult]
    nominations: dict[str, Nomination]
    tally: dict[str, dict[str, Any]]
    comments: dict[tuple[str, str], str]
    fingerprint: Fingerprint | None
    reviews: list[Review] = field(default_factory=list)

    def votes(self, nomination: str) -> dict[str, int]:
        found = self.tally.get(nomination, {})
        return {
            k: int(found.get(k, 0))
            for k in ("counted", "released", "quarantined", "voided", "official")
        }

    @property
    def unscored(self) -> list[str]:
        return [n for c in self.categories for n in c.unscored]

    def entry_dict(self, entry: Entry) -> dict[str, Any]:
        info = self.nominations[entry.nomination]
        return {
            "nomination": entry.nomination,
            "title": info.title,
            "organization": info.organization,
            "country": info.country,
            "official_votes": entry.votes,
            "public_rank": entry.public_rank,
            "shortlisted": entry.shortlisted,
            "expert_figure": figure(entry.expert_figure),
            "public_part": figure(entry.public_part),
            "expert_part": figure(entry.expert_part),
            "merged": figure(entry.merged),
            "rank": entry.rank,
            "winner": entry.winner,
            "votes": self.votes(entry.nomination),
            "experts": {
                expert: {
                    "weighted": figure(score),
                    "normalized": figure(entry.normalized.get(expert)),
                    "comment": self.comments.get((expert, entry.nomination), ""),
                }
                for expert, score in sorted(entry.scores.items())
            },
            "recused": list(entry.recused),
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything the outcome depends on, as plain JSON (figures as decimal strings)."""
        categories = []
        for c in self.categories:
            category = self.edition.category(c.category)
            categories.append(
                {
                    "code": c.category,
                    "name": category.name if category else c.category,
                    "winners": c.winners,
                    # In public order: the most-voted first.
                    "shortlist": [
                        e.nomination
                        for e in sorted(c.entries, key=lambda e: (-e.votes, e.nomination))
                        if e.shortlisted
                    ],
                    "unscored": c.unscored,
                    "public_votes_only": c.public_votes_only,
                    "entries": [self.entry_dict(e) for e in c.entries],
                }
            )
        return {
            "edition": self.edition.slug,
            "rules": self.rules.to_dict(),
            "categories": categories,
            "fingerprint": (
                {"merkle_root": self.fingerprint.root, "leaf_count": self.fingerprint.leaf_count}
                if self.fingerprint
                else None
            ),
        }

    def digest(self) -> str:
        body = orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(body).hexdigest()


async def accepted_nominations(conn: asyncpg.Connection, edition_id: int) -> dict[str, Nomination]:
    rows = await conn.fetch(
        "SELECT public_id, category, title, organization, country FROM nominations"
        " WHERE edition_id=$1 AND status='accepted'",
        edition_id,
    )
    return {r["public_id"]: Nomination(**dict(r)) for r in rows}


def official_by_category(
    edition: Edition, nominations: dict[str, Nomination], tally: dict[str, dict[str, Any]]
) -> dict[str, dict[str, int]]:
    """Category -> {nomination: official votes}, every accepted nomination included."""
    votes: dict[str, dict[str, int]] = {c.code: {} for c in edition.categories}
    for n in nominations.values():
        votes.setdefault(n.category, {})[n.public_id] = int(
            tally.get(n.public_id, {}).get("official", 0)
        )
    return votes


async def shortlists(
    conn: asyncpg.Connection, edition: Edition, edition_id: int
) -> dict[str, list[str]]:
    """Category -> shortlisted nominations, from the official tally."""
    from .ranking import shortlist

    rules = edition.rules.results
    nominations = await accepted_nominations(conn, edition_id)
    tally = await official_tally(conn, edition_id)
    return {
        code: shortlist(votes, rules.shortlist_size, rules.shortlist_ties)
        for code, votes in official_by_category(edition, nominations, tally).items()
    }


async def fingerprint(conn: asyncpg.Connection, edition_id: int) -> Fingerprint:
    leaves = await counted_leaves(conn, edition_id)
    tree = Tree([leaf.hash for leaf in leaves])
    return Fingerprint(tree.root.hex(), tree.size, leaves, tree)


async def compute(
    conn: asyncpg.Connection,
    edition: Edition,
    edition_id: int,
    *,
    with_fingerprint: bool = True,
) -> EditionResults:
    """The results as the ledger and the panel stand now, in one repeatable-read snapshot."""
    rules = edition.rules.results
    # Inside a caller's transaction its snapshot rules; otherwise take one of our own.
    snapshot = (
        contextlib.nullcontext()
        if conn.is_in_transaction()
        else conn.transaction(isolation="repeatable_read", readonly=True)
    )
    async with snapshot:
        tally = await official_tally(conn, edition_id)
        nominations = await accepted_nominations(conn, edition_id)
        panel = await experts.assigned_by_category(conn, edition_id)
        recusals = await experts.conflicts(conn, edition_id)
        found, comments = await experts.reviews(conn, edition_id)
        print_ = await fingerprint(conn, edition_id) if with_fingerprint else None
    votes = official_by_category(edition, nominations, tally)
    categories = []
    for category in edition.categories:
        in_category = votes.get(category.code, {})
        categories.append(
            merge_category(
                category.code,
                in_category,
                [r for r in found if r.nomination in in_category],
                rules=rules,
                assigned=panel.get(category.code, set()),
                conflicts={(e, n) for e, n in recusals if n in in_category},
            )
        )
    return EditionResults(
        edition, edition_id, rules, categories, nominations, tally, comments, print_, found
    )


def public_view(results: dict[str, Any]) -> dict[str, Any]:
    """The public part of a results dictionary: winners and shortlists with their figures."""
    return {
        **{k: v for k, v in results.items() if k != "categories"},
        "categories": [
            {
                "code": c["code"],
                "name": c["name"],
                "winners": c["winners"],
                "shortlist": c["shortlist"],
                "public_votes_only": c.get("public_votes_only", False),
                "entries": [
                    {k: e[k] for k in PUBLIC_FIELDS} for e in c["entries"] if e["shortlisted"]
                ],
            }
            for c in results["categories"]
        ],
    }


def phase_now(edition: Edition, now: datetime) -> str | None:
    current = edition.current_phase(now)
    return current.name if current else None
