"""Worked examples of each merge rule, with the expected tables computed by hand.

One category, four nominations with official votes NA 50, NB 40, NC 40, ND 10 and one
(NE) with none. Two criteria: impact (weight 3) and innovation (weight 1), scale 1-10.
Three experts are assigned; e3 declared a conflict with NA. Their scores (impact,
innovation) and the weighted score (3·impact + innovation) / 4:

            NA                 NB                 NC
    e1   (8, 4)  -> 7       (6, 10) -> 7       (9, 9) -> 9
    e2   (6, 6)  -> 6       (7, 3)  -> 6       (5, 9) -> 6
    e3   (10, 10) recused   (8, 8)  -> 8       (4, 4) -> 4

Shortlist of 3: NA, NB, NC (ND has 10 votes). Expert figures (means):
NA (7 + 6) / 2 = 6.5, NB (7 + 6 + 8) / 3 = 7, NC (9 + 6 + 4) / 3 = 19/3.
"""

from __future__ import annotations

from typing import Any

import pytest

from voting.contest.rules import EditionRules
from voting.tally.merge import CategoryResult, merge_category
from voting.tally.results import figure
from voting.tally.rules import ResultRules
from voting.tally.scoring import Review

VOTES = {"NA": 50, "NB": 40, "NC": 40, "ND": 10, "NE": 0}
SCORES = {
    ("e1", "NA"): (8, 4),
    ("e1", "NB"): (6, 10),
    ("e1", "NC"): (9, 9),
    ("e2", "NA"): (6, 6),
    ("e2", "NB"): (7, 3),
    ("e2", "NC"): (5, 9),
    ("e3", "NA"): (10, 10),
    ("e3", "NB"): (8, 8),
    ("e3", "NC"): (4, 4),
}
CRITERIA = [
    {"code": "impact", "name": "Impact", "weight": 3},
    {"code": "innovation", "name": "Innovation", "weight": 1},
]


def rules(**overrides: Any) -> ResultRules:
    return EditionRules.from_stored(
        {"shortlist_size": 3, "criteria": CRITERIA, **overrides}
    ).results


def reviews() -> list[Review]:
    return [
        Review(e, n, {"impact": impact, "innovation": innovation})
        for (e, n), (impact, innovation) in SCORES.items()
    ]


def run(**overrides: Any) -> CategoryResult:
    return merge_category(
        "C1",
        VOTES,
        reviews(),
        rules=rules(**overrides),
        assigned={"e1", "e2", "e3"},
        conflicts={("e3", "NA")},
    )


def table(result: CategoryResult) -> list[tuple[Any, ...]]:
    return [
        (e.rank, e.nomination, figure(e.expert_figure), figure(e.merged), e.winner)
        for e in result.ranked
    ]


def test_experts_pick_the_wsis_default() -> None:
    result = run()
    assert table(result) == [
        (1, "NB", "7.000000", "7.000000", True),
        (2, "NA", "6.500000", "6.500000", False),
        (3, "NC", "6.333333", "6.333333", False),
    ]
    assert result.winners == ["NB"]
    # The recused expert's 10s for NA count nowhere: with them NA would win (23/3).
    assert result.entry("NA").scores == {"e1": 7, "e2": 6}
    assert result.entry("NA").recused == ("e3",)
    # ND and NE are not shortlisted: listed after, unranked, in public order.
    assert [(e.nomination, e.shortlisted, e.rank) for e in result.entries[3:]] == [
        ("ND", False, None),
        ("NE", False, None),
    ]
    assert [e.public_rank for e in result.entries] == [2, 1, 2, 4, 5]


def test_experts_pick_with_z_scores() -> None:
    # e1: 7, 7, 9 -> mean 23/3, sd sqrt(8/9): z = -0.707107, -0.707107, 1.414214.
    # e2: 6, 6, 6 -> sd 0: no preference, z = 0 for all.
    # e3: NB 8, NC 4 (NA recused) -> mean 6, sd 2: z = 1, -1.
    # NA (-0.707107 + 0) / 2 = -0.353553; NB (-0.707107 + 0 + 1) / 3 = 0.097631;
    # NC (1.414214 + 0 - 1) / 3 = 0.138071. Normalizing makes NC the winner.
    result = run(expert_normalization="zscore")
    assert table(result) == [
        (1, "NC", "0.138071", "0.138071", True),
        (2, "NB", "0.097631", "0.097631", False),
        (3, "NA", "-0.353553", "-0.353553", False),
    ]
    assert figure(result.entry("NA").normalized["e1"]) == "-0.707107"
    assert figure(result.entry("NC").normalized["e1"]) == "1.414214"
    assert {e: figure(v) for e, v in result.entry("NB").normalized.items()} == {
        "e1": "-0.707107",
        "e2": "0.000000",
        "e3": "1.000000",
    }


