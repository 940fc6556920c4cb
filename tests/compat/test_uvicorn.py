"""voting/compat/uvicorn.py: one write a tick, on a real uvicorn over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from voting.compat.uvicorn import CoalescingHttpToolsProtocol, TickWriter


class Counting:
    """The socket's transport, counting the writes that reach it."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport = transport
        self.writes = writes

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


WRITES: list[bytes] = []


class CountedCoalescing(CoalescingHttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(Counting(transport, WRITES))  # type: ignore[arg-type]


class CountedPlain(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(Counting(transport, WRITES))  # type: ignore[arg-type]


async def _json(request: Request) -> Response:
    body = await request.body()
    return JSONResponse({"got": len(body)})


async def _stream(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(3):
            yield b"chunk%d;" % i
            await asyncio.sleep(0.01)

    return StreamingResponse(chunks(), media_type="text/plain")


async def _big(request: Request) -> Response:
    return Response(b"x" * 3_000_000, media_type="application/octet-stream")


APP = Starlette(
    routes=[
        Route("/json", _json, methods=["GET", "POST"]),
        Route("/stream", _stream),
        Route("/big", _big),
    ]
)


@contextlib.asynccontextmanager
async def serving(protocol: type[asyncio.Protocol]) -> AsyncIterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        APP, host="127.0.0.1", port=port, http=protocol, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # uvicorn sets a flag, no event  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


async def _exchange(port: int, request: bytes, answers: int) -> bytes:
    """Send `request` (one or more, pipelined) and read until `answers` full answers came
    (each of this app's answers has a content-length or ends its chunks)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    got = b""
    try:
        while got.count(b"HTTP/1.1 ") < answers or not _complete(got, answers):
            data = await asyncio.wait_for(reader.read(1 << 20), 5)
            if not data:
                break
            got += data
    finally:
        writer.close()
    return got


def _complete(got: bytes, answers: int) -> bool:
    parts = got.split(b"HTTP/1.1 ")[1:]
    if len(parts) < answers:
        return False
    last = parts[-1]
    head, _, body = last.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head:
        return body.endswith(b"0\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


GET = b"GET /json HTTP/1.1\r\nhost: t\r\n\r\n"
POST = b"POST /json HTTP/1.1\r\nhost: t\r\ncontent-length: 5\r\n\r\nhello"


@pytest.mark.parametrize(("protocol", "writes"), [(CountedCoalescing, 1), (CountedPlain, 2)])
async def test_an_answer_goes_out_in_one_write(protocol: type[asyncio.Protocol], writes: int):
    # The plain protocol is the control: uvicorn writes head and body apart.
    async with serving(protocol) as port:
        for request, body in ((GET, b'{"got":0}'), (POST, b'{"got":5}')):
            WRITES.clear()
            got = await _exchange(port, request, 1)
            assert got.startswith(b"HTTP/1.1 200 OK\r\n") and got.endswith(body)
            assert len(WRITES) == writes
            assert b"".join(WRITES) == got


async def test_pipelined_keep_alive_and_close_answers_are_whole():
    async with serving(CountedCoalescing) as port:
        got = await _exchange(port, GET + POST + GET, 3)
        assert got.count(b"HTTP/1.1 200 OK") == 3
        assert got.endswith(b'{"got":0}') and b'{"got":5}' in got
        # Connection: close: what is kept is sent before the socket closes.
        closing = b"GET /json HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n"
        got = await _exchange(port, closing, 1)
        assert got.endswith(b'{"got":0}') and b"connection: close" in got


async def test_a_stream_goes_out_as_it_is_sent_and_a_large_body_whole():
    async with serving(CountedCoalescing) as port:
        WRITES.clear()
        got = await _exchange(port, b"GET /stream HTTP/1.1\r\nhost: t\r\n\r\n", 1)
        assert b"chunk0;" in got and b"chunk2;" in got and got.endswith(b"0\r\n\r\n")
        # Each chunk is sent a tick apart (the sleep): no chunk waits for the next.
        assert len(WRITES) >= 3
        got = await _exchange(port, b"GET /big HTTP/1.1\r\nhost: t\r\n\r\n", 1)
        assert got.endswith(b"x" * 1000) and len(got.partition(b"\r\n\r\n")[2]) == 3_000_000


class Recording(asyncio.Transport):
    """A transport that records what reaches it (for the TickWriter's own rules)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 7


async def test_tick_writer_sends_a_tick_at_once_and_keeps_nothing_past_close():
    loop = asyncio.get_running_loop()
    inner = Recording()
    writer = TickWriter(inner, loop)
    writer.write(b"a")
    writer.write(bytearray(b"b"))
    writer.write(b"")
    assert inner.writes == [] and writer.get_write_buffer_size() == 9
    await asyncio.sleep(0)
    assert inner.writes == [b"ab"]
    writer.writelines([b"c", b"d"])
    writer.close()  # sends what is kept, then closes
    assert inner.writes == [b"ab", b"cd"] and inner.closed
    await asyncio.sleep(0)
    assert inner.writes == [b"ab", b"cd"]  # the scheduled flush finds nothing left
    other = Recording()
    writer = TickWriter(other, loop)
    writer.write(b"lost")
    writer.abort()
    await asyncio.sleep(0)
    assert other.writes == [] and other.aborted
    # Past 64 KiB kept, the write is made at once: the socket's flow control then acts.
    big = Recording()
    writer = TickWriter(big, loop)
    writer.write(b"h")
    writer.write(b"x" * (64 * 1024))
    assert big.writes == [b"h" + b"x" * (64 * 1024)] and writer.get_write_buffer_size() == 7
    writer.write(b"tail")
    await asyncio.sleep(0)
    assert big.writes[-1] == b"tail" and len(big.writes) == 2
    gone = Recording()
    writer = TickWriter(gone, loop)
    writer.write(b"late")
    gone.closed = True  # the peer went away before the tick ended
    await asyncio.sleep(0)
    assert gone.writes == []
    assert writer.is_closing() is True  # everything else is the wrapped transport's
