"""The fault tests' rig: a real `voting serve`, a voter client that keeps score, the checks.

The client plays many voters at once. Like a person, it retries a vote that got no
definite answer (a 503, a dropped connection) until it gets one: 202 with a receipt, or
409 carrying the receipt of the vote already recorded. So at the end every vote it set
out to cast is either acknowledged, with its receipt, or still in doubt (its last attempt
may or may not have reached Redis). The checks then hold the ledger to that record.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from itsdangerous import TimestampSigner

from loadtests.server import serve_command
from tests.fixtures.editions import edition_data
from tests.fixtures.redis_servers import free_port
from voting import db, edition_store
from voting.ballot import Ballot
from voting.contest import Edition, parse_edition
from voting.ledger import Flusher, reconcile, stream_backlog
from voting.security import pseudonym
from voting.seed import seed_nominations
from voting.services import open_redis

SECRET = "fault-tests-secret-key-long-enough-for-production-rules"
SLUG = "fault-edition"
# Every vote comes from 127.0.0.1: lift the per-address, network and domain limits, which
# tests/test_antifraud_* cover, so they do not stand in for the faults here.
UNLIMITED = 10**9
RULES = {
    "antifraud": {
        f"{kind}_{what}": UNLIMITED
        for kind in ("ip", "net", "domain")
        for what in ("limit", "burst")
    }
}


def report(name: str, **figures: Any) -> None:
    """One line per fault, in the test output (pytest -s, or the captured log on failure)."""
    text = ", ".join(
        f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()
    )
    print(f"\nFAULT {name}: {text}", flush=True)


# -- the edition ----------------------------------------------------------------------------


@dataclass
class Stage:
    edition: Edition
    edition_id: int
    nominations: dict[str, list[str]]  # category -> public ids
    prefix: str


async def prepare(database_url: str, redis_url: str, prefix: str | None = None) -> Stage:
    """Migrate, load an edition whose voting is open now, seed nominations, write the window."""
    prefix = prefix or f"f{uuid.uuid4().hex[:8]}"
    conn = await db.connect(database_url)
    try:
        await db.migrate(conn)
        now = datetime.now(UTC)
        data = edition_data()
        data["slug"] = SLUG
        data["rules"] = RULES
        edition = parse_edition(data, now=now)
        edition_id = await edition_store.save_edition(
            conn, edition, now=now - timedelta(days=400), actor="test", make_current=True
        )
        await seed_nominations(conn, 12, edition_slug=SLUG, seed=3, progress=False)
        rows = await conn.fetch(
            "SELECT public_id, category FROM nominations WHERE edition_id=$1 AND status='accepted'",
            edition_id,
        )
    finally:
        await conn.close()
    redis = open_redis(redis_url)
    try:
        await Ballot(redis, prefix).sync_window(edition)
    finally:
        await redis.aclose()
    by_category: dict[str, list[str]] = {}
    for r in rows:
        by_category.setdefault(r["category"], []).append(r["public_id"])
    return Stage(edition, edition_id, by_category, prefix)


# -- the server -----------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except FileNotFoundError:
        return []


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except FileNotFoundError:
        return ""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ", 1)[1][:1] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@dataclass
class Server:
    """`voting serve` in a process of its own, as production runs it."""

    env: dict[str, str]
    workers: int = 2
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOTING_")}
        env.update(self.env)
        assert self.log_path is not None
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            serve_command(self.port, self.workers),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"voting serve exited:\n{self.log()}")
            if len(self.worker_pids()) == self.workers:
                try:
                    if httpx.get(f"{self.url}/livez", timeout=1).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"voting serve did not come up:\n{self.log()}")

    def log(self) -> str:
        assert self.log_path is not None
        return self.log_path.read_text(errors="replace")[-6000:]

    def worker_pids(self) -> list[int]:
        """uvicorn's worker processes (spawned children; not multiprocessing's helpers)."""
        if self.process is None:
            return []
        if self.workers == 1:
            return [self.process.pid]  # uvicorn serves in the main process, no supervisor
        return [
            p
            for p in _children(self.process.pid)
            if "spawn_main" in _cmdline(p) and "resource_tracker" not in _cmdline(p)
        ]

    def all_pids(self) -> list[int]:
        if self.process is None:
            return []
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(_children(pid))
        return found

    def stop(self) -> None:
        """Teardown: whatever is left of the processes this test started."""
        if self.process is None:
            return
        for pid in reversed(self.all_pids()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(10)


# -- the voters -----------------------------------------------------------------------------


def session_cookie(secret: str, session: dict[str, Any]) -> str:
    """What Starlette's SessionMiddleware would set: a signed, base64 JSON session."""
    data = base64.b64encode(json.dumps(session).encode())
    return TimestampSigner(secret).sign(data).decode()


@dataclass(frozen=True)
class VoterSession:
    id: str
    cookie: str
    csrf: str


