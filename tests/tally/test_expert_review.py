"""The expert review's coverage, the `no_expert_scores` rule, and `voting experts extend
|replace`: the same functions as the organizers' page (voting/tally/expert_review.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures.cli import run
from tests.fixtures.editions import edition_data
from tests.fixtures.results import (
    add_votes,
    assign,
    expert,
    move_to,
    results_edition,
    spread,
)
from tests.fixtures.tally import CRITERIA, categories, merged, result_rules
from voting.contest import GENEVA, EditionFileError, parse_edition
from voting.contest.rules import EditionRules
from voting.settings import Settings
from voting.tally import expert_review as review
from voting.tally.rules import ResultRules

NOW = datetime(2026, 1, 1, tzinfo=UTC)
EDITION = parse_edition(edition_data(), now=NOW - timedelta(days=400))


@settings(max_examples=200, deadline=None)  # a shared 2-core machine: no timing
@given(categories(), st.booleans())
def test_coverage_splits_what_is_to_score_into_scored_and_unscored(
    data: dict[str, Any], drawn: bool
) -> None:
    rules = EditionRules.from_stored({"criteria": CRITERIA}).results
    names = sorted(data["votes"])
    report = review.coverage(
        EDITION,
        {"C1": set(data["assigned"]), "C2": set()},
        {"C1": names, "C2": names},
        data["reviews"],
        data["conflicts"],
        rules,
        shortlist_drawn=drawn,
    )
    by_code = {c.code: c for c in report}
    assert [c.code for c in report] == [c.code for c in EDITION.categories]
    one = by_code["C1"]
    assert set(one.scored) | set(one.unscored) == set(names)
    assert not set(one.scored) & set(one.unscored)
    # Scored means a complete review by an assigned expert who is not recused.
    for n in one.scored:
        assert any(
            r.nomination == n
            and r.expert in data["assigned"]
            and (r.expert, n) not in data["conflicts"]
            and len(r.scores) == len(CRITERIA)
            for r in data["reviews"]
        )
    assert set(one.nobody_left) <= set(one.unscored)
    # Nobody assigned to a category with work is always a warning; no work, none.
    assert by_code["C2"].state == review.NO_EXPERT and by_code["C2"].warn
    assert by_code["C3"].state == review.COVERED and not by_code["C3"].warn
    if drawn and one.unscored:
        assert one.warn


@settings(max_examples=200, deadline=None)  # a shared 2-core machine: no timing
@given(categories(), result_rules)
def test_a_category_without_any_expert_score_is_ranked_by_votes_or_blocked(
    data: dict[str, Any], rules: ResultRules
) -> None:
    bare = {**data, "reviews": []}
    public = merged(bare, replace(rules, no_expert_scores="public_votes_only"))
    blocked = merged(bare, replace(rules, no_expert_scores="block"))
    shortlisted = [e.nomination for e in public.entries if e.shortlisted]
    if not rules.uses_experts:
        # A rule that needs no expert ignores the setting.
        assert not public.public_votes_only and public.winners == blocked.winners
        return
    assert blocked.unscored == shortlisted and blocked.winners == []
    assert not blocked.public_votes_only
    assert public.unscored == [] and public.public_votes_only == bool(shortlisted)
    if shortlisted:
        top = max(data["votes"][n] for n in shortlisted)
        # The winners are the most-voted of the shortlist: all of them or one by the chain.
        assert all(data["votes"][w] == top for w in public.winners)
        assert [e.votes for e in public.ranked] == sorted(
            (e.votes for e in public.ranked), reverse=True
        )


def test_the_rule_is_checked_when_the_edition_is_read() -> None:
    data = edition_data()
    data["rules"] = {"no_expert_scores": "coin"}
    with pytest.raises(EditionFileError, match="no_expert_scores"):
        parse_edition(data, now=NOW)
    assert parse_edition(edition_data(), now=NOW).rules.results.no_expert_scores == (
        "public_votes_only"
    )
    # An edition stored before the rule existed keeps what it was locked with.
    assert EditionRules.from_stored({}).results.no_expert_scores == "block"


async def test_voting_experts_extend_and_replace_on_the_record(
    conn: asyncpg.Connection, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    _, edition_id, noms = await results_edition(conn, "expert_review")
    for category in ("C1", "C2"):
        first, second = noms[category][:2]
        await add_votes(conn, edition_id, spread(category, {first: 2, second: 1}))
    await move_to(conn, edition_id, "results")  # the review closed yesterday
    old = await expert(conn, "old@example.org")
    await expert(conn, "new@example.org")
    await assign(conn, edition_id, old, "C1", "C3")
    assert await run(settings, "experts", "list") == 0
    listing = capsys.readouterr().out
    assert "warning: C2: no expert assigned, 2 to score" in listing
    assert "warning: C1: no complete score yet for" in listing
    later = (datetime.now(UTC) + timedelta(days=2)).astimezone(GENEVA)
    to = f"{later:%Y-%m-%d %H:%M}"
    assert await run(settings, "experts", "extend", "--to", to, "--reason", " ") == 2
    assert "needs a reason" in capsys.readouterr().err
    assert (
        await run(settings, "experts", "extend", "--to", "2020-01-01 10:00", "--reason", "x") == 2
    )
    assert "must be later" in capsys.readouterr().err
    assert await run(settings, "experts", "extend", "--to", "tomorrow", "--reason", "x") == 2
    assert "--to" in capsys.readouterr().err
    assert await run(settings, "experts", "extend", "--to", to, "--reason", "late panel") == 0
    assert "now closes" in capsys.readouterr().out
    phases = {
        r["name"]: r
        for r in await conn.fetch(
            "SELECT name, opens_at, closes_at FROM phases WHERE edition_id=$1", edition_id
        )
    }
    assert phases["expert_review"]["closes_at"] == phases["results"]["opens_at"]
    assert phases["expert_review"]["closes_at"].astimezone(GENEVA).strftime("%Y-%m-%d %H:%M") == to
    row = await conn.fetchrow(
        "SELECT actor, reason FROM audit_log WHERE action=$1", "expert_review.extend"
    )
    assert row["reason"] == "late panel" and row["actor"].startswith("cli:")

    assert (
        await run(
            settings, "experts", "replace", "old@example.org", "old@example.org", "--reason", "x"
        )
        == 2
    )
    assert "another expert" in capsys.readouterr().err
    assert (
        await run(
            settings, "experts", "replace", "old@example.org", "new@example.org", "--reason", "ill"
        )
        == 0
    )
    assert "replaces old@example.org in C1, C3" in capsys.readouterr().out
    rows = await conn.fetch(
        "SELECT u.email, a.category FROM expert_assignments a JOIN users u ON u.id=a.user_id"
        " ORDER BY 1, 2"
    )
    assert [(r["email"], r["category"]) for r in rows] == [
        ("new@example.org", "C1"),
        ("new@example.org", "C3"),
    ]
    assert (
        await run(
            settings, "experts", "replace", "old@example.org", "new@example.org", "--reason", "x"
        )
        == 2
    )
    assert "assigned to no category" in capsys.readouterr().err


def test_a_public_votes_only_category_is_charted_as_votes_not_as_a_merge() -> None:
    from voting.web.chart_data import merged_ranking_chart

    entries = [
        {
            "nomination": n,
            "title": f"Project {n}",
            "shortlisted": True,
            "merged": str(votes),
            "rank": rank,
            "public_rank": rank,
            "official_votes": votes,
            "winner": rank == 1,
            "public_part": None,
            "expert_part": None,
        }
        for rank, (n, votes) in enumerate((("NA", 9), ("NB", 4)), start=1)
    ]
    table = {"code": "C3", "entries": entries, "public_votes_only": True}
    assert "by official votes" in str(merged_ranking_chart(table, blend=False))
    scored = {**table, "public_votes_only": False}
    assert "Merged ranking in C3" in str(merged_ranking_chart(scored, blend=False))
