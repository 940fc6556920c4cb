"""Voters: a pseudonymous id from a proven email address, and their signed session.

The id is an HMAC, under the secret key, of the normalized mailbox (lower-case, IDNA
domain, provider aliasing such as Gmail's dots and +tags removed: see voting/emails.py), so
two spellings of one mailbox are one voter and the address itself is never stored: it is
only in the outbox, for the one message that carries the link. Changing the folding
changes ids: never during an edition's voting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from .emails import Address, parse_email
from .security import pseudonym


@dataclass(frozen=True)
class Voter:
    id: str
    domain: str
    edition: str

    def to_session(self) -> dict[str, str]:
        return {"id": self.id, "d": self.domain, "e": self.edition}

    @classmethod
    def from_session(cls, raw: Any) -> Voter | None:
        if not isinstance(raw, dict):
            return None
        try:
            return cls(str(raw["id"]), str(raw["d"]), str(raw["e"]))
        except KeyError:
            return None


def identify(secret: str, raw_email: str) -> tuple[str, Address]:
    """The voter id for an address (raises InvalidEmail), and the parsed address."""
    address = parse_email(raw_email)
    return pseudonym(secret, address.mailbox), address


async def record_verification(
    conn: asyncpg.Connection,
    edition_id: int,
    voter: Voter,
    *,
    ip: str | None,
    user_agent: str | None,
    address_key: bytes,
    verified_at: Any = None,
) -> None:
    """Record a confirmed address as a voter, with what the fraud checks keep of where it
    was confirmed from: the address's kept prefix and keyed hash, the agent's summary
    (antifraud/minimise.py), never the address nor the agent themselves."""
    from .antifraud.minimise import at_the_door

    door = at_the_door(address_key, ip, user_agent)
    await conn.execute(
        "INSERT INTO voters (edition_id, voter_id, domain, ip_hash, ip_prefix, agent, network,"
        " verified_at) VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, now()))"
        " ON CONFLICT (edition_id, voter_id) DO NOTHING",
        edition_id,
        voter.id,
        voter.domain,
        door.address or None,
        door.prefix or None,
        door.agent or None,
        door.network or None,
        verified_at,
    )
