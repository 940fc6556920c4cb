"""Micro-batching of one Lua script's calls: the calls made in the same event-loop tick go
to Redis in one pipeline of EVALSHA on one connection, and while `in_flight` pipelines
are out, the calls of the ticks that come meanwhile wait and go together in the next
(`InFlight`, which the cluster batcher uses per node).

Why: under load, redis-py's per-call cost (pool acquire and release, retry and timeout
wrappers, one write and one read wake-up per command) was a quarter of the vote path's CPU
time. A burst of concurrent votes now shares one write, one pool round trip and the
reads that follow it. Each caller still gets its own reply or its own error: a script
error for one vote (or an OOM refusal) is delivered to that vote only.

`BatchedScript` has the call shape of redis-py's `Script` (`await script(keys=[...],
args=[...])`), NOSCRIPT included (an empty script cache after a Redis restart or
failover: load the script and retry those calls), so `Ballot` swaps one for the other.

Unlike redis-py's `Redis.execute_command`, a batch is never retried after a connection
error: a script that ran before the connection dropped must not run twice. Its callers
get the `ConnectionError` and the handler answers 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions

try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # redis[hiredis] brings it; without it, _pack does all the packing
    _hiredis_pack = None

_Call = tuple[Sequence[Any], Sequence[Any], "asyncio.Future[Any]"]
_PLAIN = frozenset({str, bytes, int})


def tick_enqueue(batcher: Any, keys: Sequence[Any], args: Sequence[Any]) -> asyncio.Future[Any]:
    """Queue one script call on a batcher (`_queue`, `_flush_scheduled`, `_flush`) and
    schedule its flush, once per tick; the single-node and the cluster batch share it.
    A plain function returning the future: no coroutine of its own on the vote's path."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    batcher._queue.append((keys, args, future))
    if not batcher._flush_scheduled:
        batcher._flush_scheduled = True
        # call_soon runs after every callback already ready in this tick: the handlers
        # woken by the same batch of socket reads have all queued by then.
        loop.call_soon(batcher._flush)
    return future


def tick_take(batcher: Any) -> list[_Call]:
    """The calls queued since the last flush, taken for this one."""
    batcher._flush_scheduled = False
    queue: list[_Call] = batcher._queue
    batcher._queue = []
    return queue


