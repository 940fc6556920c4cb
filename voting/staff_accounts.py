"""Staff accounts invited from the organizers' page: experts and committee members.

The same change as `voting users add --role expert|committee EMAIL` (accounts.grant):
the account is created or given the role, its sessions end when the role is new, and an
audit row says who invited whom. The application's database role may not write
users.roles, so the change goes through `grant_staff_role` (migration 0014), which grants
these two roles and no other: organizers are still made with the command line, by the
database's owner.
"""

from __future__ import annotations

import asyncpg

from . import accounts
from .edition_store import audit
from .emails import InvalidEmail, parse_email
from .errors import Refusal
from .i18n import N_

INVITABLE = ("expert", "committee")


class InviteRefused(Refusal):
    """An invitation the rules refuse (an address, a role, an account already there)."""


async def invite(
    conn: asyncpg.Connection, raw_email: str, role: str, *, actor: str
) -> accounts.User:
    """Give `role` (expert or committee) to the address, on the record."""
    if role not in INVITABLE:
        raise InviteRefused(
            422,
            "invalid_role",
            N_("Choose the expert or the committee role."),
            fields={"role": "invalid"},
        )
    try:
        email = parse_email(raw_email).normalized
    except InvalidEmail as exc:
        raise InviteRefused(
            422,
            "invalid_email",
            N_("Enter a valid email address, like name@example.org ({problem})."),
            fields={"email": "invalid"},
            problem=str(exc),
        ) from None
    if actor == f"user:{email}":
        # No one signs off the results they could make themselves a judge of.
        raise InviteRefused(
            422,
            "own_account",
            N_("You cannot give a role to your own account; ask another organizer."),
            fields={"email": "own account"},
        )
    async with conn.transaction():
        user_id = await conn.fetchval("SELECT grant_staff_role($1, $2)", email, role)
        await audit(
            conn,
            actor=actor,
            action="user.grant",
            subject=email,
            detail={"role": role, "invited_from": "organizer page"},
        )
        user = await accounts.by_id(conn, int(user_id))
    assert user is not None
    return user


async def staff(conn: asyncpg.Connection) -> list[accounts.User]:
    """Every account with a staff role, by address."""
    rows = await conn.fetch(
        "SELECT id, email, roles, session_generation FROM users"
        " WHERE cardinality(roles) > 0 ORDER BY email"
    )
    return [
        accounts.User(int(r["id"]), r["email"], frozenset(r["roles"]), int(r["session_generation"]))
        for r in rows
    ]
