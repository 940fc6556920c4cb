"""The final-hour surge as a plain function (surge.py gives it to locust; tests call it
without importing locust, which monkey-patches the process it is imported into)."""

from __future__ import annotations


def surge_users(elapsed: float, duration: float, peak: int) -> int:
    """Users at `elapsed` seconds of a `duration`-second surge toward `peak`: a tenth of
    the peak at the start, growing with the square of the elapsed share of the run."""
    share = min(1.0, max(0.0, elapsed / duration))
    return max(1, round(peak * (0.1 + 0.9 * share * share)))
