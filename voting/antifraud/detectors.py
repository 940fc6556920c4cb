"""Offline detectors over the ledger. Each states its rule in its docstring and reads its
thresholds from the edition's `rules.antifraud` (voting/antifraud/config.py).

A detector only proposes: `scan` turns its findings into fraud flags and moves the votes
they name from 'counted' to 'quarantined'. It never touches a vote the committee already
released or voided, and it never deletes anything. Scans are idempotent: a finding has a
stable identity, so scanning again adds new votes to the same flag.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import asyncpg
import orjson

from ..i18n import format_percent, gettext
from . import scan_marks
from .config import FraudRules
from .declarations import spare_declared
from .minimise import agent_summary, networks_of_kept
from .risk import agent_kind

Vote = tuple[str, str]  # (voter_id, category)


def _digest(text: str | None) -> str:
    # A stable identity across processes (Python's hash() is salted per process).
    return hashlib.sha256((text or "").encode()).hexdigest()[:16]


@dataclass
class Finding:
    detector: str
    finding: str
    category: str | None
    nomination: str | None
    evidence: dict[str, Any]
    votes: list[Vote] = field(default_factory=list)


# -- the ledger as the detectors read it --------------------------------------------------


@dataclass(frozen=True)
class VoteRow:
    voter: str
    category: str
    nomination: str
    at: float  # epoch seconds
    nets: tuple[str, ...]  # every width (signals.networks_of)
    agent: str
    domain: str
    form_ms: int  # -1 when unknown


@dataclass
class Ledger:
    """One edition's votes and verifications, read once per scan for every detector."""

    votes: list[VoteRow]
    verified: dict[str, tuple[float, tuple[str, ...]]]  # voter -> (instant, click networks)
    by_category: dict[str, list[VoteRow]] = field(default_factory=dict)
    cats_of: Counter[str] = field(default_factory=Counter)  # voter -> categories voted

    def __post_init__(self) -> None:
        by_category: dict[str, list[VoteRow]] = defaultdict(list)
        for v in self.votes:
            by_category[v.category].append(v)
            self.cats_of[v.voter] += 1
        self.by_category = dict(by_category)


async def load(conn: asyncpg.Connection, edition_id: int) -> Ledger:
    # The kept prefix gives every width (minimise.py); a row stored before minimisation
    # (0020) that the purge has not minimised yet still has its address and full agent,
    # read the same way: the address's networks, the agent's summary.
    votes = [
        VoteRow(
            r["voter_id"],
            r["category"],
            r["nomination"],
            r["at"],
            networks_of_kept(r["ip"]),
            agent_summary(r["agent"]),
            r["email_domain"] or "",
            r["form_age_ms"] if r["form_age_ms"] is not None else -1,
        )
        for r in await conn.fetch(
            "SELECT voter_id, category, nomination, extract(epoch FROM cast_at)::float8 AS at,"
            " coalesce(ip_prefix, ip) AS ip, coalesce(agent, user_agent) AS agent,"
            " email_domain, form_age_ms FROM votes"
            " WHERE edition_id = $1 AND verdict <> 'voided' ORDER BY cast_at",
            edition_id,
        )
    ]
    verified = {
        r["voter_id"]: (r["at"], networks_of_kept(r["ip"]))
        for r in await conn.fetch(
            "SELECT voter_id, extract(epoch FROM verified_at)::float8 AS at,"
            " coalesce(ip_prefix, ip) AS ip FROM voters WHERE edition_id = $1",
            edition_id,
        )
    }
    return Ledger(votes, verified)


def surprise(observed: float, expected: float, *, pseudo: float = 1.0) -> float:
    """How unlikely `observed` is when `expected` was due: the Poisson log-likelihood
    ratio, 0 at or below the expectation and growing smoothly with the excess. A
    pseudo-count (one) keeps small expectations from making small counts look huge: the
    right caution for a test that accuses. A test that spares (a wave set aside) takes
    none, or it would demand more evidence to spare than to accuse."""
    expected += pseudo
    if expected <= 0:
        return math.inf if observed > 0 else 0.0
    if observed <= expected:
        return 0.0
    return observed * math.log(observed / expected) - (observed - expected)


# In the baseline a nomination's votes are weighed against (its category's other votes),
# a nomination weighs at most this many times the category's median nomination (its
# votes scaled down to that): an attacked nomination with thousands of votes from a
# farm's networks would otherwise dilute every honest network's share of the category,
# and a crowd behind a carrier's NAT, voting like its category, would look concentrated
# on each popular nomination (found by `voting fraud simulate --scale 3`, where a farm's
# 1,818 votes in one category put a carrier's share there at 2% instead of 7%). It caps
# an honest, popular nomination too: the share becomes that of a typical nomination's
# voters, which is what an honest network's votes follow.
BASELINE_CAP = 4.0
# ... but never below this share of the category's votes: the median counts nominations
# with a vote or two, and an attacker who gives each empty nomination one vote from its
# own network would otherwise pull the cap down until its network filled the baseline
# (a review found it: 11 such votes hid a farm of 400). With the floor a network's
# share of the baseline is at most twice its pooled share.
BASELINE_FLOOR = 0.5


