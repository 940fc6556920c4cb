"""Single-use, expiring sign-in links: what the staff and the voter sign-in share.

A link's GET only shows a confirm button; its POST uses it up. Each kind of link is
signed for its own purpose, so one never passes for another. A link is spent by the
random nonce signed into it (security.Tokens.dumps_link), recorded in the transaction
that signs in; only the exact text the signer wrote is accepted, so no other spelling
of a spent link signs in again.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from ..security import LINK_MAX_AGE, LINK_NONCE, TokenError, link_fingerprint
from .templating import pages


class Link:
    def __init__(self, purpose: str, required: frozenset[str], again: str) -> None:
        self.purpose = purpose
        self.required = required
        self.again = again  # where a person gets a new link

    def issue(self, request: Request, payload: dict[str, Any]) -> str:
        """A new link's token for this purpose, with its own nonce."""
        return request.app.state.tokens.dumps_link(self.purpose, payload)  # type: ignore[no-any-return]

    def load(self, request: Request, token: str) -> dict[str, Any] | str:
        """The link's payload, or why it cannot be used: "expired" or "invalid"."""
        try:
            payload = request.app.state.tokens.loads_link(self.purpose, token, LINK_MAX_AGE)
        except TokenError as exc:
            return exc.reason
        if not self.required <= payload.keys():
            return "invalid"
        return payload  # type: ignore[no-any-return]

    def problem(self, request: Request, reason: str) -> Response:
        return pages(request).render(
            request, "link_problem.html", {"reason": reason, "again": self.again}, status=400
        )

    def _fingerprint(self, payload: dict[str, Any]) -> str:
        return link_fingerprint(self.purpose, payload[LINK_NONCE])

    async def unused(self, request: Request, token: str) -> dict[str, Any] | Response:
        """For the GET: the payload of a good, unused link, or the page saying why not."""
        payload = self.load(request, token)
        if isinstance(payload, str):
            return self.problem(request, payload)
        async with request.app.state.services.db.acquire() as conn:
            used = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM used_links WHERE token_hash=$1)",
                self._fingerprint(payload),
            )
        return self.problem(request, "used") if used else payload

    async def use(self, conn: asyncpg.Connection, payload: dict[str, Any]) -> bool:
        """Spend the link inside the caller's transaction; False if it was spent already.

        ON CONFLICT DO NOTHING: of two confirms racing, the second waits for the first's
        transaction and then inserts nothing, so exactly one signs in."""
        status = await conn.execute(
            "INSERT INTO used_links (token_hash, purpose) VALUES ($1, $2)"
            " ON CONFLICT (token_hash) DO NOTHING",
            self._fingerprint(payload),
            self.purpose,
        )
        return bool(status == "INSERT 0 1")
