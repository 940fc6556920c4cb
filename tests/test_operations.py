"""The background tasks of a serving process (voting/operations.py)."""

import asyncio
import os
from datetime import UTC, datetime, timedelta

import psutil

from tests.fixtures.antifraud import KEY, add_vote, organic
from tests.fixtures.editions import edition_data, load_data
from voting import operations

START = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
NOMS = {"C1": ["A1", "A2", "A3"], "C2": ["B1", "B2"], "C3": ["D1", "D2"]}
IRREGULAR = [0, 2, 31, 40, 95, 96, 150, 233, 240, 300, 381, 399, 470, 560, 566, 640, 701]


async def test_the_fraud_scan_runs_in_a_child_process_and_quarantines(conn, database_url, clock):
    # The detectors' CPU must not stall the worker's requests: the scan is a process of
    # its own, which finds the current edition and records what it finds.
    await load_data(conn, edition_data(), clock.now())
    edition_id = await conn.fetchval("SELECT id FROM editions WHERE slug='test-edition'")
    await organic(conn, edition_id, START, 60, NOMS)
    at = START + timedelta(hours=2)
    for i in range(15):  # IPv6 rotation inside one /48, hours apart
        await add_vote(
            conn,
            edition_id,
            f"six{i}",
            "C1",
            "A3",
            at=at + timedelta(minutes=IRREGULAR[i]),
            ip=f"2001:db8:77:{i:x}::{i + 1:x}",
            agent=f"agent-{i}",
            domain="gmail.com",
        )
    report = await operations.scan_in_child(database_url, KEY)
    assert report["edition"] == "test-edition"
    assert report["pid"] != os.getpid()
    assert report["quarantined"] == 15, report
    held = await conn.fetchval(
        "SELECT count(*) FROM votes WHERE edition_id=$1 AND verdict='quarantined'", edition_id
    )
    assert held == 15
    # Again: nothing new to hold, and the same flags.
    again = await operations.scan_in_child(database_url, KEY)
    assert again["quarantined"] == 0
    # Incremental: with nothing new it reads no vote; a vote in C2 has C2 alone read again.
    assert again["categories"] == [] and not again["edition_wide"], again
    await add_vote(conn, edition_id, "late", "C2", "B1", at=at, ip="192.0.2.77")
    third = await operations.scan_in_child(database_url, KEY)
    assert third["categories"] == ["C2"] and third["of_categories"] == 3, third


async def test_a_cancelled_scan_kills_its_child(database_url):
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    task = asyncio.create_task(operations.scan_in_child(database_url, KEY))
    for _ in range(100):  # until the child exists
        await asyncio.sleep(0.02)
        children = {p.pid for p in psutil.Process().children(recursive=True)} - before
        if children:
            break
    assert children
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    assert not [pid for pid in children if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_a_failing_scan_is_an_error_the_task_logs_not_a_crash(empty_database_url):
    # No schema: the child fails; the task's caller gets one RuntimeError with its cause.
    try:
        await operations.scan_in_child(empty_database_url, KEY)
    except RuntimeError as exc:
        assert "exited" in str(exc) and "editions" in str(exc)
    else:
        raise AssertionError("a scan of a database without the schema reported success")
