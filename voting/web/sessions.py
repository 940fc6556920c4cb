"""Starlette's session cookie, verified once per distinct cookie rather than per request.

A voter sends the same signed cookie with every vote; Starlette's SessionMiddleware
checks its HMAC on each one (a few percent of the vote path's time in the profiles). The
signer here remembers the cookies it has verified: the same bytes under the same key
verify the same way, so only the age is checked again, exactly as itsdangerous checks it.
A cookie seen for the first time is checked by the same steps as itsdangerous' in one
function (`unsign_fast`, in voting/compat/itsdangerous.py); whatever it would not accept
goes to itsdangerous itself, which raises its own error. Everything else (the cookie
format, Set-Cookie only when the session changed, the security flags) is Starlette's own
middleware, unchanged.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from itsdangerous import TimestampSigner
from starlette.middleware.sessions import SessionMiddleware

from ..compat.itsdangerous import unsign_fast
from ..compat.starlette import use_signer


class RememberingSigner(TimestampSigner):
    """A TimestampSigner whose `unsign` skips the HMAC for a value it verified before."""

    def __init__(self, secret_key: str, *, remember: int = 20_000) -> None:
        super().__init__(secret_key)
        self.remember = remember
        # signed value -> (value, signing time in whole seconds), oldest first. An
        # OrderedDict: dropping a plain dict's first key again and again costs a scan past
        # every key dropped before (9 us a vote once full, against 0.25 us here).
        self._verified: OrderedDict[bytes, tuple[bytes, int]] = OrderedDict()
        self._derived: dict[bytes | None, bytes] = {}

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        # itsdangerous derives the HMAC key from the secret anew for every cookie: a
        # digest of constant inputs, kept. (Only the configured secrets come here.)
        key = secret_key.encode() if isinstance(secret_key, str) else secret_key
        derived = self._derived.get(key)
        if derived is None:
            derived = self._derived[key] = super().derive_key(secret_key)
        return derived

    def unsign(  # type: ignore[override]
        self, signed_value: str | bytes, max_age: int | None = None, return_timestamp: bool = False
    ) -> Any:
        key = signed_value.encode() if isinstance(signed_value, str) else bytes(signed_value)
        hit = self._verified.get(key)
        if hit is not None and not return_timestamp:
            value, signed_at = hit
            age = self.get_timestamp() - signed_at
            # itsdangerous' own rule: older than max_age or from the future is expired;
            # let it raise its own error for those.
            if max_age is None or 0 <= age <= max_age:
                return value
        checked = None if return_timestamp else unsign_fast(self, key, max_age)
        if checked is None:  # refused, or anything unusual: itsdangerous decides, and says why
            value, stamp = super().unsign(key, max_age=max_age, return_timestamp=True)
            checked = (value, int(stamp.timestamp()))
        if len(self._verified) >= self.remember:
            self._verified.popitem(last=False)
        self._verified[key] = checked
        return (
            (checked[0], self.timestamp_to_datetime(checked[1])) if return_timestamp else checked[0]
        )


class Sessions(SessionMiddleware):
    """SessionMiddleware with the remembering signer (same arguments, same cookies)."""

    def __init__(self, app: Any, secret_key: str, **kwargs: Any) -> None:
        super().__init__(app, secret_key, **kwargs)
        use_signer(self, RememberingSigner(str(secret_key)))
