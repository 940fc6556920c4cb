"""Signed, expiring tokens (itsdangerous) and the session's identity.

Every token is signed for one purpose (its salt): a voter's sign-in link cannot open an
organizer session, a form token cannot be replayed as a link. Sessions are Starlette's
SessionMiddleware cookie, itself signed with itsdangerous and expiring. The CSRF checks,
which read a request, are in voting/web/csrf.py.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Callable
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from .clock import Clock, SystemClock
from .compat.itsdangerous import canonical_token, keyed_hmac

# Purposes: each its own salt, so no token passes for another kind.
USER_LINK = "user-signin-link"
VOTER_LINK = "voter-signin-link"
REHEARSAL_VOTER = "rehearsal-voter"
FORM = "form-token"

LINK_MAX_AGE = 60 * 60  # a sign-in link is good for one hour
# A sign-in link's single use is recorded by this random nonce inside its signed payload,
# never by the link's text: itsdangerous accepts other spellings of the same signature
# (padding, spare low bits, characters base64 skips), each a different text.
LINK_NONCE = "n"
_NONCE = re.compile(r"[A-Za-z0-9_-]{22,64}\Z")  # secrets.token_urlsafe(16): 128 bits
SESSION_MAX_AGE = 14 * 24 * 60 * 60


class TokenError(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "expired" | "invalid"


class _ClockSigner(TimestampSigner):
    """Signs and checks ages on the engine's clock, not the wall clock."""

    clock: Clock = SystemClock()

    def get_timestamp(self) -> int:
        return int(self.clock.now().timestamp())


class Tokens:
    def __init__(self, secret: str, clock: Clock | None = None) -> None:
        self._secret = secret
        self._signer = type("BoundClockSigner", (_ClockSigner,), {"clock": clock or SystemClock()})
        self._serializers: dict[str, URLSafeTimedSerializer] = {}

    def _s(self, purpose: str) -> URLSafeTimedSerializer:
        serializer = self._serializers.get(purpose)
        if serializer is None:
            serializer = URLSafeTimedSerializer(self._secret, salt=purpose, signer=self._signer)
            self._serializers[purpose] = serializer
        return serializer

    def dumps(self, purpose: str, payload: Any) -> str:
        return self._s(purpose).dumps(payload)

    def loads(self, purpose: str, token: str, max_age: int) -> Any:
        try:
            return self._s(purpose).loads(token, max_age=max_age)
        except SignatureExpired:
            raise TokenError("expired") from None
        except BadSignature:
            raise TokenError("invalid") from None

    def loads_with_age(self, purpose: str, token: str, max_age: int) -> tuple[Any, float]:
        """The payload and the instant (epoch seconds) the token was signed."""
        try:
            payload, signed_at = self._s(purpose).loads(
                token, max_age=max_age, return_timestamp=True
            )
        except SignatureExpired:
            raise TokenError("expired") from None
        except BadSignature:
            raise TokenError("invalid") from None
        return payload, signed_at.timestamp()

    def dumps_link(self, purpose: str, payload: dict[str, Any]) -> str:
        """A sign-in link's token: the payload with a fresh 128-bit nonce signed into it."""
        return self.dumps(purpose, {**payload, LINK_NONCE: secrets.token_urlsafe(16)})

    def loads_link(self, purpose: str, token: str, max_age: int) -> dict[str, Any]:
        """A link's payload (nonce included), only for the exact text the signer wrote.

        Refused as "invalid": any other spelling of a good token (the same payload, time
        and signature, written differently), and a payload without its nonce."""
        serializer = self._s(purpose)
        try:
            payload, signed_at = serializer.loads(token, max_age=max_age, return_timestamp=True)
        except SignatureExpired:
            raise TokenError("expired") from None
        except BadSignature:
            raise TokenError("invalid") from None
        if not isinstance(payload, dict) or not _NONCE.match(str(payload.get(LINK_NONCE))):
            raise TokenError("invalid")
        # What the signer itself writes for this payload at this instant, byte for byte.
        canonical = canonical_token(serializer, token, int(signed_at.timestamp()))
        if not hmac.compare_digest(canonical, token.encode("utf-8", "replace")):
            raise TokenError("invalid")
        return payload


def link_fingerprint(purpose: str, nonce: str) -> str:
    """What we store of a used link: a hash of its purpose and nonce, never the token."""
    return hashlib.sha256(f"{purpose}\n{nonce}".encode()).hexdigest()


def pseudonym(secret: str, normalized_email: str) -> str:
    """A voter's id: an HMAC of the normalized address, never the address itself."""
    digest = hmac.new(secret.encode(), normalized_email.encode(), hashlib.sha256).hexdigest()
    return digest[:32]


def subkey(secret: str, context: str) -> bytes:
    """A key of its own for one use of the secret (HMAC-SHA256 of the context under it):
    a value hashed under one context says nothing about the same value under another,
    and none of them is the secret that signs sessions and links."""
    return hmac.new(secret.encode(), f"wsis-subkey\n{context}".encode(), hashlib.sha256).digest()


def keyed_digest(key: bytes, value: str, *, hex_chars: int = 32) -> str:
    """HMAC-SHA256 of `value` under `key`, as the first `hex_chars` hex digits (128 bits by
    default: equality without collisions at any edition's size, and without the value)."""
    # Once per vote (a client's door, at its first vote): from a kept keyed state.
    mac = keyed_hmac(key, hashlib.sha256)
    mac.update(value.encode())
    return mac.hexdigest()[:hex_chars]


def pooled(draw: Callable[[], list[str]]) -> Callable[[], str]:
    """A function handing out the random tokens `draw` makes, a batch at a time: one
    urandom read (a system call) for many tokens, where a token a request was one each.

    A forked child empties its copy of the pool before anything runs in it: it never
    hands out a token its parent holds too."""
    pool: list[str] = []
    os.register_at_fork(after_in_child=pool.clear)

    def take() -> str:
        while True:
            try:
                return pool.pop()
            except IndexError:  # (another thread may take the last one between two lines)
                pool.extend(draw())

    return take
