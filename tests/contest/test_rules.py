"""The typed edition rules (voting/contest/rules.py): parsed once, stored, read back.

The invariant that matters: what an edition is locked with is what it is read back as,
whether from its file or from `editions.rules` after a trip through JSON and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures.editions import edition_data
from voting import edition_store, rehearsal
from voting.antifraud.config import DEFAULTS, FraudRules
from voting.contest import EditionFileError, parse_edition
from voting.contest.rules import EditionRules, NominationRules, RulesError, VotingRules
from voting.privacy_rules import PrivacyRules
from voting.tally.rules import ResultRules

NOW = datetime(2026, 1, 10, 12, tzinfo=UTC)


def _threshold(name: str, default: Any) -> st.SearchStrategy[Any]:
    if isinstance(default, tuple):
        return st.lists(st.from_regex(r"[a-z0-9]{1,10}\.[a-z]{2,5}", fullmatch=True), max_size=4)
    if isinstance(default, int):
        return st.integers(min_value=1, max_value=10**6)
    low = 0.0 if name == "min_form_seconds" else 0.001
    # A whole number where a fraction is the default is accepted and kept as written.
    return st.one_of(
        st.floats(min_value=low, max_value=1e6, allow_nan=False),
        st.integers(min_value=1, max_value=1000),
    )


antifraud_tables = st.fixed_dictionaries(
    {},
    optional={f.name: _threshold(f.name, f.default) for f in fields(FraudRules)},
)
privacy_tables = st.fixed_dictionaries(
    {},
    optional={
        "outbox_hours": st.integers(min_value=1, max_value=24 * 90),
        "signals_days_after_publication": st.integers(min_value=0, max_value=3650),
    },
)
criteria_lists = st.lists(
    st.fixed_dictionaries(
        {
            "code": st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True),
            "name": st.text(min_size=1, max_size=20).filter(str.strip),
        },
        optional={
            "weight": st.one_of(
                st.floats(min_value=0.001, max_value=100, allow_nan=False),
                st.integers(min_value=1, max_value=10),
            )
        },
    ),
    min_size=1,
    max_size=6,
    unique_by=lambda c: c["code"],
)
weights = st.one_of(
    st.floats(min_value=0, max_value=10, allow_nan=False), st.integers(min_value=0, max_value=5)
)


@st.composite
def rules_tables(draw: st.DrawFn) -> dict[str, Any]:
    """A valid `[rules]` table giving any subset of the rules."""
    words_min = draw(st.integers(min_value=0, max_value=300))
    score_min = draw(st.integers(min_value=-5, max_value=5))
    public, expert = draw(weights), draw(weights)
    if public + expert == 0:
        expert = 1
    table = {
        "completeness_rule": draw(st.booleans()),
        "nominations_per_organization_per_category": draw(st.integers(1, 5)),
        "summary_words_min": words_min,
        "summary_words_max": draw(st.integers(max(words_min, 1), 400)),
        "shortlist_size": draw(st.integers(1, 10)),
        "shortlist_ties": draw(st.sampled_from(["all_tied_enter", "break_chain"])),
        "show_live_counts": draw(st.booleans()),
        "signoffs_required": draw(st.integers(1, 5)),
        "antifraud": draw(antifraud_tables),
        "privacy": draw(privacy_tables),
        "merge_rule": draw(st.sampled_from(["experts_pick", "blend"])),
        "blend_public_weight": public if isinstance(public, float) else float(public),
        "blend_expert_weight": expert if isinstance(expert, float) else float(expert),
        "blend_basis": draw(st.sampled_from(["score", "rank"])),
        "expert_normalization": draw(st.sampled_from(["none", "zscore"])),
        "tie_policy": draw(st.sampled_from(["joint_winners", "break_chain"])),
        "no_expert_scores": draw(st.sampled_from(["public_votes_only", "block"])),
        "score_min": score_min,
        "score_max": draw(st.integers(score_min + 1, score_min + 20)),
        "criteria": draw(criteria_lists),
    }
    # Rules checked against each other are kept or left out together: one alone would
    # be checked against the other's default.
    groups = [(key,) for key in table if key not in {*_PAIRS[0], *_PAIRS[1], *_PAIRS[2]}] + list(
        _PAIRS
    )
    keep = draw(st.sets(st.sampled_from(groups)))
    return {key: table[key] for group in keep for key in group}


_PAIRS = (
    ("summary_words_min", "summary_words_max"),
    ("score_min", "score_max"),
    ("blend_public_weight", "blend_expert_weight"),
)


def _file_error(field_path: str | None, problem: str) -> EditionFileError:
    return EditionFileError(problem, field=field_path, source="test")


@settings(max_examples=200, deadline=None)  # a shared 2-core machine: no timing
@given(rules_tables())
def test_the_stored_rules_read_back_as_parsed(table: dict[str, Any]) -> None:
    rules = EditionRules.parse(table, _file_error)
    assert EditionRules.from_stored(rules.to_json()) == rules
    # As PostgreSQL's jsonb codec sends and returns them.
    stored = orjson.loads(orjson.dumps(rules.to_json()))
    assert EditionRules.from_stored(stored) == rules
    # And the dump is stable: what is written once is written the same again.
    assert EditionRules.from_stored(stored).to_json() == rules.to_json()


@settings(max_examples=200, deadline=None)
@given(antifraud_tables)
def test_only_the_thresholds_an_edition_changes_are_stored(table: dict[str, Any]) -> None:
    fraud = FraudRules.parse(table, _file_error)
    overrides = fraud.overrides()
    assert set(overrides) <= set(table)
    for key, value in table.items():
        expected = [v.strip().lower() for v in value] if isinstance(value, list) else value
        assert getattr(fraud, key) == (tuple(expected) if isinstance(value, list) else value)
        if key not in overrides:
            assert getattr(DEFAULTS, key) == getattr(fraud, key)
    assert FraudRules.parse(overrides, _file_error) == fraud


def test_no_rules_are_every_default() -> None:
    rules = EditionRules.parse(None, _file_error)
    assert rules == EditionRules(
        NominationRules(), VotingRules(), FraudRules(), ResultRules(), PrivacyRules()
    )
    assert rules.to_json()["antifraud"] == {} and rules.to_json()["privacy"] == {}


def test_an_edition_stored_before_no_expert_scores_keeps_the_old_rule() -> None:
    stored = EditionRules().to_json()
    del stored["no_expert_scores"]
    assert EditionRules.from_stored(stored).results.no_expert_scores == "block"
    assert EditionRules().results.no_expert_scores == "public_votes_only"


@pytest.mark.parametrize(
    ("stored", "fragment"),
    [
        ({"shortlist_size": "5"}, "editions.rules: rules.shortlist_size: must be int"),
        ({"antifraud": {"ip_limt": 3}}, "rules.antifraud.ip_limt: unknown threshold"),
        ({"retired_rule": 1}, "rules.retired_rule: unknown key"),
    ],
)
def test_stored_rules_that_do_not_parse_say_where(stored: dict[str, Any], fragment: str) -> None:
    with pytest.raises(RulesError, match=fragment):
        EditionRules.from_stored(stored)


async def test_an_edition_reads_back_from_postgresql_with_its_rules(
    conn: asyncpg.Connection,
) -> None:
    data = edition_data()
    data["rules"] = {
        "shortlist_size": 3,
        "blend_public_weight": 0.1,
        "merge_rule": "blend",
        "antifraud": {"ip_limit": 7, "burst_surprise": 25, "domain_exempt": ["Example.ORG"]},
        "privacy": {"outbox_hours": 2},
        "criteria": [{"code": "impact", "name": "Impact", "weight": 0.3}],
    }
    edition = parse_edition(data, now=NOW)
    await edition_store.save_edition(conn, edition, now=NOW, actor="test")
    back = await edition_store.get_edition(conn, edition.slug)
    assert back is not None and back.rules == edition.rules
    assert back.rules.fraud.domain_exempt == ("example.org",)
    stored = await conn.fetchval("SELECT rules FROM editions WHERE slug=$1", edition.slug)
    # The database's own readers (the tally, the purge) see the flat table they always saw.
    assert stored["antifraud"] == {
        "ip_limit": 7,
        "burst_surprise": 25,
        "domain_exempt": ["example.org"],
    }
    assert stored["privacy"] == {"outbox_hours": 2}
    assert stored["blend_public_weight"] == 0.1 and stored["shortlist_size"] == 3


def test_a_rehearsal_exempts_its_domain_without_touching_the_source() -> None:
    source = parse_edition(edition_data(), now=NOW)
    copy = rehearsal.rehearsal_edition(source, "rehearsal-x", NOW, 2)
    assert copy.rules.fraud.domain_exempt == (
        *source.rules.fraud.domain_exempt,
        rehearsal.REHEARSAL_DOMAIN,
    )
    assert copy.rules == replace(
        source.rules,
        fraud=replace(
            source.rules.fraud,
            domain_exempt=(*DEFAULTS.domain_exempt, rehearsal.REHEARSAL_DOMAIN),
        ),
    )
    assert source.rules == EditionRules()
    stored = copy.rules.to_json()["antifraud"]
    assert stored == {"domain_exempt": [*DEFAULTS.domain_exempt, rehearsal.REHEARSAL_DOMAIN]}
