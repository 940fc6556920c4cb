"""Checks when a voter asks for a confirmation link: throwaway domains, mail volume.

Throwaway domains come from the `disposable-email-domains` package (the community list
behind many sign-up forms, updated with each release) rather than a hand-kept list; a
domain is refused when it, or any parent domain, is on it, unless the allowlist has it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import redis.asyncio as aioredis
from disposable_email_domains import allowlist, blocklist

from ..emails import Address
from ..i18n import gettext
from ..security import keyed_digest, subkey
from .config import FraudRules
from .risk import HIGH, Risk, score_signin

# GCRA on one key: returns {1} or {0, retry_after_µs}. ARGV: interval, tolerance, now (µs;
# 0 = Redis TIME), and '1' to only look (nothing charged).
_GCRA = """
local now = tonumber(ARGV[3])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local interval = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
if tat - tau > now then return {0, string.format('%.0f', tat - tau - now)} end
if ARGV[4] == '1' then return {1} end
local new = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', math.floor((new - now) / 1000) + 1000)
return {1}
"""


class VerificationRefused(ValueError):
    def __init__(self, status: int, code: str, message: str, retry_after_s: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s


def is_disposable(domain: str) -> bool:
    labels = domain.lower().strip(".").split(".")
    candidates = {".".join(labels[i:]) for i in range(len(labels) - 1)}
    if candidates & allowlist:
        return False
    return bool(candidates & blocklist)


def check_domain(address: Address) -> None:
    if is_disposable(address.domain):
        raise VerificationRefused(
            422,
            "disposable_domain",
            gettext(
                "Addresses at {domain} are throwaway addresses and cannot be used to vote. "
                "Use an address you keep."
            ).format(domain=address.domain),
        )


@dataclass(frozen=True)
class MailLimits:
    per_address_per_hour: int
    per_network_per_hour: int


# The context the mailbox key is derived under (security.subkey), a key of its own: the
# limits' Redis keys name a mailbox by its keyed hash, which a list of likely addresses
# cannot be matched against without VOTING_SECRET_KEY (an unkeyed hash could). Changing
# it only starts every mailbox's hourly count afresh.
MAILBOX_CONTEXT = "signin-limits/mailbox/v1"


@lru_cache(maxsize=8)
def mailbox_key(secret: str) -> bytes:
    """The key mailboxes are hashed under in the limits' Redis keys."""
    return subkey(secret, MAILBOX_CONTEXT)


class VerificationLimiter:
    """The one rule for how many sign-in mails a mailbox and a network may ask for.

    `kind` keeps separate counts for separate kinds of link under the same rule: the
    voters' confirmation links ("vl") and the staff and nominators' sign-in links ("sl").
    `secret`: the engine's VOTING_SECRET_KEY, which the mailbox key derives from."""

    def __init__(
        self, redis: aioredis.Redis, prefix: str, kind: str = "vl", *, secret: str
    ) -> None:
        self.redis = redis
        self.prefix = f"{prefix}:{kind}"
        self._mailbox_key = mailbox_key(secret)
        self._gcra = redis.register_script(_GCRA)

    async def _take(
        self, key: str, per_hour: int, now_us: int, *, peek: bool = False
    ) -> int | None:
        interval = int(3600 * 1_000_000 / per_hour)
        reply = await self._gcra(
            keys=[key], args=[interval, interval * (per_hour - 1), now_us, "1" if peek else "0"]
        )
        if int(reply[0]) == 1:
            return None
        return max(1, int(int(reply[1]) / 1_000_000) + 1)

    async def take(
        self, address: Address, network: str, limits: MailLimits, *, now_us: int = 0
    ) -> None:
        """Charge one confirmation mail to the mailbox and to its network, or refuse."""
        await self.take_address(address, limits, now_us=now_us)
        if network:
            wait = await self._take(
                f"{self.prefix}:n:{network}", limits.per_network_per_hour, now_us
            )
            if wait is not None:
                raise _network_refused(wait)

    async def network_over(self, network: str, limits: MailLimits, *, now_us: int = 0) -> bool:
        """Charge a sign-in to its network: False while the network is within its hourly
        limit, True once past it (nothing charged then: the caller asks for a challenge,
        and charges the ceiling with `take_ceiling` once it is solved)."""
        if not network:
            return False
        wait = await self._take(f"{self.prefix}:n:{network}", limits.per_network_per_hour, now_us)
        return wait is not None

    async def take_ceiling(
        self, network: str, limits: MailLimits, ceiling: int, *, now_us: int = 0, peek: bool = False
    ) -> None:
        """Charge (or, with `peek`, only check) a challenged sign-in to the network's hard
        ceiling, `ceiling` times its limit an hour; past it, refuse with 429."""
        if not network:
            return
        wait = await self._take(
            f"{self.prefix}:nc:{network}",
            max(1, limits.per_network_per_hour * ceiling),
            now_us,
            peek=peek,
        )
        if wait is not None:
            raise _network_refused(wait)

    async def take_address(self, address: Address, limits: MailLimits, *, now_us: int = 0) -> None:
        """Charge one confirmation mail to the mailbox, or refuse with 429."""
        box = keyed_digest(self._mailbox_key, address.mailbox)
        wait = await self._take(f"{self.prefix}:a:{box}", limits.per_address_per_hour, now_us)
        if wait is not None:
            raise VerificationRefused(
                429,
                "too_many_links",
                gettext(
                    "We already sent several links to this address. Use the last one, or try "
                    "again in {seconds} seconds."
                ).format(seconds=wait),
                wait,
            )


