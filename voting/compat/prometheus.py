"""prometheus-client internals: a histogram child's sum and buckets, and the value class
chosen at import.

Checked against TESTED (pinned in pyproject.toml); tests/test_compat.py fails when a
histogram child stops keeping them so, or the value classes move.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import values

TESTED = ">=0.20,<0.27"

__all__ = ["TESTED", "multiprocess_values", "observe_many"]


def observe_many(child: Any, total: float, per_bucket: Sequence[int]) -> None:
    """Histogram.observe, n observations at once: `total` seconds in all, and
    `per_bucket[i]` observations whose first bucket is the i-th (+Inf last).

    Histogram.observe adds each amount to the sum and one to its first bucket (the
    exposition accumulates the buckets); there is no public call for n at once."""
    child._sum.inc(total)
    buckets = child._buckets
    for i, n in enumerate(per_bucket):
        if n:
            buckets[i].inc(n)


def multiprocess_values() -> bool:
    """Whether prometheus-client chose its multiprocess value class when it was first
    imported (it reads PROMETHEUS_MULTIPROC_DIR once, then)."""
    return values.ValueClass is not values.MutexValue
