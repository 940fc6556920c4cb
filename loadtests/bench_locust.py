"""The benchmark's load generator where wrk is not installed: locust's FastHttpUser (a C
HTTP client on gevent), the same requests as wrk_votes.lua, in several processes.

Slower than wrk: on a small machine it may be the bottleneck, which the benchmark says.
Settings come from the environment (locust passes no arguments to user classes):
BENCH_VOTERS, BENCH_BALLOTS (the files wrk_votes.lua reads), BENCH_START (first index),
BENCH_SPAN (indices per process), BENCH_RATE (requests per second per user; 0 = as fast as
possible).
"""

from __future__ import annotations

import itertools
import os

from locust import FastHttpUser, constant, constant_throughput, events, task


def _load() -> tuple[list[tuple[str, str, str]], list[list[str]]]:
    voters_file = os.environ.get("BENCH_VOTERS")
    if not voters_file:
        return [], []
    with open(voters_file, encoding="utf-8") as f:
        voters = [tuple(line.rstrip("\n").split("\t")) for line in f if line.strip()]
    with open(os.environ["BENCH_BALLOTS"], encoding="utf-8") as f:
        ballots = [line.strip().split(",") for line in f if line.strip()]
    return voters, ballots  # type: ignore[return-value]


VOTERS, BALLOTS = _load()
_START = int(os.environ.get("BENCH_START", "0"))
_SPAN = int(os.environ.get("BENCH_SPAN", "1000000"))
_RATE = float(os.environ.get("BENCH_RATE", "0"))
_BARE_PATH = os.environ.get("BENCH_BARE_PATH", "/livez")
# Which slice of the (voter, category) pairs this process sends: set once locust says
# which worker this is, so that no two processes send the same pair.
_indices = itertools.count(_START)


@events.init.add_listener
def _slice(environment, **_kw):  # type: ignore[no-untyped-def]
    global _indices
    index = getattr(environment.runner, "worker_index", 0) or 0
    _indices = itertools.count(_START + index * _SPAN)


def _pace():  # type: ignore[no-untyped-def]
    return constant_throughput(_RATE) if _RATE > 0 else constant(0)


class BareUser(FastHttpUser):
    wait_time = _pace()

    @task
    def livez(self) -> None:
        self.client.get(_BARE_PATH, name="bare")


class VoteUser(FastHttpUser):
    wait_time = _pace()

    @task
    def vote(self) -> None:
        i = next(_indices)
        v = i % len(VOTERS)
        cookie, csrf, ip = VOTERS[v]
        noms = BALLOTS[(i // len(VOTERS)) % len(BALLOTS)]
        self.client.post(
            "/api/votes",
            data=b'{"nomination":"' + noms[v % len(noms)].encode() + b'"}',
            headers={
                "Content-Type": "application/json",
                "Cookie": f"wsis_session={cookie}",
                "X-CSRF-Token": csrf,
                "X-Forwarded-For": ip,
            },
            name="vote",
        )
