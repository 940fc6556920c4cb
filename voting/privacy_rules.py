"""The privacy rules of an edition (`[rules.privacy]`): their defaults and their check.

voting/privacy.py documents them and applies them (the purge). They live here, apart,
because the edition file's parser (voting/contest) checks them, and voting/privacy.py
reads nominations (a nominator's own data), which read the contest: one module for both
made an import cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class PrivacyRules:
    """How long personal data stays. The database's purge functions (0013_privacy.sql)
    read the same rules from `editions.rules` with the same defaults."""

    outbox_hours: int = 24
    signals_days_after_publication: int = 30

    @classmethod
    def parse(cls, raw: object, fail: Callable[[str, str], Exception]) -> PrivacyRules:
        """An edition's `[rules.privacy]` overrides, validated, on the defaults."""
        if not isinstance(raw, Mapping):
            raise fail("rules.privacy", f"must be a table, got {type(raw).__name__}")
        overrides: dict[str, int] = {}
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
            overrides[key] = value
        return cls(**overrides)

    def overrides(self) -> dict[str, Any]:
        """What the edition changed: only that is stored (like `[rules.antifraud]`)."""
        return {key: value for key, value in asdict(self).items() if value != DEFAULTS[key]}

    def signals_erased_at(self, published_at: datetime | None) -> datetime | None:
        """When a vote's signals are erased: None while the results are unpublished."""
        if published_at is None:
            return None
        return published_at + timedelta(days=self.signals_days_after_publication)


# name -> default, minimum and maximum.
DEFAULTS: dict[str, int] = {f.name: f.default for f in fields(PrivacyRules)}
_MINIMUMS = {"outbox_hours": 1, "signals_days_after_publication": 0}
_MAXIMUMS = {"outbox_hours": 24 * 90, "signals_days_after_publication": 3650}
