"""A hypothesis state machine over votes, duplicates, flushes and flusher crashes.

Hypothesis has no async stateful tests, so each rule is a plain function that drives an
event loop of the machine's own. After any interleaving and a final flush, the ledger
holds exactly the accepted votes, each once, and every counter equals its ledger count.
"""

import asyncio
import uuid
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.fixtures.editions import edition_data
from voting import db, edition_store
from voting.ballot import Ballot
from voting.contest import parse_edition
from voting.ledger import GROUP, Flusher, reconcile
from voting.security import pseudonym
from voting.services import open_redis

CATEGORIES = ("C1", "C2", "C3")
NOMINATIONS = {c: [f"{c}-a", f"{c}-b"] for c in CATEGORIES}


def make_machine(database_url: str, redis_url: str):
    class LedgerMachine(RuleBasedStateMachine):
        @initialize()
        def setup(self) -> None:
            self.loop = asyncio.new_event_loop()
            self.prefix = f"t{uuid.uuid4().hex[:10]}"
            self.slug = f"m-{uuid.uuid4().hex[:8]}"
            self.run(self._setup())
            self.accepted: dict[tuple[str, str], str] = {}  # (voter, category) -> receipt
            self.crashed = 0

        async def _setup(self) -> None:
            self.redis = open_redis(redis_url, max_connections=8)
            self.pool = await db.create_pool(database_url, min_size=1, max_size=3)
            self.ballot = Ballot(self.redis, self.prefix)
            t = await self.redis.time()
            from datetime import UTC, datetime

            now = datetime.fromtimestamp(t[0], UTC)
            data = edition_data()
            data["slug"] = self.slug
            edition = parse_edition(data, now=now)
            async with self.pool.acquire() as conn:
                self.edition_id = await edition_store.save_edition(
                    conn, edition, now=now - timedelta(days=400), actor="t", make_current=False
                )
            await self.ballot.sync_window(edition)

        def run(self, coro):
            return self.loop.run_until_complete(coro)

        @rule(
            voter=st.integers(0, 6),
            category=st.sampled_from(CATEGORIES),
            pick=st.integers(0, 1),
        )
        def vote(self, voter: int, category: str, pick: int) -> None:
            vid = pseudonym("k", f"v{voter}@example.org")
            outcome = self.run(
                self.ballot.cast(self.slug, vid, category, NOMINATIONS[category][pick])
            )
            key = (vid, category)
            if key in self.accepted:
                assert outcome.status == "duplicate"
                assert outcome.receipt == self.accepted[key]
            else:
                assert outcome.status == "accepted"
                self.accepted[key] = outcome.receipt

        @rule(batch=st.integers(1, 5), parallel=st.integers(1, 4))
        def flush(self, batch: int, parallel: int) -> None:
            self.run(
                Flusher(
                    self.redis,
                    self.pool,
                    self.prefix,
                    consumer="ok",
                    batch=batch,
                    claim_idle_ms=0,
                    parallel=parallel,
                ).flush_once()
            )

        @rule(count=st.integers(1, 5), commit=st.booleans())
        def crash_a_flusher(self, count: int, commit: bool) -> None:
            """A flusher reads entries and dies, before or after its commit, never acking."""
            self.crashed += 1
            dead = Flusher(
                self.redis, self.pool, self.prefix, consumer=f"dead{self.crashed}", batch=count
            )

            async def go() -> None:
                for stream in self.ballot.keys(self.slug).all_streams():
                    await dead._ensure_group(stream)
                    reply = await self.redis.xreadgroup(
                        GROUP, dead.consumer, {stream: ">"}, count=count
                    )
                    if reply and commit:
                        from voting.ledger import FlushStats

                        async def no_ack(*a):
                            raise ConnectionError("killed before XACK")

                        dead._ack = no_ack
                        try:
                            await dead._commit(self.edition_id, stream, reply[0][1], FlushStats())
                        except ConnectionError:
                            pass

            self.run(go())

        @precondition(lambda self: hasattr(self, "pool"))
        @invariant()
        def ledger_never_holds_an_unaccepted_vote(self) -> None:
            async def check() -> None:
                async with self.pool.acquire() as conn:
                    rows = await conn.fetch(
                        "SELECT voter_id, category, receipt FROM votes WHERE edition_id=$1",
                        self.edition_id,
                    )
                for r in rows:
                    assert self.accepted.get((r["voter_id"], r["category"])) == r["receipt"]

            self.run(check())

        def teardown(self) -> None:
            if not hasattr(self, "pool"):
                return

            async def final() -> None:
                try:
                    await Flusher(
                        self.redis, self.pool, self.prefix, consumer="final", claim_idle_ms=0
                    ).flush_once()
                    async with self.pool.acquire() as conn:
                        rows = await conn.fetch(
                            "SELECT voter_id, category, receipt FROM votes WHERE edition_id=$1",
                            self.edition_id,
                        )
                        ledger = {(r["voter_id"], r["category"]): r["receipt"] for r in rows}
                        assert ledger == self.accepted
                        result = await reconcile(self.redis, conn, self.prefix, self.slug)
                        assert result.ok, result.differences
                        await conn.execute("DELETE FROM editions WHERE id=$1", self.edition_id)
                finally:
                    keys = [k async for k in self.redis.scan_iter(match=f"{self.prefix}:*")]
                    if keys:
                        await self.redis.delete(*keys)
                    await self.pool.close()
                    await self.redis.aclose()

            try:
                self.run(final())
            finally:
                self.loop.close()

    return LedgerMachine


def test_ledger_equals_accepted_votes_after_any_interleaving(database_url, redis_url):
    machine = make_machine(database_url, redis_url)
    machine.TestCase.settings = settings(
        max_examples=40,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(machine, settings=machine.TestCase.settings)
