"""The vote's rules (voting/ballots/casting.py) called directly, with no HTTP: on the
test's PostgreSQL and Redis, through the application's own Casting."""

from __future__ import annotations

import random
from datetime import timedelta

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fixtures.voting import open_voting, redis_now, runtime_for, with_window
from voting.antifraud.minimise import address_key
from voting.antifraud.signals import new_form_token
from voting.ballot import Ballot
from voting.ballots.casting import (
    MAX_NOMINATION,
    Signals,
    VoteAccepted,
    VoteRefusal,
    VoteRequest,
    answer,
    read_vote,
)
from voting.services import open_redis
from voting.voters import Voter, identify

BROWSER = Signals(
    "192.0.2.10",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    accept_language=True,
    fetch_metadata=True,
)

# -- reading the body: no I/O, any bytes -------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@given(st.binary(max_size=80))
def test_any_bytes_are_a_vote_or_a_4xx_refusal(raw):
    try:
        vote = read_vote(raw)
    except VoteRefusal as refusal:
        assert refusal.status in (400, 422)
        assert refusal.body()["error"]["code"] == refusal.code
        return
    assert isinstance(vote.nomination, str)


@given(
    st.dictionaries(
        st.sampled_from(["nomination", "category", "form_token", "webdriver", "altcha", "x"]),
        json_values,
    )
)
def test_a_json_object_is_read_field_by_field(body):
    raw = orjson.dumps(body)
    try:
        vote = read_vote(raw)
    except VoteRefusal as refusal:
        assert refusal.status == 422
        nul = any(
            _nul(body[name]) for name in ("nomination", "category", "form_token") if name in body
        )
        wrong = ("category" in body and not isinstance(body["category"], str | None)) or (
            "altcha" in body and not isinstance(body["altcha"], str | None)
        )
        assert nul or wrong, refusal.code
        return
    nomination = body.get("nomination")
    assert vote.nomination == (nomination if isinstance(nomination, str) else "")
    assert vote.category == body.get("category")
    assert vote.webdriver is (body.get("webdriver") is True)
    assert vote.solution == (body.get("altcha") or None)
    token = body.get("form_token")
    assert vote.form_token == (token if isinstance(token, str) and token else None)


def _nul(value):
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_nul(k) or _nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_nul(v) for v in value)
    return False


def test_what_is_no_json_object_is_a_400_or_422():
    for raw, status, code in [
        (b"", 400, "empty_body"),
        (b"{nope", 400, "bad_json"),
        (b"[1]", 422, "not_an_object"),
        (b'{"nomination": "\\u0000"}', 422, "invalid"),
        (b'{"category": 3}', 422, "invalid"),
        (b'{"altcha": 3}', 422, "invalid"),
    ]:
        with pytest.raises(VoteRefusal) as caught:
            read_vote(raw)
        assert (caught.value.status, caught.value.code) == (status, code), raw
    # A NUL where the vote does not read is no business of the vote's.
    assert read_vote(b'{"nomination": "N1", "other": "\\u0000"}').nomination == "N1"


# -- casting, on the test's PostgreSQL and Redis -------------------------------------------


def _voter(app, edition_slug, email):
    voter_id, address = identify(app.state.services.settings.secret_key, email)
    return Voter(voter_id, address.domain, edition_slug)


def _form(app, voter, where):
    """A ballot's form token, served 20 seconds ago on the engine's clock."""
    clock = app.state.services.clock
    token = new_form_token(app.state.tokens, voter.id, where, now=clock.now().timestamp())
    clock.advance(timedelta(seconds=20))
    return token


async def test_one_vote_per_category_whatever_the_order(app, conn):
    edition, _, noms = await open_voting(app, conn)
    casting = runtime_for(app).casting
    voter = _voter(app, edition.slug, "order@example.org")
    ballot = list(noms["C1"])
    random.Random(7).shuffle(ballot)
    answers = []
    for nomination in ballot:
        vote = VoteRequest(nomination, "C1", _form(app, voter, "C1"))
        answers.append(answer(await casting.cast(voter, vote, BROWSER)))
    accepted = [a for a in answers if isinstance(a, VoteAccepted)]
    assert len(accepted) == 1 and accepted[0].counted
    assert accepted[0].nomination == ballot[0] and accepted[0].edition == edition.slug
    for refusal in answers[1:]:
        assert isinstance(refusal, VoteRefusal) and refusal.status == 409
        # Every later try is shown the receipt of the one vote that stands.
        assert refusal.extra["receipt"] == accepted[0].receipt
        assert refusal.extra["nomination"] == ballot[0]
    # Another category is another vote.
    other = answer(
        await casting.cast(
            voter, VoteRequest(noms["C2"][0], None, _form(app, voter, "C2")), BROWSER
        )
    )
    assert isinstance(other, VoteAccepted) and other.category == "C2"
    assert orjson.loads(other.json())["receipt"] == other.receipt


