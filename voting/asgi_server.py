"""How `voting serve` runs its ASGI server: uvicorn (the default) or granian.

Both serve the one factory (voting.app:app_from_env) in `workers` processes with the same
promises, each shown by a test against a real `voting serve` (tests/faults, tests/security):
SIGTERM drains the requests in flight and runs the lifespan's shutdown; a worker that dies
is replaced; X-Forwarded-* are the app's business (voting/web/proxy.py), never the
server's; no Server header naming the software (an empty one, web/policy.py); our JSON
logs (voting/logs.py) in every worker, and no access log of the server's own (ours,
`voting.access`, has the request id).

uvicorn stays the default: measured in the same alternating runs, granian answers GET /livez
with about the same CPU (59-69 against 67-76 us) but a vote with 13-20% more (219-229
against 191-201 us), and on a machine whose
cores the workers keep busy the CPU a vote is what sets the votes a second. granian is a
choice (`--server granian`, VOTING_SERVER=granian) that keeps every promise above: README,
"The ASGI server as a lever", has the figures and the commands.
"""

from __future__ import annotations

import signal
from typing import Any

from .settings import ASGI_SERVERS

DEFAULT_SERVER = ASGI_SERVERS[0]
APP = "voting.app:app_from_env"
# A request still running this long after SIGTERM is cut off: a stop must end.
GRACEFUL_SECONDS = 20


def serves_in_main_process(server: str, workers: int) -> bool:
    """uvicorn with one worker serves in its own process; granian always starts workers
    under a supervisor (so a killed worker is replaced even with one)."""
    return server == "uvicorn" and workers <= 1


def run(
    server: str,
    *,
    host: str,
    port: int,
    workers: int,
    log_level: str,
    log_config: dict[str, Any],
) -> None:
    """Serve until SIGTERM or SIGINT; returns once the workers have stopped (the caller's
    `finally` then stops what it started). A failed start raises (uvicorn: SystemExit;
    granian: RuntimeError, e.g. "Address already in use"), through the same `finally`."""
    if server not in ASGI_SERVERS:
        raise ValueError(f"unknown ASGI server {server!r}")
    # Until the server takes the signals over (and for uvicorn, which re-raises a signal
    # with the handler it found after its own stop): unwind through the caller's `finally`,
    # so the embedded servers are stopped too and no process is left behind.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    if server == "uvicorn":
        _uvicorn(host, port, workers, log_level, log_config)
    else:
        _granian(host, port, workers, log_level, log_config)


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _uvicorn(
    host: str, port: int, workers: int, log_level: str, log_config: dict[str, Any]
) -> None:
    import uvicorn

    from .compat.uvicorn import CoalescingHttpToolsProtocol

    uvicorn.run(
        APP,
        factory=True,
        # Each answer's head and body in one write (voting/compat/uvicorn.py).
        http=CoalescingHttpToolsProtocol,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        # X-Forwarded-* are the app's business (VOTING_TRUST_PROXY_HEADERS), not
        # uvicorn's default of believing them from 127.0.0.1; no Server header.
        proxy_headers=False,
        server_header=False,
        # Our access log (voting.access, JSON with the request id) replaces uvicorn's.
        access_log=False,
        log_config=log_config,
    )


def _granian(
    host: str, port: int, workers: int, log_level: str, log_config: dict[str, Any]
) -> None:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.log import LogLevels

    Granian(
        APP,
        address=host,
        port=port,
        # ASGI with the lifespan protocol: the app's startup and shutdown (flushers,
        # pools) run in each worker, as under uvicorn.
        interface=Interfaces.ASGI,
        factory=True,
        workers=workers,
        loop=Loops.uvloop,
        # HTTP/1.1 only, as uvicorn served: the load balancer speaks it, and a second
        # protocol would be a second surface to test. The engine has no websockets.
        http=HTTPModes.http1,
        websockets=False,
        # uvicorn's listen backlog (granian's default is 1024).
        backlog=2048,
        # A worker that dies (kill -9, out of memory) is started again; granian's
        # supervisor gives up if the same worker dies again within 5.5 s of its restart.
        respawn_failed_workers=True,
        # SIGTERM: each worker stops accepting, finishes what it has in flight, runs the
        # lifespan shutdown; one still busy after this long is killed.
        workers_kill_timeout=GRACEFUL_SECONDS,
        log_enabled=True,
        log_level=LogLevels(log_level.lower()),
        # Applied in the supervisor and again in every worker it starts.
        log_dictconfig=log_config,
        # Our access log (voting.access) replaces granian's.
        log_access=False,
    ).serve()
