"""The offline fraud scan as a process of its own: `python -m voting.antifraud.scan_child`.

The detectors read the edition's whole ledger into Python and compare every nomination
with its category: seconds for ten thousand votes, minutes for a million. In a serving
worker that would stall every request the worker answers, in the final hour most of all;
so `serve` runs each scan here, at a lower CPU priority, and waits for it without
blocking (voting/operations.py). The database URL comes from VOTING_DATABASE_URL, set by
the parent to the one its own pool uses; the last line printed is a JSON report.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from .. import db, edition_store
from .detectors import scan
from .minimise import address_key

# How much lower than the workers the scan runs (nice(2) steps): the votes come first.
NICENESS = 10


# The address key (minimise.address_key), hex, from the parent: the child hashes the
# addresses of declared office networks to match votes, under the serving engine's key.
KEY_ENV = "VOTING_ADDRESS_KEY"


async def run(database_url: str, key: bytes) -> dict[str, Any]:
    conn = await db.connect(database_url)
    try:
        edition = await edition_store.current_edition(conn)
        if edition is None:
            return {"edition": None, "pid": os.getpid()}
        edition_id = await edition_store.edition_id(conn, edition.slug)
        assert edition_id is not None
        report = await scan(conn, edition_id, edition.slug, edition.rules.fraud, address_key=key)
    finally:
        await conn.close()
    return {
        "edition": edition.slug,
        "pid": os.getpid(),
        "flags": report.flags,
        "quarantined": report.quarantined,
        "per_detector": report.per_detector,
        # Incremental: the categories read again, of those with votes.
        "categories": report.categories,
        "of_categories": report.of_categories,
        "edition_wide": report.edition_wide,
    }


def main() -> int:
    os.nice(NICENESS)
    if os.environ.get(KEY_ENV):
        key = bytes.fromhex(os.environ[KEY_ENV])
    else:  # run by hand: the key of the engine's own settings
        from ..settings import load_settings

        key = address_key(load_settings().secret_key)
    report = asyncio.run(run(os.environ["VOTING_DATABASE_URL"], key))
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
