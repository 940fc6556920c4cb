"""Single-use, expiring sign-in links: what the staff and the voter sign-in share.

A link's GET only shows a confirm button; its POST uses it up. Each kind of link is
signed for its own purpose, so one never passes for another.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from ..security import LINK_MAX_AGE, TokenError, token_fingerprint
from .templating import pages


class Link:
    def __init__(self, purpose: str, required: frozenset[str], again: str) -> None:
        self.purpose = purpose
        self.required = required
        self.again = again  # where a person gets a new link

    def load(self, request: Request, token: str) -> dict[str, Any] | str:
        """The link's payload, or why it cannot be used: "expired" or "invalid"."""
        try:
            payload = request.app.state.tokens.loads(self.purpose, token, LINK_MAX_AGE)
        except TokenError as exc:
            return exc.reason
        if not isinstance(payload, dict) or not self.required <= payload.keys():
            return "invalid"
        return payload

    def problem(self, request: Request, reason: str) -> Response:
        return pages(request).render(
            request, "link_problem.html", {"reason": reason, "again": self.again}, status=400
        )

    async def unused(self, request: Request, token: str) -> dict[str, Any] | Response:
        """For the GET: the payload of a good, unused link, or the page saying why not."""
        payload = self.load(request, token)
        if isinstance(payload, str):
            return self.problem(request, payload)
        async with request.app.state.services.db.acquire() as conn:
            used = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM used_links WHERE token_hash=$1)",
                token_fingerprint(token),
            )
        return self.problem(request, "used") if used else payload

    async def use(self, conn: asyncpg.Connection, token: str) -> bool:
        """Spend the link inside the caller's transaction; False if it was spent already."""
        try:
            await conn.execute(
                "INSERT INTO used_links (token_hash, purpose) VALUES ($1, $2)",
                token_fingerprint(token),
                self.purpose,
            )
        except asyncpg.UniqueViolationError:
            return False
        return True
