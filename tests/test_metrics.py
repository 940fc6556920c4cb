"""Operations metrics: /metrics in Prometheus form, the vote counters, the request id and
the JSON logs, and the organizer's ops page."""

from __future__ import annotations

import asyncio
import json
import logging
import logging.config

import pytest
from httpx import ASGITransport, AsyncClient
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures.flows import sign_in
from tests.fixtures.metrics import access_lines, parse, scrape, value
from tests.fixtures.voting import flush, open_voting, verify_voter
from voting import accounts, metrics
from voting.logs import RequestIdFilter


async def test_votes_are_counted_by_outcome_reason_and_category(mail_client, mail_app, smtp, conn):
    _, _, noms = await open_voting(mail_app, conn)
    before = await scrape(mail_client)
    csrf = await verify_voter(mail_client, mail_app, smtp, "counted@example.org")
    h = {"X-CSRF-Token": csrf}
    # An API vote without a form token is accepted into quarantine ("form_missing").
    assert (
        await mail_client.post("/api/votes", json={"nomination": noms["C1"][0]}, headers=h)
    ).status_code == 202
    assert (
        await mail_client.post("/api/votes", json={"nomination": noms["C1"][1]}, headers=h)
    ).status_code == 409
    assert (
        await mail_client.post("/api/votes", json={"nomination": "N00000000"}, headers=h)
    ).status_code == 404
    wrong = {"nomination": noms["C2"][0], "category": "C3"}
    assert (await mail_client.post("/api/votes", json=wrong, headers=h)).status_code == 422
    after = await scrape(mail_client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("wsis_votes_accepted_total", category="C1", state="counted") == 1
    assert delta("wsis_votes_quarantined_total", category="C1", reason="form_missing") == 1
    assert delta("wsis_votes_refused_total", category="C1", reason="already_voted") == 1
    assert delta("wsis_votes_refused_total", category="none", reason="no_such_nomination") == 1
    assert delta("wsis_votes_refused_total", category="C3", reason="wrong_category") == 1
    # The latency histogram knows the route by its template, and counts each request once.
    assert delta("wsis_http_request_duration_seconds_count", method="POST", route="/api/votes") == 4
    assert delta("wsis_http_requests_total", method="POST", route="/api/votes", status="409") == 1


async def test_stream_length_flusher_lag_and_outbox_backlog(mail_client, mail_app, smtp, conn):
    _, _, noms = await open_voting(mail_app, conn)
    csrf = await verify_voter(mail_client, mail_app, smtp, "lag@example.org")
    # A message the sender has not delivered yet, queued 90 seconds ago.
    svc = mail_app.state.services
    await svc.db.execute(
        "INSERT INTO outbox (to_addr, subject, body, created_at) VALUES"
        " ('x@example.org', 's', 'b', now() - interval '90 seconds')"
    )
    for code in ("C1", "C2"):
        r = await mail_client.post(
            "/api/votes", json={"nomination": noms[code][0]}, headers={"X-CSRF-Token": csrf}
        )
        assert r.status_code == 202
    waiting = await scrape(mail_client)
    edition = {"edition": "test-edition"}
    assert value(waiting, "wsis_vote_stream_length", **edition) == 2
    assert value(waiting, "wsis_flusher_lag_seconds", **edition) >= 0
    assert value(waiting, "wsis_outbox_backlog") >= 1
    assert value(waiting, "wsis_outbox_oldest_seconds") >= 89
    assert value(waiting, "wsis_up", server="redis") == 1
    assert value(waiting, "wsis_up", server="postgres") == 1
    await flush(mail_app)
    flushed = await scrape(mail_client)
    assert value(flushed, "wsis_vote_stream_length", **edition) == 0
    assert value(flushed, "wsis_flusher_lag_seconds", **edition) == 0


async def test_flusher_lag_is_the_age_of_the_oldest_waiting_vote(app, conn):
    from datetime import timedelta

    from tests.fixtures.voting import redis_now, voting_edition
    from voting.ballot import Ballot

    svc = app.state.services
    ballot = Ballot(svc.r, svc.settings.redis_prefix)
    now = await redis_now(svc.r)
    await voting_edition(conn, ballot, now)
    stream = ballot.keys("test-edition").stream(int("ab" * 4, 16) % 16)
    # An entry stamped two minutes ago, as a stalled flusher would leave it, then a vote.
    old_ms = int((now - timedelta(minutes=2)).timestamp() * 1000)
    await svc.r.xadd(stream, {"v": "x"}, id=f"{old_ms}-0")
    await ballot.cast("test-edition", "ab" * 16, "C1", "N1")
    length, lag = await metrics.vote_stream_state(svc.r, svc.settings.redis_prefix, "test-edition")
    assert length == 2
    assert 119 <= lag <= 130


async def test_a_server_that_does_not_answer_is_reported_down_not_a_500(app, client, conn):
    from tests.fixtures.editions import load_builtin

    await load_builtin(conn, "demo", app.state.services.clock.now())
    svc = app.state.services
    await svc.redis.aclose()
    from voting.services import open_redis

    saved = svc.redis
    svc.redis = open_redis("redis://127.0.0.1:1/0", timeout=0.2, socket_timeout=0.2)
    try:
        samples = await scrape(client)
    finally:
        await svc.redis.aclose()
        svc.redis = saved
    assert value(samples, "wsis_up", server="redis") == 0
    assert value(samples, "wsis_up", server="postgres") == 1


async def test_metrics_are_not_public(app, settings):
    outsider = AsyncClient(
        transport=ASGITransport(app=app, client=("203.0.113.9", 4000)), base_url="http://t"
    )
    async with outsider:
        r = await outsider.get("/metrics", headers={"accept": "application/json"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        assert "Bearer" in r.json()["error"]["message"]


async def test_a_scrape_token_opens_metrics_to_a_scraper(settings, clock):
    from voting.app import create_app

    application = create_app(settings.with_overrides(metrics_token="s3cret-token"), clock=clock)
    async with application.router.lifespan_context(application):
        transport = ASGITransport(app=application, client=("198.51.100.7", 5000))
        async with AsyncClient(transport=transport, base_url="http://t") as scraper:
            assert (await scraper.get("/metrics")).status_code == 403
            bad = await scraper.get("/metrics", headers={"authorization": "Bearer nope"})
            assert bad.status_code == 403
            ok = await scraper.get("/metrics", headers={"authorization": "Bearer s3cret-token"})
            assert ok.status_code == 200 and "wsis_up" in ok.text
        # With a token set, the machine itself needs it too: no loophole behind a proxy.
        async with AsyncClient(transport=ASGITransport(app=application), base_url="http://t") as c:
            assert (await c.get("/metrics")).status_code == 403


async def test_in_production_loopback_is_no_way_into_the_metrics(settings, clock):
    # Behind a reverse proxy on the same host every visitor comes from loopback: in
    # production only the scrape token (or an organizer) opens /metrics.
    from voting.app import create_app

    for token in (None, "s3cret-token"):
        application = create_app(
            settings.with_overrides(env="production", metrics_token=token), clock=clock
        )
        async with application.router.lifespan_context(application):
            for host in ("127.0.0.1", "::1"):
                transport = ASGITransport(app=application, client=(host, 4000))
                async with AsyncClient(transport=transport, base_url="http://t") as local:
                    r = await local.get("/metrics", headers={"accept": "application/json"})
                    assert r.status_code == 403, (token, host)
                    error = r.json()["error"]
                    assert error["code"] == "forbidden"
                    assert "VOTING_METRICS_TOKEN" in error["message"]
                    assert "this machine" not in error["message"]
                    if token:
                        ok = await local.get(
                            "/metrics", headers={"authorization": f"Bearer {token}"}
                        )
                        assert ok.status_code == 200 and "wsis_up" in ok.text


async def test_outside_production_the_machine_itself_may_read_the_metrics(settings, clock):
    from voting.app import create_app

    application = create_app(settings.with_overrides(metrics_token=None), clock=clock)
    async with application.router.lifespan_context(application):
        transport = ASGITransport(app=application, client=("127.0.0.1", 4000))
        async with AsyncClient(transport=transport, base_url="http://t") as local:
            assert (await local.get("/metrics")).status_code == 200


async def test_request_id_goes_in_and_out(client):
    given_id = "req-1234.abc"
    r = await client.get("/livez", headers={"x-request-id": given_id})
    assert r.headers["x-request-id"] == given_id
    made = (await client.get("/livez")).headers["x-request-id"]
    assert len(made) == 32 and made != given_id
    # A header that could forge log lines is not echoed: a fresh id replaces it.
    r = await client.get("/livez", headers={"x-request-id": 'x" \\n{"level": "ERROR"}'})
    assert r.headers["x-request-id"] != 'x" \\n{"level": "ERROR"}'
    assert len(r.headers["x-request-id"]) == 32


async def test_access_lines_are_json_with_the_request_id(client):
    with access_lines() as stream:
        r = await client.get("/categories/NOPE?lang=fr", headers={"x-request-id": "trace-42"})
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["request_id"] == "trace-42" == r.headers["x-request-id"]
    assert line["logger"] == "voting.access" and line["level"] == "INFO"
    assert line["route"] == "/categories/{code}" and line["status"] == r.status_code
    assert line["path"] == "/categories/NOPE" and line["duration_ms"] >= 0
    assert "time" in line


def test_log_records_outside_a_request_say_so():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    assert RequestIdFilter().filter(record) and record.request_id == "-"


async def test_ops_page_shows_the_same_figures_to_organizers_only(
    mail_client, mail_app, smtp, conn
):
    _, _, noms = await open_voting(mail_app, conn)
    csrf = await verify_voter(mail_client, mail_app, smtp, "opsvoter@example.org")
    await mail_client.post(
        "/api/votes", json={"nomination": noms["C2"][0]}, headers={"X-CSRF-Token": csrf}
    )
    assert (await mail_client.get("/organizer/ops")).status_code == 401
    await accounts.grant(conn, "ops@example.org", "organizer")
    await sign_in(mail_client, mail_app, smtp, "ops@example.org")
    page = await mail_client.get("/organizer/ops")
    assert page.status_code == 200
    html = page.text
    for words in ("Votes at the door", "Votes per category", "Flusher lag", "Requests and latency"):
        assert words in html
    assert 'data-refresh="5"' in html and 'aria-pressed="false"' in html
    # The accepted votes per category read the same counters /metrics exposes.
    samples = await scrape(mail_client)
    c2 = int(
        sum(
            value(samples, "wsis_votes_accepted_total", category="C2", state=state)
            for state in ("counted", "held")
        )
    )
    assert c2 >= 1
    assert f'<th scope="row">C2 · Infrastructure</th><td class="num">{c2}</td>' in html
    assert "<code>POST /api/votes</code>" in html
    french = await mail_client.get("/organizer/ops?lang=fr")
    assert "Votes à l’entrée" in french.text or "Votes à l'entrée" in french.text


async def test_ops_page_refuses_other_roles(mail_client, mail_app, smtp, conn):
    await open_voting(mail_app, conn)
    await accounts.grant(conn, "judge@example.org", "committee")
    await sign_in(mail_client, mail_app, smtp, "judge@example.org")
    r = await mail_client.get("/organizer/ops")
    assert r.status_code == 403


# -- the pure parts -------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=8),
    st.floats(min_value=0.0, max_value=1.0),
    st.floats(min_value=0.0, max_value=1.0),
)
def test_quantiles_from_buckets_stay_inside_and_in_order(counts, q1, q2):
    bounds = [0.001 * (2**i) for i in range(len(counts))]
    running, buckets = 0, []
    for bound, n in zip(bounds, counts, strict=True):
        running += n
        buckets.append((bound, float(running)))
    buckets.append((float("inf"), float(running)))
    a, b = metrics.quantile(buckets, min(q1, q2)), metrics.quantile(buckets, max(q1, q2))
    if running == 0:
        assert a is None and b is None
        return
    assert a is not None and b is not None
    assert 0 <= a <= b <= bounds[-1]


def test_quantile_interpolates_inside_the_bucket():
    # 100 requests, all between 10 and 20 ms: the median is about 15 ms.
    buckets = [(0.01, 0.0), (0.02, 100.0), (float("inf"), 100.0)]
    assert metrics.quantile(buckets, 0.5) == pytest.approx(0.015)


def test_rate_meter_waits_for_a_second_look():
    meter = metrics.RateMeter(min_gap=5)
    assert meter.rate(100, now=0.0) is None
    assert meter.rate(130, now=3.0) is None
    rate, span = meter.rate(200, now=10.0)
    assert span == 7.0 and rate == pytest.approx(10.0)


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=40))
def test_label_values_stay_bounded(reason):
    metrics.vote_refused("C1", reason)
    reasons = {
        labels["reason"] for labels, _ in metrics.read_samples().rows("wsis_votes_refused_total")
    }
    assert reasons <= metrics.REFUSAL_REASONS | {"other"}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["GET", "POST", "PATCH"]),
            st.sampled_from(["/livez", "/api/votes"]),
            st.sampled_from([200, 202, 409]),
            # Bucket bounds themselves among them: `le` is "less than or equal".
            st.one_of(
                st.sampled_from(metrics.LATENCY._upper_bounds[:-1]),
                st.floats(min_value=0, max_value=20, allow_nan=False),
            ),
        ),
        max_size=40,
    )
)
def test_requests_gathered_in_process_scrape_as_if_observed_one_by_one(requests):
    """The hot path adds to dicts and `flush` writes sums: a scrape must read exactly what
    prometheus-client's own Counter.inc and Histogram.observe would have made of them."""
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

    reference = CollectorRegistry()
    counter = Counter("wsis_http_requests", "", ["method", "route", "status"], registry=reference)
    histogram = Histogram(
        "wsis_http_request_duration_seconds",
        "",
        ["method", "route"],
        buckets=metrics.LATENCY._upper_bounds,
        registry=reference,
    )
    before = parse(metrics.exposition(metrics.SharedState()).decode())
    for method, route, status, seconds in requests:
        metrics.request_done(method, route, status, seconds)
        shown = method if method != "PATCH" else "OTHER"
        counter.labels(shown, route, str(status)).inc()
        histogram.labels(shown, route).observe(seconds)
    after = parse(metrics.exposition(metrics.SharedState()).decode())
    expected = parse(generate_latest(reference).decode())
    for key, count in expected.items():
        assert after[key] - before.get(key, 0.0) == pytest.approx(count), key


async def test_gathered_counts_reach_the_metrics_without_a_scrape():
    # Read straight from the registry (a scrape would flush first): the timer wrote them.
    labels = {"method": "POST", "route": "/timer-test", "status": "202"}

    def written() -> float:
        return metrics.REGISTRY.get_sample_value("wsis_http_requests_total", labels) or 0.0

    metrics.flush()  # forget a timer an earlier test's event loop took with it
    start = written()
    for _ in range(3):
        metrics.request_done("POST", "/timer-test", 202, 0.002)
    assert written() == start  # gathered, not written yet
    await asyncio.sleep(metrics.FLUSH_AFTER_S + 0.5)
    assert written() == start + 3


def test_every_refusal_reason_has_a_label_on_the_ops_page():
    from voting.web.ops import REASON_LABELS

    assert metrics.REFUSAL_REASONS <= set(REASON_LABELS)
    assert {"unavailable", "outcome_unknown"} <= metrics.REFUSAL_REASONS