class InFlight:
    """At most `limit` pipelines under way to one Redis: the calls that come while they
    are out wait, and the first pipeline back takes them all (up to `max_batch`).

    Why: a tick holds the few requests one pass over the sockets read, and a pipeline
    for each tick cost the worker a task, a write and a read wake-up, and Redis a read
    and a write, for a handful of votes. Held back while others are out, the waiting
    calls leave together; Redis runs a connection's scripts one after the other anyway,
    so they lose no more than the round trip they would have overlapped. Measured with
    `voting bench` (one Redis, 64 connections): two under way took 134-139 us of the
    worker's CPU a vote against 141-144 for the tick's cut into up to four pipelines it
    replaces, one under way 141 and the server idler (0.85 of a core against 0.90).

    A call waits for a pipeline no longer than `patience` seconds (the wait the
    connection pool allows, VOTING_REDIS_POOL_TIMEOUT): past it, it is refused as never
    sent ("No connection available.", as the pool refuses), so a surge larger than Redis
    can take gets 503 with Retry-After instead of a queue that grows without end.

    The trade-off: while Redis stalls (a fork, an fsync, a slow script) longer than that
    wait, the votes that come meanwhile are refused (503, not recorded, Retry-After)
    where, with a pipeline a tick, the first few hundred would each have held a pooled
    connection and waited for Redis up to the socket timeout.

    `run(batch)` answers each call of its batch (a reply or an error) and may raise only
    past that; `spawn` starts a task the batcher keeps, and returns it."""

    def __init__(
        self,
        limit: int,
        max_batch: int,
        run: Callable[[list[_Call]], Awaitable[None]],
        spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]],
        patience: float | None = None,
    ) -> None:
        self.limit = max(1, limit)
        self.max_batch = max(1, max_batch)
        self.run = run
        self.spawn = spawn
        self.patience = patience
        self.waiting: list[_Call] = []
        self._since: list[float] = []  # when each waiting call came (loop time)
        self._timer: asyncio.TimerHandle | None = None
        self.out = 0  # pipelines under way (their tasks, until each has ended)
        # A sender's first batch, until its task runs: a task cancelled before its first
        # step runs none of its code, and its calls (never sent) must still be answered.
        self._held: dict[asyncio.Task[None], list[_Call]] = {}

    def add(self, calls: list[_Call]) -> None:
        self.waiting.extend(calls)
        self._start()
        if calls and self.waiting and self.patience is not None:
            loop = asyncio.get_running_loop()
            self._since.extend([loop.time()] * (len(self.waiting) - len(self._since)))
            if self._timer is None:
                self._timer = loop.call_later(self.patience, self._expire)

    def _start(self) -> None:
        while self.out < self.limit and self.waiting:
            self.out += 1
            batch = self._take()
            task = self.spawn(self._send(batch))
            self._held[task] = batch
            task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """A sender's task has ended, however: count it out; if it was cancelled (a
        worker stopping), what it held and what waits was never sent; else start a
        sender for calls that came after its last look."""
        self.out -= 1
        never_sent = self._held.pop(task, None)
        if task.cancelled():
            stopping = redis.exceptions.ConnectionError("stopping")
            _fail(never_sent or [], stopping)
            _fail(self.waiting, stopping)
            self.waiting.clear()
            self._since.clear()
            return
        self._start()

    def _take(self) -> list[_Call]:
        batch = self.waiting[: self.max_batch]
        del self.waiting[: self.max_batch]
        del self._since[: self.max_batch]
        return batch

    def _expire(self) -> None:
        """Refuse the calls that have waited their patience out (the oldest first)."""
        self._timer = None
        if not self.waiting or self.patience is None:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        stale = 0
        while stale < len(self._since) and now - self._since[stale] >= self.patience:
            stale += 1
        if stale:
            _fail(
                self.waiting[:stale], redis.exceptions.ConnectionError("No connection available.")
            )
            del self.waiting[:stale]
            del self._since[:stale]
        if self._since:
            self._timer = loop.call_at(self._since[0] + self.patience, self._expire)

    async def _send(self, batch: list[_Call]) -> None:
        self._held.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
        while batch:
            try:
                await self.run(batch)
            except BaseException as exc:
                # Whatever went wrong past the send, no caller waits forever; their
                # scripts may have run, so that is what they are told.
                _fail(batch, AnswerLost(f"the batch failed: {exc!r}"))
                if isinstance(exc, asyncio.CancelledError):
                    raise  # (_ended tells the waiting calls)
            batch = self._take()


@dataclass
class BatchStats:
    """What the batcher did, for tests and the benchmark's report."""

    calls: int = 0
    batches: int = 0
    reloads: int = 0

    @property
    def mean_batch(self) -> float:
        return self.calls / self.batches if self.batches else 0.0


