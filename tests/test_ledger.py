"""The flusher and reconciliation against real Redis and PostgreSQL."""

import asyncio
import logging
from collections import Counter

import pytest
import redis.asyncio as aioredis
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio.cluster import RedisCluster

from tests.fixtures.services import TEST_SECRET
from tests.fixtures.voting import redis_now, voter, voting_edition
from voting import db, ledger
from voting.antifraud.minimise import address_hash, address_key
from voting.ballot import SHARDS, Keys
from voting.ledger import (
    _COLUMNS,
    GROUP,
    STREAM_FIELDS,
    Flusher,
    _entries,
    _row,
    _text,
    reconcile,
    repair,
    spread,
)
from voting.redis_cluster import is_cluster_url, plain_url

# Every test here once on a single Redis and once on a Redis Cluster (redis_backend).
pytestmark = pytest.mark.backends
# A browser's agent: the ledger keeps its summary, "Firefox/121 (Linux)".
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"


@pytest.fixture
async def pool(database_url):
    p = await db.create_pool(database_url, min_size=1, max_size=4)
    yield p
    await p.close()


def flusher(redis_client, pool, redis_prefix, name="f1", **kw):
    return Flusher(redis_client, pool, redis_prefix, consumer=name, **kw)


async def ledger_receipts(conn, edition_id):
    rows = await conn.fetch("SELECT receipt FROM votes WHERE edition_id=$1", edition_id)
    return sorted(r["receipt"] for r in rows)


async def test_flush_moves_accepted_votes_into_the_ledger(
    ballot, conn, redis_client, pool, redis_prefix
):
    edition, edition_id = await voting_edition(conn, ballot, await redis_now(redis_client))
    receipts = []
    for n in range(30):
        for category, nomination in (("C1", f"N{n % 4}"), ("C2", "N9")):
            outcome = await ballot.cast(
                edition.slug, voter(n), category, nomination, ip="10.0.0.1", user_agent=FIREFOX
            )
            receipts.append(outcome.receipt)
    await ballot.cast(edition.slug, voter(0), "C1", "N3")  # a duplicate: nothing new
    stats = await flusher(redis_client, pool, redis_prefix).flush_once()
    assert stats.inserted == 60 and stats.lost == []
    assert await ledger_receipts(conn, edition_id) == sorted(receipts)
    row = await conn.fetchrow("SELECT * FROM votes WHERE receipt=$1", receipts[0])
    assert row["category"] == "C1" and row["agent"] == "Firefox/121 (Linux)"
    # Minimised at the door: the /24 and the address's keyed hash, never the address.
    assert (row["ip"], row["user_agent"]) == (None, None)
    assert row["ip_prefix"] == "10.0.0.0/24" and row["network"] == "10.0.0.0/24"
    assert row["ip_hash"] == address_hash(address_key(TEST_SECRET), "10.0.0.1")
    result = await reconcile(redis_client, conn, redis_prefix, edition.slug)
    assert result.ok and result.pending == 0, result.differences
    assert result.ledger_counts["N9"] == 30


async def test_a_flusher_killed_between_read_and_ack_loses_and_doubles_nothing(
    ballot, conn, redis_client, pool, redis_prefix
):
    edition, edition_id = await voting_edition(conn, ballot, await redis_now(redis_client))
    receipts = [(await ballot.cast(edition.slug, voter(n), "C1", "N1")).receipt for n in range(40)]
    crashing = flusher(redis_client, pool, redis_prefix, "crasher")

    async def crash_after_commit(stream, ids):  # the process dies before XACK
        raise ConnectionError("killed")

    crashing._ack = crash_after_commit
    with pytest.raises(ConnectionError):
        await crashing.flush_once(reclaim=False)
    committed = await ledger_receipts(conn, edition_id)
    assert 0 < len(committed) <= 40
    # Also one that was read and never committed: read by the crasher, left pending.
    for n in range(40, 45):
        receipts.append((await ballot.cast(edition.slug, voter(n), "C1", "N1")).receipt)
    keys = ballot.keys(edition.slug)
    survivor = flusher(redis_client, pool, redis_prefix, "survivor", claim_idle_ms=0)
    for stream in keys.all_streams():
        await survivor._ensure_group(stream)
        await redis_client.xreadgroup(GROUP, "crasher", {stream: ">"}, count=1000)
    # A new flusher reclaims what the dead one left pending.
    stats = await survivor.flush_once()
    assert stats.reclaimed >= 5
    assert await ledger_receipts(conn, edition_id) == sorted(receipts)
    for stream in keys.all_streams():
        assert (await redis_client.xpending(stream, GROUP))["pending"] == 0
        assert await redis_client.xlen(stream) == 0  # trimmed once committed
    assert (await reconcile(redis_client, conn, redis_prefix, edition.slug)).ok


