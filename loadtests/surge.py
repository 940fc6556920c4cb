"""The final hour before the cutoff, compressed into the run: the rehearsal's flows
(locustfile.py) under a load shape that ramps up toward the end, as nominating
organizations mobilise their networks in the last hours (CONTEST.md).

The shape reads the run's --users (the peak), --spawn-rate and --run-time: it starts at a
tenth of the peak and grows with the square of the elapsed share of the run, so the last
fifth of the run carries about a third of the votes; it stops at the run time.
"""

from __future__ import annotations

from locust import LoadTestShape

from loadtests.locustfile import ReturningVoter, Visitor, Voter
from loadtests.shapes import surge_users

__all__ = ["FinalHourSurge", "ReturningVoter", "Visitor", "Voter"]


class FinalHourSurge(LoadTestShape):
    use_common_options = True  # the peak, spawn rate and duration come from the command

    def tick(self) -> tuple[int, float] | None:
        options = self.runner.environment.parsed_options
        duration = float(options.run_time or 60)
        elapsed = self.get_run_time()
        if elapsed >= duration:
            return None
        peak = int(options.num_users or 10)
        return surge_users(elapsed, duration, peak), float(options.spawn_rate or peak)