class BatchedScript:
    """One Lua script whose concurrent calls share a pipeline."""

    def __init__(
        self,
        client: aioredis.Redis,
        script: str,
        *,
        max_batch: int = 256,
        in_flight: int = 2,
    ) -> None:
        self.client = client
        self.script = script
        self.sha = hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()
        self.max_batch = max_batch
        self.stats = BatchStats()
        self._queue: list[_Call] = []
        self._flush_scheduled = False
        self._running: set[asyncio.Task[None]] = set()
        self._flights = InFlight(
            in_flight,
            max_batch,
            self._run,
            self._spawn,
            # as long as a call may wait for a connection (BlockingConnectionPool's)
            patience=getattr(getattr(client, "connection_pool", None), "timeout", None),
        )
        # Only a plain client has one pool to borrow a connection from; for a cluster
        # client, Ballot uses ClusterBatchedScript (one pipeline per node); anything else
        # given one here keeps redis-py's own script object.
        pool = getattr(client, "connection_pool", None)
        self._fallback = None if pool is not None else client.register_script(script)

    async def __call__(
        self, keys: Sequence[Any] = (), args: Sequence[Any] = (), client: Any = None
    ) -> Any:
        if self._fallback is not None or client is not None:
            direct = self._fallback or self.client.register_script(self.script)
            return await direct(keys=keys, args=args, client=client)
        return await tick_enqueue(self, keys, args)

    def _flush(self) -> None:
        self._flights.add(tick_take(self))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    async def _run(self, batch: list[_Call]) -> None:
        self.stats.calls += len(batch)
        self.stats.batches += 1
        pool = self.client.connection_pool
        try:
            connection = await pool.get_connection()
        except BaseException as exc:
            _fail(batch, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        try:
            replies = await self._exchange(connection, batch)
            missing = [
                i for i, r in enumerate(replies) if isinstance(r, redis.exceptions.NoScriptError)
            ]
            if missing:
                self.stats.reloads += 1
                await connection.send_command("SCRIPT", "LOAD", self.script)
                await connection.read_response()
                again = await self._exchange(connection, [batch[i] for i in missing])
                for i, reply in zip(missing, again, strict=True):
                    replies[i] = reply
        except BaseException as exc:
            # Part of the batch may be unread on the socket: never reuse that connection.
            await connection.disconnect(nowait=True)
            if isinstance(exc, OSError | redis.exceptions.ConnectionError | TimeoutError):
                exc = AnswerLost(str(exc) or type(exc).__name__)
            _fail(batch, _as_redis_error(exc))
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        finally:
            await pool.release(connection)
        for (_, _, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its request went away meanwhile; the vote stands
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _exchange(self, connection: Any, batch: list[_Call]) -> list[Any]:
        return await exchange(connection, self.sha, batch)


_ASKING = b"*1\r\n$6\r\nASKING\r\n"


async def exchange(
    connection: Any, sha: str, batch: list[_Call], *, asking: bool = False
) -> list[Any]:
    """Send a batch's EVALSHAs on one connection in one write and read their replies, an
    error reply as the ResponseError for its own call. `asking`: each EVALSHA after an
    ASKING (a Redis Cluster's ASK redirection during a slot migration)."""
    encoder = connection.encoder
    # Texts inline only under redis-py's default encoding; else its encoder does them.
    encode = encoder.encode
    utf8 = encoder.encoding.lower().replace("-", "") == "utf8" and (
        encoder.encoding_errors == "strict"
    )
    head = b"$7\r\nEVALSHA\r\n$40\r\n" + sha.encode() + b"\r\n"
    lead = _ASKING if asking else b""
    await connection.send_packed_command(
        b"".join(
            [lead + _pack_call(sha, head, keys, args, encode, utf8) for keys, args, _ in batch]
        )
    )
    replies: list[Any] = []
    # One deadline for the whole batch rather than one timer per reply (redis-py's
    # read_response arms one per call when a socket timeout is set).
    async with asyncio.timeout(connection.socket_timeout):
        for _ in batch:
            if asking:
                # ASKING's reply (+OK on a cluster node) is read to keep the replies in
                # step, and carries nothing about the call: an EVALSHA that ran without
                # it is answered with its own result or ASK/MOVED redirect, kept below
                # (tests/test_redis_batch.py, a Redis without cluster support).
                with contextlib.suppress(redis.exceptions.ResponseError):
                    await connection.read_response(timeout=math.inf)
            try:
                replies.append(await connection.read_response(timeout=math.inf))
            except redis.exceptions.ResponseError as exc:
                # An error reply is complete on the wire: the next reply can be read.
                replies.append(exc)
    return replies


def packable(client: aioredis.Redis, args: Sequence[Any]) -> bool:
    """Whether packed_command can send `args` on this client: one Redis (not a cluster),
    hiredis present, every argument a text, bytes or an int, and redis-py's default
    encoding of texts (strict UTF-8, hiredis' only one)."""
    pool = getattr(client, "connection_pool", None)
    if pool is None or _hiredis_pack is None or not _plain(args):
        return False
    kwargs = pool.connection_kwargs
    encoding = str(kwargs.get("encoding", "utf-8")).lower().replace("-", "")
    return encoding == "utf8" and kwargs.get("encoding_errors", "strict") == "strict"


async def packed_command(client: aioredis.Redis, args: Sequence[Any]) -> Any:
    """One command packed by hiredis' C packer on a pooled connection, its reply as the
    parser gives it: no redis-py response callback. For the flusher's thousands of ids
    an XACK and thousands of entries an XREADGROUP, where redis-py's packing id by id
    and its callback (a dict built per entry, then thrown away) were a fifth of the
    flusher's time. Only where packable() says so. An error reply raises as redis-py
    raises it; a connection that fails is dropped."""
    pool = client.connection_pool
    connection = await pool.get_connection()
    try:
        await connection.send_packed_command(_hiredis_pack(tuple(args)))
        return await connection.read_response()
    except redis.exceptions.ResponseError:
        raise  # a complete reply: the connection can serve again
    except BaseException:
        await connection.disconnect(nowait=True)
        raise
    finally:
        await pool.release(connection)


async def xack_packed(client: aioredis.Redis, stream: str, group: str, ids: list[str]) -> int:
    """XACK of many stream ids packed by hiredis; redis-py's own xack where that cannot be
    (a cluster client, no hiredis, ids that are not plain texts)."""
    args = ("XACK", stream, group, *ids)
    if not packable(client, args):
        return int(await client.xack(stream, group, *ids))
    return int(await packed_command(client, args))


def _pack_call(
    sha: str, head: bytes, keys: Sequence[Any], args: Sequence[Any], encode: Any, utf8: bool
) -> bytes:
    """One EVALSHA in the Redis protocol: by hiredis' C packer when every value is a text,
    bytes or an int (a third of the time of _pack; the same bytes, tests hold them equal),
    else by _pack."""
    if utf8 and _hiredis_pack is not None and _plain(keys) and _plain(args):
        return _hiredis_pack(("EVALSHA", sha, len(keys), *keys, *args))  # type: ignore[no-any-return]
    return _pack(head, keys, args, encode, utf8)


def _plain(values: Sequence[Any]) -> bool:
    # Exact types: a bool (an int subclass) or an int subclass goes to redis-py's encoder.
    return _PLAIN.issuperset(map(type, values))


def _pack(head: bytes, keys: Sequence[Any], args: Sequence[Any], encode: Any, utf8: bool) -> bytes:
    """One EVALSHA in the Redis protocol. The usual argument types inline; anything else
    through redis-py's own encoder (the same bytes redis-py would send)."""
    parts = [
        b"*%d\r\n" % (3 + len(keys) + len(args)),
        head,
        b"$%d\r\n%d\r\n" % (len(str(len(keys))), len(keys)),
    ]
    for value in (*keys, *args):
        kind = type(value)
        if kind is str and utf8:
            data = value.encode()
        elif kind is bytes:
            data = value
        elif kind is int:
            data = b"%d" % value
        else:
            data = encode(value)
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


class AnswerLost(redis.exceptions.ConnectionError):
    """The batch went out and the connection failed before every reply came back: each of
    its scripts may or may not have run (the vote handler tells the voter so)."""


def _as_redis_error(exc: BaseException) -> BaseException:
    if isinstance(exc, OSError):
        return redis.exceptions.ConnectionError(str(exc))
    return exc


def _fail(batch: list[_Call], exc: BaseException) -> None:
    if isinstance(exc, asyncio.CancelledError):
        # Cancelled (a worker shutting down) perhaps after the batch went out: its
        # scripts may have run, so say no more than that (found by review).
        exc = AnswerLost("the Redis call was cancelled")
    for _, _, future in batch:
        if not future.done():
            future.set_exception(exc)
