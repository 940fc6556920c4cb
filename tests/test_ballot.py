"""The hot path's script against real Redis: window, duplicates, completeness, receipts."""

import asyncio
import os
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fixtures.voting import redis_now, voter, voting_edition, with_window
from voting.antifraud.minimise import address_hash
from voting.ballot import Ballot, from_micros, micros, new_receipt

# Every test here once on a single Redis and once on a Redis Cluster (redis_backend).
pytestmark = pytest.mark.backends


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


async def test_a_vote_writes_under_the_key_names_keys_gives(ballot, conn, redis_client):
    """Ballot.cast spells the key names out for speed; they must stay Keys' names."""
    from voting.ballot import Limits

    edition, _ = await voting_edition(conn, ballot, await redis_now(redis_client))
    # A minute's interval: the limit keys live that long (a millisecond's expired before
    # the scan on a busy machine).
    minute = 60_000_000
    limits = Limits(address=(minute, 0), network=(minute, 0), domain=(minute, 0))
    v = voter(7)
    outcome = await ballot.cast(
        edition.slug,
        v,
        "C1",
        "N1",
        ip="192.0.2.1",
        network="192.0.2.0/24",
        domain="example.org",
        form_nonce="abc123",
        limits=limits,
    )
    assert outcome.status == "accepted"
    keys = ballot.keys(edition.slug)
    shard = keys.shard_of(v)
    expected = {
        keys.window(shard),
        keys.ballot(shard, v),
        keys.counts(shard),
        keys.stream(shard),
        # The address only as its keyed hash (antifraud/minimise.py).
        keys.rate(shard, "a", address_hash(ballot.address_key, "192.0.2.1")),
        keys.rate(shard, "n", "192.0.2.0/24"),
        keys.rate(shard, "d", "example.org"),
        keys.nonce(shard, "abc123"),
    }
    found = {k.decode() async for k in redis_client.scan_iter(match=f"{keys.tag(shard)}*")}
    assert expected <= found, expected - found


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


async def test_without_one_atomic_script_the_same_attempts_record_many_votes(
    redis_client, redis_prefix
):
    """The control of the test above: the same 500 concurrent attempts by one voter, with
    the script's check ("has this voter voted in C1?") and its write (record the ballot,
    count the vote) as separate round trips instead of one script. The attempts are held
    between the two until all have checked (a barrier: left to the scheduler, how many
    interleave depends on the machine's load, and a run where none did proved nothing):
    every one passes the check before any has written, so every one records a vote. The
    test above runs the same attempts through the one script: one vote."""
    ballots, counts = f"{redis_prefix}:race:ballot", f"{redis_prefix}:race:counts"
    checked = asyncio.Barrier(500)

    async def unlocked_cast(nomination: str) -> str:
        voted = await redis_client.hget(ballots, "C1") is not None
        await checked.wait()
        if voted:
            return "duplicate"
        await redis_client.hset(ballots, "C1", nomination)
        await redis_client.hincrby(counts, nomination, 1)
        return "accepted"

    outcomes = await asyncio.gather(*(unlocked_cast(f"N{i % 3}") for i in range(500)))
    accepted = outcomes.count("accepted")
    assert accepted == 500
    counted = await redis_client.hgetall(counts)
    assert sum(int(v) for v in counted.values()) == accepted


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
    assert all(re.fullmatch(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){3}", r) for r in receipts)


def test_receipts_use_every_letter_alike():
    """Each of a receipt's 16 letters is one of 32, alike (80 random bits): over 64,000
    letters each is seen near 2,000 times (a letter drawn twice as often, or never, fails)."""
    letters = "".join(new_receipt() for _ in range(4000)).replace("-", "")
    counts = {letter: letters.count(letter) for letter in set(letters)}
    assert sorted(counts) == sorted("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert all(1700 < n < 2300 for n in counts.values())  # sd ~44: ~7 sd each way


def test_a_forked_child_never_hands_out_its_parents_receipts():
    new_receipt()  # the parent's pool is filled now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next receipts, to the parent, then out at once
        os.write(write, ",".join(new_receipt() for _ in range(70)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split(","))
    parent = {new_receipt() for _ in range(70)}
    assert len(child) == 70 and len(parent) == 70
    assert not child & parent


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


@given(st.integers(0, 2**53))
def test_micros_round_trip_to_the_instant_fromtimestamp_gives(us):
    expected = datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)
    assert from_micros(us) == expected == from_micros(str(us))
    assert from_micros(us).tzinfo is UTC and from_micros(us).utcoffset() == timedelta(0)
    assert micros(from_micros(us)) == us