async def test_refusals_before_the_script(app, conn):
    edition, _, noms = await open_voting(app, conn)
    casting = runtime_for(app).casting
    voter = _voter(app, edition.slug, "refused@example.org")
    cases = [
        (VoteRequest(""), 422, "invalid"),
        (VoteRequest("N" * (MAX_NOMINATION + 1)), 422, "invalid"),
        (VoteRequest("N99999999"), 404, "no_such_nomination"),
        (VoteRequest(noms["C1"][0], "C2"), 422, "wrong_category"),
    ]
    calls = casting.ballot._cast.stats.calls
    for vote, status, code in cases:
        with pytest.raises(VoteRefusal) as caught:
            await casting.cast(voter, vote, BROWSER)
        assert (caught.value.status, caught.value.code) == (status, code), vote
    assert casting.ballot._cast.stats.calls == calls  # none reached Redis
    stranger = Voter(voter.id, voter.domain, "no-such-edition")
    with pytest.raises(VoteRefusal) as caught:
        await casting.cast(stranger, VoteRequest(noms["C1"][0]), BROWSER)
    assert (caught.value.status, caught.value.code) == (401, "not_signed_in")


async def test_a_webdriver_trace_asks_for_a_challenge_in_the_voters_language(app, conn):
    edition, _, noms = await open_voting(app, conn)
    casting = runtime_for(app).casting
    voter = _voter(app, edition.slug, "driven@example.org")
    vote = VoteRequest(noms["C1"][0], None, _form(app, voter, "C1"), webdriver=True)
    with pytest.raises(VoteRefusal) as caught:
        await casting.cast(voter, vote, BROWSER)
    refusal = caught.value
    assert (refusal.status, refusal.code) == (428, "challenge_required")
    assert refusal.extra["challenge"]["signature"]
    assert refusal.text("en") != refusal.text("fr")
    assert refusal.body("fr")["error"]["challenge"] == refusal.extra["challenge"]


async def test_a_closed_window_names_its_instant_in_each_language(app, conn):
    edition, _, noms = await open_voting(app, conn)
    rt = runtime_for(app)
    t = await redis_now(app.state.services.r)
    await rt.ballot.sync_window(with_window(edition, t - timedelta(days=2), t - timedelta(days=1)))
    voter = _voter(app, edition.slug, "late@example.org")
    reply = answer(await rt.casting.cast(voter, VoteRequest(noms["C1"][0]), BROWSER))
    assert isinstance(reply, VoteRefusal)
    assert (reply.status, reply.code) == (403, "voting_closed")
    assert reply.extra["instant"].startswith((t - timedelta(days=1)).date().isoformat())
    assert reply.text("en").startswith("Voting is closed. It closed on ")
    assert reply.message == reply.text("en")
    assert "{" not in reply.text("fr") and reply.text("fr") != reply.text("en")


async def test_redis_away_is_a_503_that_says_nothing_was_recorded(app, conn):
    edition, _, noms = await open_voting(app, conn)
    rt = runtime_for(app)
    voter = _voter(app, edition.slug, "away@example.org")
    good = rt.ballot
    dead = open_redis("redis://127.0.0.1:1/0", max_connections=2, timeout=0.5)
    settings = app.state.services.settings
    rt.ballot = Ballot(dead, settings.redis_prefix, address_key=address_key(settings.secret_key))
    try:
        with pytest.raises(VoteRefusal) as caught:
            await rt.casting.cast(voter, VoteRequest(noms["C1"][0]), BROWSER)
    finally:
        rt.ballot = good
        await dead.aclose()
    assert (caught.value.status, caught.value.code) == (503, "unavailable")
    assert caught.value.headers == {"Retry-After": "2"}
    assert "NOT recorded" in caught.value.text("en")
    # Nothing was cast: the same vote goes through once Redis is back.
    reply = answer(await rt.casting.cast(voter, VoteRequest(noms["C1"][0]), BROWSER))
    assert isinstance(reply, VoteAccepted)
