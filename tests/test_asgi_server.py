"""`voting serve` on each ASGI server (voting/asgi_server.py), a real server over a real
socket: two workers, answers that name no server software, our JSON log lines and no
access log of the server's own, oversized headers refused, and SIGTERM ending every
process it started with exit code 0. (The fault tests, tests/faults, run the default;
VOTING_TEST_SERVER=granian runs them, and every other real-server test, on granian.)"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid

import httpx
import pytest

from loadtests.server import alive
from tests.fixtures import live_server
from voting.asgi_server import DEFAULT_SERVER, serves_in_main_process
from voting.settings import ASGI_SERVERS


def _raw(port: int, request: bytes) -> bytes:
    """The whole answer to one request on a connection of its own (until the server
    closes it or 3 s pass)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        data = b""
        s.settimeout(3)
        try:
            while part := s.recv(65536):
                data += part
        except (TimeoutError, ConnectionResetError):
            pass
        return data


def test_uvicorn_stays_the_default():
    assert DEFAULT_SERVER == ASGI_SERVERS[0] == "uvicorn"
    assert serves_in_main_process("uvicorn", 1)
    assert not serves_in_main_process("granian", 1)
    assert not serves_in_main_process("uvicorn", 2)


@pytest.mark.parametrize("server_name", ASGI_SERVERS)
async def test_each_server_serves_the_engine_as_promised(
    server_name, pg_admin_url, template_db, redis_url, tmp_path
):
    database_url = await live_server.own_database(pg_admin_url, template_db)
    prefix = f"a{uuid.uuid4().hex[:10]}"
    server = await asyncio.to_thread(
        live_server.start,
        database_url,
        redis_url,
        prefix,
        tmp_path / "serve",
        workers=2,
        server=server_name,
    )
    try:
        serve = server.serve
        workers = serve.worker_pids()
        assert len(workers) == 2 and server.process.pid not in workers, (workers, server.log())
        pids = serve.all_pids()
        async with httpx.AsyncClient(base_url=server.url) as http:
            answers = [
                await http.get("/livez"),
                await http.get("/no-such-page"),
                await http.post("/api/votes", json={"nomination": "x"}),  # no session
                await http.get("/static/no-such-file.css"),
            ]
        assert [r.status_code for r in answers[:2]] == [200, 404]
        assert all(400 <= r.status_code < 500 for r in answers[2:])
        # uvicorn is told server_header=False; granian adds `server: granian` unless the
        # answer has a Server header, so the security headers carry an empty one.
        for r in answers:
            assert r.headers.get("server", "") == "", (r.url, r.headers)
        # Over the app's limit (16 KiB): the app's own JSON 431.
        big = _raw(
            serve.port, b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
        )
        assert big.startswith(b"HTTP/1.1 431"), big[:100]
        assert b'"headers_too_large"' in big and b"\r\nserver: granian" not in big.lower()
        # The same workers still serve: nothing was replaced.
        assert sorted(serve.worker_pids()) == sorted(workers)
    finally:
        started = time.monotonic()
        await asyncio.to_thread(live_server.stop, server)
        stopped_in = time.monotonic() - started
        await live_server.drop_prefix(redis_url, prefix)
        await live_server.drop_database(pg_admin_url, database_url)
    assert server.process.returncode == 0, server.log()
    assert stopped_in < 20, (stopped_in, server.log())
    deadline = time.monotonic() + 10
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        left = [p for p in left if alive(p)]
    assert not left, f"processes left behind: {left}"
    # Every line after start-up is ours (JSON), the server's own lines included; the
    # server's access log is off (ours, voting.access, is off without --access-log).
    text = server.log()
    lines = text.split("Listening on", 1)[1].splitlines()[1:]
    records = [json.loads(line) for line in lines if line.strip()]
    loggers = {record["logger"] for record in records}
    own = "_granian" if server_name == "granian" else "uvicorn.error"
    assert own in loggers, loggers
    assert not [r for r in records if "/livez" in json.dumps(r)], records
