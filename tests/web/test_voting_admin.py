"""Extending the deadline, the committee's live page, the per-voter order, start-up checks."""

import asyncio
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fixtures.flows import csrf_from, sign_in
from tests.fixtures.voting import open_voting, redis_now, runtime_for, verify_voter
from voting import accounts, edition_store
from voting.ballot import micros
from voting.clock import FrozenClock
from voting.contest import GENEVA, builtin_edition_path
from voting.contest.actions import ExtensionRefused, extend_voting
from voting.operations import redis_durability_warnings
from voting.web.voting import shuffled

# Every test here once on a single Redis and once on a Redis Cluster (redis_backend).
pytestmark = pytest.mark.backends


async def test_extend_moves_the_close_later_on_the_record_for_every_worker(conn, app):
    edition, _, _ = await open_voting(app, conn)
    svc = app.state.services
    rt = runtime_for(app)
    old = edition.phase("voting").closes_at

    async def extend(new_close, *, clock=svc.clock, actor="t", reason="r"):
        return await extend_voting(
            conn, rt.ballot, edition.slug, new_close, clock=clock, actor=actor, reason=reason
        )

    with pytest.raises(ExtensionRefused, match="later") as refused:
        await extend(old - timedelta(hours=1), reason="earlier")
    assert refused.value.code == "not_later"
    with pytest.raises(ExtensionRefused, match="reason") as refused:
        await extend(old + timedelta(days=1), reason="  ")
    assert refused.value.code == "reason_required"
    with pytest.raises(ExtensionRefused, match="while voting is open") as refused:
        await extend(old + timedelta(days=2), clock=FrozenClock(old), reason="late")
    assert refused.value.code == "voting_not_open"
    new_close = old + timedelta(days=3)
    await extend(new_close, actor="user:o@x.org", reason="servers were slow")
    stored = await edition_store.get_edition(conn, edition.slug)
    assert stored.phase("voting").closes_at == new_close
    assert stored.phase("expert_review").opens_at >= new_close
    entry = await conn.fetchrow("SELECT * FROM audit_log WHERE action='voting.extend'")
    assert entry["actor"] == "user:o@x.org" and entry["reason"] == "servers were slow"
    assert entry["detail"]["old_close"] == old.isoformat()
    assert entry["detail"]["new_close"] == new_close.isoformat()
    # The action wrote the window: two separate Ballot objects (two workers) read the
    # same one from Redis.
    from voting.ballot import Ballot

    other_worker = Ballot(svc.r, svc.settings.redis_prefix)
    assert (await other_worker.window(edition.slug))[1] == new_close


async def test_a_worker_starting_with_an_old_read_cannot_undo_an_extension(conn, app):
    """A worker that read the edition just before an extension committed, and writes its
    window just after the extension's own write, must not put the old close back."""
    from voting.ballot import Ballot
    from voting.operations import sync_current_window

    edition, _, _ = await open_voting(app, conn)
    svc = app.state.services
    ballot = Ballot(svc.r, svc.settings.redis_prefix)
    read_before = await edition_store.get_edition(conn, edition.slug)  # the starting worker
    new_close = edition.phase("voting").closes_at + timedelta(days=2)
    # The organizer's action writes the new close.
    extended = (
        await extend_voting(
            conn, ballot, edition.slug, new_close, clock=svc.clock, actor="t", reason="outage"
        )
    ).edition
    assert extended.revision > read_before.revision
    await ballot.sync_window(read_before)  # then the starting worker, with its old read
    assert (await ballot.window(edition.slug))[1] == new_close
    for shard in range(ballot.shards):
        closes = await svc.r.hget(ballot.keys(edition.slug).window(shard), "closes")
        assert int(closes) == micros(new_close)
    # What start-up reads now is the new revision: written (again), the same close.
    await sync_current_window(svc)
    assert (await ballot.window(edition.slug))[1] == new_close


async def test_organizer_page_extends_voting(mail_client, mail_app, smtp, conn):
    edition, _, _ = await open_voting(mail_app, conn)
    # Without the role: refused.
    await sign_in(mail_client, mail_app, smtp, "someone@example.org")
    assert (await mail_client.get("/organizer/voting")).status_code == 403
    await accounts.grant(conn, "someone@example.org", "organizer")
    # A change of roles ends the account's sessions: sign in again with the new role.
    await sign_in(mail_client, mail_app, smtp, "someone@example.org")
    page = await mail_client.get("/organizer/voting")
    assert page.status_code == 200 and "Extend the deadline" in page.text
    old = edition.phase("voting").closes_at
    wall = (old + timedelta(days=1)).astimezone(GENEVA).strftime("%Y-%m-%d %H:%M")
    bad = await mail_client.post(
        "/organizer/voting/extend",
        data={"new_close": "tomorrow", "reason": "x", "csrf_token": csrf_from(page.text)},
    )
    assert bad.status_code == 422 and "Geneva time" in bad.text
    no_csrf = await mail_client.post(
        "/organizer/voting/extend", data={"new_close": wall, "reason": "x"}
    )
    assert no_csrf.status_code == 403
    done = await mail_client.post(
        "/organizer/voting/extend",
        data={"new_close": wall, "reason": "network outage", "csrf_token": csrf_from(page.text)},
    )
    assert done.status_code == 200 and "Voting now closes on" in done.text
    assert "network outage" in done.text
    window = await runtime_for(mail_app).ballot.window(edition.slug)
    assert window[1].astimezone(GENEVA).strftime("%Y-%m-%d %H:%M") == wall


