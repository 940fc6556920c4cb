"""One risk score for a vote or a sign-in, from every signal the request carries.

Instead of a wall of thresholds each refusing on its own, every signal adds points and
the sum falls in one of three bands, whose edges are edition rules
(`[rules.antifraud]`, voting/antifraud/config.py, locked when voting opens):

- low (below `risk_challenge_at`): the vote is counted, the sign-in link mailed;
- middle: a step-up challenge (proof of work, voting/antifraud/challenge.py) must be
  solved before the vote is accepted or the link mailed;
- high (at or above `risk_quarantine_at`): the vote is accepted into quarantine with
  its reasons, which the prize committee reads. A sign-in has no quarantine: the
  challenge is asked of a network past its sign-in limit (the middle band) and of a
  high score.

The function is pure: it sees the request's signals, never I/O. Every point it gives is
kept with its reason, so the score is always the sum of its reasons' points and a
quarantined vote says why. A signal only ever adds points, so adding one never lowers
the band (tests/antifraud/test_risk.py holds both properties).

What the request tells (the network concentration is the offline detectors' matter):

- the form token (antifraud/signals.py check_form): missing, forged, expired, served to
  another voter or for another category, sent faster than a person reads; a replayed
  token is found in the vote's Redis script, which quarantines it outright;
- the honeypot field, which only scripts fill;
- automation traces: an agent that names a headless browser (HeadlessChrome, PhantomJS,
  ...), an HTTP library's agent (curl, python-requests, ...) or none at all,
  `navigator.webdriver` as reported by the ballot page's script, no `Accept-Language`
  (every browser sends it), a browser's agent without the Fetch Metadata headers every
  current browser sends;
- for a sign-in, a network past its hourly sign-in limit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..security import Tokens
from .config import FraudRules
from .signals import FormCheck, check_form

LOW, MIDDLE, HIGH = "low", "middle", "high"
BANDS = (LOW, MIDDLE, HIGH)

# reason -> points. A token that cannot be the voter's own (forged, another voter's), no
# token at all (the ballot was never opened: no page, no GET /api/ballot) or a filled
# honeypot is high on its own; what a person can cause (a slow page, a quick click, a
# stale tab, another category's page) is middle at most, so that person is asked to
# solve a challenge rather than held.
POINTS: dict[str, int] = {
    "honeypot": 100,
    "form_invalid": 100,
    "form_other_voter": 100,
    "form_missing": 80,
    "form_too_fast": 40,
    "form_other_category": 40,
    "form_expired": 30,
    "webdriver": 60,
    "agent_headless": 60,
    "agent_script": 25,
    "agent_missing": 25,
    "no_accept_language": 10,
    "no_fetch_metadata": 10,
    "network_signin_limit": 40,
}

_HEADLESS = re.compile(
    r"headless|phantomjs|slimerjs|puppeteer|playwright|selenium|webdriver|electron", re.I
)
_SCRIPT = re.compile(
    r"^(curl|wget|python-requests|python-urllib|python-httpx|aiohttp|httpie|go-http-client"
    r"|java/|okhttp|libwww-perl|node-fetch|axios|undici|ruby|php|scrapy|postmanruntime)",
    re.I,
)


@dataclass(frozen=True)
class Risk:
    score: int
    reasons: tuple[tuple[str, int], ...]  # (reason, points), in the order found
    band: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.reasons)


def band_of(score: int, rules: FraudRules) -> str:
    if score >= rules.risk_quarantine_at:
        return HIGH
    if score >= rules.risk_challenge_at:
        return MIDDLE
    return LOW


def agent_kind(user_agent: str) -> str | None:
    """What an agent string says of automation: agent_missing, agent_headless (a
    headless browser names itself), agent_script (an HTTP library), or None (a browser,
    or a bot that claims to be one)."""
    agent = user_agent.strip()
    if not agent:
        return "agent_missing"
    if _HEADLESS.search(agent):
        return "agent_headless"
    if _SCRIPT.match(agent):
        return "agent_script"
    return None


def agent_reasons(
    user_agent: str, *, accept_language: bool, fetch_metadata: bool, webdriver: bool
) -> list[str]:
    """What the request's headers and the page's script say about the agent."""
    found: list[str] = []
    kind = agent_kind(user_agent)
    if kind:
        found.append(kind)
    agent = user_agent.strip()
    if webdriver:
        found.append("webdriver")
    if not accept_language:
        found.append("no_accept_language")
    if agent.startswith("Mozilla/") and not fetch_metadata:
        # A browser's agent without the Sec-Fetch-* headers all current browsers send.
        found.append("no_fetch_metadata")
    return found


def score(reasons: Iterable[str], rules: FraudRules) -> Risk:
    """The score of a set of reasons: each reason counted once, unknown ones at 0 points
    (kept, so nothing is hidden)."""
    seen: dict[str, int] = {}
    for name in reasons:
        if name not in seen:
            seen[name] = POINTS.get(name, 0)
    total = sum(seen.values())
    return Risk(total, tuple(seen.items()), band_of(total, rules))


def score_vote(
    form_reasons: Iterable[str],
    rules: FraudRules,
    *,
    user_agent: str,
    accept_language: bool,
    fetch_metadata: bool,
    webdriver: bool = False,
) -> Risk:
    agent = agent_reasons(
        user_agent,
        accept_language=accept_language,
        fetch_metadata=fetch_metadata,
        webdriver=webdriver,
    )
    return score([*form_reasons, *agent], rules)


def assess_vote(
    tokens: Tokens,
    token: str | None,
    voter_id: str,
    rules: FraudRules,
    *,
    now: float,
    places: tuple[str, ...],
    user_agent: str,
    accept_language: bool,
    fetch_metadata: bool,
    webdriver: bool = False,
    honeypot: str | None = None,
) -> tuple[FormCheck, Risk]:
    """The form check and the risk score of one vote: THE rule, called by the vote's
    front, its handler and the fraud simulator. `places` are what the form token may name
    (the vote's category, for a ballot, or its nomination, for a project's page)."""
    form = check_form(
        tokens,
        token,
        voter_id,
        now=now,
        min_seconds=float(rules.min_form_seconds),
        max_age_s=rules.form_max_age_s,
        honeypot=honeypot,
        places=places,
    )
    risk = score_vote(
        form.reasons,
        rules,
        user_agent=user_agent,
        accept_language=accept_language,
        fetch_metadata=fetch_metadata,
        webdriver=webdriver,
    )
    return form, risk


def may_step_up(status: str, bucket: str) -> bool:
    """A vote refused by an inline rate limit may solve a challenge and be cast once more
    under the stepped-up limits (ballot.Limits.stepped_up, by the edition's
    `limit_step_up`); past those, the refusal stands."""
    return status == "limited" and bucket == "rl"


def quarantine_reasons(risk: Risk) -> tuple[str, ...]:
    """What the vote script is given to hold a vote with: the reasons of a high-band vote
    only; a low-band vote, or a middle-band one whose challenge was solved, counts."""
    return risk.names if risk.band == HIGH else ()


def score_signin(
    rules: FraudRules,
    *,
    user_agent: str,
    accept_language: bool,
    fetch_metadata: bool,
    network_over_limit: bool,
    honeypot: bool = False,
) -> Risk:
    found = agent_reasons(
        user_agent, accept_language=accept_language, fetch_metadata=fetch_metadata, webdriver=False
    )
    if honeypot:
        found.append("honeypot")
    if network_over_limit:
        found.append("network_signin_limit")
    return score(found, rules)


def header_signals(get: Any) -> dict[str, Any]:
    """The header signals from a `get(name) -> str | None` over lower-case header names."""
    return {
        "user_agent": get("user-agent") or "",
        "accept_language": bool(get("accept-language")),
        "fetch_metadata": bool(get("sec-fetch-site") or get("sec-fetch-mode")),
    }