def _capped_at(sizes: Iterable[int], cap: float, floor: float) -> float:
    """The smallest cap at least `cap` under which the capped sizes sum to `floor`."""
    ordered = sorted(sizes)
    if sum(min(size, cap) for size in ordered) >= floor:
        return cap
    below = 0.0  # the sizes under the cap being tried, summed
    for i, size in enumerate(ordered):
        # A cap c between the previous size and this one sums to below + c * (rest).
        rest = len(ordered) - i
        c = (floor - below) / rest
        if c <= size:
            return max(cap, c)
        below += size
    return float(ordered[-1]) if ordered else cap


class _Baseline:
    """A key's share of a category's votes other than a nomination's: the share every
    other vote of the category expects. With no nomination above the cap this is the
    plain pooled share."""

    def __init__(self, rows: list[VoteRow], key: Callable[[VoteRow], Iterable[str]]) -> None:
        sizes = Counter(row.nomination for row in rows)
        cap = 0.0
        if sizes:
            cap = _capped_at(
                sizes.values(),
                BASELINE_CAP * statistics.median(sizes.values()),
                BASELINE_FLOOR * len(rows),
            )
        self.scale = {n: min(1.0, cap / size) for n, size in sizes.items()}
        self.counts: dict[str, float] = defaultdict(float)
        for row in rows:
            weight = self.scale[row.nomination]
            for k in key(row):
                self.counts[k] += weight
        self.total = sum(size * self.scale[n] for n, size in sizes.items())

    def share(self, k: str, nomination: str, *, votes: int, with_key: int) -> float:
        """k's share once `votes` votes of `nomination` (`with_key` of them with k) are
        left out."""
        weight = self.scale[nomination]
        rest = self.total - weight * votes
        if rest <= 1e-9:
            return 0.0
        return max(0.0, self.counts[k] - weight * with_key) / rest


def _excess(
    rows: list[VoteRow], key: Callable[[VoteRow], Iterable[str]], t: _Excess
) -> Iterable[tuple[str, str, list[VoteRow], float, float]]:
    """(nomination, key, its rows, observed, expected) where a nomination's votes with a key
    stand out from the rest of its category with that key: expected is the nomination's
    votes times the key's share among the category's other votes (`_Baseline`)."""
    baseline = _Baseline(rows, key)
    by_nomination: dict[str, list[VoteRow]] = defaultdict(list)
    for row in rows:
        by_nomination[row.nomination].append(row)
    for nomination, own in by_nomination.items():
        groups: dict[str, list[VoteRow]] = defaultdict(list)
        for row in own:
            for k in key(row):
                groups[k].append(row)
        for k, members in groups.items():
            observed = len(members)
            if observed < t.min_votes:
                continue
            share = baseline.share(k, nomination, votes=len(own), with_key=observed)
            expected = len(own) * share
            if surprise(observed, expected) >= t.surprise and observed >= t.ratio * (expected + 1):
                yield nomination, k, members, observed, expected


def _institution(members: list[VoteRow], t: FraudRules) -> str | None:
    """The custom (organisational) domain most of a group shares, if any: staff voting
    from their office is mobilisation, which is allowed and shown to the committee.
    People use browsers: a group most of whose agents are HTTP libraries or headless
    browsers is a farm on a domain of its own, not an institution (found over HTTP by
    tests/loadtests/test_fraud_http.py, which the simulated farm's rhythm had hidden)."""
    scripted = sum(1 for m in members if agent_kind(m.agent))
    if 2 * scripted >= len(members):
        return None
    domains = Counter(m.domain for m in members)
    domain, n = domains.most_common(1)[0]
    exempt = set(t.domain_exempt)
    if domain and domain not in exempt and n >= t.institution_share * len(members):
        return domain
    return None


def _finding(
    detector: str,
    key: str,
    category: str | None,
    nomination: str | None,
    evidence: dict[str, Any],
    members: Iterable[VoteRow],
) -> Finding:
    votes = sorted({(m.voter, m.category) for m in members})
    return Finding(detector, key, category, nomination, evidence, votes)


@dataclass(frozen=True)
class _Excess:
    """The three thresholds of one excess detector (concentration, burst)."""

    min_votes: int
    surprise: float
    ratio: float


# -- detectors ----------------------------------------------------------------------------


async def concentration(ledger: Ledger, t: FraudRules) -> list[Finding]:
    """A nomination's votes from one network, at any width, far above the category's.

    Rule: for every width (IPv4 /24 and /16, IPv6 /64, /56, /48 and /32), the votes a
    nomination has from one network are compared with what the category's other votes
    from that network make expected (the nomination's votes times the network's share of
    the others, `_Baseline`: no nomination weighs more there than BASELINE_CAP times the
    median one). The excess is scored smoothly (`surprise`, a Poisson log-likelihood
    ratio): flagged when it reaches `concentration_surprise`, with at least
    `concentration_min_votes` votes and `concentration_ratio` times the expectation. A
    mobile carrier or a campus votes like its category; a farm rotating addresses inside
    its /48 or across the /24s of its /16 does not. Not flagged: a group of which
    `institution_share` share one custom email domain (staff behind their office NAT:
    mobilisation, shown to the committee beside the category).
    """
    r = _Excess(t.concentration_min_votes, t.concentration_surprise, t.concentration_ratio)
    findings = []
    for category, rows in ledger.by_category.items():
        for nomination, net, members, observed, expected in _excess(rows, lambda v: v.nets, r):
            if _institution(members, t):
                continue
            findings.append(
                _finding(
                    "concentration",
                    f"{nomination}|{net}",
                    category,
                    nomination,
                    {"network": net, "votes": observed, "expected": round(expected, 2)},
                    members,
                )
            )
    return findings


