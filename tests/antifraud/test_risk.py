"""The risk score (voting/antifraud/risk.py): a pure function, held to its two promises
for any combination of signals."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from voting.antifraud.config import DEFAULTS
from voting.antifraud.risk import (
    BANDS,
    HIGH,
    LOW,
    MIDDLE,
    POINTS,
    agent_reasons,
    band_of,
    score,
    score_signin,
    score_vote,
)

RULES = DEFAULTS
FORM_REASONS = [r for r in POINTS if r.startswith("form_") or r == "honeypot"]
AGENTS = [
    "",
    "curl/8.5.0",
    "python-requests/2.32",
    "python-httpx/0.27",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0 Safari/537.36",
    "Mozilla/5.0 (Unknown; Linux x86_64) PhantomJS/2.1.1 Safari/538.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
]

signals = st.fixed_dictionaries(
    {
        "form_reasons": st.lists(st.sampled_from(FORM_REASONS), unique=True),
        "user_agent": st.sampled_from(AGENTS),
        "accept_language": st.booleans(),
        "fetch_metadata": st.booleans(),
        "webdriver": st.booleans(),
    }
)
rules = st.tuples(st.integers(1, 300), st.integers(1, 300)).map(
    lambda t: replace(RULES, risk_challenge_at=min(t), risk_quarantine_at=max(t))
)


def _vote(s: dict, r: dict):
    return score_vote(
        s["form_reasons"],
        r,
        user_agent=s["user_agent"],
        accept_language=s["accept_language"],
        fetch_metadata=s["fetch_metadata"],
        webdriver=s["webdriver"],
    )


@given(signals, rules)
def test_the_reasons_always_explain_the_score(s, r):
    risk = _vote(s, r)
    assert risk.score == sum(points for _, points in risk.reasons)
    assert all(points > 0 for _, points in risk.reasons)
    assert len(set(risk.names)) == len(risk.names)
    assert risk.band == band_of(risk.score, r)


@given(signals, rules, st.data())
def test_a_bad_signal_never_lowers_the_band(s, r, data):
    before = _vote(s, r)
    worse = dict(s)
    change = data.draw(
        st.sampled_from(["form", "webdriver", "no_language", "no_fetch", "agent"]), label="change"
    )
    if change == "form":
        worse["form_reasons"] = [*s["form_reasons"], data.draw(st.sampled_from(FORM_REASONS))]
    elif change == "webdriver":
        worse["webdriver"] = True
    elif change == "no_language":
        worse["accept_language"] = False
    elif change == "no_fetch":
        worse["fetch_metadata"] = False
    else:
        # From a plain browser's agent to any other: never a better score.
        if not s["user_agent"].endswith("Firefox/128.0"):
            return
        worse["user_agent"] = data.draw(st.sampled_from(AGENTS))
    after = _vote(worse, r)
    assert after.score >= before.score
    assert BANDS.index(after.band) >= BANDS.index(before.band)


@given(st.lists(st.sampled_from(list(POINTS)), unique=True), st.sampled_from(list(POINTS)))
def test_score_is_monotone_in_every_reason(reasons, extra):
    before = score(reasons, RULES)
    after = score([*reasons, extra], RULES)
    assert after.score >= before.score
    assert BANDS.index(after.band) >= BANDS.index(before.band)


def test_the_default_bands():
    browser = {
        "user_agent": AGENTS[-1],
        "accept_language": True,
        "fetch_metadata": True,
        "webdriver": False,
    }
    assert score_vote([], RULES, **browser).band == LOW
    # What a person can cause is a challenge, never quarantine, on its own.
    for reason in ("form_too_fast", "form_other_category"):
        assert score_vote([reason], RULES, **browser).band == MIDDLE, reason
    # A tab left open for hours: counted, unless something else comes with it.
    assert score_vote(["form_expired"], RULES, **browser).band == LOW
    assert score_vote(["form_expired", "form_too_fast"], RULES, **browser).band == MIDDLE
    # What only a script does is quarantine on its own.
    for reason in ("honeypot", "form_invalid", "form_other_voter", "form_missing"):
        assert score_vote([reason], RULES, **browser).band == HIGH, reason
    # A browser driven by automation says so: the score rises.
    driven = score_vote([], RULES, **{**browser, "webdriver": True})
    assert driven.score > score_vote([], RULES, **browser).score
    assert ("webdriver", POINTS["webdriver"]) in driven.reasons
    # An HTTP library with a good token is counted; sent too fast, challenged.
    script = {"user_agent": "curl/8.5.0", "accept_language": False, "fetch_metadata": False}
    assert score_vote([], RULES, **script).band == LOW
    assert score_vote(["form_too_fast"], RULES, **script).band == MIDDLE


def test_agent_traces():
    assert agent_reasons(AGENTS[4], accept_language=True, fetch_metadata=True, webdriver=False) == [
        "agent_headless"
    ]
    assert agent_reasons("curl/8.5.0", accept_language=True, fetch_metadata=False, webdriver=False)
    assert agent_reasons("", accept_language=True, fetch_metadata=True, webdriver=False) == [
        "agent_missing"
    ]
    # A browser's agent without the Fetch Metadata every current browser sends.
    assert agent_reasons(
        AGENTS[-1], accept_language=True, fetch_metadata=False, webdriver=False
    ) == ["no_fetch_metadata"]


def test_a_network_past_its_limit_asks_a_challenge_of_a_sign_in():
    browser = {"user_agent": AGENTS[-1], "accept_language": True, "fetch_metadata": True}
    assert score_signin(RULES, network_over_limit=False, **browser).band == LOW
    assert score_signin(RULES, network_over_limit=True, **browser).band == MIDDLE
