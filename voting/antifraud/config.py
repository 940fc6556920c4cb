"""The anti-fraud thresholds of an edition: `[rules.antifraud]` in the edition file.

Every limit and detector threshold lives here, as a field of `FraudRules` with a default
that the simulator (`voting fraud simulate`) was tuned on; an edition file overrides any
of them. Like the other rules they are locked once voting opens.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class FraudRules:
    """The thresholds in force for an edition: its overrides on the defaults below.

    Rates are "N per P seconds" pairs with a burst."""

    # Inline rate limits (GCRA) on voters starting a ballot, refused at the door with 429.
    ip_limit: int = 40  # new voters ...
    ip_period_s: int = 600  # ... per this many seconds, per network address
    ip_burst: int = 40
    net_limit: int = 150  # per /24 (IPv4) or /48 (IPv6) network
    net_period_s: int = 600
    net_burst: int = 150
    domain_limit: int = 300  # per email domain, except the exempt large providers
    domain_period_s: int = 600
    domain_burst: int = 300
    domain_exempt: tuple[str, ...] = (
        "gmail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "yahoo.com",
        "icloud.com",
        "qq.com",
        "163.com",
        "126.com",
        "yandex.ru",
        "mail.ru",
        "gmx.net",
        "gmx.de",
        "web.de",
        "proton.me",
        "protonmail.com",
        "aol.com",
        "naver.com",
        "rediffmail.com",
    )
    # Signed form tokens: a vote sent sooner than this after its form was served was not
    # cast by a person reading the list.
    min_form_seconds: float = 2.0
    form_max_age_s: int = 7200
    # Verification mails.
    verify_per_address: int = 3  # per hour
    verify_per_network: int = 30  # per hour, per /24 or /48
    # Past verify_per_network a sign-in must solve a challenge; past this many times
    # verify_per_network an hour (challenged sign-ins) the network is refused (429).
    verify_network_ceiling: int = 10
    # A vote refused by an inline rate limit (per address, network or domain: a crowd
    # behind one NAT, one office's domain) may solve a challenge and be cast under limits
    # this many times wider, counted apart (ballot.Limits.stepped_up).
    limit_step_up: int = 10
    # The risk score (antifraud/risk.py): below risk_challenge_at a vote counts; from it
    # a proof-of-work challenge must be solved first; from risk_quarantine_at the vote
    # is quarantined with its reasons.
    risk_challenge_at: int = 40
    risk_quarantine_at: int = 80
    # The challenge (antifraud/challenge.py, ALTCHA): the solver tries on average half of
    # this many SHA-256 hashes; it must be solved within challenge_expires_s.
    challenge_max_number: int = 200000
    challenge_expires_s: int = 600
    # Offline detectors (voting/antifraud/detectors.py states each rule). No time edges:
    # excesses over the category are scored smoothly by `surprise` (a Poisson
    # log-likelihood ratio) and the score must reach the level given here.
    institution_share: float = 0.6  # a group this much on one custom domain is an institution
    concentration_min_votes: int = 10
    concentration_surprise: float = 20.0
    concentration_ratio: float = 4.0  # and this many times the expectation (plus one)
    burst_min_votes: int = 10
    burst_surprise: float = 20.0
    burst_ratio: float = 4.0
    cluster_min_votes: int = 8
    cluster_max_cv: float = 0.35  # gaps' standard deviation over their mean; people are near 1
    cluster_z: float = 2.5
    bulk_verify_min: int = 10
    bulk_verify_surprise: float = 20.0
    bulk_verify_vote_surprise: float = 15.0
    drip_min_votes: int = 8
    drip_surprise: float = 10.0
    drip_wave: float = 10.0  # a 3-hour window this far above an even spread is a wave
    # Votes that keep a night (a 6-hour block of the day with at most this share of an
    # even spread, and few enough that a round-the-clock trickle has them by chance
    # under detectors.DRIP_NIGHT_CHANCE) are a region's people, not a bought trickle.
    # 0.2 held a banner's readers whose last votes spill past midnight (`fraud simulate
    # --organic 3000`, seed 1: 36% hit); the chance test keeps a small trickle (25 to 45
    # votes) from passing 0.3 by luck, which it would four times as often as 0.2.
    drip_night_share: float = 0.3
    catchall_min_votes: int = 10
    catchall_surprise: float = 10.0
    form_fast_quantile: float = 0.1
    form_min_votes: int = 10
    form_surprise: float = 10.0

    @classmethod
    def parse(cls, raw: Mapping[str, Any], fail: Callable[[str, str], Exception]) -> FraudRules:
        """An edition's `[rules.antifraud]` table, validated (unknown keys and bad types
        refused), on the defaults."""
        overrides: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in _DEFAULTS:
                raise fail(
                    f"rules.antifraud.{key}", f"unknown threshold; known: {', '.join(_DEFAULTS)}"
                )
            default = _DEFAULTS[key]
            if isinstance(default, tuple):
                if not isinstance(value, list | tuple) or not all(
                    isinstance(v, str) for v in value
                ):
                    raise fail(f"rules.antifraud.{key}", "must be a list of texts")
                overrides[key] = tuple(v.strip().lower() for v in value)
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise fail(f"rules.antifraud.{key}", f"must be a number, got {value!r}")
            if isinstance(default, int) and not isinstance(value, int):
                raise fail(f"rules.antifraud.{key}", f"must be a whole number, got {value!r}")
            if key in _POSITIVE and value <= 0:
                raise fail(f"rules.antifraud.{key}", f"must be above zero, got {value}")
            if value < 0:
                raise fail(f"rules.antifraud.{key}", f"must not be negative, got {value}")
            # A whole number where a fraction is the default stays as written: the
            # detectors compare it the same, and the scan marks hash it as written.
            overrides[key] = value
        return cls(**overrides)

    def overrides(self) -> dict[str, Any]:
        """What the edition changed, as stored in `editions.rules` (`antifraud = {}` for an
        edition that changes nothing, so a later default applies to it until it opens)."""
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in asdict(self).items()
            if value != _DEFAULTS[key]
        }

    def to_dict(self) -> dict[str, Any]:
        """Every threshold in force, as JSON (the scan marks hash this)."""
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in asdict(self).items()
        }


# The defaults by name, in the order of the fields (the order the error messages list).
_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(FraudRules)}
# Thresholds that must be above zero; a form may be sent at once when min_form_seconds is 0.
_POSITIVE = frozenset(
    k for k, v in _DEFAULTS.items() if isinstance(v, int | float) and k != "min_form_seconds"
)
# The defaults as rules in force (for what is read before any edition is: the sign-in
# limiter, the declarations' webmail list, the proof-of-work cost tool).
DEFAULTS = FraudRules()