async def test_an_entry_deleted_before_it_was_flushed_raises_the_alarm(
    ballot, conn, redis_client, pool, redis_prefix
):
    edition, _ = await voting_edition(conn, ballot, await redis_now(redis_client))
    outcome = await ballot.cast(edition.slug, voter(1), "C1", "N1")
    keys = ballot.keys(edition.slug)
    stream = keys.stream(keys.shard_of(voter(1)))
    f = flusher(redis_client, pool, redis_prefix, claim_idle_ms=0)
    await f._ensure_group(stream)
    await redis_client.xreadgroup(GROUP, "dead", {stream: ">"}, count=10)
    await redis_client.xdel(stream, outcome.stream_id)
    stats = await f.flush_once()
    assert stats.lost == [outcome.stream_id]
    result = await reconcile(redis_client, conn, redis_prefix, edition.slug)
    assert result.alarms == 1 and not result.ok


async def test_several_flushers_at_once_write_each_vote_once(
    ballot, conn, redis_client, pool, redis_prefix
):
    edition, edition_id = await voting_edition(conn, ballot, await redis_now(redis_client))
    receipts = [(await ballot.cast(edition.slug, voter(n), "C1", "N2")).receipt for n in range(300)]
    flushers = [flusher(redis_client, pool, redis_prefix, f"f{i}", batch=7) for i in range(3)]
    await asyncio.gather(*(f.flush_once() for f in flushers))
    await flushers[0].flush_once()
    assert await ledger_receipts(conn, edition_id) == sorted(receipts)


async def test_the_stream_buffers_while_postgresql_is_away_and_drains_after(
    ballot, conn, redis_client, redis_prefix, database_url
):
    edition, edition_id = await voting_edition(conn, ballot, await redis_now(redis_client))
    bad_pool = await db.create_pool(database_url, min_size=0, max_size=1)
    await bad_pool.close()  # a pool that cannot give a connection: PostgreSQL "away"
    receipts = [(await ballot.cast(edition.slug, voter(n), "C1", "N2")).receipt for n in range(10)]
    with pytest.raises(Exception):  # noqa: B017 - any failure to reach the database
        await flusher(redis_client, bad_pool, redis_prefix).flush_once()
    good_pool = await db.create_pool(database_url, min_size=1, max_size=2)
    try:
        await flusher(redis_client, good_pool, redis_prefix, claim_idle_ms=0).flush_once()
    finally:
        await good_pool.close()
    assert await ledger_receipts(conn, edition_id) == sorted(receipts)


async def test_reconcile_repair_rebuilds_redis_from_the_ledger(
    ballot, conn, redis_client, pool, redis_prefix
):
    edition, _ = await voting_edition(conn, ballot, await redis_now(redis_client))
    for n in range(25):
        await ballot.cast(edition.slug, voter(n), "C1", f"N{n % 3}")
        await ballot.cast(edition.slug, voter(n), "C2", "N7")
    await flusher(redis_client, pool, redis_prefix).flush_once()
    before = await ballot.live_counts(edition.slug)
    # Redis loses everything of this engine.
    keys = [k async for k in redis_client.scan_iter(match=f"{redis_prefix}:*")]
    await redis_client.delete(*keys)
    broken = await reconcile(redis_client, conn, redis_prefix, edition.slug)
    assert not broken.ok and broken.differences
    replayed = await repair(redis_client, conn, redis_prefix, edition.slug)
    assert replayed == 50
    assert await ballot.live_counts(edition.slug) == before
    assert (await reconcile(redis_client, conn, redis_prefix, edition.slug)).ok
    # The window and the flushers' list came back too, from the stored edition; and the
    # ballots: a voter who voted is still refused a second vote.
    for shard in range(ballot.shards):
        assert await redis_client.hget(ballot.keys(edition.slug).window(shard), "closes")
    assert edition.slug in await flusher(redis_client, pool, redis_prefix).editions()
    assert (await ballot.cast(edition.slug, voter(3), "C1", "N1")).status == "duplicate"


