"""Expert scores: which reviews count, the weighted score, and per-expert z-scores.

- A review (one expert, one nomination: a score per criterion and a comment) counts only
  when it is complete (a score for every criterion of the edition), its expert is
  assigned to the nomination's category, and the expert has not declared a conflict of
  interest with that nomination. A declared conflict recuses the expert: whatever they
  scored for that nomination, before or after declaring, never counts.
- Weighted score = Σ weightᵢ · scoreᵢ / Σ weightᵢ, on the edition's scale
  (`score_min`..`score_max`), computed exactly (fractions): weights need not sum to 1.
- Normalization (`expert_normalization = "zscore"`): harsh and lenient judges are put on
  one footing by replacing each expert's weighted score with its z-score among the
  nominations *that expert* validly reviewed *in that category*:
  z = (x − mean) / sd, with the population standard deviation. An expert who gave every
  nomination the same score (sd = 0) expresses no preference: all their z-scores are 0.
  The square root makes z irrational; it is taken in double precision and every later
  step is exact again, so the result does not depend on the order of anything.
- The expert figure of a nomination is the mean over its valid reviews of the weighted
  score (or of the z-scores). A nomination with no valid review has no expert figure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

from .rules import Criterion


@dataclass(frozen=True)
class Review:
    expert: str
    nomination: str
    scores: Mapping[str, Fraction | int] = field(hash=False)


def weighted_score(
    scores: Mapping[str, Fraction | int], criteria: Iterable[Criterion]
) -> Fraction | None:
    """Σ w·s / Σ w over the criteria; None when a criterion has no score."""
    total = Fraction(0)
    weights = Fraction(0)
    for criterion in criteria:
        if criterion.code not in scores:
            return None
        total += criterion.weight * Fraction(scores[criterion.code])
        weights += criterion.weight
    return total / weights if weights else None


def valid_scores(
    reviews: Iterable[Review],
    *,
    criteria: Iterable[Criterion],
    assigned: Iterable[str],
    conflicts: Iterable[tuple[str, str]],
    nominations: Iterable[str],
) -> dict[tuple[str, str], Fraction]:
    """(expert, nomination) -> weighted score, for the reviews that count."""
    criteria = tuple(criteria)
    assigned_set = set(assigned)
    recused = set(conflicts)
    wanted = set(nominations)
    found: dict[tuple[str, str], Fraction] = {}
    seen: set[tuple[str, str]] = set()
    for review in reviews:
        key = (review.expert, review.nomination)
        if key in seen:
            # Which of two reviews won would depend on their order: refuse instead.
            raise ValueError(f"two reviews of {review.nomination} by {review.expert}")
        seen.add(key)
        if review.expert not in assigned_set or key in recused or review.nomination not in wanted:
            continue
        score = weighted_score(review.scores, criteria)
        if score is not None:
            found[key] = score
    return found


def zscores(scores: Mapping[tuple[str, str], Fraction]) -> dict[tuple[str, str], Fraction]:
    """Each expert's scores as z-scores among that expert's own scores."""
    by_expert: dict[str, list[tuple[str, Fraction]]] = {}
    for (expert, nomination), value in scores.items():
        by_expert.setdefault(expert, []).append((nomination, value))
    result: dict[tuple[str, str], Fraction] = {}
    for expert, items in by_expert.items():
        mean = sum((v for _, v in items), Fraction(0)) / len(items)
        variance = sum(((v - mean) ** 2 for _, v in items), Fraction(0)) / len(items)
        sd = math.sqrt(variance)
        for nomination, value in items:
            z = float(value - mean) / sd if sd > 0 else 0.0
            result[(expert, nomination)] = Fraction(z)
    return result


def expert_figures(values: Mapping[tuple[str, str], Fraction]) -> dict[str, Fraction]:
    """Nomination -> mean of its experts' values."""
    sums: dict[str, Fraction] = {}
    counts: dict[str, int] = {}
    for (_, nomination), value in values.items():
        sums[nomination] = sums.get(nomination, Fraction(0)) + value
        counts[nomination] = counts.get(nomination, 0) + 1
    return {n: sums[n] / counts[n] for n in sums}
