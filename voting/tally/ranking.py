"""Orderings, ranks and the shortlist.

Every ordering is a chain of keys that ends in the nomination's public id. Public ids are
drawn at random when a nomination is first saved, long before any vote, so the last link
of every chain is deterministic and yet favours no one and was chosen by no one.

- The public order of a category: more official votes first; then (where experts have
  scored) the higher expert figure; then the public id.
- The shortlist ("champions"): the `shortlist_size` nominations with the most official
  votes; a nomination needs at least one official vote to enter. A tie at the boundary
  follows `shortlist_ties`: `all_tied_enter` (the default) lets every nomination tied
  with the last place enter, so the shortlist may be longer; `break_chain` cuts at
  exactly `shortlist_size` by the chain (votes, then public id).
- Ranks are competition ranks ("1, 2, 2, 4"): one plus the number of nominations with a
  strictly better figure, so tied nominations share a rank.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from fractions import Fraction
from typing import Any


def public_order(
    votes: Mapping[str, int], expert: Mapping[str, Fraction] | None = None
) -> list[str]:
    expert = expert or {}

    def key(n: str) -> tuple[Any, ...]:
        figure = expert.get(n)
        return (-votes[n], figure is None, -(figure or 0), n)

    return sorted(votes, key=key)


def shortlist(votes: Mapping[str, int], size: int, ties: str) -> list[str]:
    """The shortlisted nominations, in public order (votes, then public id)."""
    order = [n for n in sorted(votes, key=lambda n: (-votes[n], n)) if votes[n] > 0]
    if len(order) <= size:
        return order
    if ties == "break_chain":
        return order[:size]
    boundary = votes[order[size - 1]]
    return [n for n in order if votes[n] >= boundary]


def competition_ranks(order: Iterable[str], figure: Callable[[str], Hashable]) -> dict[str, int]:
    """Ranks for an order already sorted best first; equal figures share a rank."""
    ranks: dict[str, int] = {}
    previous: object = object()
    rank = 0
    for position, nomination in enumerate(order, start=1):
        value = figure(nomination)
        if value != previous:
            rank = position
            previous = value
        ranks[nomination] = rank
    return ranks


def average_ranks(values: Mapping[str, Fraction | int]) -> dict[str, Fraction]:
    """1-based ranks, best (highest value) first; tied values share the mean of their places."""
    order = sorted(values, key=lambda n: -values[n])
    ranks: dict[str, Fraction] = {}
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        mean_place = Fraction(start + 1 + end + 1, 2)
        for n in order[start : end + 1]:
            ranks[n] = mean_place
        start = end + 1
    return ranks


def borda_points(values: Mapping[str, Fraction | int]) -> dict[str, Fraction]:
    """Points from places: the first gets 1, the last 0, ties share; one alone gets 1."""
    count = len(values)
    if count == 1:
        return dict.fromkeys(values, Fraction(1))
    return {n: (count - r) / (count - 1) for n, r in average_ranks(values).items()}


def min_max(values: Mapping[str, Fraction | int]) -> dict[str, Fraction]:
    """Scaled so the best is 1 and the worst 0; when all are equal, all are 1."""
    if not values:
        return {}
    low, high = min(values.values()), max(values.values())
    if high == low:
        return dict.fromkeys(values, Fraction(1))
    return {n: Fraction(v - low) / Fraction(high - low) for n, v in values.items()}