async def test_committee_live_page_needs_the_role_and_shows_counts(
    mail_client, mail_app, smtp, conn
):
    _, _, noms = await open_voting(mail_app, conn)
    voter_client = mail_client
    csrf = await verify_voter(voter_client, mail_app, smtp, "fan@example.org")
    await voter_client.post(
        "/api/votes", json={"nomination": noms["C1"][0]}, headers={"X-CSRF-Token": csrf}
    )
    await sign_in(mail_client, mail_app, smtp, "chair@example.org")
    assert (await mail_client.get("/committee/live")).status_code == 403
    assert (await mail_client.get("/api/live-counts")).status_code == 403
    await accounts.grant(conn, "chair@example.org", "committee")
    # A change of roles ends the account's sessions: sign in again with the new role.
    await sign_in(mail_client, mail_app, smtp, "chair@example.org")
    page = await mail_client.get("/committee/live")
    # Refreshed in place by refresh.js, with a pause button (no meta refresh: WCAG 2.2.1).
    assert page.status_code == 200 and 'data-refresh="15"' in page.text
    counts = (await mail_client.get("/api/live-counts")).json()
    assert {n["nomination"]: n["counted"] for n in counts["nominations"]} == {noms["C1"][0]: 1}


@given(
    voter=st.text(min_size=1, max_size=40),
    ids=st.lists(
        st.from_regex(r"N[0-9A-Z]{8}", fullmatch=True), min_size=2, max_size=30, unique=True
    ),
)
def test_the_order_is_stable_per_voter_and_a_permutation(voter, ids):
    nominations = [{"public_id": i} for i in ids]
    first = shuffled(voter, nominations)
    assert [n["public_id"] for n in first] == [
        n["public_id"] for n in shuffled(voter, nominations[::-1])
    ]
    assert sorted(n["public_id"] for n in first) == sorted(ids)


def test_different_voters_see_different_orders():
    nominations = [{"public_id": f"N{i:08d}"} for i in range(10)]
    orders = {tuple(n["public_id"] for n in shuffled(f"voter{v}", nominations)) for v in range(50)}
    assert len(orders) > 40
    firsts = {order[0] for order in orders}
    assert len(firsts) > 5  # no project is always on top


async def test_a_redis_without_append_only_file_is_warned_about(app):
    warnings = await redis_durability_warnings(app.state.services.r)
    config = await app.state.services.r.config_get("appendonly")
    if config["appendonly"] == "yes":
        fsync = (await app.state.services.r.config_get("appendfsync"))["appendfsync"]
        assert bool(warnings) == (fsync != "always")
    else:
        assert warnings and "LOST" in warnings[0]


async def test_embedded_redis_is_durable_and_not_warned_about(tmp_path):
    import tempfile
    from pathlib import Path

    from voting.embedded import EmbeddedServers
    from voting.services import open_redis

    servers = EmbeddedServers(Path(tempfile.mkdtemp(prefix="wsis-r-", dir="/tmp")))
    try:
        url = servers.start_redis()
        client = open_redis(url)
        assert await redis_durability_warnings(client) == []
        await client.aclose()
    finally:
        servers.stop()


async def test_voting_lock_refuses_rule_changes_after_opening(conn, app):
    edition, _, _ = await open_voting(app, conn)
    from dataclasses import replace

    rules = edition.rules
    changed = replace(
        edition, rules=replace(rules, results=replace(rules.results, completeness_rule=True))
    )
    with pytest.raises(edition_store.EditionLocked):
        await edition_store.save_edition(
            conn, changed, now=await redis_now(app.state.services.r), actor="t"
        )


async def test_edition_load_replaces_a_window_a_worker_wrote(
    conn, database_url, redis_url, redis_prefix, redis_client, monkeypatch, tmp_path
):
    """`voting edition load` writes the stored edition's window, of a newer revision than
    the one a running worker wrote from PostgreSQL, so Redis takes the new calendar."""
    from voting.ballot import Ballot
    from voting.cli import main

    monkeypatch.setenv("VOTING_DATABASE_URL", database_url)
    monkeypatch.setenv("VOTING_REDIS_URL", redis_url)
    monkeypatch.setenv("VOTING_REDIS_PREFIX", redis_prefix)
    # The demo calendar moved ahead, so voting has not opened yet and it may be reloaded.
    demo = builtin_edition_path("demo").read_text()
    later = tmp_path / "later.toml"
    later.write_text(
        demo.replace('opens_in = "-40d"', 'opens_in = "+1d"')
        .replace('closes_in = "-20d"', 'closes_in = "+2d"')
        .replace('opens_in = "-20d"', 'opens_in = "+2d"')
        .replace('closes_in = "-1d"', 'closes_in = "+3d"')
        .replace('opens_in = "-1d"', 'opens_in = "+3d"')
    )
    load = ["edition", "load", str(later), "--current"]
    assert await asyncio.to_thread(main, load) == 0
    ballot = Ballot(redis_client, redis_prefix)
    first = await edition_store.current_edition(conn)
    await ballot.sync_window(first)  # what a worker writes at its start
    # Loaded again with voting a day longer: a later revision, a new window.
    later.write_text(
        later.read_text()
        .replace('closes_in = "+14d"', 'closes_in = "+15d"')
        .replace('opens_in = "+14d"', 'opens_in = "+15d"')
    )
    assert await asyncio.to_thread(main, load) == 0
    second = await edition_store.current_edition(conn)
    assert second.revision > first.revision
    window = await ballot.window(second.slug)
    assert window == (second.phase("voting").opens_at, second.phase("voting").closes_at)
    assert window != (first.phase("voting").opens_at, first.phase("voting").closes_at)
