"""The voter's journey over HTTP: link from a real SMTP message, votes, receipts, ledger."""

import asyncio
import re

import pytest
from httpx import ASGITransport, AsyncClient

from tests.fixtures.flows import csrf_from
from tests.fixtures.voting import (
    flush,
    open_voting,
    reading,
    redis_now,
    runtime_for,
    verify_voter,
)
from voting.ledger import reconcile

# Every test here once on a single Redis and once on a Redis Cluster (redis_backend).
pytestmark = pytest.mark.backends


async def test_voter_journey_from_email_link_to_the_ledger(mail_client, mail_app, smtp, conn):
    edition, edition_id, noms = await open_voting(mail_app, conn)
    csrf = await verify_voter(mail_client, mail_app, smtp, "Voter.One@example.org")

    # The ballot page for a category lists its nominations and a confirm button.
    c1 = noms["C1"]
    page = await mail_client.get("/vote/C1")
    assert page.status_code == 200 and "Confirm my vote" in page.text
    assert all(pid in page.text for pid in c1)
    form_token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)
    reading(mail_app)  # a person reads the list before confirming
    voted = await mail_client.post(
        "/vote/C1",
        data={"nomination": c1[0], "csrf_token": csrf_from(page.text), "form_token": form_token},
    )
    assert voted.status_code == 202 and "Your vote is recorded" in voted.text
    receipt_1 = re.search(r"<code>([A-Z2-7-]{19})</code>", voted.text).group(1)

    # The API: a vote in a second category, then a second vote in it is refused with 409.
    response = await mail_client.post(
        "/api/votes", json={"nomination": noms["C2"][0]}, headers={"X-CSRF-Token": csrf}
    )
    assert response.status_code == 202, response.text
    receipt_2 = response.json()["receipt"]
    again = await mail_client.post(
        "/api/votes", json={"nomination": noms["C2"][-1]}, headers={"X-CSRF-Token": csrf}
    )
    assert again.status_code == 409
    assert again.json()["error"]["receipt"] == receipt_2
    assert again.json()["error"]["nomination"] == noms["C2"][0]

    mine = (await mail_client.get("/api/votes/mine")).json()
    assert {v["receipt"] for v in mine["votes"]} == {receipt_1, receipt_2}
    home = await mail_client.get("/my-votes")
    assert receipt_1 in home.text and receipt_2 in home.text

    stats = await flush(mail_app)
    assert stats.inserted == 2
    rows = await conn.fetch(
        "SELECT receipt, form_age_ms FROM votes WHERE edition_id=$1", edition_id
    )
    assert {r["receipt"] for r in rows} == {receipt_1, receipt_2}
    assert any(r["form_age_ms"] is not None for r in rows)
    svc = mail_app.state.services
    assert (await reconcile(svc.r, conn, svc.settings.redis_prefix, edition.slug)).ok
    # The address is not in the ledger or the voters table: only the pseudonym is.
    assert await conn.fetchval("SELECT count(*) FROM voters WHERE voter_id LIKE '%@%'") == 0


async def test_vote_api_errors_say_what_was_wrong(mail_client, mail_app, smtp, conn, client):
    _, _, noms = await open_voting(mail_app, conn)
    # No session: 401.
    r = await mail_client.post("/api/votes", json={"nomination": noms["C1"][0]})
    assert r.status_code == 401 and r.json()["error"]["code"] == "not_signed_in"
    csrf = await verify_voter(mail_client, mail_app, smtp, "v2@example.org")
    h = {"X-CSRF-Token": csrf}
    # No CSRF header: 403.
    r = await mail_client.post("/api/votes", json={"nomination": noms["C1"][0]})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf"
    # Malformed bodies: 400 / 422.
    r = await mail_client.post("/api/votes", content=b"{not json", headers=h)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_json"
    r = await mail_client.post("/api/votes", json=["a list"], headers=h)
    assert r.status_code == 422
    r = await mail_client.post("/api/votes", json={"nomination": 5}, headers=h)
    assert r.status_code == 422 and "nomination" in r.json()["error"]["fields"]
    # Unknown nomination: 404.
    r = await mail_client.post("/api/votes", json={"nomination": "N00000000"}, headers=h)
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_such_nomination"
    # The wrong category for the nomination: 422, and nothing recorded.
    r = await mail_client.post(
        "/api/votes", json={"nomination": noms["C1"][0], "category": "C2"}, headers=h
    )
    assert r.status_code == 422
    assert (await mail_client.get("/api/votes/mine")).json()["votes"] == []


