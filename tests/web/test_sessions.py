"""The remembering session signer answers exactly as itsdangerous does, hit or miss."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

from voting.web.sessions import RememberingSigner


class Clocked(RememberingSigner):
    now = 1_800_000_000

    def get_timestamp(self) -> int:
        return self.now


class PlainClocked(TimestampSigner):
    now = 1_800_000_000

    def get_timestamp(self) -> int:
        return self.now


def _outcome(signer, value, max_age):
    try:
        return ("ok", signer.unsign(value, max_age=max_age))
    except SignatureExpired:
        return ("expired", None)
    except BadSignature:
        return ("bad", None)


@settings(max_examples=60, deadline=None)
@given(
    payload=st.binary(max_size=64),
    signed_at=st.integers(1_799_000_000, 1_800_000_000),
    moves=st.lists(st.integers(-100, 2_000_000), min_size=1, max_size=6),
    max_age=st.one_of(st.none(), st.integers(0, 1_000_000)),
    tamper=st.booleans(),
)
def test_remembered_verdicts_equal_itsdangerous(payload, signed_at, moves, max_age, tamper):
    writer = PlainClocked("secret-key")
    writer.now = signed_at
    signed = writer.sign(payload)
    if tamper:
        signed = signed[:-1] + (b"A" if signed[-1:] != b"A" else b"B")
    remembering, plain = Clocked("secret-key"), PlainClocked("secret-key")
    for t in moves:  # the same cookie again and again, as the clock moves
        remembering.now = plain.now = signed_at + t
        assert _outcome(remembering, signed, max_age) == _outcome(plain, signed, max_age)


def test_a_cookie_signed_with_another_key_is_refused_even_after_a_good_one():
    good = TimestampSigner("key-one").sign(b"x")
    other = TimestampSigner("key-two").sign(b"x")
    signer = RememberingSigner("key-one")
    assert signer.unsign(good, max_age=60) == b"x"
    with pytest.raises(BadSignature):
        signer.unsign(other, max_age=60)


def test_it_remembers_a_bounded_number_of_cookies():
    signer = RememberingSigner("k", remember=3)
    writer = TimestampSigner("k")
    for n in range(10):
        assert signer.unsign(writer.sign(b"%d" % n), max_age=60) == b"%d" % n
    assert len(signer._verified) == 3


@settings(max_examples=30, deadline=None)
@given(payload=st.binary(max_size=64), key=st.text(min_size=1, max_size=40))
def test_its_kept_derived_key_signs_as_itsdangerous_does(payload, key):
    remembering, plain = Clocked(key), PlainClocked(key)
    for _ in range(2):  # the second time from the kept key
        assert remembering.sign(payload) == plain.sign(payload)


@settings(max_examples=300, deadline=None)
@given(
    payload=st.binary(max_size=48),
    signed_at=st.integers(1_799_000_000, 1_800_000_000),
    edits=st.lists(
        st.tuples(st.integers(0, 200), st.sampled_from([b"", b".", b"A", b"=", b"\xff", b"-"])),
        max_size=3,
    ),
    cut=st.integers(0, 200),
    max_age=st.one_of(st.none(), st.integers(0, 2_000_000)),
    later=st.integers(-10, 2_000_000),
    key=st.sampled_from(["secret-key", "another"]),
)
def test_a_first_look_at_any_cookie_answers_as_itsdangerous(
    payload, signed_at, edits, cut, max_age, later, key
):
    """Fresh signers (nothing remembered), cookies damaged anywhere: in the payload, the
    time stamp, the signature, the dots; shortened; signed with another key."""
    writer = PlainClocked(key)
    writer.now = signed_at
    signed = writer.sign(payload)
    for at, piece in edits:
        at %= len(signed) + 1
        signed = signed[:at] + piece + signed[at + 1 :]
    if cut % 5 == 0:
        signed = signed[: cut % (len(signed) + 1)]
    remembering, plain = Clocked("secret-key"), PlainClocked("secret-key")
    remembering.now = plain.now = signed_at + later
    assert _outcome(remembering, signed, max_age) == _outcome(plain, signed, max_age)


def test_a_good_cookie_is_checked_without_itsdangerous_unsign(monkeypatch):
    signed = TimestampSigner("k").sign(b"voter")
    signer = RememberingSigner("k")

    def refuse(*args, **kwargs):
        raise AssertionError("the full unsign ran")

    monkeypatch.setattr(TimestampSigner, "unsign", refuse)
    assert signer.unsign(signed, max_age=60) == b"voter"