async def test_a_flusher_whose_group_was_wiped_makes_it_again_and_drains(
    ballot, conn, redis_client, pool, redis_prefix
):
    edition, edition_id = await voting_edition(conn, ballot, await redis_now(redis_client))
    long_lived = flusher(redis_client, pool, redis_prefix)
    first = [(await ballot.cast(edition.slug, voter(n), "C1", "N1")).receipt for n in range(20)]
    assert (await long_lived.flush_once()).inserted == 20
    # Redis loses everything of this engine (only this test's prefix: a shared server),
    # groups included; the window comes back as the vote handler restores it.
    keys = [k async for k in redis_client.scan_iter(match=f"{redis_prefix}:*")]
    await redis_client.delete(*keys)
    await ballot.sync_window(edition)
    later = [(await ballot.cast(edition.slug, voter(n), "C2", "N7")).receipt for n in range(30)]
    # The same flusher, which made every group before the wipe, reads them all at once.
    stats = await long_lived.flush_once()
    assert stats.inserted == 30 and stats.lost == []
    assert await ledger_receipts(conn, edition_id) == sorted(first + later)
    assert (await long_lived.flush_once()).read == 0


async def test_a_destroyed_group_delivers_its_pending_entries_again_and_doubles_nothing(
    ballot, conn, redis_client, pool, redis_prefix
):
    edition, edition_id = await voting_edition(conn, ballot, await redis_now(redis_client))
    receipts = [(await ballot.cast(edition.slug, voter(n), "C1", "N1")).receipt for n in range(40)]
    crashing = flusher(redis_client, pool, redis_prefix, "crasher")

    async def crash_after_commit(stream, ids):  # committed, never acknowledged
        raise ConnectionError("killed")

    crashing._ack = crash_after_commit
    with pytest.raises(ConnectionError):
        await crashing.flush_once(reclaim=False)
    # The group goes (its pending list with it) while the stream stays.
    for stream in ballot.keys(edition.slug).all_streams():
        await redis_client.xgroup_destroy(stream, GROUP)
    # The same flusher, alive again, remembers the groups it made: it makes them again,
    # and the entries it had committed come again as new ones, skipped by the unique key.
    del crashing._ack
    stats = await crashing.flush_once()
    assert stats.lost == [] and stats.read == 40
    assert await ledger_receipts(conn, edition_id) == sorted(receipts)


async def test_completeness_rule_ledger_counts_match_the_live_counts(
    ballot, conn, redis_client, pool, redis_prefix
):
    edition, _ = await voting_edition(
        conn, ballot, await redis_now(redis_client), completeness=True
    )
    for n in range(10):
        categories = ("C1", "C2", "C3") if n % 2 else ("C1", "C2")
        for c in categories:
            await ballot.cast(edition.slug, voter(n), c, f"{c}-N{n % 2}")
    await flusher(redis_client, pool, redis_prefix).flush_once()
    result = await reconcile(redis_client, conn, redis_prefix, edition.slug)
    assert result.ok, result.differences
    assert result.ledger_counts == {"C1-N1": 5, "C2-N1": 5, "C3-N1": 5}
    await repair(redis_client, conn, redis_prefix, edition.slug)
    assert await ballot.held_counts(edition.slug) == {"C1-N0": 5, "C2-N0": 5}


