"""Shared test helpers: load editions relative to a test's clock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from voting import edition_store
from voting.contest import Edition, builtin_edition_path, load_edition_file, parse_edition


async def load_builtin(
    conn: asyncpg.Connection, name: str, now: datetime, *, current: bool = True
) -> Edition:
    edition = load_edition_file(builtin_edition_path(name), now=now)
    await edition_store.save_edition(conn, edition, now=now, actor="test", make_current=current)
    return edition


def edition_data(**phases: tuple[str, str]) -> dict[str, Any]:
    """A small edition whose phases are relative offsets like ("-2d", "+1d")."""
    default = {
        "nominations": ("-40d", "-20d"),
        "review": ("-20d", "-1d"),
        "voting": ("-1d", "+14d"),
        "expert_review": ("+14d", "+30d"),
        "results": ("+30d", "+60d"),
    }
    default.update(phases)
    return {
        "slug": "test-edition",
        "name": "Test edition",
        "categories": [
            {"code": "C1", "name": "Public governance", "facilitator": "UN/DESA"},
            {"code": "C2", "name": "Infrastructure", "facilitator": "ITU"},
            {"code": "C3", "name": "Access to information", "facilitator": "UNESCO"},
        ],
        "phases": {k: {"opens_in": a, "closes_in": b} for k, (a, b) in default.items()},
    }


async def load_data(
    conn: asyncpg.Connection, data: dict[str, Any], now: datetime, *, current: bool = True
) -> Edition:
    edition = parse_edition(data, now=now)
    await edition_store.save_edition(conn, edition, now=now, actor="test", make_current=current)
    return edition
