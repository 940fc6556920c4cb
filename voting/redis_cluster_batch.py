"""Micro-batching of one Lua script's calls on a Redis Cluster: the calls made in the same
event-loop tick are grouped by the node that serves their slot, and each node gets one
pipeline of EVALSHA on one of its connections (voting/redis_batch.py does the same for
one Redis).

Why: redis-py's cluster client sends each call on its own (a connection taken from the
node, one write, one read, a topology check), so the cluster path ran far behind the
single Redis one; 500 concurrent votes took seconds. Batched per node, the cluster path
does per vote what the single-node path does.

One pipeline to a node at a time (`in_flight`, default 1): the calls of the ticks that
come while it is out wait and leave together when it is back. With three nodes a tick's
calls were cut in three, and each small pipeline cost the worker a task, a write and a
read wake-up, and its node a read and a write: the cluster path took 185 us of the
worker's CPU a vote against 150 on one Redis (`voting bench --redis-cluster`, one run).
Held back per node it took 159 against 145 (in_flight=2: 172), at the same rate. A
node runs its scripts one after the other whatever the pipelines, so the calls that wait
lose no more than the round trip they would have overlapped (redis_batch.InFlight, one
per node; the single Redis keeps two under way, which measured best there).

The same error semantics as the single-node batch:
- a script error (or an OOM refusal) reaches its own caller only;
- NOSCRIPT (that node's script cache is empty: a restart, a failover) loads the script on
  that node and sends those calls once more: NOSCRIPT means the script did not run;
- a batch is never retried after a connection error: a script that ran before the
  connection dropped must not run twice. Its callers get `AnswerLost` (the vote "may or
  may not be recorded"); a connection that could not be opened, or a turn that could not
  be had, is a plain ConnectionError (nothing was sent: "not recorded");
- MOVED (the slot lives elsewhere now): the topology is updated from the redirection and
  those calls go to the new node; ASK (a slot migrating): those calls go to the target
  node, each after ASKING. Either way the script did not run where it was refused, so
  sending it on is safe; after `MAX_REDIRECTIONS` a call is refused as not recorded;
- TRYAGAIN and CLUSTERDOWN (the script did not run): not recorded, try again later.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.exceptions
from redis.asyncio.cluster import ClusterNode, RedisCluster

from .redis_batch import (
    AnswerLost,
    BatchStats,
    InFlight,
    _as_redis_error,
    _Call,
    _fail,
    exchange,
    tick_enqueue,
    tick_take,
)

MAX_REDIRECTIONS = 5


@dataclass
class ClusterBatchStats(BatchStats):
    """BatchStats, plus the redirections followed and the nodes batches went to."""

    redirections: int = 0
    nodes: int = 0  # distinct nodes of the last tick


class ClusterBatchedScript:
    """One Lua script whose concurrent calls share one pipeline per cluster node. Every
    call's keys must share a slot (hash tags), as Redis Cluster requires of a script."""

    def __init__(
        self, client: RedisCluster, script: str, *, max_batch: int = 256, in_flight: int = 1
    ) -> None:
        self.client = client
        self.script = script
        self.sha = hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()
        self.max_batch = max_batch
        self.stats = ClusterBatchStats()
        self._queue: list[_Call] = []
        self._flush_scheduled = False
        self._running: set[asyncio.Task[None]] = set()
        # At most `in_flight` pipelines to a node at once (redis_batch.InFlight, one per
        # node): the calls of the ticks that come meanwhile go together in the next.
        self.in_flight = max(1, in_flight)
        self._flights: dict[str, InFlight] = {}
        self._nodes: dict[str, ClusterNode] = {}
        # A key's slot never changes (its node does): the first key of a vote is its
        # shard's window, one of a few hundred, so each is hashed once.
        self._slots: dict[Any, int] = {}

    def _slot(self, key: Any) -> int:
        slot = self._slots.get(key)
        if slot is None:
            if len(self._slots) >= 4096:  # keys of another shape: keep it bounded
                self._slots.clear()
            slot = self._slots[key] = self.client.keyslot(key)
        return slot

    async def __call__(
        self, keys: Sequence[Any] = (), args: Sequence[Any] = (), client: Any = None
    ) -> Any:
        if client is not None:  # inside a caller's own pipeline: redis-py's script object
            return await self.client.register_script(self.script)(
                keys=keys, args=args, client=client
            )
        if not keys:
            raise redis.exceptions.RedisClusterException("a cluster script call needs a key")
        return await tick_enqueue(self, keys, args)

    def _flush(self) -> None:
        queue = tick_take(self)
        self._spawn(self._route(queue, 0))

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    async def _route(self, calls: list[_Call], redirections: int) -> None:
        """Group calls by the node serving their slot: fresh calls join that node's
        InFlight; redirected ones (`redirections` > 0) go at once, one pipeline per node
        (cut at max_batch)."""
        try:
            # Lazily, as redis-py's own commands do: the slot map on the first use.
            await self.client.initialize()
        except BaseException as exc:
            _fail(calls, _as_redis_error(exc))
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        manager = self.client.nodes_manager
        by_node: dict[ClusterNode, list[_Call]] = {}
        for call in calls:
            try:
                node = manager.get_node_from_slot(self._slot(call[0][0]))
            except redis.exceptions.RedisError as exc:  # a slot no node covers
                _fail([call], redis.exceptions.ConnectionError(str(exc)))
                continue
            by_node.setdefault(node, []).append(call)
        if redirections == 0:
            self.stats.nodes = len(by_node)
            for node, mine in by_node.items():
                self._nodes[node.name] = node  # (the newest object for that address)
                flights = self._flights.get(node.name)
                if flights is None:
                    turns = getattr(self.client, "turns", None)
                    flights = self._flights[node.name] = InFlight(
                        self.in_flight,
                        self.max_batch,
                        self._runner(node.name),
                        self._spawn,
                        # as long as a command may wait for its turn (redis_cluster.py)
                        patience=turns.timeout if turns is not None else None,
                    )
                flights.add(mine)
            return
        runs = []
        for node, mine in by_node.items():
            for start in range(0, len(mine), self.max_batch):
                runs.append(self._run(node, mine[start : start + self.max_batch], redirections))
        try:
            await asyncio.gather(*runs)
        except BaseException as exc:
            # Whatever went wrong past the send, no caller waits forever; their scripts
            # may have run, so that is what they are told.
            _fail(calls, AnswerLost(f"the cluster batch failed: {exc!r}"))
            if isinstance(exc, asyncio.CancelledError):
                raise

    def _runner(self, name: str) -> Any:
        async def run(batch: list[_Call]) -> None:
            await self._run(self._nodes[name], batch, 0)

        return run

    async def _run(
        self, node: ClusterNode, batch: list[_Call], redirections: int, asking: bool = False
    ) -> None:
        self.stats.calls += len(batch) if redirections == 0 else 0
        self.stats.batches += 1
        turns = getattr(self.client, "turns", None)
        try:
            if turns is not None:
                await turns.__aenter__()
        except BaseException as exc:
            _fail(batch, exc)  # nothing sent: "No connection available."
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        try:
            replies = await self._send(node, batch, asking)
        finally:
            if turns is not None:
                await turns.__aexit__(None, None, None)
        if replies is None:
            return
        moved: list[_Call] = []
        asked: dict[tuple[str, int], list[_Call]] = {}
        for call, reply in zip(batch, replies, strict=True):
            future = call[2]
            if isinstance(reply, redis.exceptions.AskError):  # MOVED is an AskError too
                if redirections >= MAX_REDIRECTIONS:
                    reply = redis.exceptions.ConnectionError(
                        f"too many cluster redirections: {reply}"
                    )
                elif isinstance(reply, redis.exceptions.MovedError):
                    try:
                        await self.client.nodes_manager.move_slot(reply)
                    except Exception:  # the re-sent call meets MOVED again, up to the cap
                        self._refresh()
                    moved.append(call)
                    continue
                else:
                    asked.setdefault((reply.host, reply.port), []).append(call)
                    continue
            elif isinstance(
                reply, redis.exceptions.TryAgainError | redis.exceptions.ClusterDownError
            ):
                # The script did not run: refused, as not recorded.
                reply = redis.exceptions.ConnectionError(str(reply))
            if future.done():  # its request went away meanwhile; the vote stands
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)
        follow = []
        if moved:
            self.stats.redirections += len(moved)
            follow.append(self._route(moved, redirections + 1))
        for (host, port), calls in asked.items():
            self.stats.redirections += len(calls)
            target = self._node(host, port)
            if target is None:
                _fail(calls, redis.exceptions.ConnectionError(f"unknown node {host}:{port}"))
                self._refresh()
                continue
            follow.append(self._run(target, calls, redirections + 1, asking=True))
        if follow:
            await asyncio.gather(*follow)

    async def _send(self, node: ClusterNode, batch: list[_Call], asking: bool) -> list[Any] | None:
        """The batch's replies from `node`, NOSCRIPT reloaded; None when the batch failed
        (every caller has its error then)."""
        try:
            connection = node.acquire_connection()
        except BaseException as exc:  # MaxConnectionsError: nothing sent
            _fail(batch, _as_redis_error(exc))
            return None
        try:
            if not connection.is_connected:
                await connection.connect()
        except BaseException as exc:
            # Nothing was sent on it: a plain ConnectionError ("not recorded").
            node.release(connection)
            _fail(batch, _as_redis_error(exc))
            self._refresh(node)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return None
        try:
            replies = await exchange(connection, self.sha, batch, asking=asking)
            missing = [
                i for i, r in enumerate(replies) if isinstance(r, redis.exceptions.NoScriptError)
            ]
            if missing:
                self.stats.reloads += 1
                await connection.send_command("SCRIPT", "LOAD", self.script)
                await connection.read_response()
                again = await exchange(
                    connection, self.sha, [batch[i] for i in missing], asking=asking
                )
                for i, reply in zip(missing, again, strict=True):
                    replies[i] = reply
        except BaseException as exc:
            # Part of the batch may be unread on the socket: never reuse that connection.
            await connection.disconnect(nowait=True)
            if isinstance(exc, OSError | redis.exceptions.ConnectionError | TimeoutError):
                exc = AnswerLost(str(exc) or type(exc).__name__)
                self._refresh(node)
            _fail(batch, _as_redis_error(exc))
            if isinstance(exc, asyncio.CancelledError):
                raise
            return None
        finally:
            node.release(connection)
        return replies

    def _node(self, host: str, port: int) -> ClusterNode | None:
        manager = self.client.nodes_manager
        host, port = manager.remap_host_port(host, port)
        node: ClusterNode | None = manager.get_node(host=host, port=port)
        return node

    def _refresh(self, node: ClusterNode | None = None) -> None:
        """After a node failed: ask for the slot map again (a replica may have taken
        over). redis-py's client merges and paces such requests; the next tick's
        initialize() runs it when due. The one private name this module uses (a test
        holds it present)."""
        request = getattr(self.client, "_request_refresh", None)
        if request is not None:
            request(last_failed_node_name=node.name if node is not None else None)
