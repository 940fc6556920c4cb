"""The one clock of the engine.

Nothing reads the wall clock directly: code asks the clock it was given, so tests can
drive phase boundaries exactly. The vote hot path is the exception by design: there the
cutoff is decided by Redis `TIME`, the single clock every worker agrees on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to (tests, rehearsals, the CLI's --at)."""

    def __init__(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware instant")
        self._instant = instant.astimezone(UTC)

    def now(self) -> datetime:
        return self._instant

    def set(self, instant: datetime) -> None:
        self._instant = instant.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        self._instant += delta
