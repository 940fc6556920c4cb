"""The privacy rules of an edition (`[rules.privacy]`): their defaults and their check.

voting/privacy.py documents them and applies them (the purge). They live here, apart,
because the edition file's parser (voting/contest) checks them, and voting/privacy.py
reads nominations (a nominator's own data), which read the contest: one module for both
made an import cycle.
"""

from __future__ import annotations

from collections.abc import Callable

# name -> (default, minimum)
DEFAULTS: dict[str, int] = {
    "outbox_hours": 24,
    "signals_days_after_publication": 30,
}
_MINIMUMS = {"outbox_hours": 1, "signals_days_after_publication": 0}
_MAXIMUMS = {"outbox_hours": 24 * 90, "signals_days_after_publication": 3650}


def parse_privacy_rules(raw: object, fail: Callable[[str, str], Exception]) -> dict[str, int]:
    """An edition's `[rules.privacy]` overrides, validated. Only the overrides are stored
    (like `[rules.antifraud]`); the database's purge functions (0013_privacy.sql) read
    them from `editions.rules` with the same defaults as DEFAULTS."""
    if not isinstance(raw, dict):
        raise fail("rules.privacy", f"must be a table, got {type(raw).__name__}")
    merged: dict[str, int] = {}
    for key, value in raw.items():
        if key not in DEFAULTS:
            raise fail(f"rules.privacy.{key}", f"unknown rule; known: {', '.join(DEFAULTS)}")
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail(f"rules.privacy.{key}", f"must be a whole number, got {value!r}")
        if not _MINIMUMS[key] <= value <= _MAXIMUMS[key]:
            raise fail(
                f"rules.privacy.{key}",
                f"must be between {_MINIMUMS[key]} and {_MAXIMUMS[key]}, got {value}",
            )
        merged[key] = value
    return merged
