"""People who sign in with an email link: nominators, organizers, experts, committee.

Each account has a session generation: a staff session records it at sign-in and is
good only while it is unchanged. Signing out, signing out everywhere and any change of
the account's roles move it on, which ends every session opened before.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

ROLES = ("organizer", "expert", "committee")


@dataclass(frozen=True)
class User:
    id: int
    email: str
    roles: frozenset[str]
    session_generation: int = 0

    def has(self, role: str) -> bool:
        return role in self.roles


def _user(row: asyncpg.Record) -> User:
    return User(
        int(row["id"]), row["email"], frozenset(row["roles"]), int(row["session_generation"])
    )


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")


async def get_or_create(conn: asyncpg.Connection, email: str) -> User:
    # DO NOTHING, then read: the application may insert a user but update no email
    # (0011_least_privilege.sql). The read is a statement of its own, so it sees a row a
    # concurrent sign-in committed while this insert waited on it.
    row = await conn.fetchrow(
        "INSERT INTO users (email) VALUES ($1) ON CONFLICT (email) DO NOTHING"
        " RETURNING id, email, roles, session_generation",
        email,
    )
    if row is None:
        row = await conn.fetchrow(
            "SELECT id, email, roles, session_generation FROM users WHERE email=$1", email
        )
    return _user(row)


async def by_id(conn: asyncpg.Connection, user_id: int) -> User | None:
    row = await conn.fetchrow(
        "SELECT id, email, roles, session_generation FROM users WHERE id=$1", user_id
    )
    return None if row is None else _user(row)


async def grant(conn: asyncpg.Connection, email: str, role: str) -> User:
    """Give a role; if the account did not have it, its sessions end (sign in again).
    Run as the owner (`voting users add`): the application's role may not change
    users.roles (0011_least_privilege.sql)."""
    _check_role(role)
    row = await conn.fetchrow(
        "INSERT INTO users (email, roles) VALUES ($1, ARRAY[$2::text]) ON CONFLICT (email)"
        " DO UPDATE SET roles = (SELECT array_agg(DISTINCT r ORDER BY r)"
        "   FROM unnest(users.roles || ARRAY[$2::text]) AS r),"
        " session_generation = users.session_generation"
        "   + CASE WHEN $2::text = ANY (users.roles) THEN 0 ELSE 1 END"
        " RETURNING id, email, roles, session_generation",
        email,
        role,
    )
    return _user(row)


async def revoke(conn: asyncpg.Connection, email: str, role: str) -> User | None:
    """Take a role away; if the account had it, its sessions end. None: no such account."""
    _check_role(role)
    row = await conn.fetchrow(
        "UPDATE users SET roles = array_remove(roles, $2::text),"
        " session_generation = session_generation"
        "   + CASE WHEN $2::text = ANY (roles) THEN 1 ELSE 0 END"
        " WHERE email=$1 RETURNING id, email, roles, session_generation",
        email,
        role,
    )
    return None if row is None else _user(row)


async def end_sessions(conn: asyncpg.Connection, user_id: int) -> None:
    """Sign the account out everywhere: every session opened so far stops working."""
    await conn.execute(
        "UPDATE users SET session_generation = session_generation + 1 WHERE id=$1", user_id
    )
