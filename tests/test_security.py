"""voting/security.py's helpers: the keyed digest and the pools of random tokens."""

import hmac
import os
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from voting.security import keyed_digest, pooled


@settings(max_examples=200, deadline=None)
@given(
    keys=st.lists(st.binary(min_size=0, max_size=80), min_size=1, max_size=4),
    value=st.text(max_size=60),
    hex_chars=st.integers(1, 64),
)
def test_keyed_digest_is_hmac_sha256_under_each_key(keys, value, hex_chars):
    """The kept keyed state gives the one-shot HMAC's digest, each key its own (keys seen
    before and keys of any length, over the hash's block size too)."""
    for key in keys * 2:  # the second time from the kept state
        expected = hmac.digest(key, value.encode(), "sha256").hex()[:hex_chars]
        assert keyed_digest(key, value, hex_chars=hex_chars) == expected


def test_a_pool_hands_out_each_token_once():
    draws = []

    def draw():
        draws.append(1)
        return [f"{len(draws)}-{n}" for n in range(4)]

    take = pooled(draw)
    tokens = [take() for _ in range(10)]
    assert len(set(tokens)) == 10 and len(draws) == 3


def test_a_forked_child_draws_its_own_tokens():
    take = pooled(lambda: [f"{os.getpid()}-{n}" for n in range(8)])
    assert take().startswith(f"{os.getpid()}-")  # the parent's pool holds 7 more now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first token must come from a draw of its own
        os.write(write, take().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode()
    os.close(read)
    assert re.fullmatch(rf"{pid}-\d", child)
    assert take().startswith(f"{os.getpid()}-")  # the parent's own pool, untouched


def test_the_kept_keyed_states_stay_few_whatever_the_keys():
    from voting.compat import itsdangerous as compat

    for n in range(200):
        key = b"key-%d" % n
        assert keyed_digest(key, "v") == hmac.digest(key, b"v", "sha256").hex()[:32]
    assert len(compat._keyed) <= compat._KEYS_KEPT
