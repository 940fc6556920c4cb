"""A flusher process that dies by SIGKILL right after its first commit, before its XACK.

Run by tests/faults/test_flusher_kill.py as `python -m tests.faults.crashing_flusher DB
REDIS PREFIX`: the real Flusher, with one hook where a crash hurts most, so the entries
it committed stay pending in Redis under its name.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from voting import db
from voting.ledger import Flusher
from voting.services import open_redis


class DiesBeforeAck(Flusher):
    async def _ack(self, stream: str, ids: list[str]) -> None:
        # Called by _commit once PostgreSQL has committed the batch: die right there.
        os.kill(os.getpid(), signal.SIGKILL)


async def main(database_url: str, redis_url: str, prefix: str) -> None:
    redis = open_redis(redis_url)
    pool = await db.create_pool(database_url, min_size=1, max_size=2)
    flusher = DiesBeforeAck(redis, pool, prefix, consumer="doomed")
    while True:
        await flusher.flush_once(reclaim=False)
        await asyncio.sleep(0.05)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
