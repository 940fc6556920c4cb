"""Invariants of the result rules, over generated categories, votes, scores and rules."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from voting.tally import ranking, scoring
from voting.tally.merge import CategoryResult, merge_category
from voting.tally.rules import ResultRules
from voting.tally.scoring import Review

NOMINATIONS = ["N" + c for c in "ABCDEFGH"]
EXPERTS = ["e1", "e2", "e3", "e4"]
CRITERIA = [
    {"code": "impact", "name": "Impact", "weight": 3},
    {"code": "reach", "name": "Reach", "weight": 0.5},
    {"code": "novelty", "name": "Novelty", "weight": 1},
]
PAIRS = [(e, n) for e in EXPERTS for n in NOMINATIONS]

score = st.integers(min_value=1, max_value=10)
full_scores = st.fixed_dictionaries({c["code"]: score for c in CRITERIA})
some_scores = st.one_of(
    full_scores, st.dictionaries(st.sampled_from([c["code"] for c in CRITERIA]), score)
)


@st.composite
def categories(draw: Any) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(NOMINATIONS), min_size=1, max_size=8, unique=True))
    votes = {n: draw(st.integers(min_value=0, max_value=12)) for n in names}
    reviewed = draw(st.lists(st.sampled_from(PAIRS), unique=True, max_size=20))
    reviews = [Review(e, n, draw(some_scores)) for e, n in reviewed if n in votes]
    conflicts = set(draw(st.lists(st.sampled_from(PAIRS), unique=True, max_size=6)))
    assigned = set(draw(st.lists(st.sampled_from(EXPERTS), unique=True, min_size=1)))
    return {"votes": votes, "reviews": reviews, "conflicts": conflicts, "assigned": assigned}


result_rules = st.builds(
    lambda size, ties, merge, basis, norm, tie, wp, we: ResultRules.of(
        {
            "shortlist_size": size,
            "shortlist_ties": ties,
            "merge_rule": merge,
            "blend_basis": basis,
            "expert_normalization": norm,
            "tie_policy": tie,
            "blend_public_weight": wp,
            "blend_expert_weight": we,
            "criteria": CRITERIA,
        }
    ),
    st.integers(min_value=1, max_value=6),
    st.sampled_from(["all_tied_enter", "break_chain"]),
    st.sampled_from(["experts_pick", "blend"]),
    st.sampled_from(["score", "rank"]),
    st.sampled_from(["none", "zscore"]),
    st.sampled_from(["joint_winners", "break_chain"]),
    st.sampled_from([0.25, 0.5, 1.0, 2]),
    st.sampled_from([0.1, 0.5, 0.75, 1]),
)


def merged(data: dict[str, Any], rules: ResultRules) -> CategoryResult:
    return merge_category(
        "C1",
        data["votes"],
        data["reviews"],
        rules=rules,
        assigned=data["assigned"],
        conflicts=data["conflicts"],
    )


def outcome(result: CategoryResult) -> list[tuple[Any, ...]]:
    return [
        (
            e.nomination,
            e.rank,
            e.winner,
            e.shortlisted,
            e.public_rank,
            e.merged,
            e.expert_figure,
            tuple(sorted(e.scores.items())),
        )
        for e in result.entries
    ]


@settings(max_examples=200)
@given(categories(), result_rules, st.randoms(use_true_random=False))
def test_the_result_does_not_depend_on_the_order_of_votes_or_scores(
    data: dict[str, Any], rules: ResultRules, rng: random.Random
) -> None:
    expected = outcome(merged(data, rules))
    names = list(data["votes"])
    rng.shuffle(names)
    reviews = list(data["reviews"])
    rng.shuffle(reviews)
    conflicts = list(data["conflicts"])
    rng.shuffle(conflicts)
    shuffled = {
        "votes": {n: data["votes"][n] for n in names},
        "reviews": reviews,
        "conflicts": conflicts,
        "assigned": list(reversed(sorted(data["assigned"]))),
    }
    assert outcome(merged(shuffled, rules)) == expected


@settings(max_examples=200)
@given(categories(), result_rules, st.data())
def test_a_counted_vote_never_lowers_its_nominations_public_rank(
    data: dict[str, Any], rules: ResultRules, draw: st.DataObject
) -> None:
    lucky = draw.draw(st.sampled_from(sorted(data["votes"])))
    before = merged(data, rules).entry(lucky)
    more = {**data, "votes": {**data["votes"], lucky: data["votes"][lucky] + 1}}
    after = merged(more, rules).entry(lucky)
    assert after.public_rank <= before.public_rank
    assert after.shortlisted or not before.shortlisted


@settings(max_examples=200)
@given(categories(), result_rules, st.data())
def test_a_recused_experts_scores_never_count(
    data: dict[str, Any], rules: ResultRules, draw: st.DataObject
) -> None:
    if not data["conflicts"]:
        return
    expert, nomination = draw.draw(st.sampled_from(sorted(data["conflicts"])))
    baseline = merged(data, rules)
    if nomination in data["votes"]:
        assert expert not in baseline.entry(nomination).scores
    # Whatever the recused expert gives that nomination (or nothing), nothing changes.
    others = [r for r in data["reviews"] if (r.expert, r.nomination) != (expert, nomination)]
    for scores in ({}, {c["code"]: 10 for c in CRITERIA}, {c["code"]: 1 for c in CRITERIA}):
        if nomination not in data["votes"]:
            break
        changed = {**data, "reviews": [*others, Review(expert, nomination, scores)]}
        assert outcome(merged(changed, rules)) == outcome(baseline)


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(PAIRS), full_scores, min_size=1))
def test_normalization_keeps_each_experts_order_of_nominations(scores: dict) -> None:
    rules = ResultRules.of({"criteria": CRITERIA})
    weighted = {k: scoring.weighted_score(v, rules.criteria) for k, v in scores.items()}
    z = scoring.zscores(weighted)
    for (e1, n1), w1 in weighted.items():
        for (e2, n2), w2 in weighted.items():
            if e1 == e2:
                # Same expert: z-scores compare exactly as the scores they came from.
                assert (w1 > w2) == (z[(e1, n1)] > z[(e2, n2)])
                assert (w1 == w2) == (z[(e1, n1)] == z[(e2, n2)])


def with_weights(rules: ResultRules, public: float, expert: float) -> ResultRules:
    as_dict = rules.to_dict()
    as_dict.update(merge_rule="blend", blend_public_weight=public, blend_expert_weight=expert)
    return ResultRules.of(as_dict)


def ranks(result: CategoryResult) -> list[tuple[str, int | None]]:
    return [(e.nomination, e.rank) for e in result.ranked]


@settings(max_examples=200)
@given(categories(), result_rules)
def test_a_blend_weighted_one_to_zero_is_the_public_ranking(
    data: dict[str, Any], rules: ResultRules
) -> None:
    result = merged(data, with_weights(rules, 1, 0))
    short = [e.nomination for e in result.entries if e.shortlisted]
    figures = {e.nomination: e.expert_figure for e in result.entries if e.expert_figure is not None}
    public = ranking.public_order({n: data["votes"][n] for n in short}, figures)
    assert [n for n, _ in ranks(result)] == public
    if rules.tie_policy == "break_chain":
        expected = {n: place for place, n in enumerate(public, start=1)}
    else:
        expected = ranking.competition_ranks(public, lambda n: data["votes"][n])
    assert dict(ranks(result)) == expected


@settings(max_examples=200)
@given(categories(), result_rules)
def test_a_blend_weighted_zero_to_one_is_the_expert_ranking(
    data: dict[str, Any], rules: ResultRules
) -> None:
    as_dict = rules.to_dict()
    as_dict["merge_rule"] = "experts_pick"
    experts_only = merged(data, ResultRules.of(as_dict))
    blended = merged(data, with_weights(rules, 0, 1))
    assert ranks(blended) == ranks(experts_only)
    assert blended.winners == experts_only.winners
