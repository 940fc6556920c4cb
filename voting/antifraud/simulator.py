"""`voting fraud simulate`: a voting period of organic voters mixed with labelled attacks,
run through the engine, to measure what the fraud layer keeps out and whom it hurts.

The traffic goes through the same code as real votes, minus HTTP: address parsing and
normalization, the throwaway-domain check and the verification mail limits, the signed
form tokens, the cast script in Redis (rate limits, duplicates, form nonces), the flusher
into PostgreSQL, and the offline detectors. Time is simulated: the simulation edition's
script takes the instant from the caller (`sync_window(simulated=True)`), so three days
of voting replay in seconds. It runs in an edition and a key space of its own, dropped
at the end.

The attacker models are ours, and so are the organic voters; the figures say how the
engine fares against these models, not against every attacker. Organic voters arrive
over three days with a final-day surge and a final-hour spike, come from thousands of
networks (a few shared by many, like universities), use varied agents and domains, take
their time, and vote in one to several categories with a popularity skew; ministries
mobilise staff who vote from one network over a working day. Attacks:

- farm: a script farm on three /24 networks, fresh catch-all addresses, one agent;
- throwaway: a burst of voters with throwaway-domain addresses;
- aliases: one mailbox written many ways (dots, +tags, case) voting again and again;
- forms: replayed (another voter's) and too-fast form tokens;
- drip: a slow drip of bought votes for one nomination from many networks.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from .. import edition_store
from ..ballot import Ballot, Limits, micros
from ..clock import FrozenClock
from ..contest import parse_edition
from ..emails import InvalidEmail
from ..ledger import Flusher
from ..security import Tokens
from ..voters import Voter, identify, record_verification
from .config import thresholds
from .detectors import scan
from .signals import check_form, network_of, new_form_token
from .verification import MailLimits, VerificationLimiter, VerificationRefused, check_domain

ATTACKS = ("farm", "throwaway", "aliases", "forms", "drip")
DAYS = 3
START = datetime(2030, 3, 12, 8, 0, tzinfo=UTC)
END = START + timedelta(days=DAYS)

AGENTS = [
    f"Mozilla/5.0 ({os}) AppleWebKit/537.36 (KHTML, like Gecko) {browser}"
    for os in (
        "Windows NT 10.0; Win64; x64",
        "Macintosh; Intel Mac OS X 13_4",
        "X11; Linux x86_64",
        "Linux; Android 13; SM-A525F",
        "iPhone; CPU iPhone OS 17_1 like Mac OS X",
        "Linux; Android 12; TECNO KF6",
        "Windows NT 6.1; Win64; x64",
        "iPad; CPU OS 16_6",
    )
    for browser in (
        "Chrome/119.0 Safari/537.36",
        "Chrome/118.0 Mobile Safari/537.36",
        "Firefox/120.0",
        "Version/17.1 Mobile/15E148 Safari/604.1",
        "Edg/119.0",
        "SamsungBrowser/23.0",
        "OPR/104.0",
    )
]
WEBMAIL = [
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "hotmail.com",
    "icloud.com",
    "qq.com",
    "163.com",
    "yandex.ru",
    "mail.ru",
    "gmx.net",
    "proton.me",
    "naver.com",
]
THROWAWAY = [
    "mailinator.com",
    "guerrillamail.com",
    "10minutemail.com",
    "yopmail.com",
    "trashmail.com",
    "sharklasers.com",
]


@dataclass
class Attempt:
    """One vote someone tries to cast, and what became of it."""

    label: str  # "organic" or an attack name
    at: datetime
    voter: int  # index into the simulation's voter table
    category: str
    nomination: str
    form_delay_s: float  # how long after the form was served the vote is sent
    form: str = "own"  # own | other | none
    outcome: str = ""  # refused_verification | refused | duplicate | accepted
    receipt: str | None = None


@dataclass
class SimVoter:
    email: str
    ip: str
    agent: str
    verify_at: datetime
    label: str
    voter_id: str = ""
    domain: str = ""
    verified: bool | None = None


@dataclass
class Report:
    seed: int
    attempts: dict[str, int] = field(default_factory=dict)
    kept_out: dict[str, int] = field(default_factory=dict)
    organic_hit: int = 0
    organic: int = 0
    detail: dict[str, Counter[str]] = field(default_factory=dict)

    @property
    def attack_total(self) -> int:
        return sum(self.attempts.get(a, 0) for a in ATTACKS)

    @property
    def attack_kept_out(self) -> int:
        return sum(self.kept_out.get(a, 0) for a in ATTACKS)

    def kept_out_share(self, label: str | None = None) -> float:
        if label is None:
            return self.attack_kept_out / self.attack_total if self.attack_total else 1.0
        total = self.attempts.get(label, 0)
        return self.kept_out.get(label, 0) / total if total else 1.0

    @property
    def organic_hit_share(self) -> float:
        return self.organic_hit / self.organic if self.organic else 0.0

    def lines(self) -> list[str]:
        out = [f"fraud simulation, seed {self.seed}"]
        out.append(f"{'traffic':<10} {'votes':>7} {'kept out':>9}  outcomes")
        for label in ("organic", *ATTACKS):
            total = self.attempts.get(label, 0)
            share = self.organic_hit / total if label == "organic" else self.kept_out_share(label)
            what = ", ".join(f"{k} {v}" for k, v in sorted(self.detail.get(label, {}).items()))
            name = "organic" if label == "organic" else label
            column = "hit" if label == "organic" else "out"
            out.append(f"{name:<10} {total:>7} {100 * share:>7.1f}% {column}  {what}")
        out.append(
            f"attack votes kept out: {100 * self.kept_out_share():.1f}%, "
            f"organic votes hit: {100 * self.organic_hit_share:.1f}%"
        )
        return out


class Traffic:
    """Builds the voters and the vote attempts of one simulated voting period."""

    def __init__(self, seed: int, nominations: dict[str, list[str]], organic: int) -> None:
        self.rng = random.Random(seed)
        self.nominations = nominations
        self.categories = sorted(nominations)
        self.voters: list[SimVoter] = []
        self.attempts: list[Attempt] = []
        self.organic = organic
        # Popularity: a few nominations draw most votes (Zipf-like weights).
        self.weights = {
            c: [1 / (i + 1) ** 1.2 for i in range(len(n))] for c, n in nominations.items()
        }
        self.target_category = self.categories[0]
        self.target = nominations[self.target_category][-1]  # an unpopular one: the buyer's

    def _instant(self) -> datetime:
        """Arrivals: steady over three days, a heavier last day, a spike in the last hour."""
        roll = self.rng.random()
        if roll < 0.08:
            offset = DAYS * 86400 - self.rng.uniform(0, 3600)
        elif roll < 0.40:
            offset = (DAYS - 1) * 86400 + self.rng.uniform(0, 86400 - 3600)
        else:
            offset = self.rng.uniform(0, DAYS * 86400 - 3600)
        return START + timedelta(seconds=offset)

    def _voter(self, email: str, ip: str, agent: str, at: datetime, label: str) -> int:
        self.voters.append(SimVoter(email, ip, agent, at, label))
        return len(self.voters) - 1

    def _random_ip(self) -> str:
        r = self.rng
        return f"{r.randrange(1, 224)}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"

    def _pick(self, category: str) -> str:
        return self.rng.choices(self.nominations[category], self.weights[category])[0]

    def build(self) -> Traffic:
        self._organic()
        self._ministries()
        self._farm()
        self._throwaway()
        self._aliases()
        self._forms()
        self._drip()
        self.attempts.sort(key=lambda a: a.at)
        return self

    def _organic(self) -> None:
        rng = self.rng
        campuses = [f"130.{rng.randrange(256)}.{rng.randrange(256)}" for _ in range(25)]
        for n in range(self.organic):
            if rng.random() < 0.15:  # universities, offices and cafés share a network
                ip = f"{rng.choice(campuses)}.{rng.randrange(1, 255)}"
            else:
                ip = self._random_ip()
            domain = rng.choice(WEBMAIL) if rng.random() < 0.7 else f"org{rng.randrange(400)}.org"
            email = f"person{n}.{rng.randrange(10**6)}@{domain}"
            verify_at = self._instant()
            v = self._voter(email, ip, rng.choice(AGENTS), verify_at, "organic")
            at = verify_at + timedelta(seconds=rng.lognormvariate(4.8, 1.0))  # median ~2 min
            count = (
                1
                if rng.random() < 0.2
                else min(len(self.categories), 1 + int(rng.expovariate(1 / 3)))
            )
            for category in rng.sample(self.categories, count):
                delay = max(2.5, rng.lognormvariate(3.0, 0.8))  # reading the list: ~20 s
                at += timedelta(seconds=delay + rng.uniform(1, 20))
                self.attempts.append(
                    Attempt("organic", at, v, category, self._pick(category), delay)
                )

    def _ministries(self) -> None:
        """Organised mobilisation, allowed: staff vote from the office over a working day."""
        rng = self.rng
        for m in range(3):
            network = f"196.{40 + m}.{rng.randrange(256)}"
            category = self.categories[1 + m % (len(self.categories) - 1)]
            nomination = self.nominations[category][m % len(self.nominations[category])]
            day = START + timedelta(days=m % DAYS, hours=8)
            for s in range(40):
                verify_at = day + timedelta(seconds=rng.uniform(0, 8 * 3600))
                v = self._voter(
                    f"staff{s}@ministry{m}.gov.example",
                    f"{network}.{rng.randrange(2, 250)}",
                    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Edg/119.0",
                    verify_at,
                    "organic",
                )
                at = verify_at + timedelta(seconds=rng.uniform(60, 900))
                self.attempts.append(
                    Attempt("organic", at, v, category, nomination, rng.uniform(4, 60))
                )

    def _farm(self) -> None:
        rng = self.rng
        networks = [f"45.{rng.randrange(256)}.{rng.randrange(256)}" for _ in range(3)]
        begin = START + timedelta(days=1, hours=20)
        for i in range(900):
            at = begin + timedelta(seconds=i * 4 + rng.uniform(0, 2))
            v = self._voter(
                f"v{i}x{rng.randrange(10**5)}@farm-mail.example",
                f"{rng.choice(networks)}.{rng.randrange(2, 250)}",
                "python-requests/2.31.0",
                at,
                "farm",
            )
            fast = rng.random() < 0.5
            self.attempts.append(
                Attempt(
                    "farm",
                    at + timedelta(seconds=3),
                    v,
                    self.target_category,
                    self.target,
                    rng.uniform(0.2, 1.5) if fast else 3.2,
                )
            )

    def _throwaway(self) -> None:
        rng = self.rng
        begin = END - timedelta(hours=5)
        for i in range(300):
            at = begin + timedelta(seconds=i * 20)
            ip = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.9"
            v = self._voter(
                f"fan{i}@{rng.choice(THROWAWAY)}", ip, rng.choice(AGENTS), at, "throwaway"
            )
            category = rng.choice(self.categories)
            self.attempts.append(
                Attempt(
                    "throwaway", at + timedelta(seconds=40), v, category, self._pick(category), 10
                )
            )

    def _aliases(self) -> None:
        rng = self.rng
        base = "jane.mobiliser"
        begin = START + timedelta(days=2, hours=2)
        for i in range(150):
            local = base.replace(".", "." if i % 2 else "") + (f"+v{i}" if i % 3 else "")
            email = (local.upper() if i % 5 == 0 else local) + "@gmail.com"
            at = begin + timedelta(minutes=10 * i)
            v = self._voter(
                email, f"81.{i % 200}.{rng.randrange(256)}.7", rng.choice(AGENTS), at, "aliases"
            )
            self.attempts.append(
                Attempt(
                    "aliases", at + timedelta(seconds=90), v, self.target_category, self.target, 12
                )
            )

    def _forms(self) -> None:
        rng = self.rng
        for i in range(250):
            at = self._instant()
            ip = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.3"
            v = self._voter(
                f"formbot{i}.{rng.randrange(10**6)}@{rng.choice(WEBMAIL)}",
                ip,
                rng.choice(AGENTS),
                at,
                "forms",
            )
            category = rng.choice(self.categories)
            replay = i % 2 == 0
            self.attempts.append(
                Attempt(
                    "forms",
                    at + timedelta(seconds=rng.uniform(60, 600)),
                    v,
                    category,
                    self._pick(category),
                    30 if replay else rng.uniform(0.1, 1.2),
                    form="other" if replay else "own",
                )
            )

    def _drip(self) -> None:
        rng = self.rng
        for i in range(350):
            at = START + timedelta(seconds=rng.uniform(0, DAYS * 86400 - 3600))
            ip = self._random_ip()
            v = self._voter(
                f"buyer{i}.{rng.randrange(10**6)}@{rng.choice(WEBMAIL)}",
                ip,
                rng.choice(AGENTS),
                at,
                "drip",
            )
            self.attempts.append(
                Attempt(
                    "drip",
                    at + timedelta(seconds=rng.uniform(5, 25)),
                    v,
                    self.target_category,
                    self.target,
                    rng.uniform(3, 8),
                )
            )


def _edition_data(slug: str, categories: int) -> dict[str, Any]:
    def wall(instant: datetime) -> str:
        from ..contest import GENEVA

        return instant.astimezone(GENEVA).strftime("%Y-%m-%d %H:%M")

    return {
        "slug": slug,
        "name": "Fraud simulation",
        "rehearsal": True,
        "categories": [
            {"code": f"S{i + 1}", "name": f"Simulated category {i + 1}", "facilitator": "ITU"}
            for i in range(categories)
        ],
        "phases": {
            "nominations": {
                "opens": wall(START - timedelta(days=40)),
                "closes": wall(START - timedelta(days=20)),
            },
            "review": {"opens": wall(START - timedelta(days=20)), "closes": wall(START)},
            "voting": {"opens": wall(START), "closes": wall(END)},
            "expert_review": {"opens": wall(END), "closes": wall(END + timedelta(days=10))},
            "results": {
                "opens": wall(END + timedelta(days=10)),
                "closes": wall(END + timedelta(days=40)),
            },
        },
    }


async def simulate(
    pool: asyncpg.Pool,
    redis: aioredis.Redis,
    *,
    secret: str,
    seed: int = 1,
    organic: int = 2000,
    categories: int = 6,
    keep: bool = False,
) -> Report:
    slug = f"sim-{seed}-{uuid.uuid4().hex[:6]}"
    prefix = f"sim{uuid.uuid4().hex[:8]}"
    ballot = Ballot(redis, prefix)
    async with pool.acquire() as conn:
        edition = parse_edition(_edition_data(slug, categories), now=START)
        edition_id = await edition_store.save_edition(
            conn,
            edition,
            now=START - timedelta(days=30),
            actor="fraud-simulator",
            make_current=False,
        )
        from ..seed import seed_nominations

        await seed_nominations(
            conn,
            categories * 6,
            edition_slug=slug,
            seed=seed,
            now=START - timedelta(days=25),
            progress=False,
        )
        rows = await conn.fetch(
            "SELECT public_id, category FROM nominations WHERE edition_id=$1 ORDER BY public_id",
            edition_id,
        )
    nominations: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        nominations[r["category"]].append(r["public_id"])
    await ballot.sync_window(edition, simulated=True)
    t = thresholds(edition.rules)
    limits = Limits.from_thresholds(t)
    mail_limits = MailLimits(int(t["verify_per_address"]), int(t["verify_per_network"]))
    limiter = VerificationLimiter(redis, prefix)
    clock = FrozenClock(START)
    tokens = Tokens(secret, clock)
    traffic = Traffic(seed, dict(nominations), organic).build()
    try:
        engine = _Engine(
            pool, ballot, limiter, tokens, clock, edition_id, slug, limits, mail_limits, t, secret
        )
        await _run(engine, traffic)
        flusher = Flusher(redis, pool, prefix, consumer="simulator")
        while (await flusher.flush_once(reclaim=False)).read:
            pass
        async with pool.acquire() as conn:
            await scan(conn, edition_id, slug, t)
            verdicts = {
                r["receipt"]: r["verdict"]
                for r in await conn.fetch(
                    "SELECT receipt, verdict FROM votes WHERE edition_id=$1", edition_id
                )
            }
        return _report(seed, traffic, verdicts)
    finally:
        if not keep:
            async with pool.acquire() as conn:
                await conn.execute("SELECT drop_rehearsal_edition($1)", edition_id)
            keys = [k async for k in redis.scan_iter(match=f"{prefix}:*", count=1000)]
            for i in range(0, len(keys), 1000):
                await redis.delete(*keys[i : i + 1000])


@dataclass
class _Engine:
    pool: asyncpg.Pool
    ballot: Ballot
    limiter: VerificationLimiter
    tokens: Tokens
    clock: FrozenClock
    edition_id: int
    slug: str
    limits: Limits
    mail_limits: MailLimits
    thresholds: dict[str, Any]
    secret: str


async def _run(engine: _Engine, traffic: Traffic) -> None:
    """Replay the attempts in time order: verify each voter once, then cast."""
    e = engine
    t = e.thresholds
    registrations = []
    last_token_of: dict[str, str] = {}
    for attempt in traffic.attempts:
        voter = traffic.voters[attempt.voter]
        if voter.verified is None:
            voter.verified = await _verify(voter, e.limiter, e.mail_limits, e.secret)
            if voter.verified:
                registrations.append(voter)
        if not voter.verified:
            attempt.outcome = "refused_verification"
            continue
        served = attempt.at - timedelta(seconds=attempt.form_delay_s)
        e.clock.set(served)
        token = new_form_token(e.tokens, voter.voter_id, attempt.category, now=served.timestamp())
        if attempt.form == "other":
            token = last_token_of.get(attempt.category, token)
        last_token_of[attempt.category] = token
        form = check_form(
            e.tokens,
            token if attempt.form != "none" else None,
            voter.voter_id,
            now=attempt.at.timestamp(),
            min_seconds=float(t["min_form_seconds"]),
            max_age_s=int(t["form_max_age_s"]),
        )
        outcome = await e.ballot.cast(
            e.slug,
            voter.voter_id,
            attempt.category,
            attempt.nomination,
            ip=voter.ip,
            user_agent=voter.agent,
            form_age_ms=form.age_ms,
            domain=voter.domain,
            network=network_of(voter.ip),
            reasons=form.reasons,
            form_nonce=form.nonce,
            limits=e.limits,
            simulated_now=attempt.at,
        )
        attempt.outcome = outcome.status
        attempt.receipt = outcome.receipt if outcome.status == "accepted" else None
    async with e.pool.acquire() as conn:
        for voter in registrations:
            await record_verification(
                conn,
                e.edition_id,
                Voter(voter.voter_id, voter.domain, e.slug),
                ip=voter.ip,
                user_agent=voter.agent,
                verified_at=voter.verify_at,
            )


async def _verify(
    voter: SimVoter, limiter: VerificationLimiter, limits: MailLimits, secret: str
) -> bool:
    try:
        voter.voter_id, address = identify(secret, voter.email)
        voter.domain = address.domain
        check_domain(address)
        await limiter.take(address, network_of(voter.ip), limits, now_us=micros(voter.verify_at))
    except (InvalidEmail, VerificationRefused):
        return False
    return True


def _report(seed: int, traffic: Traffic, verdicts: dict[str, str]) -> Report:
    report = Report(seed)
    for attempt in traffic.attempts:
        label = attempt.label
        verdict = verdicts.get(attempt.receipt or "", "")
        if attempt.outcome == "accepted":
            result = verdict or "lost"
        else:
            result = attempt.outcome
        report.detail.setdefault(label, Counter())[result] += 1
        counted = result in ("counted", "released")
        if label == "organic" and result == "closed":
            # Refused by the deadline, not by the fraud layer: outside this measure.
            continue
        report.attempts[label] = report.attempts.get(label, 0) + 1
        if label == "organic":
            report.organic += 1
            report.organic_hit += 0 if counted else 1
        elif not counted:
            report.kept_out[label] = report.kept_out.get(label, 0) + 1
    return report
