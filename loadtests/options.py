"""The options of `voting bench` and `voting loadtest`, kept apart from their code so that
building the `voting` command's parser imports nothing heavy."""

from __future__ import annotations

import argparse


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    bench = sub.add_parser(
        "bench",
        help="measure the vote hot path against a bare endpoint, the flusher and the tally",
    )
    bench.add_argument("--workers", type=int, default=1, help="server worker processes")
    bench.add_argument("--seconds", type=float, default=10, help="length of each round")
    bench.add_argument("--rounds", type=int, default=3, help="rounds of bare and vote load")
    bench.add_argument("--connections", type=int, default=64)
    bench.add_argument(
        "--voters",
        type=int,
        default=60_000,
        help="voter sessions to mint (each votes once per category)",
    )
    bench.add_argument(
        "--tally-votes",
        type=int,
        default=1_000_000,
        help="ledger size for the tally timing (0: skip it)",
    )
    bench.add_argument(
        "--generator",
        choices=["auto", "wrk", "locust"],
        default="auto",
        help="auto: wrk when installed, else locust's FastHttpUser in several processes",
    )
    bench.add_argument(
        "--profile",
        metavar="FILE",
        help="record a py-spy profile of the server during the first vote round "
        "(.svg flame graph, .json speedscope, else raw)",
    )