async def test_a_stream_that_fails_stops_the_pass_only_after_the_others_finished(
    ballot, conn, redis_client, pool, redis_prefix
):
    """Streams drain side by side; when one fails, the pass raises, but only once every
    other stream's batch is committed and acknowledged (nothing left running behind it)."""
    edition, edition_id = await voting_edition(conn, ballot, await redis_now(redis_client))
    receipts = [(await ballot.cast(edition.slug, voter(n), "C1", "N1")).receipt for n in range(80)]
    keys = ballot.keys(edition.slug)
    broken = keys.stream(keys.shard_of(voter(0)))
    failing = flusher(redis_client, pool, redis_prefix, "f-par", parallel=4)
    real_commit = failing._commit

    async def commit(edition_id, stream, entries, stats, **kw):
        if stream == broken:
            raise ConnectionError("PostgreSQL went away")
        await asyncio.sleep(0.01)  # the others are still at work when the failure comes
        await real_commit(edition_id, stream, entries, stats, **kw)

    failing._commit = commit
    with pytest.raises(ConnectionError):
        await failing.flush_once()
    in_broken = len(await redis_client.xrange(broken))
    assert len(await ledger_receipts(conn, edition_id)) == 80 - in_broken
    # The next pass (the real commit again) takes up what the failed stream still holds.
    failing._commit = real_commit
    await failing.flush_once()
    assert await ledger_receipts(conn, edition_id) == sorted(receipts)
    assert (await reconcile(redis_client, conn, redis_prefix, edition.slug)).ok


@settings(max_examples=80, deadline=None)
@given(
    fields=st.fixed_dictionaries(
        {
            "v": st.text(min_size=1, max_size=64),
            "c": st.sampled_from(["C1", "C2"]),
            "n": st.text(min_size=1, max_size=12),
            "r": st.text(min_size=1, max_size=19),
            "t": st.integers(0, 2**52).map(str),
        },
        optional={
            "st": st.sampled_from(["counted", "held", "completes"]),
            "ah": st.text(max_size=40),
            "ag": st.text(max_size=40),
            "px": st.text(max_size=40),
            "fa": st.integers(-1, 10**7).map(str),
            "d": st.text(max_size=20),
            "net": st.text(max_size=20),
            "fn": st.text(max_size=20),
            "q": st.lists(st.sampled_from(["honeypot", "form_too_fast", ""]), max_size=3).map(
                ",".join
            ),
        },
    )
)
def test_a_stream_entry_makes_the_same_row_from_bytes_as_from_text(fields):
    """The flusher decodes redis-py's bytes directly; a client that decodes replies hands
    it texts: both give the same ledger row."""
    as_bytes = {k.encode(): v.encode() for k, v in fields.items()}
    row = _row(7, "1-0", as_bytes)
    assert row == _row(7, "1-0", fields)
    # A raw reply's flat list: by position when every field is there in the script's
    # order (the first), through a dict otherwise (the second: hypothesis' order, with
    # fields left out); an absent field reads as an empty one either way.
    full = {k: fields.get(k, "") for k in STREAM_FIELDS}
    assert _row(7, "1-0", [x.encode() for k in STREAM_FIELDS for x in (k, full[k])]) == row
    assert _row(7, "1-0", [x.encode() for k, v in fields.items() for x in (k, v)]) == row
    assert row[1:5] == (fields["v"], fields["c"], fields["n"], fields["r"])
    assert row[-3] == ("quarantined" if any(fields.get("q", "").split(",")) else "counted")


def test_an_entry_written_before_minimisation_is_minimised_by_the_flusher():
    """An entry the script wrote before 0020, still in a stream at the upgrade, carries
    the full address and agent: its row keeps the prefix and the agent's summary only
    (the flusher holds no key: no hash)."""
    agent = FIREFOX
    old = {"v": "v1", "c": "C1", "n": "N1", "r": "R1", "t": "1", "st": "counted"}
    old |= {"ip": "198.51.100.7", "ua": agent, "fa": "4000", "d": "example.org"}
    old |= {"net": "198.51.100.0/24", "q": "", "fn": "n"}
    row = dict(
        zip(
            ledger._COLUMNS,
            _row(7, "1-0", {k.encode(): v.encode() for k, v in old.items()}),
            strict=True,
        )
    )
    assert row["ip_prefix"] == "198.51.100.0/24" and row["agent"] == "Firefox/121 (Linux)"
    assert row["ip_hash"] is None and "ip" not in row and "user_agent" not in row
    assert "198.51.100.7" not in repr(row) and agent not in repr(row)


