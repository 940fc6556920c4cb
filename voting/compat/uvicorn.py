"""uvicorn's httptools protocol, writing each tick's output to the socket in one write.

Why: uvicorn writes an answer's status line and headers with one `transport.write` and
its body with a second; uvloop sends each at once, so every answer costs two `send`
system calls and two TCP segments, and on loopback the kernel's work for the receiving
side is charged to the sender. In the profile of a vote under load that write was the
largest single cost of the server (15% of its CPU). Here the protocol's transport keeps
what is written during one event-loop tick and sends it with one write when the tick
ends (`loop.call_soon`): an answer's head and body leave together. Nothing waits for
more than the tick: a streamed body's chunks still go out as they are sent, each tick's
together, and past 64 KiB kept the write is made at once, so that the socket's flow
control (uvicorn's pause on a full buffer) still holds back a sender that never yields.

`HttpToolsProtocol` is passed to uvicorn as its `http` class (a documented option); what
is reached inside is that the protocol's writes go through the transport given to
`connection_made`. TESTED is checked against the pinned range by tests/test_compat.py;
tests/compat/test_uvicorn.py counts the writes that reach the socket (and fails if
uvicorn stops writing through that transport).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

TESTED = ">=0.30,<0.56"
# Past this much kept in one tick, write at once (the socket's own flow control then acts).
KEEP_AT_MOST = 64 * 1024


class TickWriter:
    """A transport that sends what it is given during one tick in one write; every other
    call goes to the transport it wraps (a close sends what is kept first)."""

    __slots__ = ("_kept", "_loop", "_size", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._kept: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._kept:
            self._loop.call_soon(self.flush)
        self._kept.append(bytes(data))
        self._size += len(data)
        if self._size >= KEEP_AT_MOST:
            self.flush()

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        kept = self._kept
        if not kept:
            return
        self._kept = []
        self._size = 0
        if self._transport.is_closing():
            return  # the connection is gone: nobody to send it to, as a write would drop it
        self._transport.write(kept[0] if len(kept) == 1 else b"".join(kept))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._kept = []
        self._size = 0
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._size

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a TickWriter."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(TickWriter(transport, self.loop))  # type: ignore[arg-type]
