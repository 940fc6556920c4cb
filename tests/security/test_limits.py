"""Oversized bodies and headers are refused early, with a JSON body that says why."""

import asyncio
import contextlib
import socket
import time

from tests.fixtures.rig import fault_server
from tests.fixtures.security import everyone


async def test_a_body_over_the_limit_gets_413_declared_or_streamed(client, app):
    limit = app.state.services.settings.max_body_bytes
    r = await client.post("/api/votes", content=b"{" + b" " * limit + b"}")
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"

    async def chunks():  # no Content-Length: counted as it arrives
        for _ in range(limit // 1024 + 2):
            yield b" " * 1024

    r = await client.post(
        "/api/voters/signin", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"


async def test_headers_over_the_limit_get_431_before_any_handler_runs(app, conn):
    world = await everyone(app, conn)
    try:
        limit = app.state.services.settings.max_header_bytes
        r = await world.client.post(
            "/api/votes",
            json={"nomination": world.values["public_id"]},
            headers={"x-csrf-token": world.csrf, "x-padding": "p" * limit},
        )
        assert r.status_code == 431 and r.json()["error"]["code"] == "headers_too_large"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert (await world.client.get("/api/votes/mine")).json()["votes"] == []
        # A large but reasonable set of headers is fine.
        r = await world.client.get("/api/session", headers={"x-padding": "p" * (limit // 2)})
        assert r.status_code == 200
        r = await world.client.get("/categories?q=" + "q" * limit)
        assert r.status_code == 431
    finally:
        await world.client.aclose()


def _raw(port: int, request: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        # The server may answer and close before taking it all (early, as wanted): the
        # answer is read below either way, and the caller checks it.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            part = s.recv(4096)
            if not part:
                break
            data += part
        return data


async def test_a_real_server_refuses_huge_headers_and_bodies_early(
    database_url, redis_url, redis_prefix, tmp_path
):
    server = fault_server(
        {
            "VOTING_DATABASE_URL": database_url,
            "VOTING_REDIS_URL": redis_url,
            "VOTING_REDIS_PREFIX": redis_prefix,
            "VOTING_SECRET_KEY": "limits-test-secret-key-long-enough-for-it",
            "VOTING_DATA_DIR": str(tmp_path),
        },
        workers=1,
        log_path=tmp_path / "serve.log",
    )
    await asyncio.to_thread(server.start)
    try:
        head = await asyncio.to_thread(
            _raw,
            server.port,
            b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n",
        )
        assert head.startswith(b"HTTP/1.1 431"), head[:100]
        # A 50 MB body announced by Content-Length: refused on the headers, not read.
        started = time.monotonic()
        body = await asyncio.to_thread(
            _raw,
            server.port,
            b"POST /api/votes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 52428800\r\n\r\n" + b" " * 65536,
        )
        assert body.startswith(b"HTTP/1.1 413"), body[:100]
        assert time.monotonic() - started < 5
    finally:
        server.stop()
