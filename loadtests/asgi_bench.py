"""The vote path's own cost, without HTTP: POST /api/votes driven straight into the ASGI
application, in this process, against real PostgreSQL and Redis.

`voting bench` measures the whole server, and on a shared 2-core machine its figures move
by a fifth from one run to the next; a change worth a few percent of the handler's time
is lost in that. Here the HTTP server and the load generator are out of the picture:
what is left is the application's time per vote (middleware, session, handler, the
batched script), measured in CPU time of this process, which other processes on the
machine barely disturb. `--strip NAME` builds the same application without the
middleware class NAME, for a before/after of one middleware.

    python -m loadtests.asgi_bench --votes 20000 --concurrency 64 [--strip Edge]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from voting.settings import Settings, load_settings

from .bench import prepare
from .server import with_database


def vote_scope(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """The ASGI scope of `POST /api/votes` from a client on loopback, with `headers`
    (tests/web/test_edge.py sends its odd Content-Lengths in the same)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/votes",
        "raw_path": b"/api/votes",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }


async def drive(
    app: Any,
    lines: list[tuple[str, str, str]],
    nominations: list[str],
    votes: int,
    concurrency: int,
    *,
    bare: bool = False,
) -> tuple[float, float, dict[int, int]]:
    """Send `votes` fresh votes (or as many GET /livez with `bare`), `concurrency` at a
    time; (wall s, CPU s, statuses)."""
    statuses: dict[int, int] = {}
    counter = iter(range(votes))

    async def one(i: int) -> None:
        cookie, csrf, ip = lines[i % len(lines)]
        nomination = nominations[(i // len(lines)) % len(nominations)]
        body = b'{"nomination":"' + nomination.encode() + b'"}'
        scope = vote_scope(
            [
                (b"host", b"bench"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cookie", b"wsis_session=" + cookie.encode()),
                (b"x-csrf-token", csrf.encode()),
                (b"x-forwarded-for", ip.encode()),
            ]
        )
        if bare:
            body = b""
            scope.update(method="GET", path="/livez", raw_path=b"/livez")
            scope["headers"] = [(b"host", b"bench"), (b"x-forwarded-for", ip.encode())]
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses[message["status"]] = statuses.get(message["status"], 0) + 1

        await app(scope, receive, send)

    async def worker() -> None:
        for i in counter:
            await one(i)

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - wall, time.process_time() - cpu, statuses


async def run(args: argparse.Namespace, settings: Settings) -> None:
    from voting.app import create_app

    assert settings.database_url and settings.redis_url
    name = f"wsis_asgi_{uuid.uuid4().hex[:8]}"
    prefix = f"asgib{uuid.uuid4().hex[:6]}"
    secret = "bench-secret-" + uuid.uuid4().hex
    tmp = Path(tempfile.mkdtemp(prefix="wsis-asgi-"))
    admin = await asyncpg.connect(settings.database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        db_url = with_database(settings.database_url, name)
        # By default a voter votes in every category of a round (their session cookie is
        # verified once, then remembered); --voters N spreads a round over more of them.
        voters = args.voters or max(1000, args.votes * (args.rounds + 1) // 18 + 1)
        files = await prepare(db_url, settings.redis_url, prefix, voters, secret, tmp)
        lines = [tuple(x.split("\t")) for x in files.voters.read_text().splitlines()]
        nominations = [b.split(",")[0] for b in files.ballots.read_text().splitlines()]
        app = create_app(
            settings.with_overrides(
                database_url=db_url,
                redis_url=settings.redis_url,
                secret_key=secret,
                redis_prefix=prefix,
                data_dir=tmp,
                background_tasks=False,
                trust_proxy_headers=True,
            )
        )
        if args.strip:
            strip = set(args.strip.split(","))
            app.user_middleware = [m for m in app.user_middleware if m.cls.__name__ not in strip]
        async with app.router.lifespan_context(app):
            # Warm up (catalog, script cache), then the measured rounds, each on fresh pairs.
            await drive(app, lines[-200:], nominations[-1:], 200, args.concurrency)
            cpus, bares = [], []
            for r in range(args.rounds):
                chunk = lines[r * len(lines) // args.rounds : (r + 1) * len(lines) // args.rounds]
                _, cpu, _ = await drive(
                    app, chunk, nominations, args.votes, args.concurrency, bare=True
                )
                bares.append(cpu / args.votes * 1e6)
                wall, cpu, statuses = await drive(
                    app, chunk, nominations, args.votes, args.concurrency
                )
                cpus.append(cpu / args.votes * 1e6)
                print(
                    f"round {r + 1}: {args.votes / wall:.0f} votes/s, {cpus[-1]:.0f} us CPU"
                    f" per vote, statuses {dict(sorted(statuses.items()))};"
                    f" GET /livez {bares[-1]:.0f} us CPU",
                    flush=True,
                )
        without = f" without {args.strip}" if args.strip else ""
        vote, bare = statistics.median(cpus), statistics.median(bares)
        print(f"application CPU per GET /livez{without}: median {bare:.0f} us")
        print(f"application CPU per vote{without}: median {vote:.0f} us")
        print(f"application CPU bare/vote: {bare / vote:.2f}")
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        from .bench import _cleanup

        await _cleanup(settings.redis_url, prefix)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--votes", type=int, default=20000, help="votes per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--voters", type=int, help="voters to mint (default: votes / 18)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--strip", help="leave out the middleware of these class names (A,B)")
    args = parser.parse_args()
    from voting.cli import servers

    with servers(load_settings()) as resolved:
        asyncio.run(run(args, resolved))


if __name__ == "__main__":
    main()