async def test_votes_outside_the_window_are_refused_with_the_geneva_instant(
    mail_client, mail_app, smtp, conn
):
    from datetime import timedelta

    from tests.fixtures.voting import with_window

    edition, _, noms = await open_voting(mail_app, conn)
    csrf = await verify_voter(mail_client, mail_app, smtp, "late@example.org")
    rt = runtime_for(mail_app)
    t = await redis_now(mail_app.state.services.r)
    await rt.ballot.sync_window(with_window(edition, t - timedelta(days=2), t))
    r = await mail_client.post(
        "/api/votes", json={"nomination": noms["C1"][0]}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 403
    error = r.json()["error"]
    assert error["code"] == "voting_closed"
    assert "Voting is closed" in error["message"]
    assert "(CET)" in error["message"] or "(CEST)" in error["message"]
    await rt.ballot.sync_window(with_window(edition, t + timedelta(days=1), t + timedelta(days=2)))
    r = await mail_client.post(
        "/api/votes", json={"nomination": noms["C1"][0]}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "voting_not_open"


async def test_a_nul_counts_only_in_the_fields_the_vote_reads(mail_client, mail_app, smtp, conn):
    _, _, noms = await open_voting(mail_app, conn)
    csrf = await verify_voter(mail_client, mail_app, smtp, "nul@example.org")
    h = {"X-CSRF-Token": csrf}
    # In the nomination: no text column holds it, 422.
    r = await mail_client.post("/api/votes", json={"nomination": "N\u0000"}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid"
    # In a field the vote ignores: ignored like the rest of that field.
    r = await mail_client.post(
        "/api/votes", json={"nomination": noms["C1"][0], "note\u0000": ["a\u0000"]}, headers=h
    )
    assert r.status_code == 202, r.text


async def test_a_close_with_seconds_is_told_to_the_second(mail_client, mail_app, smtp, conn):
    from datetime import datetime, time, timedelta

    from tests.fixtures.voting import with_window
    from voting.contest import GENEVA

    edition, _, noms = await open_voting(mail_app, conn)
    csrf = await verify_voter(mail_client, mail_app, smtp, "seconds@example.org")
    rt = runtime_for(mail_app)
    t = await redis_now(mail_app.state.services.r)
    yesterday = t.astimezone(GENEVA).date() - timedelta(days=1)
    close = datetime.combine(yesterday, time(23, 0, 30), tzinfo=GENEVA)
    await rt.ballot.sync_window(with_window(edition, close - timedelta(days=2), close))
    for lang, expected in [("en", "23:00:30"), ("fr", "23:00:30"), ("ar", "23:00:30")]:
        r = await mail_client.post(
            f"/api/votes?lang={lang}" if lang != "en" else "/api/votes",
            json={"nomination": noms["C1"][0]},
            headers={"X-CSRF-Token": csrf, "Accept-Language": lang},
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "voting_closed"
        assert expected in r.json()["error"]["message"], r.json()["error"]["message"]


async def test_500_concurrent_attempts_over_two_spellings_yield_one_vote(mail_app, smtp, conn):
    edition, edition_id, noms = await open_voting(mail_app, conn)
    clients = []
    tokens = []
    for spelling in ("jane.doe+prizes@gmail.com", "JaneDoe@googlemail.com"):
        c = AsyncClient(transport=ASGITransport(app=mail_app), base_url="http://testserver")
        clients.append(c)
        tokens.append(await verify_voter(c, mail_app, smtp, spelling))
    try:
        attempts = [
            clients[i % 2].post(
                "/api/votes",
                json={"nomination": noms["C3"][i % len(noms["C3"])]},
                headers={"X-CSRF-Token": tokens[i % 2]},
            )
            for i in range(500)
        ]
        responses = await asyncio.gather(*attempts)
    finally:
        for c in clients:
            await c.aclose()
    codes = sorted(r.status_code for r in responses)
    assert codes.count(202) == 1 and codes.count(409) == 499
    receipt = next(r.json()["receipt"] for r in responses if r.status_code == 202)
    assert all(r.json()["error"]["receipt"] == receipt for r in responses if r.status_code == 409)
    await flush(mail_app)
    assert await conn.fetchval("SELECT count(*) FROM votes WHERE edition_id=$1", edition_id) == 1
    svc = mail_app.state.services
    result = await reconcile(svc.r, conn, svc.settings.redis_prefix, edition.slug)
    assert result.ok and sum(result.redis_counts.values()) == 1


async def test_completeness_rule_over_http(mail_client, mail_app, smtp, conn):
    edition, _, noms = await open_voting(mail_app, conn, completeness=True)
    csrf = await verify_voter(mail_client, mail_app, smtp, "all@example.org")
    results = []
    for code in ("C1", "C2", "C3"):
        r = await mail_client.post(
            "/api/votes", json={"nomination": noms[code][0]}, headers={"X-CSRF-Token": csrf}
        )
        assert r.status_code == 202
        results.append(r.json()["counted"])
    assert results == [False, False, True]
    svc = mail_app.state.services
    assert sum((await runtime_for(mail_app).ballot.live_counts(edition.slug)).values()) == 3
    await flush(mail_app)
    assert (await reconcile(svc.r, conn, svc.settings.redis_prefix, edition.slug)).ok


async def test_redis_unavailable_is_a_503_and_nothing_is_recorded(
    mail_client, mail_app, smtp, conn
):
    from voting.services import open_redis

    _, _, noms = await open_voting(mail_app, conn)
    csrf = await verify_voter(mail_client, mail_app, smtp, "outage@example.org")
    rt = runtime_for(mail_app)
    good = rt.ballot.redis
    dead = open_redis("redis://127.0.0.1:1/0", max_connections=2, timeout=0.5)
    from voting.ballot import Ballot

    key = rt.ballot.address_key
    rt.ballot = Ballot(dead, mail_app.state.services.settings.redis_prefix, address_key=key)
    try:
        r = await mail_client.post(
            "/api/votes", json={"nomination": noms["C1"][0]}, headers={"X-CSRF-Token": csrf}
        )
    finally:
        rt.ballot = Ballot(good, mail_app.state.services.settings.redis_prefix, address_key=key)
        await dead.aclose()
    assert r.status_code == 503 and r.headers["retry-after"]
    assert r.json()["error"]["code"] == "unavailable"
    assert "NOT recorded" in r.json()["error"]["message"]
    assert (await mail_client.get("/api/votes/mine")).json()["votes"] == []


async def test_a_wiped_window_comes_back_from_the_stored_edition_not_a_stale_snapshot(
    mail_client, mail_app, smtp, conn
):
    from datetime import timedelta

    from voting.ballot import Ballot, from_micros
    from voting.clock import FrozenClock
    from voting.contest.actions import extend_voting

    edition, _, noms = await open_voting(mail_app, conn)
    csrf = await verify_voter(mail_client, mail_app, smtp, "wiped@example.org")
    r = await mail_client.post(
        "/api/votes", json={"nomination": noms["C1"][0]}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 202  # this worker now holds a snapshot of the edition
    svc = mail_app.state.services
    old_close = edition.phase("voting").closes_at
    # Another process extends the voting (and writes the window); then Redis loses
    # everything of this engine, the new window with it.
    done = await extend_voting(
        conn,
        Ballot(svc.r, svc.settings.redis_prefix),
        edition.slug,
        old_close + timedelta(days=1),
        clock=FrozenClock(await redis_now(svc.r)),
        actor="test",
        reason="wipe",
    )
    new_close = done.new_close
    keys = [k async for k in svc.r.scan_iter(match=f"{svc.settings.redis_prefix}:*")]
    await svc.r.delete(*keys)
    r = await mail_client.post(
        "/api/votes", json={"nomination": noms["C2"][0]}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 202, r.text
    # The window written back is the extended one, on every shard, not the snapshot's.
    ballot = runtime_for(mail_app).ballot
    for shard in range(ballot.shards):
        closes = await svc.r.hget(ballot.keys(edition.slug).window(shard), "closes")
        assert from_micros(closes.decode()) == new_close


async def test_after_a_redis_wipe_a_voter_who_voted_is_still_refused_a_second_vote(
    mail_client, mail_app, smtp, conn
):
    # Redis comes back empty: the first vote that finds no window repairs the edition
    # from the ledger before the window is written again, so the ballots are back first.
    edition, edition_id, noms = await open_voting(mail_app, conn)
    csrf = await verify_voter(mail_client, mail_app, smtp, "twice@example.org")
    first = await mail_client.post(
        "/api/votes", json={"nomination": noms["C1"][0]}, headers={"X-CSRF-Token": csrf}
    )
    assert first.status_code == 202, first.text
    assert (await flush(mail_app)).inserted == 1
    svc = mail_app.state.services
    keys = [k async for k in svc.r.scan_iter(match=f"{svc.settings.redis_prefix}:*")]
    await svc.r.delete(*keys)
    again = await mail_client.post(
        "/api/votes", json={"nomination": noms["C1"][1]}, headers={"X-CSRF-Token": csrf}
    )
    assert again.status_code == 409, again.text
    assert again.json()["error"]["receipt"] == first.json()["receipt"]
    # The counters are back too, and the window: another category votes as before.
    assert await runtime_for(mail_app).ballot.live_counts(edition.slug) == {noms["C1"][0]: 1}
    other = await mail_client.post(
        "/api/votes", json={"nomination": noms["C2"][0]}, headers={"X-CSRF-Token": csrf}
    )
    assert other.status_code == 202, other.text
    assert (await flush(mail_app)).inserted == 1
    rows = await conn.fetch(
        "SELECT category, receipt FROM votes WHERE edition_id=$1 ORDER BY category", edition_id
    )
    assert [(r["category"], r["receipt"]) for r in rows] == [
        ("C1", first.json()["receipt"]),
        ("C2", other.json()["receipt"]),
    ]


async def test_a_vote_meeting_a_repair_in_progress_is_refused_with_nothing_recorded(
    mail_client, mail_app, smtp, conn
):
    from voting.ledger import REPAIR_LOCK

    edition, _edition_id, noms = await open_voting(mail_app, conn)
    csrf = await verify_voter(mail_client, mail_app, smtp, "during@example.org")
    svc = mail_app.state.services
    keys = [k async for k in svc.r.scan_iter(match=f"{svc.settings.redis_prefix}:*")]
    await svc.r.delete(*keys)
    # Another process holds the edition's repair lock (a repair under way).
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))", REPAIR_LOCK, edition.slug
        )
        r = await mail_client.post(
            "/api/votes", json={"nomination": noms["C1"][0]}, headers={"X-CSRF-Token": csrf}
        )
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "unavailable"
        assert r.headers["retry-after"]
    assert await runtime_for(mail_app).ballot.window(edition.slug) is None
    retry = await mail_client.post(
        "/api/votes", json={"nomination": noms["C1"][0]}, headers={"X-CSRF-Token": csrf}
    )
    assert retry.status_code == 202, retry.text
    assert (await flush(mail_app)).inserted == 1


@pytest.mark.parametrize("show", [False, True])
async def test_live_counts_are_for_the_committee_unless_the_edition_shows_them(
    client, app, conn, show
):
    edition, _, _ = await open_voting(app, conn)
    if show:
        await conn.execute(
            "UPDATE editions SET rules = rules || '{\"show_live_counts\": true}' WHERE slug=$1",
            edition.slug,
        )
        runtime_for(app).catalog.invalidate()
    r = await client.get("/api/live-counts")
    assert r.status_code == (200 if show else 401)


async def test_the_nomination_page_has_a_vote_button(mail_client, mail_app, smtp, conn):
    _, _, noms = await open_voting(mail_app, conn)
    target = noms["C2"][0]
    anonymous = await mail_client.get(f"/nominations/{target}")
    assert anonymous.status_code == 200
    assert "Confirm your email address to vote for this project" in anonymous.text
    await verify_voter(mail_client, mail_app, smtp, "button@example.org")
    page = await mail_client.get(f"/nominations/{target}")
    assert "Vote for this project" in page.text
    # The button opens the ballot with this project chosen: the vote is confirmed there,
    # on the page whose stepup.js reports navigator.webdriver in its hidden field.
    ballot = await mail_client.get(f"/vote/C2?choose={target}")
    assert 'name="webdriver"' in ballot.text and "/static/stepup.js" in ballot.text
    form_token = re.search(r'name="form_token" value="([^"]+)"', ballot.text).group(1)
    reading(mail_app)
    voted = await mail_client.post(
        "/vote/C2",
        data={"nomination": target, "csrf_token": csrf_from(ballot.text), "form_token": form_token},
    )
    assert voted.status_code == 202
    after = await mail_client.get(f"/nominations/{target}")
    assert "You voted for this project" in after.text
    other = await mail_client.get(f"/nominations/{noms['C2'][1]}")
    assert "already voted in this category" in other.text
