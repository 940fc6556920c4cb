"""`voting serve --workers 2`: the metrics of both workers add up at /metrics, whichever
worker answers the scrape, and each access line is JSON with its request id."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx

from tests.fixtures import live_server
from tests.fixtures.metrics import parse, value
from voting import metrics


async def test_two_workers_report_one_sum_and_log_json_lines(
    pg_admin_url, template_db, redis_url, tmp_path
):
    database_url = await live_server.own_database(pg_admin_url, template_db)
    prefix = f"m{uuid.uuid4().hex[:10]}"
    server = await asyncio.to_thread(
        live_server.start,
        database_url,
        redis_url,
        prefix,
        tmp_path / "serve",
        workers=2,
        args=("--access-log",),
    )
    try:
        # Each worker writes what it counted within metrics.FLUSH_AFTER_S: wait that out
        # before each reading, as a scrape of the other worker could come sooner.
        settle = metrics.FLUSH_AFTER_S + 0.5
        await asyncio.sleep(settle)
        before = await _livez_count(server.url)  # the start-up probe asked /livez already
        # A fresh connection per request, so the kernel hands them to either worker.
        for i in range(40):
            async with httpx.AsyncClient(base_url=server.url) as http:
                r = await http.get("/livez", headers={"x-request-id": f"probe-{i}"})
                assert r.status_code == 200 and r.headers["x-request-id"] == f"probe-{i}"
        # Scrapes answered by either worker tell the same total.
        await asyncio.sleep(settle)
        counts = [await _livez_count(server.url) for _ in range(6)]
        assert counts == [before + 40] * 6
        files = list((tmp_path / "serve" / "metrics").glob("*.db"))
        assert files, "the workers write their metrics under the data dir"
        lines = [json.loads(x) for x in server.log().splitlines() if x.startswith("{")]
        access = [x for x in lines if x.get("logger") == "voting.access"]
        assert {f"probe-{i}" for i in range(40)} <= {x["request_id"] for x in access}
        assert all(x["route"] == "/livez" for x in access if x["request_id"].startswith("probe-"))
    finally:
        await asyncio.to_thread(live_server.stop, server)
        await live_server.drop_prefix(redis_url, prefix)
        await live_server.drop_database(pg_admin_url, database_url)


async def _livez_count(url: str) -> float:
    async with httpx.AsyncClient(base_url=url) as http:
        scrape = await http.get("/metrics")
    assert scrape.status_code == 200
    samples = parse(scrape.text)
    return value(samples, "wsis_http_requests_total", method="GET", route="/livez", status="200")