def _network_refused(wait: int) -> VerificationRefused:
    return VerificationRefused(
        429,
        "too_many_links_network",
        gettext(
            "Too many confirmation links were asked for from your network. Try "
            "again in {seconds} seconds."
        ).format(seconds=wait),
        wait,
    )


def mail_limits_of(rules: FraudRules) -> MailLimits:
    return MailLimits(rules.verify_per_address, rules.verify_per_network)


class StepUpRequired(Exception):
    """The sign-in must solve a challenge first. `failed`: one was sent and did not
    verify; `wait_s`: how long until the network is back within its limit."""

    def __init__(self, risk: Risk, *, failed: bool, wait_s: int) -> None:
        super().__init__(risk.names)
        self.risk = risk
        self.failed = failed
        self.wait_s = wait_s


# Asked only when a challenge is needed: None when none was solved (nothing sent), else
# whether the solution verified.
Solver = Callable[[], Awaitable[bool | None]]


async def admit_signin(
    limiter: VerificationLimiter,
    address: Address,
    network: str,
    rules: FraudRules,
    *,
    signals: Mapping[str, Any],
    solve: Solver,
    now_us: int = 0,
) -> Risk:
    """THE sign-in rule, for the pages, the API and the fraud simulator: may a
    confirmation link be mailed to `address`, asked for from `network`?

    Throwaway domains are refused (422). A network past its hourly limit, or a request
    whose risk score is high (a script's traces), must solve a challenge first
    (StepUpRequired): a crowd behind one NAT solves one per person and goes on; a farm
    pays for each. Past the network's hard ceiling (`verify_network_ceiling` times its
    limit) it is refused (429) all the same; the per-mailbox limit is a 429 whatever the
    score. A sign-in has no quarantine and no middle band of its own, so that a headless
    browser's ordinary sign-in still goes through with its agent's points."""
    check_domain(address)
    limits = mail_limits_of(rules)
    over = await limiter.network_over(network, limits, now_us=now_us)
    risk = score_signin(rules, network_over_limit=over, **signals)
    if over or risk.band == HIGH:
        ceiling = rules.verify_network_ceiling
        if over:
            await limiter.take_ceiling(network, limits, ceiling, now_us=now_us, peek=True)
        solved = await solve()
        if not solved:
            raise StepUpRequired(
                risk,
                failed=solved is False,
                wait_s=3600 // max(1, limits.per_network_per_hour),
            )
        if over:
            await limiter.take_ceiling(network, limits, ceiling, now_us=now_us)
    await limiter.take_address(address, limits, now_us=now_us)
    return risk
