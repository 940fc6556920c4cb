"""The step-up challenge: a self-hosted proof of work in the ALTCHA protocol (version 2).

The server signs a challenge (HMAC under a key derived from VOTING_SECRET_KEY) naming a
counter it drew at random below the edition's `challenge_max_number`; the solver finds
that counter by trying SHA-256 hashes (on average half the range), and sends back the
challenge with its solution. Verifying is one hash and one HMAC. The `altcha` package
(PyPI, MIT, by the authors of the protocol and of the browser widget) makes and checks
challenges, so the widget the pages use (voting/web/static/altcha.js) and the server
speak the same version of it.

A challenge is bound to what it was issued for (`purpose` and `subject`: a vote in one
category by one voter, or a sign-in from one network) and expires; a solved challenge is
used once: its nonce is remembered in Redis until it expires (SET NX), so a replayed
solution is refused.

It raises the cost of each vote or sign-in, it does not stop a farm: a machine with many
CPUs pays per attempt and goes on (README, "Risk score and step-up challenge").
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

import altcha
import redis.asyncio as aioredis

ALGORITHM = "SHA-256"
FIELD = "altcha"  # the form and JSON field the solution comes in


def hmac_key(secret_key: str) -> bytes:
    """The challenges' key, derived so that it is no other use's key."""
    return hmac.new(secret_key.encode(), b"wsis-altcha-v1", hashlib.sha256).digest()


@dataclass(frozen=True)
class Verdict:
    ok: bool
    problem: str = ""  # missing | invalid | expired | other_purpose | replayed


class Challenges:
    def __init__(self, secret_key: str, redis: aioredis.Redis, prefix: str) -> None:
        self.key = hmac_key(secret_key)
        self.redis = redis
        self.prefix = f"{prefix}:altcha"

    def issue(
        self, purpose: str, subject: str, *, max_number: int, expires_s: int, now: float = 0
    ) -> dict[str, Any]:
        """A signed challenge, as the widget reads it (JSON)."""
        import secrets

        challenge = altcha.create_challenge(
            ALGORITHM,
            1,
            counter=secrets.randbelow(max(1, int(max_number))),
            expires_at=int((now or time.time()) + expires_s),
            data={"p": purpose, "s": _subject(subject)},
            hmac_secret=self.key,
        )
        return challenge.to_dict()  # type: ignore[no-any-return]

    async def verify(self, payload: Any, purpose: str, subject: str) -> Verdict:
        """Whether `payload` (the base64 text the widget gives) solves a challenge issued
        for this purpose and subject, and was not used before. Spends it if so."""
        if not isinstance(payload, str) or not payload or len(payload) > 4000:
            return Verdict(False, "missing")
        result = altcha.verify_solution(payload, self.key)
        if result.expired:
            return Verdict(False, "expired")
        if not result.verified:
            return Verdict(False, "invalid")
        params = altcha.Payload.from_base64(payload).challenge.parameters
        data = params.data or {}
        if data.get("p") != purpose or data.get("s") != _subject(subject):
            return Verdict(False, "other_purpose")
        ttl = max(1, int(params.expires_at or 0) - int(time.time()) + 1)
        fresh = await self.redis.set(f"{self.prefix}:used:{params.nonce}", "1", nx=True, ex=ttl)
        if not fresh:
            return Verdict(False, "replayed")
        return Verdict(True)


def _subject(subject: str) -> str:
    # The challenge travels to the client: it names its subject by a digest only.
    return hashlib.sha256(subject.encode()).hexdigest()[:16]


def solve(challenge: dict[str, Any]) -> str:
    """The payload a solver sends back (tests and the README's cost measurement)."""
    parsed = altcha.Challenge.from_dict(challenge)
    solution = altcha.solve_challenge(parsed)
    if solution is None:
        raise ValueError("challenge not solved in time")
    return altcha.Payload(parsed, solution).to_base64()  # type: ignore[no-any-return]