@pytest.mark.parametrize("missing", STREAM_FIELDS[:5])
def test_an_entry_without_a_required_field_makes_no_row(missing):
    flat = [x.encode() for k in STREAM_FIELDS if k != missing for x in (k, "1")]
    with pytest.raises(KeyError):
        _row(7, "1-0", flat)
    with pytest.raises(KeyError):
        _row(7, "1-0", dict(zip(flat[0::2], flat[1::2], strict=True)))


_ENTRY = [b"1-0", [b"v", b"x"]]


@pytest.mark.parametrize(
    ("reply", "entries"),
    [
        (None, []),
        ([], []),
        ({}, []),
        ([[b"s", [_ENTRY]]], [_ENTRY]),  # RESP2
        ({b"s": [_ENTRY, _ENTRY]}, [_ENTRY, _ENTRY]),  # RESP3 raw, or redis-py unified
        ({"s": [[("1-0", {"v": "x"})]]}, [("1-0", {"v": "x"})]),  # redis-py's RESP3
        ({"s": [("1-0", {"v": "x"})]}, [("1-0", {"v": "x"})]),  # redis-py's unified parsing
        ({"s": [[]]}, []),
        ({b"s": [[b"1-0", None]]}, [[b"1-0", None]]),  # an entry deleted since delivered
    ],
)
def test_the_entries_of_an_xreadgroup_reply_in_each_shape(reply, entries):
    assert _entries(reply) == entries


async def test_a_fresh_batch_holding_a_vote_the_ledger_has_writes_the_others(
    ballot, conn, redis_client, pool, redis_prefix, caplog
):
    """Never-delivered entries are COPYed straight into the ledger; should one of them be
    there already (here written by hand), the batch goes the ON CONFLICT way: the other
    votes are written, the ledger's row is kept, every entry is acknowledged."""
    edition, edition_id = await voting_edition(conn, ballot, await redis_now(redis_client))
    receipts = [(await ballot.cast(edition.slug, voter(n), "C1", "N1")).receipt for n in range(20)]
    await conn.execute(
        "INSERT INTO votes (edition_id, voter_id, category, nomination, receipt, cast_at,"
        " stream_id) VALUES ($1, $2, 'C1', 'N2', 'KEPT', now(), '0-1')",
        edition_id,
        voter(0),
    )
    with caplog.at_level(logging.INFO, logger="voting.ledger"):
        stats = await flusher(redis_client, pool, redis_prefix, batch=1000).flush_once(
            reclaim=False
        )
    assert (stats.read, stats.inserted) == (20, 19)
    # The straight COPY was tried, and only the batch with voter 0's vote fell back.
    assert [r.message for r in caplog.records if "fresh batch" in r.message] == [
        "flusher: a fresh batch held votes the ledger has; inserting the new ones"
    ]
    assert await ledger_receipts(conn, edition_id) == sorted([*receipts[1:], "KEPT"])
    keys = ballot.keys(edition.slug)
    for stream in keys.all_streams():
        assert (await redis_client.xpending(stream, GROUP))["pending"] == 0
        assert await redis_client.xlen(stream) == 0


async def test_the_script_writes_an_entrys_fields_in_the_order_the_flusher_reads_them(
    ballot, conn, redis_client, redis_prefix
):
    edition, _ = await voting_edition(conn, ballot, await redis_now(redis_client))
    await ballot.cast(
        edition.slug,
        voter(1),
        "C1",
        "N1",
        ip="10.1.2.3",
        user_agent="ua",
        form_age_ms=4000,
        domain="example.org",
        network="10.1.0.0/16",
        reasons=("honeypot",),
        form_nonce="nonce",
    )
    keys = ballot.keys(edition.slug)
    stream = keys.stream(keys.shard_of(voter(1)))
    (entry,) = await redis_client.xrange(stream)  # redis-py's dict keeps the reply's order
    assert [_text(name) for name in entry[1]] == list(STREAM_FIELDS)