def voters(n: int, edition: str, secret: str = SECRET) -> list[VoterSession]:
    out = []
    for i in range(n):
        vid = pseudonym(secret, f"fault{i}@example.org")
        csrf = uuid.uuid4().hex
        session = {"voter": {"id": vid, "d": "example.org", "e": edition}, "csrf": csrf}
        out.append(VoterSession(vid, f"wsis_session={session_cookie(secret, session)}", csrf))
    return out


@dataclass
class VoteClient:
    """Casts every (voter, nomination) of its plan, retrying until a definite answer."""

    base_url: str
    plan: list[tuple[VoterSession, str, str]]  # voter, category, nomination
    concurrency: int = 16
    # Without keep-alive every request is a new connection, so the kernel spreads them over
    # the workers: a worker killed mid-run then has requests in flight.
    keepalive: bool = True
    acked: dict[tuple[str, str], str] = field(default_factory=dict)
    doubtful: set[tuple[str, str]] = field(default_factory=set)
    outcomes: Counter[str] = field(default_factory=Counter)
    timeline: list[tuple[float, str]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    started_at: float = 0.0

    async def run(self, stop: asyncio.Event, items: list[Any] | None = None) -> None:
        queue: asyncio.Queue[tuple[VoterSession, str, str]] = asyncio.Queue()
        for item in self.plan if items is None else items:
            queue.put_nowait(item)
        limits = httpx.Limits(
            max_connections=self.concurrency,
            max_keepalive_connections=self.concurrency if self.keepalive else 0,
        )
        self.started_at = self.started_at or time.monotonic()
        async with httpx.AsyncClient(base_url=self.base_url, limits=limits, timeout=30) as http:
            workers = [
                asyncio.create_task(self._worker(http, queue, stop))
                for _ in range(self.concurrency)
            ]
            await asyncio.gather(*workers)

    async def settle(self, within: float = 20) -> None:
        """Retry the votes still in doubt until each has a definite answer, as a voter
        who got none would; then the ledger must hold exactly the acknowledged votes."""
        doubtful = [item for item in self.plan if (item[0].id, item[1]) in self.doubtful]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.call_later(within, stop.set)
        await self.run(stop, doubtful)

    def _note(self, kind: str) -> None:
        self.outcomes[kind] += 1
        self.timeline.append((time.monotonic(), kind))

    async def _worker(
        self, http: httpx.AsyncClient, queue: asyncio.Queue[Any], stop: asyncio.Event
    ) -> None:
        while not stop.is_set():
            try:
                voter, category, nomination = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            key = (voter.id, category)
            try:
                response = await http.post(
                    "/api/votes",
                    json={"nomination": nomination},
                    headers={"cookie": voter.cookie, "x-csrf-token": voter.csrf},
                )
            except httpx.ConnectError:
                # Never reached a server: nothing can have been recorded.
                self._note("connect_error")
                queue.put_nowait((voter, category, nomination))
                await asyncio.sleep(0.05)
                continue
            except httpx.TransportError:
                # Sent, but the answer was lost: the vote may or may not be recorded.
                self._note("lost_answer")
                self.doubtful.add(key)
                queue.put_nowait((voter, category, nomination))
                await asyncio.sleep(0.05)
                continue
            if response.status_code == 202:
                self._note("accepted")
                self.acked[key] = response.json()["receipt"]
                self.doubtful.discard(key)
            elif response.status_code == 409:
                # The vote was recorded by an attempt whose answer we did not get.
                self._note("already_recorded")
                if key not in self.doubtful:
                    self.unexpected.append(f"409 without an earlier doubtful attempt: {key}")
                self.acked[key] = response.json()["error"]["receipt"]
                self.doubtful.discard(key)
            elif response.status_code == 503:
                self._note("refused_503")
                body = response.json()
                code = body["error"]["code"]
                if "retry-after" not in response.headers or code not in (
                    "unavailable",
                    "outcome_unknown",
                ):
                    self.unexpected.append(f"503 without Retry-After or code: {body}")
                # Each code with its own words: "may or may not" only when it may have.
                if (code == "outcome_unknown") != ("may or may not" in body["error"]["message"]):
                    self.unexpected.append(f"503 whose code and message disagree: {body}")
                if code == "outcome_unknown":
                    self.outcomes["refused_503_answer_lost"] += 1
                # A 503 is still only as sure as the connection under it (see the report);
                # the retry's answer settles it either way.
                self.doubtful.add(key)
                queue.put_nowait((voter, category, nomination))
                await asyncio.sleep(0.05)
            else:
                self._note(f"status_{response.status_code}")
                self.unexpected.append(f"{response.status_code}: {response.text[:300]}")

    def failures_between(self, start: float, end: float | None = None) -> int:
        end = end if end is not None else float("inf")
        return sum(
            1
            for t, kind in self.timeline
            if start <= t <= end and kind not in ("accepted", "already_recorded")
        )

    def first_success_after(self, instant: float) -> float | None:
        for t, kind in self.timeline:
            if t >= instant and kind in ("accepted", "already_recorded"):
                return t
        return None

    def last_failure(self) -> float | None:
        times = [t for t, kind in self.timeline if kind not in ("accepted", "already_recorded")]
        return max(times) if times else None


def plan_for(stage: Stage, sessions: list[VoterSession]) -> list[tuple[VoterSession, str, str]]:
    """Every voter votes in every category, voters interleaved so the shards all work."""
    plan = []
    categories = sorted(stage.nominations)
    for c_index, category in enumerate(categories):
        options = stage.nominations[category]
        for v_index, voter in enumerate(sessions):
            plan.append((voter, category, options[(v_index + c_index) % len(options)]))
    # Categories one after another would make the late ones wait: mix them.
    random.Random(7).shuffle(plan)
    return plan


async def run_for(client: VoteClient, seconds: float) -> tuple[asyncio.Task[None], asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(client.run(stop))
    await asyncio.sleep(seconds)
    return task, stop


async def voting_under_load(
    database_url: str,
    redis_url: str,
    serve: Callable[..., Any],
    *,
    workers: int = 2,
    seconds: float = 1.5,
    keepalive: bool = True,
    **env: str,
) -> tuple[Stage, Any, VoteClient, asyncio.Task[None], asyncio.Event]:
    """The stage of most fault tests: an edition open to votes, `voting serve` on it (the
    `serve` fixture, with `env` added), and 3,000 voters who have voted for `seconds`
    already and go on until `stop` is set."""
    stage = await prepare(database_url, redis_url)
    server = serve(
        workers=workers,
        VOTING_DATABASE_URL=database_url,
        VOTING_REDIS_URL=redis_url,
        VOTING_REDIS_PREFIX=stage.prefix,
        **env,
    )
    client = VoteClient(
        server.url, plan_for(stage, voters(3000, stage.edition.slug)), keepalive=keepalive
    )
    task, stop = await run_for(client, seconds)
    return stage, server, client, task, stop


async def wait_accepting(client: VoteClient, since: float, within: float = 30) -> float:
    """Seconds from `since` until the client saw a vote accepted again."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = client.first_success_after(since)
        if found is not None:
            return found - since
        await asyncio.sleep(0.02)
    raise AssertionError(f"no vote was accepted within {within} s; outcomes {client.outcomes}")


# -- the checks -----------------------------------------------------------------------------


async def wait_drained(redis_url: str, stage: Stage, within: float = 20) -> float:
    """Seconds until the server's own flushers have emptied the streams."""
    redis = open_redis(redis_url)
    started = time.monotonic()
    try:
        keys = Ballot(redis, stage.prefix).keys(stage.edition.slug)
        while await stream_backlog(redis, keys):
            if time.monotonic() - started > within:
                raise AssertionError(f"the streams did not drain within {within} s")
            await asyncio.sleep(0.05)
        return time.monotonic() - started
    finally:
        await redis.aclose()


async def check_ledger(
    database_url: str, redis_url: str, stage: Stage, client: VoteClient
) -> dict[str, int]:
    """Final flush, then: every acknowledged receipt in the ledger exactly once, nothing in
    it that was neither acknowledged nor in doubt, and the counters equal to the ledger."""
    assert not client.unexpected, client.unexpected[:5]
    redis = open_redis(redis_url)
    pool = await db.create_pool(database_url, min_size=1, max_size=2)
    try:
        # claim_idle_ms=0: whatever a dead flusher left pending is taken over at once.
        flusher = Flusher(redis, pool, stage.prefix, consumer="final", claim_idle_ms=0)
        while (await flusher.flush_once()).read:
            pass
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT voter_id, category, receipt FROM votes WHERE edition_id=$1",
                stage.edition_id,
            )
            result = await reconcile(redis, conn, stage.prefix, stage.edition.slug)
    finally:
        await redis.aclose()
        await pool.close()
    receipts = [r["receipt"] for r in rows]
    assert len(receipts) == len(set(receipts)), "a receipt is in the ledger twice"
    ledger = {(r["voter_id"], r["category"]): r["receipt"] for r in rows}
    missing = {k: v for k, v in client.acked.items() if ledger.get(k) != v}
    assert not missing, f"acknowledged but not in the ledger: {list(missing.items())[:5]}"
    # With nothing left in doubt (the client settled), this makes ledger == acknowledged.
    unexplained = set(ledger) - set(client.acked) - client.doubtful
    assert not unexplained, f"in the ledger, never acknowledged nor pending: {unexplained}"
    assert result.pending == 0 and result.alarms == 0, result
    assert result.ok, result.differences
    return {
        "acknowledged": len(client.acked),
        "ledger": len(ledger),
        "lost_answers_found_recorded": client.outcomes["already_recorded"],
        "still_in_doubt": len(client.doubtful),
        "in_doubt_recorded": len(set(ledger) & client.doubtful),
    }


async def create_database(admin_url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path=f"/{name}"))