def test_blend_on_scaled_scores() -> None:
    # Public, scaled 40..50: NA 1, NB 0, NC 0. Experts, scaled 19/3..7: NA 0.25, NB 1,
    # NC 0. Merged 0.6 public + 0.4 experts: NA 0.7, NB 0.4, NC 0.
    result = run(merge_rule="blend", blend_public_weight=0.6, blend_expert_weight=0.4)
    assert [
        (e.rank, e.nomination, figure(e.public_part), figure(e.expert_part), figure(e.merged))
        for e in result.ranked
    ] == [
        (1, "NA", "1.000000", "0.250000", "0.700000"),
        (2, "NB", "0.000000", "1.000000", "0.400000"),
        (3, "NC", "0.000000", "0.000000", "0.000000"),
    ]
    assert result.winners == ["NA"]


def test_blend_on_ranks() -> None:
    # Public places: NA 1, NB and NC share 2 and 3 (2.5 each): points (3 - place) / 2 =
    # 1, 0.25, 0.25. Expert places NB 1, NA 2, NC 3: points 1, 0.5, 0.
    # Merged (public + experts) / 2: NA 0.75, NB 0.625, NC 0.125.
    result = run(
        merge_rule="blend", blend_basis="rank", blend_public_weight=1, blend_expert_weight=1
    )
    assert [
        (e.rank, e.nomination, figure(e.public_part), figure(e.expert_part), figure(e.merged))
        for e in result.ranked
    ] == [
        (1, "NA", "1.000000", "0.500000", "0.750000"),
        (2, "NB", "0.250000", "1.000000", "0.625000"),
        (3, "NC", "0.250000", "0.000000", "0.125000"),
    ]


def tied_scores(**overrides: Any) -> CategoryResult:
    """NA and NB both get an expert figure of 7; NA has more votes."""
    return merge_category(
        "C1",
        {"NA": 50, "NB": 40, "NC": 30},
        [
            Review("e1", "NA", {"impact": 7, "innovation": 7}),
            Review("e1", "NB", {"impact": 7, "innovation": 7}),
            Review("e1", "NC", {"impact": 2, "innovation": 2}),
        ],
        rules=rules(**overrides),
        assigned={"e1"},
    )


def test_a_tie_for_first_makes_joint_winners_by_default() -> None:
    result = tied_scores()
    assert [(e.rank, e.nomination) for e in result.ranked] == [(1, "NA"), (1, "NB"), (3, "NC")]
    assert result.winners == ["NA", "NB"]


def test_the_break_chain_decides_by_votes_then_public_id() -> None:
    result = tied_scores(tie_policy="break_chain")
    assert [(e.rank, e.nomination) for e in result.ranked] == [(1, "NA"), (2, "NB"), (3, "NC")]
    assert result.winners == ["NA"]
    same_votes = merge_category(
        "C1",
        {"NB": 40, "NA": 40},
        [Review("e1", n, {"impact": 5, "innovation": 5}) for n in ("NB", "NA")],
        rules=rules(tie_policy="break_chain"),
        assigned={"e1"},
    )
    assert same_votes.winners == ["NA"]  # the last link: the public id


@pytest.mark.parametrize(
    ("size", "ties", "expected"),
    [
        (2, "all_tied_enter", ["NA", "NB", "NC"]),  # NC ties NB at the boundary
        (2, "break_chain", ["NA", "NB"]),  # cut at 2 by votes, then public id
        (1, "all_tied_enter", ["NA"]),
        (9, "all_tied_enter", ["NA", "NB", "NC", "ND"]),  # never a nomination without votes
    ],
)
def test_shortlist_ties(size: int, ties: str, expected: list[str]) -> None:
    result = merge_category(
        "C1", VOTES, [], rules=rules(shortlist_size=size, shortlist_ties=ties), assigned=()
    )
    assert [e.nomination for e in result.entries if e.shortlisted] == expected


def test_without_expert_scores_nothing_is_ranked_where_the_rule_needs_experts() -> None:
    result = merge_category("C1", VOTES, [], rules=rules(), assigned={"e1"})
    assert result.ranked == [] and result.winners == []
    assert result.unscored == ["NA", "NB", "NC"]
    # A blend that gives the experts no weight ranks by votes alone.
    public_only = merge_category(
        "C1",
        VOTES,
        [],
        rules=rules(merge_rule="blend", blend_public_weight=1, blend_expert_weight=0),
    )
    assert [e.nomination for e in public_only.ranked] == ["NA", "NB", "NC"]
    assert public_only.unscored == []


def test_incomplete_and_unassigned_reviews_do_not_count() -> None:
    result = merge_category(
        "C1",
        {"NA": 5},
        [
            Review("e1", "NA", {"impact": 9}),  # innovation missing
            Review("e2", "NA", {"impact": 9, "innovation": 9}),  # not assigned
            Review("e3", "NA", {"impact": 4, "innovation": 8}),
        ],
        rules=rules(),
        assigned={"e1", "e3"},
    )
    assert result.entry("NA").scores == {"e3": 5}


def test_two_reviews_by_one_expert_of_one_nomination_are_refused() -> None:
    twice = [Review("e1", "NA", {"impact": 1, "innovation": 1})] * 2
    with pytest.raises(ValueError, match="two reviews"):
        merge_category("C1", {"NA": 1}, twice, rules=rules(), assigned={"e1"})
