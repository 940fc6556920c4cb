"""Signed, expiring tokens (itsdangerous), CSRF tokens and the session's identity.

Every token is signed for one purpose (its salt): a voter's sign-in link cannot open an
organizer session, a form token cannot be replayed as a link. Sessions are Starlette's
SessionMiddleware cookie, itself signed with itsdangerous and expiring.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from starlette.requests import Request

from .clock import Clock, SystemClock
from .i18n import gettext
from .web.responses import ApiError

# Purposes: each its own salt, so no token passes for another kind.
USER_LINK = "user-signin-link"
VOTER_LINK = "voter-signin-link"
REHEARSAL_VOTER = "rehearsal-voter"
FORM = "form-token"

LINK_MAX_AGE = 60 * 60  # a sign-in link is good for one hour
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


def token_fingerprint(token: str) -> str:
    """What we store of a used link: its hash, never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


def pseudonym(secret: str, normalized_email: str) -> str:
    """A voter's id: an HMAC of the normalized address, never the address itself."""
    digest = hmac.new(secret.encode(), normalized_email.encode(), hashlib.sha256).hexdigest()
    return digest[:32]


# -- CSRF: the synchronizer-token pattern, the token kept in the signed session -------------

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return str(token)


def check_csrf(request: Request, form_value: str | None = None) -> None:
    """Refuse an unsafe request whose token does not match the session's."""
    expected = request.session.get("csrf")
    given = form_value if form_value is not None else request.headers.get(CSRF_HEADER)
    # As bytes: compare_digest refuses text with non-ASCII characters (a TypeError, a 500).
    if (
        not expected
        or not given
        or not hmac.compare_digest(str(expected).encode(), str(given).encode())
    ):
        raise ApiError(
            403,
            "csrf",
            gettext(
                "The form has expired or did not come from this site. "
                "Reload the page and try again."
            ),
        )
