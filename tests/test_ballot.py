"""The hot path's script against real Redis: window, duplicates, completeness, receipts."""

import asyncio
from datetime import timedelta

from tests.voting_helpers import redis_now, voter, voting_edition, with_window
from voting.ballot import Ballot, new_receipt


async def test_a_vote_is_accepted_once_per_category(ballot, conn, redis_client):
    edition, _ = await voting_edition(conn, ballot, await redis_now(redis_client))
    first = await ballot.cast(edition.slug, voter(1), "C1", "N1")
    assert first.status == "accepted" and first.state == "counted" and first.receipt
    again = await ballot.cast(edition.slug, voter(1), "C1", "N2")
    assert again.status == "duplicate"
    assert again.receipt == first.receipt and again.nomination == "N1"
    other_category = await ballot.cast(edition.slug, voter(1), "C2", "N5")
    assert other_category.status == "accepted"
    assert await ballot.live_counts(edition.slug) == {"N1": 1, "N5": 1}
    assert await ballot.ballot_of(edition.slug, voter(1)) == {
        "C1": (first.receipt, "N1"),
        "C2": (other_category.receipt, "N5"),
    }


async def test_the_cutoff_is_decided_by_redis_time(ballot, conn, redis_client):
    now = await redis_now(redis_client)
    edition, _ = await voting_edition(conn, ballot, now)
    # Close a few milliseconds after Redis TIME: accepted.
    t = await redis_now(redis_client)
    await ballot.sync_window(
        with_window(edition, t - timedelta(days=1), t + timedelta(milliseconds=300))
    )
    assert (await ballot.cast(edition.slug, voter(1), "C1", "N1")).status == "accepted"
    # Close at Redis TIME or before it: refused, and the answer names the instant.
    t = await redis_now(redis_client)
    await ballot.sync_window(with_window(edition, t - timedelta(days=1), t))
    refused = await ballot.cast(edition.slug, voter(2), "C1", "N1")
    assert refused.status == "closed" and refused.boundary == t
    t = await redis_now(redis_client)
    await ballot.sync_window(with_window(edition, t - timedelta(days=1), t - timedelta(seconds=1)))
    assert (await ballot.cast(edition.slug, voter(3), "C1", "N1")).status == "closed"
    # Before the opening: refused; at the opening instant (or just after) accepted.
    t = await redis_now(redis_client)
    await ballot.sync_window(with_window(edition, t + timedelta(seconds=5), t + timedelta(days=1)))
    early = await ballot.cast(edition.slug, voter(4), "C1", "N1")
    assert early.status == "early" and early.boundary == t + timedelta(seconds=5)
    t = await redis_now(redis_client)
    await ballot.sync_window(with_window(edition, t, t + timedelta(days=1)))
    assert (await ballot.cast(edition.slug, voter(5), "C1", "N1")).status == "accepted"
    # Nothing refused left a trace.
    assert await ballot.live_counts(edition.slug) == {"N1": 2}
    assert await ballot.ballot_of(edition.slug, voter(2)) == {}


async def test_without_a_window_the_script_says_so(ballot):
    assert (await ballot.cast("never-synced", voter(1), "C1", "N1")).status == "nowindow"


async def test_completeness_rule_holds_votes_until_the_ballot_is_complete(
    ballot, conn, redis_client
):
    edition, _ = await voting_edition(
        conn, ballot, await redis_now(redis_client), completeness=True
    )
    a = await ballot.cast(edition.slug, voter(1), "C1", "N1")
    b = await ballot.cast(edition.slug, voter(1), "C2", "N4")
    assert a.state == b.state == "held"
    assert await ballot.live_counts(edition.slug) == {}
    assert await ballot.held_counts(edition.slug) == {"N1": 1, "N4": 1}
    c = await ballot.cast(edition.slug, voter(1), "C3", "N7")
    assert c.state == "completes"
    assert await ballot.live_counts(edition.slug) == {"N1": 1, "N4": 1, "N7": 1}
    assert await ballot.held_counts(edition.slug) == {}
    # Another voter who stops after two categories stays held.
    await ballot.cast(edition.slug, voter(2), "C1", "N1")
    await ballot.cast(edition.slug, voter(2), "C2", "N4")
    assert await ballot.live_counts(edition.slug) == {"N1": 1, "N4": 1, "N7": 1}
    assert await ballot.held_counts(edition.slug) == {"N1": 1, "N4": 1}


async def test_five_hundred_concurrent_attempts_yield_one_vote(ballot, conn, redis_client):
    edition, _ = await voting_edition(conn, ballot, await redis_now(redis_client))
    outcomes = await asyncio.gather(
        *(ballot.cast(edition.slug, voter(1), "C1", f"N{i % 3}") for i in range(500))
    )
    accepted = [o for o in outcomes if o.status == "accepted"]
    assert len(accepted) == 1
    assert all(o.receipt == accepted[0].receipt for o in outcomes if o.status == "duplicate")
    assert sum((await ballot.live_counts(edition.slug)).values()) == 1


async def test_the_script_cache_being_flushed_costs_no_vote(ballot, conn, redis_client):
    edition, _ = await voting_edition(conn, ballot, await redis_now(redis_client))
    assert (await ballot.cast(edition.slug, voter(1), "C1", "N1")).status == "accepted"
    await redis_client.script_flush()
    assert (await ballot.cast(edition.slug, voter(2), "C1", "N1")).status == "accepted"
    assert await ballot.live_counts(edition.slug) == {"N1": 2}


def test_receipts_are_unique_and_readable():
    receipts = {new_receipt() for _ in range(10_000)}
    assert len(receipts) == 10_000
    sample = next(iter(receipts))
    assert len(sample) == 19 and sample.count("-") == 3


def test_keys_of_one_voter_share_one_hash_slot():
    from redis.crc import key_slot

    keys = Ballot.__new__(Ballot)
    keys.prefix, keys.shards = "wsis", 16
    k = Ballot.keys(keys, "demo")
    for n in range(50):
        v = voter(n)
        shard = k.shard_of(v)
        slots = {
            key_slot(name.encode())
            for name in (
                k.window(shard),
                k.ballot(shard, v),
                k.counts(shard),
                k.held(shard),
                k.stream(shard),
            )
        }
        assert len(slots) == 1
    assert len({key_slot(k.stream(s).encode()) for s in range(16)}) > 1