WINDOWS_S = (60, 600, 3600, 21600)


async def burst(ledger: Ledger, t: FraudRules) -> list[Finding]:
    """Bursts on one nomination from a few networks, in any window.

    Rule: for windows of 1 minute, 10 minutes, 1 hour and 6 hours and every network width,
    the votes a nomination has from one network in one window are compared with its votes
    in that window times the network's share of the rest of the category's votes
    (`_Baseline`: no nomination weighs more than BASELINE_CAP times the median one).
    Scored like `concentration` (`burst_surprise`, `burst_min_votes`, `burst_ratio`);
    institutions are left alone the same way. A real surge (a minister's post) comes from
    the category's usual networks; a scripted one from a few.
    """
    r = _Excess(t.burst_min_votes, t.burst_surprise, t.burst_ratio)
    findings = []
    for category, rows in ledger.by_category.items():
        baseline = _Baseline(rows, lambda v: v.nets)
        for window in WINDOWS_S:
            cells: dict[tuple[str, int], list[VoteRow]] = defaultdict(list)
            for row in rows:
                cells[(row.nomination, int(row.at // window))].append(row)
            for (nomination, b), members in cells.items():
                if len(members) < r.min_votes:
                    continue
                by_net: dict[str, list[VoteRow]] = defaultdict(list)
                for m in members:
                    for net in m.nets:
                        by_net[net].append(m)
                for net, group in by_net.items():
                    observed = len(group)
                    if observed < r.min_votes:
                        continue
                    share = baseline.share(net, nomination, votes=len(members), with_key=observed)
                    expected = len(members) * share
                    if surprise(observed, expected) < r.surprise:
                        continue
                    if observed < r.ratio * (expected + 1) or _institution(group, t):
                        continue
                    findings.append(
                        _finding(
                            "burst",
                            f"{nomination}|{window}|{b}|{net}",
                            category,
                            nomination,
                            {
                                "window_s": window,
                                "window_start": b * window,
                                "window_votes": len(members),
                                "network": net,
                                "network_votes": observed,
                                "expected": round(expected, 2),
                            },
                            group,
                        )
                    )
    return findings


async def cluster(ledger: Ledger, t: FraudRules) -> list[Finding]:
    """A machine's rhythm: one agent sending votes for one nomination at regular beats.

    Rule: the votes for one nomination with one user agent (from anywhere, and from each
    network at each width) arriving with gaps whose coefficient of variation (standard
    deviation over mean) is at most `cluster_max_cv` and `cluster_z` chance strays below
    1, when there are at least `cluster_min_votes`. People arrive at random (a
    coefficient near 1, whatever their pace); a loop with a sleep does not. Scale-free:
    slower beats do not escape it.
    """
    groups: dict[tuple[str, str, str], list[VoteRow]] = defaultdict(list)
    for v in ledger.votes:
        groups[(v.nomination, v.agent, "*")].append(v)
        for net in v.nets:
            groups[(v.nomination, v.agent, net)].append(v)
    findings = []
    for (nomination, agent, net), members in groups.items():
        if len(members) < t.cluster_min_votes:
            continue
        gaps = [b.at - a.at for a, b in itertools.pairwise(members)]
        mean = statistics.fmean(gaps)
        if mean <= 0:
            cv = 0.0
        else:
            cv = statistics.pstdev(gaps) / mean
        # A few random gaps can look regular by chance: the CV of n random gaps strays from
        # 1 by about 1/sqrt(n), so the regularity must also be that many strays away.
        if cv > t.cluster_max_cv or (1 - cv) * math.sqrt(len(gaps)) < t.cluster_z:
            continue
        findings.append(
            _finding(
                "cluster",
                f"{nomination}|{net}|{_digest(agent)}",
                members[0].category,
                nomination,
                {
                    "network": net,
                    "user_agent": agent[:200],
                    "votes": len(members),
                    "mean_gap_s": round(mean, 2),
                    "gap_cv": round(cv, 3),
                },
                members,
            )
        )
    return findings


async def bulk_verification(ledger: Ledger, t: FraudRules) -> list[Finding]:
    """Accounts verified in bulk from one network that later vote together from elsewhere.

    Rule: for windows of 1 minute, 10 minutes, 1 hour and 6 hours and every network width,
    the verifications from one network in one window are compared with that network's
    own rate over the rest of the edition (scored by `surprise`, at least
    `bulk_verify_surprise` and `bulk_verify_min` accounts). Of such a batch, the votes
    for a nomination that the batch favours far beyond its category
    (`bulk_verify_vote_surprise`), cast from another /16 or /32 than the one the batch
    was verified from, are flagged: sleepers minted on a farm and cast through proxies.
    Staff verifying after an internal mail vote from the office they verified in, and
    voters behind a mail scanner (that opens links from its own networks) vote for
    whatever they like.
    """
    per_net: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for voter, (at, nets) in ledger.verified.items():
        for net in nets:
            per_net[net].append((at, voter))
    if not ledger.verified:
        return []
    times = [at for at, _ in ledger.verified.values()]
    span = max(max(times) - min(times), 86400.0)
    batches: dict[frozenset[str], tuple[str, int, int]] = {}
    for net, entries in per_net.items():
        if len(entries) < t.bulk_verify_min:
            continue
        for window in WINDOWS_S:
            cells: dict[int, list[str]] = defaultdict(list)
            for at, voter in entries:
                cells[int(at // window)].append(voter)
            for b, voters in cells.items():
                observed = len(voters)
                if observed < t.bulk_verify_min:
                    continue
                expected = (len(entries) - observed) * window / span
                if surprise(observed, expected) >= t.bulk_verify_surprise:
                    batches.setdefault(frozenset(voters), (net, window, b))
    votes_of: dict[str, list[VoteRow]] = defaultdict(list)
    for v in ledger.votes:
        votes_of[v.voter].append(v)
    findings = []
    seen: set[tuple[str, str]] = set()
    for voters, (net, window, b) in batches.items():
        rows = [v for voter in voters for v in votes_of.get(voter, ())]
        for category, in_cat in _group(rows, lambda v: v.category).items():
            cat_rows = ledger.by_category[category]
            cat_counts = Counter(v.nomination for v in cat_rows)
            others = len(cat_rows) - len(in_cat)
            for nomination, members in _group(in_cat, lambda v: v.nomination).items():
                share = (cat_counts[nomination] - len(members)) / others if others else 0.0
                expected = len(in_cat) * share
                if surprise(len(members), expected) < t.bulk_verify_vote_surprise:
                    continue
                moved = [
                    m
                    for m in members
                    if m.nets
                    and ledger.verified[m.voter][1]
                    and m.nets[-1] != ledger.verified[m.voter][1][-1]
                ]
                moved = [m for m in moved if (m.voter, m.category) not in seen]
                if len(moved) < t.bulk_verify_min:
                    continue
                seen.update((m.voter, m.category) for m in moved)
                findings.append(
                    _finding(
                        "bulk_verification",
                        f"{net}|{window}|{b}|{nomination}",
                        category,
                        nomination,
                        {
                            "network": net,
                            "window_s": window,
                            "window_start": b * window,
                            "verified": len(voters),
                            "votes_from_elsewhere": len(moved),
                        },
                        moved,
                    )
                )
    return findings


def _group(rows: Iterable[VoteRow], key: Callable[[VoteRow], str]) -> dict[str, list[VoteRow]]:
    out: dict[str, list[VoteRow]] = defaultdict(list)
    for row in rows:
        out[key(row)].append(row)
    return out


DRIP_WINDOW_S = 10800


# Fewer single-purpose votes than this cannot show a night: spread evenly over the day,
# some 6-hour block of 10 votes is empty two times in three.
DRIP_NIGHT_MIN_VOTES = 24


def _hours(rows: Iterable[VoteRow]) -> Counter[int]:
    """Votes per hour of the day (UTC)."""
    return Counter(int(v.at // 3600) % 24 for v in rows)


# A night must also be unlikely by chance: the quietest 6-hour block of a round-the-clock
# trickle holds, with probability under this (over the day's 24 blocks), as few votes.
DRIP_NIGHT_CHANCE = 0.05


def _binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in logs (n runs to thousands)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    log_term = n * math.log1p(-p)  # P(X = 0)
    ratio = math.log(p) - math.log1p(-p)
    total = 0.0
    for i in range(k + 1):
        total += math.exp(log_term)
        log_term += math.log(n - i) - math.log(i + 1) + ratio
    return min(1.0, total)


def _sleeps(hours: Mapping[int, float], night_share: float) -> bool:
    """Whether votes keep a night: some 6-hour block of the day (UTC) holds at most
    `night_share` of what an even spread over the day puts there, and so few that a
    round-the-clock trickle would hold as few in its quietest block with a chance under
    DRIP_NIGHT_CHANCE. People of one region sleep; a trickle that runs around the clock
    does not."""
    total = sum(hours.values())
    if total <= 0:
        return True
    quietest = min(sum(hours.get((h + k) % 24, 0) for k in range(6)) for h in range(24))
    if quietest > night_share * total / 4:
        return False
    n = round(total)
    return 24 * _binomial_cdf(math.floor(quietest), n, 0.25) < DRIP_NIGHT_CHANCE


def _beyond_usual(own: Counter[int], usual: Counter[int], due: float) -> dict[int, float]:
    """A nomination's single-purpose votes per hour beyond the `due` ones it has as any
    nomination of its category does, spread over the day as the category's other
    single-purpose votes are, but never more in an hour than an even spread puts there
    (a category's busy hours must not carve a night out of a round-the-clock trickle):
    a banner's readers keep their region's night even when the category's own
    single-purpose voters, from everywhere, vote for the project around the clock."""
    total = sum(usual.values())
    if total <= 0:
        return dict(own)
    return {h: max(0.0, own[h] - due * min(usual[h] / total, 1 / 24)) for h in range(24)}


async def drip(ledger: Ledger, t: FraudRules) -> list[Finding]:
    """A steady drip of single-purpose voters for one nomination.

    Rule: a voter is single-purpose when they voted in one category only (how long they
    took does not matter). For each nomination, its single-purpose votes in each 3-hour
    window are compared with its votes in that window times the category's usual
    single-purpose share (the median over its other nominations). A nominator's post
    brings a wave, so windows far fuller than the nomination's single-purpose votes spread
    evenly over the period would make them (`drip_wave`), and their neighbours, are set
    aside; if what remains still scores `drip_surprise` (with `drip_min_votes` votes),
    the single-purpose votes outside the waves, in every window where they exceed twice
    the expectation, are flagged, unless the nomination's single-purpose votes (waves
    included, at least DRIP_NIGHT_MIN_VOTES of them), beyond those the category's usual
    share makes due, spread over the day as the category's other single-purpose votes
    are but no hour more than evenly (`_beyond_usual`), keep a night (`_sleeps`: some
    6-hour block of the day holds at most `drip_night_share` of an even spread, and so
    few that a round-the-clock trickle would have a chance under DRIP_NIGHT_CHANCE of
    it). Bought
    voters do the one thing they are paid for, day and night; supporters come in waves, or steadily
    over their region's waking hours (a project's website banner). Known limits: a buyer
    who packs the votes into waves (a burst every few hours makes every window a wave
    or a wave's neighbour), whose voters also vote elsewhere, or who
    paces them to one region's waking hours, is not seen here (the committee's audit
    shows the profile); supporters spread over every time zone who vote in one category
    only, steadily, are held; people who vote in one category only for an attacked
    nomination, in the attack's windows, are held with it.
    """
    findings = []
    if not ledger.votes:
        return findings
    span = max(ledger.votes[-1].at - ledger.votes[0].at, DRIP_WINDOW_S)
    for category, rows in ledger.by_category.items():
        nominations = _group(rows, lambda v: v.nomination)
        single_hours = _hours(v for v in rows if ledger.cats_of[v.voter] == 1)
        shares = {
            n: sum(1 for v in own if ledger.cats_of[v.voter] == 1) / len(own)
            for n, own in nominations.items()
        }
        for nomination, own in nominations.items():
            single_own = [v for v in own if ledger.cats_of[v.voter] == 1]
            if len(single_own) < t.drip_min_votes or len(nominations) < 2:
                continue
            # The category's usual share: the median of its other nominations' shares, so
            # that an attack on one nomination does not raise the bar for another.
            share = statistics.median(s for n, s in shares.items() if n != nomination)
            windows: dict[int, list[VoteRow]] = defaultdict(list)
            all_in: Counter[int] = Counter()
            for v in own:
                all_in[int(v.at // DRIP_WINDOW_S)] += 1
            for v in single_own:
                windows[int(v.at // DRIP_WINDOW_S)].append(v)
            # A wave: a window far fuller than the nomination's single-purpose votes spread
            # evenly over the voting period would make it.
            even = len(single_own) * DRIP_WINDOW_S / span
            waves = {
                w for w, vs in windows.items() if surprise(len(vs), even, pseudo=0) >= t.drip_wave
            }
            waves |= {w + d for w in waves for d in (-1, 1)}  # its rise and its tail
            rest = [w for w in windows if w not in waves]
            observed = sum(len(windows[w]) for w in rest)
            expected = sum(all_in[w] for w in rest) * share
            if observed < t.drip_min_votes or surprise(observed, expected) < t.drip_surprise:
                continue
            members = [
                v for w in rest if len(windows[w]) > 2 * all_in[w] * share for v in windows[w]
            ]
            # The night is looked for in all its single-purpose votes, waves included (a
            # daily wave set aside would leave a "night" of its own), and only where there
            # are enough of them to tell a night from chance.
            if len(single_own) >= DRIP_NIGHT_MIN_VOTES:
                own_hours = _hours(single_own)
                beyond = _beyond_usual(own_hours, single_hours - own_hours, len(own) * share)
                if _sleeps(beyond, t.drip_night_share):
                    continue
            findings.append(
                _finding(
                    "drip",
                    nomination,
                    category,
                    nomination,
                    {
                        "single_purpose_votes": len(single_own),
                        "votes": len(own),
                        "outside_waves": observed,
                        "expected_outside_waves": round(expected, 2),
                        "category_share": round(share, 3),
                    },
                    members,
                )
            )
    return findings


async def catchall(ledger: Ledger, t: FraudRules) -> list[Finding]:
    """A custom domain minting mailboxes that vote for one nomination from everywhere.

    Rule: for a custom email domain (not one of the large providers in `domain_exempt`),
    the votes it gives a nomination are compared with its votes in the category times
    the nomination's share of the category (`catchall_surprise`, `catchall_min_votes`),
    and the score is weighed by how little its voters' networks share: distinct /16 (or
    /32) networks per vote. Staff of an organisation voting from their office share a
    network and are left alone (mobilisation); a catch-all domain behind proxies shares
    nothing. Known limit: staff of one organisation each voting from home look the same.
    """
    exempt = set(t.domain_exempt)
    findings = []
    for category, rows in ledger.by_category.items():
        nom_counts = Counter(v.nomination for v in rows)
        for domain, in_domain in _group(rows, lambda v: v.domain).items():
            if not domain or domain in exempt or len(in_domain) < t.catchall_min_votes:
                continue
            for nomination, members in _group(in_domain, lambda v: v.nomination).items():
                if len(members) < t.catchall_min_votes:
                    continue
                others = len(rows) - len(in_domain)
                share = (nom_counts[nomination] - len(members)) / others if others else 0.0
                expected = len(in_domain) * share
                spread = len({m.nets[-1] for m in members if m.nets}) / len(members)
                score = surprise(len(members), expected) * spread
                if score < t.catchall_surprise:
                    continue
                findings.append(
                    _finding(
                        "catchall",
                        f"{domain}|{nomination}",
                        category,
                        nomination,
                        {
                            "domain": domain,
                            "votes": len(members),
                            "expected": round(expected, 2),
                            "network_spread": round(spread, 3),
                        },
                        members,
                    )
                )
    return findings


async def form_timing(ledger: Ledger, t: FraudRules) -> list[Finding]:
    """Ballot forms sent back faster than the category's people send theirs.

    Rule: in each category, take the `form_fast_quantile` quantile of how long voters
    kept their form (from the signed token), per nomination, and its median over them.
    A nomination whose votes fall below it far more often than that share
    (`form_surprise`, `form_min_votes`) has those fast votes flagged: a script that
    fetches form tokens without the page and waits just past the
    minimum beats the door, not the category's own people.
    """
    findings = []
    q = float(t.form_fast_quantile)
    for category, rows in ledger.by_category.items():
        nominations = _group(rows, lambda v: v.nomination)
        quantiles = {}
        for n, own in nominations.items():
            ages = sorted(v.form_ms for v in own if v.form_ms >= 0)
            if len(ages) >= 10:
                quantiles[n] = ages[int(q * len(ages))]
        if len(quantiles) < 3:
            continue
        # The median over the nominations of each one's own quantile: robust to an attack
        # on another nomination of the category.
        cut = statistics.median(quantiles.values())
        for nomination, own in nominations.items():
            fast = [v for v in own if 0 <= v.form_ms < cut]
            expected = q * sum(1 for v in own if v.form_ms >= 0)
            if len(fast) < t.form_min_votes or surprise(len(fast), expected) < t.form_surprise:
                continue
            findings.append(
                _finding(
                    "form_timing",
                    nomination,
                    category,
                    nomination,
                    {"fast_votes": len(fast), "expected": round(expected, 2), "quantile_ms": cut},
                    fast,
                )
            )
    return findings


Detector = Callable[[Ledger, FraudRules], Awaitable[list[Finding]]]
DETECTORS: dict[str, Detector] = {
    "cluster": cluster,
    "concentration": concentration,
    "burst": burst,
    "bulk_verification": bulk_verification,
    "drip": drip,
    "catchall": catchall,
    "form_timing": form_timing,
}


assert set(DETECTORS) == scan_marks.PER_CATEGORY | scan_marks.EDITION_WIDE


@dataclass
class ScanReport:
    flags: int = 0
    quarantined: int = 0
    per_detector: dict[str, int] = field(default_factory=dict)
    # The categories the per-category detectors read again, of those with votes (all of
    # them in a full scan); `edition_wide`: whether drip and bulk_verification ran.
    categories: list[str] = field(default_factory=list)
    of_categories: int = 0
    edition_wide: bool = False
    full: bool = False


async def scan(
    conn: asyncpg.Connection,
    edition_id: int,
    slug: str,
    t: FraudRules,
    *,
    address_key: bytes,
    full: bool = False,
) -> ScanReport:
    """Run the detectors and quarantine what they find, under an advisory lock per
    edition so that the workers of a multi-process server do not scan at once.
    `address_key` is the key votes' addresses are hashed under (minimise.address_key):
    a declared network narrower than a vote's kept prefix is matched by it.

    Incremental unless `full`: a category whose votes are as the last scan left them is
    not read again by the detectors that look at one category at a time, and a ledger
    where nothing moved is not read at all (voting/antifraud/scan_marks.py). The flags
    are the same as a full scan's: what is skipped would propose exactly the findings
    already recorded."""
    report = ScanReport(full=full)
    async with conn.transaction():
        got = await conn.fetchval("SELECT pg_try_advisory_xact_lock(7717, $1)", edition_id)
        if not got:
            return report
        # The marks first, the ledger after: a vote that lands in between is read now and
        # moves the mark again, so the next scan looks again (never the other way round).
        marks = await scan_marks.fingerprints(conn, edition_id, t)
        dirty, edition_wide = scan_marks.plan(
            marks, await scan_marks.stored(conn, edition_id), full=full
        )
        report.categories = sorted(dirty)
        report.of_categories = sum(
            1
            for c, m in marks.items()
            if c not in (scan_marks.EDITION, scan_marks.VERIFIED) and m != scan_marks.EMPTY
        )
        report.edition_wide = edition_wide
        if dirty or edition_wide:
            ledger = await load(conn, edition_id)
            # Incremental, a finding recorded as it stands is not written again; a full
            # scan writes every one (as the scan always did: the reference of the tests).
            recorded = {} if full else await _recorded(conn, edition_id)
            part = ledger
            if not set(ledger.by_category) <= dirty:
                # The per-category detectors read the moved categories only.
                part = Ledger([v for v in ledger.votes if v.category in dirty], ledger.verified)
            for name, detector in DETECTORS.items():
                if name in scan_marks.EDITION_WIDE:
                    if not edition_wide:
                        continue
                    findings = await detector(ledger, t)
                else:
                    findings = await detector(part, t)
                # declarations.py; a declared office address is matched by its hash.
                findings = await spare_declared(conn, edition_id, findings, address_key=address_key)
                moved = 0
                for finding in findings:
                    if not _already_recorded(recorded, finding):
                        moved += await _record(conn, edition_id, slug, finding)
                report.per_detector[name] = moved
                report.flags += len(findings)
                report.quarantined += moved
            # Last, after every detector of this scan has recorded what it found.
            findings = await same_voter(conn, edition_id)
            moved = 0
            for finding in findings:
                if not _already_recorded(recorded, finding):
                    moved += await _record(conn, edition_id, slug, finding)
            report.per_detector[SAME_VOTER] = moved
            report.flags += len(findings)
            report.quarantined += moved
        await scan_marks.save(conn, edition_id, marks)
    return report


SAME_VOTER = "same_voter"
# The detectors whose finding is about who voted (a network, a domain, a machine, a
# batch of confirmations, a bought trickle), not about one ballot: `form_timing` names
# every fast form of a nomination, its own people's quick clicks too, and the rules at
# the vote (a replayed or too-fast form) judge that one request, so neither follows a
# voter into their other categories.
IDENTITY_DETECTORS = frozenset(
    {"cluster", "concentration", "burst", "bulk_verification", "drip", "catchall"}
)


async def same_voter(conn: asyncpg.Connection, edition_id: int) -> list[Finding]:
    """The other votes of a voter whose vote a detector held for who voted
    (`IDENTITY_DETECTORS`), or whose vote the committee voided.

    A detector sees an identity at work (a farm's network, a catch-all domain, a
    machine's rhythm) through the vote that identity cast for the nomination it backs;
    the votes the same identity cast in other categories, to look like a person, are no
    more a person's than that one (issue 17: the adaptive attacker's cover votes).

    One hop only: a vote held by this rule does not hold anything in turn (the voter's
    every vote is already named). A vote the committee released, or that a declaration
    explained (never held), holds nothing. One flag per held nomination, naming the
    voters' votes elsewhere, so the committee reviews them beside the votes that led to
    them; releasing the first does not release these (no verdict returns by itself)."""
    rows = await conn.fetch(
        "SELECT DISTINCT src.category AS src_category, src.nomination AS src_nomination,"
        " v.voter_id, v.category"
        " FROM votes src JOIN votes v ON v.edition_id = src.edition_id"
        "  AND v.voter_id = src.voter_id AND v.category <> src.category"
        " WHERE src.edition_id = $1 AND (src.verdict = 'voided' OR (src.verdict = 'quarantined'"
        "  AND (src.verdict_reasons && $2::text[] OR EXISTS ("
        # A vote held already (at the vote, or by form_timing) when an identity rule named
        # it keeps its first reasons (quarantine_flag_votes moves counted votes only): the
        # flag's list of votes says the rule named it all the same.
        "   SELECT 1 FROM fraud_flag_votes fv JOIN fraud_flags f ON f.id = fv.flag_id"
        "   WHERE fv.edition_id = src.edition_id AND fv.voter_id = src.voter_id"
        "   AND fv.category = src.category AND f.detector = ANY($2::text[])))))"
        " ORDER BY 1, 2, 3, 4",
        edition_id,
        sorted(IDENTITY_DETECTORS),
    )
    by_source: dict[tuple[str, str], set[Vote]] = defaultdict(set)
    for r in rows:
        by_source[(r["src_category"], r["src_nomination"])].add((r["voter_id"], r["category"]))
    findings = []
    for (category, nomination), votes in sorted(by_source.items()):
        findings.append(
            Finding(
                SAME_VOTER,
                f"{category}:{nomination}",
                category,
                nomination,
                {
                    "voters": len({v for v, _ in votes}),
                    "votes": len(votes),
                    "categories": len({c for _, c in votes}),
                },
                sorted(votes),
            )
        )
    return findings


async def _recorded(
    conn: asyncpg.Connection, edition_id: int
) -> dict[tuple[str, str], tuple[Any, frozenset[Vote]]]:
    """The edition's flags as recorded: (detector, finding) -> (evidence, its votes)."""
    return {
        (r["detector"], r["finding"]): (
            r["evidence"],
            frozenset(zip(r["voters"] or (), r["categories"] or (), strict=True)),
        )
        for r in await conn.fetch(
            "SELECT f.detector, f.finding, f.evidence,"
            " array_agg(fv.voter_id) FILTER (WHERE fv.voter_id IS NOT NULL) AS voters,"
            " array_agg(fv.category) FILTER (WHERE fv.voter_id IS NOT NULL) AS categories"
            " FROM fraud_flags f LEFT JOIN fraud_flag_votes fv ON fv.flag_id = f.id"
            " WHERE f.edition_id = $1 GROUP BY f.id",
            edition_id,
        )
    }


def _already_recorded(
    recorded: dict[tuple[str, str], tuple[Any, frozenset[Vote]]], f: Finding
) -> bool:
    """Whether recording `f` would change nothing: its flag holds the same evidence and
    already names every vote it names. (Such votes were quarantined when first named,
    unless the committee decided otherwise since, and no verdict returns to 'counted',
    so `quarantine_flag_votes` would move none.)"""
    known = recorded.get((f.detector, f.finding))
    if known is None:
        return False
    evidence, votes = known
    return evidence == orjson.loads(orjson.dumps(f.evidence)) and set(f.votes) <= votes


async def _record(conn: asyncpg.Connection, edition_id: int, slug: str, f: Finding) -> int:
    flag_id = await conn.fetchval(
        "INSERT INTO fraud_flags (edition_id, detector, finding, category, nomination, evidence)"
        " VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (edition_id, detector, finding) DO UPDATE SET evidence = EXCLUDED.evidence"
        " RETURNING id",
        edition_id,
        f.detector,
        f.finding,
        f.category,
        f.nomination,
        f.evidence,
    )
    voters = [v for v, _ in f.votes]
    categories = [c for _, c in f.votes]
    await conn.execute(
        "INSERT INTO fraud_flag_votes (flag_id, edition_id, voter_id, category)"
        " SELECT $1, $2, v, c FROM unnest($3::text[], $4::text[]) AS u(v, c)"
        " ON CONFLICT DO NOTHING",
        flag_id,
        edition_id,
        voters,
        categories,
    )
    # The verdicts and the audit row in one call (0011_least_privilege.sql): the
    # application may not UPDATE votes itself.
    return int(
        await conn.fetchval("SELECT quarantine_flag_votes($1, $2, $3)", flag_id, voters, categories)
    )


# -- the committee's audit ----------------------------------------------------------------

# How long after confirming their address a nomination's voters voted: the edges of the
# profile shown to the committee (seconds).
AUDIT_DELAYS_S = (60, 600, 3600)


async def audit_category(
    conn: asyncpg.Connection, edition_id: int, category: str, lang: str | None = None
) -> dict[str, dict[str, Any]]:
    """Per nomination of a category, the figures a committee reads against bought votes
    that no signal catches at the door, beside the category's, and a plain summary.

    The figures: the share of its voters who voted in this category only; how long after
    confirming their address they voted (median, and shares under a minute, ten minutes,
    an hour); how many networks (/16 or /32) and email domains its votes come from per
    vote, and the share of the largest. The category's figure is the median over its
    nominations. Paid voters who are real people leave no trace a detector can act on;
    a project whose voters all came for it alone, voted at once and share little with the
    category's is worth a look, never proof."""
    rows = await conn.fetch(
        "SELECT v.voter_id, v.nomination, extract(epoch FROM v.cast_at)::float8 AS at,"
        " coalesce(v.ip_prefix, v.ip) AS ip,"
        " v.email_domain, extract(epoch FROM r.verified_at)::float8 AS verified,"
        " (SELECT count(*) FROM votes w WHERE w.edition_id = v.edition_id"
        "   AND w.voter_id = v.voter_id AND w.verdict <> 'voided') AS cats"
        " FROM votes v LEFT JOIN voters r ON r.edition_id = v.edition_id"
        "  AND r.voter_id = v.voter_id"
        " WHERE v.edition_id = $1 AND v.category = $2 AND v.verdict <> 'voided'",
        edition_id,
        category,
    )
    by_nomination: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for r in rows:
        by_nomination[r["nomination"]].append(r)
    figures = {n: _audit_figures(own) for n, own in by_nomination.items()}
    if not figures:
        return {}
    keys = next(iter(figures.values())).keys()
    baseline = {k: statistics.median(f[k] for f in figures.values()) for k in keys}
    return {
        n: {"figures": f, "category": baseline, "summary": _audit_summary(f, baseline, lang)}
        for n, f in figures.items()
    }


def _audit_figures(rows: list[asyncpg.Record]) -> dict[str, float]:
    n = len(rows)
    delays = sorted(r["at"] - r["verified"] for r in rows if r["verified"] is not None) or [0.0]
    nets = Counter((networks_of_kept(r["ip"]) or ("",))[-1] for r in rows)
    domains = Counter(r["email_domain"] or "" for r in rows)
    out: dict[str, float] = {
        "votes": n,
        "single_category_share": round(sum(1 for r in rows if r["cats"] == 1) / n, 3),
        "median_delay_s": round(statistics.median(delays), 1),
    }
    for edge in AUDIT_DELAYS_S:
        out[f"voted_within_{edge}s_share"] = round(
            sum(1 for d in delays if d < edge) / len(delays), 3
        )
    out["networks_per_vote"] = round(len(nets) / n, 3)
    out["top_network_share"] = round(nets.most_common(1)[0][1] / n, 3)
    out["domains_per_vote"] = round(len(domains) / n, 3)
    out["top_domain_share"] = round(domains.most_common(1)[0][1] / n, 3)
    return out


def _stands_out(value: float, usual: float) -> bool:
    return value >= 2 * usual + 0.05 or (usual > 0 and value <= usual / 2 - 0.05)


def _audit_summary(f: dict[str, float], base: dict[str, float], lang: str | None) -> str:
    """A few plain sentences, each only where the nomination stands out."""
    pct = partial(format_percent, lang=lang)
    notes = []
    if _stands_out(f["single_category_share"], base["single_category_share"]):
        notes.append(
            gettext(
                "{share} of its voters voted in this category only (usual in the category:"
                " {usual}).",
                lang,
            ).format(
                share=pct(f["single_category_share"]), usual=pct(base["single_category_share"])
            )
        )
    if _stands_out(f["voted_within_600s_share"], base["voted_within_600s_share"]):
        notes.append(
            gettext(
                "{share} of its voters voted within ten minutes of confirming their address"
                " (usual: {usual}).",
                lang,
            ).format(
                share=pct(f["voted_within_600s_share"]), usual=pct(base["voted_within_600s_share"])
            )
        )
    if _stands_out(f["top_network_share"], base["top_network_share"]) or _stands_out(
        f["networks_per_vote"], base["networks_per_vote"]
    ):
        notes.append(
            gettext("Its largest network gave {share} of its votes (usual: {usual}).", lang).format(
                share=pct(f["top_network_share"]), usual=pct(base["top_network_share"])
            )
        )
    if _stands_out(f["top_domain_share"], base["top_domain_share"]):
        notes.append(
            gettext(
                "Its largest email domain gave {share} of its votes (usual: {usual}).", lang
            ).format(share=pct(f["top_domain_share"]), usual=pct(base["top_domain_share"]))
        )
    if not notes:
        return gettext("Nothing in its voters' profile stands out from the category.", lang)
    return " ".join(notes)
