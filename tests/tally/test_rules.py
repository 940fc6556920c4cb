"""The result rules in an edition file: defaults, validation, the snapshot."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

import pytest

from tests.fixtures.editions import edition_data
from voting.contest import EditionFileError, EditionRules, parse_edition
from voting.tally.rules import ResultRules

NOW = datetime(2026, 1, 10, 12, tzinfo=UTC)


def parse(**rules: Any) -> ResultRules:
    data = edition_data()
    data["rules"] = rules
    return parse_edition(data, now=NOW).rules.results


def test_the_defaults_are_the_wsis_rule() -> None:
    rules = parse()
    assert (rules.merge_rule, rules.tie_policy, rules.normalization) == (
        "experts_pick",
        "joint_winners",
        "none",
    )
    assert [c.code for c in rules.criteria] == [
        "impact",
        "sustainability",
        "replicability",
        "innovation",
        "relevance",
    ]
    assert (rules.score_min, rules.score_max, rules.signoffs_required) == (1, 10, 2)


def test_weights_are_exact_and_whole_numbers_are_accepted() -> None:
    rules = parse(
        merge_rule="blend",
        blend_public_weight=1,
        blend_expert_weight=0.1,
        criteria=[{"code": "impact", "name": "Impact", "weight": 0.3}],
    )
    assert rules.public_weight == 1 and rules.expert_weight == Fraction(1, 10)
    assert rules.criteria[0].weight == Fraction(3, 10)
    assert rules.to_dict()["blend_expert_weight"] == 0.1


def test_an_edition_stored_before_these_rules_existed_gets_the_defaults() -> None:
    old = {"completeness_rule": True, "shortlist_size": 3, "signoffs_required": 1}
    rules = EditionRules.from_stored(old).results
    assert rules.completeness_rule and rules.shortlist_size == 3
    assert rules.merge_rule == "experts_pick" and len(rules.criteria) == 5
    # ... but the rule for a category no expert scored is the one it was locked with.
    assert rules.no_expert_scores == "block"


@pytest.mark.parametrize(
    ("rules", "field", "fragment"),
    [
        ({"merge_rule": "jury"}, "rules.merge_rule", "not one of experts_pick, blend"),
        ({"tie_policy": "coin"}, "rules.tie_policy", "joint_winners, break_chain"),
        ({"shortlist_ties": "none"}, "rules.shortlist_ties", "all_tied_enter"),
        ({"expert_normalization": "rank"}, "rules.expert_normalization", "zscore"),
        ({"blend_basis": "votes"}, "rules.blend_basis", "score, rank"),
        ({"blend_public_weight": -1}, "rules.blend_public_weight", "at least 0"),
        ({"blend_public_weight": "1"}, "rules.blend_public_weight", "must be float"),
        ({"blend_public_weight": True}, "rules.blend_public_weight", "must be float"),
        (
            {"blend_public_weight": 0, "blend_expert_weight": 0},
            "rules.blend_expert_weight",
            "cannot both be 0",
        ),
        ({"score_min": 5, "score_max": 5}, "rules.score_max", "above rules.score_min 5"),
        ({"criteria": []}, "rules.criteria", "non-empty array"),
        ({"criteria": ["impact"]}, "rules.criteria[0]", "must be a table"),
        ({"criteria": [{"code": "Impact!", "name": "x"}]}, "rules.criteria[0].code", "short"),
        (
            {"criteria": [{"code": "a", "name": "A"}, {"code": "a", "name": "B"}]},
            "rules.criteria[1].code",
            "duplicate",
        ),
        ({"criteria": [{"code": "a", "name": " "}]}, "rules.criteria[0].name", "non-empty"),
        (
            {"criteria": [{"code": "a", "name": "A", "weight": 0}]},
            "rules.criteria[0].weight",
            "above 0",
        ),
        (
            {"criteria": [{"code": "a", "name": "A", "wieght": 2}]},
            "rules.criteria[0].wieght",
            "unknown key",
        ),
    ],
)
def test_bad_result_rules_are_refused_with_the_field(
    rules: dict[str, Any], field: str, fragment: str
) -> None:
    with pytest.raises(EditionFileError) as info:
        parse(**rules)
    assert info.value.field == field
    assert fragment in str(info.value)


def test_the_stored_snapshot_never_shares_the_default_criteria() -> None:
    first = parse().to_dict()
    first["criteria"][0]["weight"] = 99.0
    assert parse().to_dict()["criteria"][0]["weight"] == 1.0
