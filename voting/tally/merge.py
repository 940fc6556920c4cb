"""The merge rules: how public votes and expert scores become one ranking per category.

The rule is an edition setting (`[rules]` in the edition file), locked when voting opens
and copied into the publication, so it is chosen before anyone sees a vote and shown with
the results. Inputs per category: the official vote count of every accepted nomination
(`voting.tally.official`), the experts' reviews, their declared conflicts, and which
experts are assigned to the category.

1. Shortlist. Public votes pick the shortlist (`voting.tally.ranking.shortlist`):
   the `shortlist_size` most-voted nominations, ties at the boundary per `shortlist_ties`.
   Only shortlisted nominations are ranked for the prize.

2. Expert figure. Each shortlisted nomination's expert figure is the mean of its valid
   experts' weighted scores, or of their z-scores when `expert_normalization = "zscore"`
   (`voting.tally.scoring` says which reviews are valid and how z-scores are made).

3. Merged figure, by `merge_rule`:

   a. `experts_pick` (the WSIS default): public votes make the shortlist and the expert
      figure alone picks the winner. merged = expert figure.

   b. `blend`: like a jury and televote split, each side gives every shortlisted
      nomination a figure between 0 and 1, and
      merged = (wₚ·public + wₑ·expert) / (wₚ + wₑ),
      with wₚ = `blend_public_weight` and wₑ = `blend_expert_weight`. The side figures,
      per `blend_basis`:
      - `score`: each side's numbers scaled within the shortlist, best 1 and worst 0
        (x − min) / (max − min); when all are equal, all get 1. The public number is the
        official vote count, the expert number the expert figure.
      - `rank`: points from places (Borda): among n nominations the first gets 1, the
        last 0, the k-th (n − k)/(n − 1); tied nominations share the mean of their places.
      With weights (1, 0) the blend is exactly the public ranking; with (0, 1) exactly
      the expert ranking.

   Where the rule needs experts (always for `experts_pick`; for `blend` when wₑ > 0), a
   shortlisted nomination with no expert figure is not ranked and is listed as unscored;
   results cannot be published while any is. A category whose shortlist has no expert
   figure at all (no expert assigned, or none scored before the review closed) gets what
   the edition's `no_expert_scores` rule, declared before voting, says:
   - `public_votes_only` (the default for editions loaded since the rule exists): the
     shortlist is ranked by official votes alone (merged = votes) and the category is
     marked `public_votes_only` in the results, so no reader mistakes it for an expert pick.
   - `block`: every shortlisted nomination stays unscored; nothing is published until
     the organizers extend the expert review and an expert scores the category.

4. Order and ties. Ranked nominations are ordered by the merged figure, best first, then
   by a break chain: official votes (more first), then for `blend` the expert figure,
   then the public id (drawn at random at creation: deterministic, chosen by no one).
   `tie_policy` decides what a tie on the merged figure means:
   - `joint_winners` (the default, as WSIS did when it named more winners than
     categories): nominations with equal merged figures share a rank; every nomination
     ranked first wins.
   - `break_chain`: the chain decides; ranks are 1, 2, 3, ... and there is one winner.

All arithmetic is exact (fractions) except the square root of the z-scores, so the same
inputs give the same result whatever order they arrive in; figures are rounded only for
display.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from . import ranking, scoring
from .rules import ResultRules
from .scoring import Review


@dataclass
class Entry:
    """One nomination of a category, with every figure that led to its place."""

    nomination: str
    votes: int
    public_rank: int
    shortlisted: bool = False
    # expert -> weighted score (valid reviews only), and z-score when normalizing
    scores: dict[str, Fraction] = field(default_factory=dict)
    normalized: dict[str, Fraction] = field(default_factory=dict)
    recused: tuple[str, ...] = ()
    expert_figure: Fraction | None = None
    public_part: Fraction | None = None
    expert_part: Fraction | None = None
    merged: Fraction | None = None
    rank: int | None = None
    winner: bool = False


@dataclass
class CategoryResult:
    category: str
    # Ranked shortlisted nominations in final order, then unscored shortlisted ones, then
    # the rest of the category in public order.
    entries: list[Entry]
    winners: list[str]
    unscored: list[str]
    # Ranked by public votes alone: no expert scored this category (`no_expert_scores`).
    public_votes_only: bool = False

    def entry(self, nomination: str) -> Entry:
        for e in self.entries:
            if e.nomination == nomination:
                return e
        raise KeyError(nomination)

    @property
    def ranked(self) -> list[Entry]:
        return [e for e in self.entries if e.rank is not None]


def merge_category(
    category: str,
    votes: Mapping[str, int],
    reviews: Iterable[Review],
    *,
    rules: ResultRules,
    assigned: Iterable[str] = (),
    conflicts: Iterable[tuple[str, str]] = (),
) -> CategoryResult:
    """The result of one category. `votes` has every accepted nomination, zeros included."""
    votes = dict(votes)
    conflicts = set(conflicts)
    short = ranking.shortlist(votes, rules.shortlist_size, rules.shortlist_ties)
    valid = scoring.valid_scores(
        reviews,
        criteria=rules.criteria,
        assigned=assigned,
        conflicts=conflicts,
        nominations=short,
    )
    values = scoring.zscores(valid) if rules.normalization == "zscore" else valid
    figures = scoring.expert_figures(values)

    public_only = (
        rules.uses_experts
        and bool(short)
        and not any(n in figures for n in short)
        and rules.no_expert_scores == "public_votes_only"
    )
    if rules.uses_experts and not public_only:
        ranked = [n for n in short if n in figures]
    else:
        ranked = list(short)
    unscored = [n for n in short if n not in ranked]

    public_part: dict[str, Fraction] = {}
    expert_part: dict[str, Fraction] = {}
    if public_only:
        merged = {n: Fraction(votes[n]) for n in ranked}
    elif rules.merge_rule == "experts_pick":
        merged = {n: figures[n] for n in ranked}
    else:
        scale = ranking.borda_points if rules.blend_basis == "rank" else ranking.min_max
        public_part = scale({n: votes[n] for n in ranked})
        if rules.expert_weight > 0:
            expert_part = scale({n: figures[n] for n in ranked})
        wp, we = rules.public_weight, rules.expert_weight
        merged = {
            n: (wp * public_part[n] + we * expert_part.get(n, Fraction(0))) / (wp + we)
            for n in ranked
        }

    def chain(n: str) -> tuple[Any, ...]:
        if public_only or rules.merge_rule == "experts_pick":
            return (-merged[n], -votes[n], n)
        figure = figures.get(n)
        return (-merged[n], -votes[n], figure is None, -(figure or 0), n)

    order = sorted(ranked, key=chain)
    if rules.tie_policy == "break_chain":
        ranks = {n: place for place, n in enumerate(order, start=1)}
    else:
        ranks = ranking.competition_ranks(order, lambda n: merged[n])
    winners = [n for n in order if ranks[n] == 1]

    public_ranks = ranking.competition_ranks(
        sorted(votes, key=lambda n: (-votes[n], n)), lambda n: votes[n]
    )
    shortlisted = set(short)
    rest = [n for n in ranking.public_order(votes) if n not in shortlisted]
    entries = []
    for n in [*order, *unscored, *rest]:
        entries.append(
            Entry(
                nomination=n,
                votes=votes[n],
                public_rank=public_ranks[n],
                shortlisted=n in shortlisted,
                scores={e: v for (e, nom), v in valid.items() if nom == n},
                normalized=(
                    {e: v for (e, nom), v in values.items() if nom == n}
                    if rules.normalization == "zscore"
                    else {}
                ),
                recused=tuple(sorted(e for e, nom in conflicts if nom == n)),
                expert_figure=figures.get(n),
                public_part=public_part.get(n),
                expert_part=expert_part.get(n),
                merged=merged.get(n),
                rank=ranks.get(n),
                winner=n in winners,
            )
        )
    return CategoryResult(category, entries, winners, unscored, public_only)
