"""People who sign in with an email link: nominators, organizers, experts, committee."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

ROLES = ("organizer", "expert", "committee")


@dataclass(frozen=True)
class User:
    id: int
    email: str
    roles: frozenset[str]

    def has(self, role: str) -> bool:
        return role in self.roles


def _user(row: asyncpg.Record) -> User:
    return User(int(row["id"]), row["email"], frozenset(row["roles"]))


async def get_or_create(conn: asyncpg.Connection, email: str) -> User:
    # DO NOTHING, then read: the application may insert a user but update no email
    # (0011_least_privilege.sql). The read is a statement of its own, so it sees a row a
    # concurrent sign-in committed while this insert waited on it.
    row = await conn.fetchrow(
        "INSERT INTO users (email) VALUES ($1) ON CONFLICT (email) DO NOTHING"
        " RETURNING id, email, roles",
        email,
    )
    if row is None:
        row = await conn.fetchrow("SELECT id, email, roles FROM users WHERE email=$1", email)
    return _user(row)


async def by_id(conn: asyncpg.Connection, user_id: int) -> User | None:
    row = await conn.fetchrow("SELECT id, email, roles FROM users WHERE id=$1", user_id)
    return None if row is None else _user(row)


async def grant(conn: asyncpg.Connection, email: str, role: str) -> User:
    """Give a user a role (`voting users add`): run as the owner, since the application's
    role may not change users.roles (0011_least_privilege.sql)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    row = await conn.fetchrow(
        "INSERT INTO users (email, roles) VALUES ($1, ARRAY[$2::text]) ON CONFLICT (email)"
        " DO UPDATE SET roles = (SELECT array_agg(DISTINCT r ORDER BY r)"
        "   FROM unnest(users.roles || ARRAY[$2::text]) AS r)"
        " RETURNING id, email, roles",
        email,
        role,
    )
    return _user(row)
