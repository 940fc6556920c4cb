"""Start-up checks and the background tasks a serving process runs."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from typing import Any

import asyncpg
import redis.asyncio as aioredis
import redis.exceptions as redis_errors

from . import edition_store
from .antifraud.minimise import address_key
from .antifraud.scan_child import KEY_ENV
from .ballot import Ballot
from .ledger import Flusher
from .services import Services

log = logging.getLogger(__name__)


async def redis_durability_warnings(redis: aioredis.Redis) -> list[str]:
    """Why acknowledged votes could be lost on a Redis crash, if they could."""
    try:
        config = await redis.config_get("appendonly")
        config.update(await redis.config_get("appendfsync"))
    except redis_errors.RedisError as exc:  # managed services may forbid CONFIG
        return [f"could not read the Redis persistence settings ({exc}); check them by hand"]
    warnings = []
    if config.get("appendonly") != "yes":
        warnings.append(
            "Redis runs without an append-only file: votes acknowledged but not yet flushed "
            "to PostgreSQL are LOST if Redis crashes. Set appendonly yes, appendfsync always."
        )
    elif config.get("appendfsync") != "always":
        warnings.append(
            f"Redis fsyncs its append-only file '{config.get('appendfsync')}', not 'always': "
            "up to a second of acknowledged votes can be lost if the machine crashes."
        )
    return warnings


async def sync_current_window(services: Services) -> None:
    async with services.db.acquire() as conn:
        edition = await edition_store.current_edition(conn)
    if edition is not None:
        await Ballot(services.r, services.settings.redis_prefix).sync_window(edition)


async def start_checks(services: Services) -> None:
    for warning in await redis_durability_warnings(services.r):
        log.warning("DURABILITY: %s", warning)
    try:
        await sync_current_window(services)
    except (OSError, asyncpg.PostgresError, redis_errors.RedisError) as exc:
        # Not fatal: the vote handler restores a missing window itself, and a worker that
        # fails at start-up makes uvicorn stop every worker of the server.
        log.warning("could not write the voting window at start (%s)", exc)


async def flusher_task(services: Services) -> None:
    # Flusher.run rides out the outages it knows; anything else must not end flushing in
    # this worker for the rest of its life: log it and start again.
    while True:
        try:
            await Flusher(
                services.r,
                services.db,
                services.settings.redis_prefix,
                claim_idle_ms=services.settings.flush_claim_idle_ms,
            ).run()
        except Exception:
            log.exception("flusher stopped; restarting it in a second")
            await asyncio.sleep(1)


async def fraud_scan_task(services: Services, interval: float = 60.0) -> None:
    """Run the offline detectors over the current edition's ledger every minute, each
    scan in a child process (voting/antifraud/scan_child.py): the detectors' minutes of
    CPU at a million votes must not stall the requests this worker answers. The next
    scan starts `interval` after the last one ended; the workers' scans take turns under
    the detectors' advisory lock (a child that finds it taken does nothing)."""
    while True:
        await asyncio.sleep(interval)
        try:
            report = await scan_in_child(
                services.settings.database_url or "", address_key(services.settings.secret_key)
            )
        except (OSError, RuntimeError) as exc:
            log.warning("fraud scan: %s", exc)
            continue
        if report.get("quarantined"):
            log.warning(
                "fraud scan quarantined %d votes: %s",
                report["quarantined"],
                report.get("per_detector"),
            )


async def scan_in_child(database_url: str, key: bytes) -> dict[str, Any]:
    """One scan in a child process; its report. Cancelled (the worker stops), the child
    is killed: its transaction rolls back, and the next scan does the work again."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "voting.antifraud.scan_child",
        env={**os.environ, "VOTING_DATABASE_URL": database_url, KEY_ENV: key.hex()},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await proc.communicate()
    except asyncio.CancelledError:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"the scan process exited {proc.returncode}: {tail[0]}")
    lines = out.decode().strip().splitlines()
    return dict(json.loads(lines[-1])) if lines else {}
