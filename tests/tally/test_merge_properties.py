"""Invariants of the result rules, over generated categories, votes, scores and rules."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures.tally import (
    CRITERIA,
    PAIRS,
    categories,
    full_scores,
    merged,
    result_rules,
)
from voting.contest.rules import EditionRules
from voting.tally import ranking, scoring
from voting.tally.merge import CategoryResult
from voting.tally.rules import ResultRules
from voting.tally.scoring import Review


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
    rules = EditionRules.from_stored({"criteria": CRITERIA}).results
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
    return EditionRules.from_stored(as_dict).results


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
    experts_only = merged(data, EditionRules.from_stored(as_dict).results)
    blended = merged(data, with_weights(rules, 0, 1))
    assert ranks(blended) == ranks(experts_only)
    assert blended.winners == experts_only.winners
