"""Sign-ins turned away at the door, so that the committee sees who was refused and not
only who got in.

The sign-in paths call `record_refusal` where they refuse a link (the limiter's 429, a
throwaway domain) or challenge the visitor. Only the network prefix (/24 for IPv4, /48
for IPv6) and the email domain are kept: never the address nor the full IP. A failure to
record is logged and never changes the answer the visitor gets.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from .signals import network_of

log = logging.getLogger(__name__)

CHALLENGED = "challenged"


def _domain(email_or_domain: Any) -> str:
    text = email_or_domain.strip().lower() if isinstance(email_or_domain, str) else ""
    domain = text.rpartition("@")[2].rstrip(".")
    try:
        return domain.encode("idna").decode("ascii")[:253] if domain else ""
    except UnicodeError:
        return ""


async def record_refusal(
    conn_or_pool: asyncpg.Connection | asyncpg.Pool,
    ip: str | None,
    email: Any,
    reason: str,
    *,
    edition_id: int | None = None,
    audience: str = "voter",
) -> None:
    """Record one refused or challenged sign-in (`reason`: the refusal's code, or
    "challenged"). `ip` and `email` are reduced to network and domain here, before
    anything is stored; `edition_id` defaults to the current edition."""
    try:
        await conn_or_pool.execute(
            "INSERT INTO signin_refusals (edition_id, network, domain, reason, audience)"
            " VALUES (coalesce($1, (SELECT id FROM editions WHERE is_current)), $2, $3, $4, $5)",
            edition_id,
            network_of(ip or ""),
            _domain(email),
            reason[:64],
            audience,
        )
    except (asyncpg.PostgresError, OSError) as exc:
        log.warning("could not record a refused sign-in: %s", exc)


_SUMMARY = """
SELECT * FROM (
    SELECT 'networks' AS kind, network AS key,
           count(*) FILTER (WHERE reason <> $2) AS refused,
           count(*) FILTER (WHERE reason = $2) AS challenged, max(at) AS last
    FROM signin_refusals WHERE edition_id = $1 GROUP BY network
    UNION ALL
    SELECT 'domains', domain,
           count(*) FILTER (WHERE reason <> $2), count(*) FILTER (WHERE reason = $2), max(at)
    FROM signin_refusals WHERE edition_id = $1 GROUP BY domain
) s ORDER BY kind, refused + challenged DESC, key
"""


async def summary(conn: asyncpg.Connection, edition_id: int, limit: int = 50) -> dict[str, Any]:
    """Refused and challenged sign-ins per network and per domain, most first."""
    out: dict[str, list[dict[str, Any]]] = {"networks": [], "domains": []}
    for r in await conn.fetch(_SUMMARY, edition_id, CHALLENGED):
        if len(out[r["kind"]]) < limit:
            out[r["kind"]].append(
                {
                    "key": r["key"] or "?",
                    "refused": r["refused"],
                    "challenged": r["challenged"],
                    "last": r["last"],
                }
            )
    return out
