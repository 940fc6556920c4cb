"""The options of `voting bench` and `voting loadtest`, kept apart from their code so that
building the `voting` command's parser imports nothing heavy."""

from __future__ import annotations

import argparse

from voting.settings import ASGI_SERVERS


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    add_loadtest_parser(sub)
    bench = sub.add_parser(
        "bench",
        help="measure the vote hot path against a bare endpoint, the flusher and the tally",
    )
    bench.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server worker processes; above 1, a one-worker server is measured in the "
        "same run too, for the scaling ratio",
    )
    bench.add_argument(
        "--redis-cluster",
        action="store_true",
        help="also start a three-master Redis Cluster on loopback and measure the vote "
        "path on it beside the single Redis",
    )
    bench.add_argument(
        "--private-redis",
        action="store_true",
        help="run the single-Redis path on a Redis the bench starts (same append-only "
        "settings as the configured one), so its CPU figures count the votes only",
    )
    bench.add_argument(
        "--server",
        choices=ASGI_SERVERS,
        help="the engine's ASGI server (default: VOTING_SERVER, else `voting serve`'s "
        "default); the pure baseline stays on uvicorn",
    )
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


def add_loadtest_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    load = sub.add_parser(
        "loadtest",
        help="rehearse the load: locust flows against a rehearsal edition, thresholds, "
        "ledger check",
    )
    load.add_argument(
        "--target",
        help="base URL of the deployment to load (default: a server started here on the "
        "configured or embedded servers)",
    )
    load.add_argument("--users", type=int, default=50, help="simulated people (the peak)")
    load.add_argument("--spawn-rate", type=float, default=10, help="users started per second")
    load.add_argument(
        "--duration", default="60s", help="how long: 90s, 5m, 1h (locust's --run-time)"
    )
    load.add_argument(
        "--shape",
        choices=["steady", "surge"],
        default="steady",
        help="steady: --users throughout; surge: ramp up toward the end (the final hour)",
    )
    load.add_argument(
        "--edition",
        help="an existing rehearsal to load (default: create one from the current edition "
        "and drop it afterwards)",
    )
    load.add_argument("--keep", action="store_true", help="keep the rehearsal it created")
    load.add_argument(
        "--voters", type=int, help="voter tokens to mint (default: enough for the run)"
    )
    load.add_argument("--think", type=float, default=2.5, help="seconds from form to vote")
    load.add_argument("--workers", type=int, default=1, help="workers of the server it starts")
    load.add_argument(
        "--report-dir", default="loadtest-report", help="where locust's CSV and HTML go"
    )
    load.add_argument(
        "--max-failure-rate", type=float, default=0.01, help="fail above this share (0.01)"
    )
    load.add_argument("--max-p95-ms", type=float, default=500, help="fail above this p95")
    load.add_argument("--max-p99-ms", type=float, default=1000, help="fail above this p99")
    load.add_argument(
        "--drain-timeout", type=float, default=120, help="seconds to wait for the ledger"
    )