@pytest.mark.parametrize(
    ("protocol", "decode"), [(3, False), (2, False), (3, True)], ids=["resp3", "resp2", "texts"]
)
async def test_the_ledger_rows_are_the_same_whatever_the_client_replies(
    ballot, conn, redis_client, redis_url, pool, redis_prefix, protocol, decode
):
    """The flusher reads raw replies (RESP3 maps, RESP2 lists, bytes or texts): each row is
    the one redis-py's own parsed entry makes."""
    edition, edition_id = await voting_edition(conn, ballot, await redis_now(redis_client))
    for n in range(40):
        outcome = await ballot.cast(
            edition.slug,
            voter(n),
            ("C1", "C2")[n % 2],
            f"N{n % 3}",
            ip=f"10.0.0.{n}",
            user_agent="Mozilla/5.0 é",
            form_age_ms=(-1, 2500)[n % 2],
            domain=("", "example.org")[n % 3 == 0],
            reasons=(("form_too_fast",), ())[n % 4 != 0],
        )
        assert outcome.status == "accepted", outcome
    expected = {}
    for stream in ballot.keys(edition.slug).all_streams():
        for entry_id, fields in await redis_client.xrange(stream):
            row = _row(edition_id, _text(entry_id), fields)
            expected[row[4]] = row  # by receipt: two streams may give the same entry id
    assert len(expected) == 40
    if is_cluster_url(redis_url):  # tests/cluster: redis-py's own XREADGROUP there
        client = RedisCluster.from_url(
            plain_url(redis_url), protocol=protocol, decode_responses=decode
        )
    else:
        client = aioredis.Redis(
            connection_pool=aioredis.BlockingConnectionPool.from_url(
                redis_url, protocol=protocol, decode_responses=decode, max_connections=8
            )
        )
    try:
        stats = await flusher(client, pool, redis_prefix, batch=7).flush_once(reclaim=False)
    finally:
        await client.aclose()
    assert stats.inserted == 40
    rows = await conn.fetch(
        f"SELECT {', '.join(_COLUMNS)} FROM votes WHERE edition_id=$1",
        edition_id,
    )
    assert {r["receipt"]: tuple(r) for r in rows} == expected


@settings(max_examples=200, deadline=None)
@given(
    nodes=st.lists(st.integers(1, 9), min_size=1, max_size=5),
    start=st.integers(0, 2**32),
)
def test_spread_takes_turns_over_the_nodes(nodes, start):
    # `nodes[k]` streams on node k.
    owner = {f"s{k}.{i}": f"node{k}" for k, count in enumerate(nodes) for i in range(count)}
    order = spread(list(owner), owner.__getitem__, start)
    assert sorted(order) == sorted(owner)  # every stream once
    width = len(nodes)
    rounds = min(nodes) * width  # while every node still has a stream to give
    for i in range(rounds - width + 1):
        assert len({owner[s] for s in order[i : i + width]}) == width, order
    assert order == spread(list(owner), owner.__getitem__, start)  # the same every pass


async def test_flushers_drain_on_different_nodes_and_begin_apart(
    redis_client, pool, redis_prefix, redis_url
):
    streams = Keys(redis_prefix, "spread", SHARDS).all_streams()
    # Each stream's node as Redis itself says: CLUSTER KEYSLOT against CLUSTER SLOTS.
    if is_cluster_url(redis_url):
        plain = aioredis.from_url(plain_url(redis_url), decode_responses=True)
        try:
            ranges = await plain.execute_command("CLUSTER", "SLOTS")
            owner = {}
            for stream in streams:
                slot = int(await plain.execute_command("CLUSTER", "KEYSLOT", stream))
                owner[stream] = next(
                    f"{r[2][0]}:{r[2][1]}" for r in ranges if int(r[0]) <= slot <= int(r[1])
                )
        finally:
            await plain.aclose()
        assert len(set(owner.values())) == 3  # the suite's cluster: three masters
    else:
        owner = dict.fromkeys(streams, "the one Redis")
    width = len(set(owner.values()))
    counts = Counter(owner.values())
    firsts = set()
    for name in ("f1", "f2", "host-4242", "host-4243", "w5", "w6"):
        f = flusher(redis_client, pool, redis_prefix, name=name)
        await f.editions()  # as a pass begins (a cluster client learns its slots then)
        order = f._order(streams)
        assert sorted(order) == sorted(streams)
        # The drains a pass runs at once (parallel = the number of nodes) are on as many
        # nodes, while every node has a stream left.
        for i in range(min(counts.values()) * width - width + 1):
            assert len({owner[s] for s in order[i : i + width]}) == width
        firsts.add(order[0])
    assert len(firsts) > 1
