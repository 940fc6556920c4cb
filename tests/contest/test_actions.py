"""voting/contest/actions.py: extending the voting, called directly, by the organizer's
page and by `voting edition extend`, which must all be the same action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from tests.fixtures.cli import run
from tests.fixtures.editions import edition_data
from tests.fixtures.flows import csrf_from, sign_in
from tests.fixtures.voting import open_voting, runtime_for
from voting import accounts, edition_store
from voting.ballot import Ballot
from voting.clock import FrozenClock
from voting.contest import GENEVA, builtin_edition_path, load_edition_file, parse_edition
from voting.contest.actions import (
    ExtensionRefused,
    extend_voting,
    load_edition,
    parse_wall_time,
)
from voting.errors import Refusal

# Voting from 9 to 24 March 2027; Geneva goes to summer time on 28 March (02:00 -> 03:00).
NOW = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)


async def _edition(conn, ballot):
    edition = parse_edition(edition_data(), now=NOW)
    await edition_store.save_edition(conn, edition, now=NOW - timedelta(days=400), actor="t")
    await ballot.sync_window(edition)
    return edition


class _Catalog:
    def __init__(self) -> None:
        self.dropped = 0

    def invalidate(self) -> None:
        self.dropped += 1


async def test_a_wall_time_is_the_editions_own_with_its_summer_time(conn, ballot):
    edition = await _edition(conn, ballot)
    catalog = _Catalog()
    # 23:00 Geneva time on 29 March 2027 is summer time (UTC+2): 21:00 UTC, as in 2014.
    done = await extend_voting(
        conn,
        ballot,
        edition.slug,
        parse_wall_time("2027-03-29 23:00"),
        clock=FrozenClock(NOW),
        actor="cli:o",
        reason="the call was late",
        catalog=catalog,
    )
    assert done.new_close == datetime(2027, 3, 29, 21, 0, tzinfo=UTC)
    assert done.old_close == edition.phase("voting").closes_at
    assert done.edition.phase("voting").closes_at == done.new_close
    assert done.edition.revision > 0
    # Every worker reads the new window from Redis; this process's cache is dropped.
    assert (await ballot.window(edition.slug))[1] == done.new_close
    assert catalog.dropped == 1


async def test_a_wall_time_the_clocks_skip_is_refused_and_nothing_changes(conn, ballot):
    edition = await _edition(conn, ballot)
    with pytest.raises(ExtensionRefused) as refused:
        await extend_voting(
            conn,
            ballot,
            edition.slug,
            parse_wall_time("2027-03-28T02:30"),
            clock=FrozenClock(NOW),
            actor="t",
            reason="r",
        )
    assert refused.value.status == 422 and refused.value.code == "ambiguous_time"
    assert refused.value.fields == {"new_close": "not a single instant"}
    assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE action='voting.extend'") == 0
    stored = await edition_store.get_edition(conn, edition.slug)
    assert stored.phase("voting").closes_at == edition.phase("voting").closes_at


async def test_refusals_have_stable_codes_and_are_worded_in_the_readers_language(conn, ballot):
    edition = await _edition(conn, ballot)
    close = edition.phase("voting").closes_at
    cases = [
        ("nope", close + timedelta(days=1), "no_such_edition", 404),
        (edition.slug, close + timedelta(days=60), "swallows_expert_review", 422),
        (edition.slug, close, "not_later", 422),
    ]
    for slug, new_close, code, status in cases:
        with pytest.raises(Refusal) as refused:
            await extend_voting(
                conn, ballot, slug, new_close, clock=FrozenClock(NOW), actor="t", reason="r"
            )
        assert (refused.value.code, refused.value.status) == (code, status)
    with pytest.raises(ExtensionRefused) as refused:
        parse_wall_time("tomorrow")
    assert refused.value.code == "invalid_time"
    assert "Geneva" in refused.value.text("en")
    assert refused.value.text("fr") != refused.value.text("en")
    assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE action='voting.extend'") == 0


@examples(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=20))
def test_only_a_date_and_a_time_parse_and_they_read_back_the_same(raw: str) -> None:
    try:
        parsed = parse_wall_time(raw)
    except ExtensionRefused as exc:
        assert exc.code == "invalid_time" and exc.status == 422
        return
    assert parsed.tzinfo is None and parsed.second == 0
    assert parse_wall_time(parsed.strftime("%Y-%m-%d %H:%M")) == parsed


async def test_the_page_and_the_command_line_take_the_same_action(
    mail_client, mail_app, smtp, conn, settings
):
    edition, _, _ = await open_voting(mail_app, conn)
    await accounts.grant(conn, "organizer@example.org", "organizer")
    await sign_in(mail_client, mail_app, smtp, "organizer@example.org")
    page = await mail_client.get("/organizer/voting")
    old = edition.phase("voting").closes_at
    by_page = (old + timedelta(days=1)).astimezone(GENEVA)
    r = await mail_client.post(
        "/organizer/voting/extend",
        data={
            "new_close": by_page.strftime("%Y-%m-%dT%H:%M"),
            "reason": "outage",
            "csrf_token": csrf_from(page.text),
        },
    )
    assert r.status_code == 200 and "Voting now closes on" in r.text
    by_cli = (old + timedelta(days=2)).astimezone(GENEVA)
    code = await run(
        settings,
        *("edition", "extend", edition.slug, "--to", by_cli.strftime("%Y-%m-%d %H:%M")),
        *("--reason", "outage", "--by", "organizer@example.org"),
    )
    assert code == 0
    rows = await conn.fetch(
        "SELECT actor, action, edition, reason, detail FROM audit_log"
        " WHERE action='voting.extend' ORDER BY id"
    )
    assert [r["actor"] for r in rows] == ["user:organizer@example.org", "cli:organizer@example.org"]
    # The same record, field for field, from either door.
    page_row, cli_row = (dict(r) for r in rows)
    assert page_row["detail"]["new_close"] == cli_row["detail"]["old_close"]
    for row in (page_row, cli_row):
        del row["actor"], row["detail"]
    assert page_row == cli_row
    # Both wrote the window every worker reads.
    window = await Ballot(mail_app.state.services.r, settings.redis_prefix).window(edition.slug)
    assert window[1] == by_cli.replace(second=0, microsecond=0).astimezone(UTC)
    assert (await runtime_for(mail_app).ballot.window(edition.slug))[1] == window[1]
    # A refusal on the page is worded in the reader's language, with its status.
    r = await mail_client.post(
        "/organizer/voting/extend?lang=fr",
        data={"new_close": "2020-01-01 10:00", "reason": "x", "csrf_token": csrf_from(page.text)},
    )
    assert r.status_code == 422 and "postérieure à la clôture actuelle" in r.text


def test_the_organizer_routes_are_the_organizer_modules(settings) -> None:
    """web/voting.py keeps an older copy of these two pages until it is cut out: the app
    must route to the one that calls the action."""
    from voting.app import create_app
    from voting.web import organizer

    app = create_app(settings)  # not started: only its routes are read
    found = {}
    for route in app.routes:
        path = getattr(route, "path", None)
        if path in ("/organizer/voting", "/organizer/voting/extend") and path not in found:
            found[path] = route.endpoint  # type: ignore[attr-defined]
    assert found == {
        "/organizer/voting": organizer.organizer_voting,
        "/organizer/voting/extend": organizer.organizer_extend,
    }


async def test_loading_stores_writes_the_window_and_refuses_a_locked_edition(conn, ballot):
    edition = parse_edition(edition_data(), now=NOW)
    catalog = _Catalog()
    before_voting = FrozenClock(NOW - timedelta(days=2))
    stored = await load_edition(
        conn, ballot, edition, clock=before_voting, actor="t", catalog=catalog
    )
    assert stored.revision > 0 and catalog.dropped == 1
    voting = stored.phase("voting")
    assert await ballot.window(edition.slug) == (voting.opens_at, voting.closes_at)
    # Replaced before its voting opens: a new revision, written over the old window.
    again = await load_edition(conn, ballot, edition, clock=before_voting, actor="t")
    assert again.revision > stored.revision
    with pytest.raises(edition_store.EditionLocked) as locked:
        await load_edition(conn, ballot, edition, clock=FrozenClock(NOW), actor="t")
    assert (locked.value.status, locked.value.code) == (409, "edition_locked")
    assert locked.value.text("fr") != locked.value.text("en")
    actions = await conn.fetch("SELECT action, actor FROM audit_log ORDER BY id")
    assert [tuple(a) for a in actions] == [("edition.load", "t"), ("edition.replace", "t")]


async def test_the_command_line_loads_through_the_same_action(
    conn, ballot, settings, database_url, capsys
):
    # Editions are the owner's to load (0011_least_privilege.sql), as `voting` runs here.
    settings = settings.with_overrides(database_url=database_url)
    assert await run(settings, "edition", "load", "demo") == 0
    slug = load_edition_file(builtin_edition_path("demo"), now=NOW).slug
    assert f"loaded edition {slug!r}" in capsys.readouterr().out
    stored = await edition_store.get_edition(conn, slug)
    voting = stored.phase("voting")
    # The window every worker reads, as load_edition writes it.
    assert await ballot.window(slug) == (voting.opens_at, voting.closes_at)
    entry = await conn.fetchrow("SELECT actor, action, edition FROM audit_log")
    assert tuple(entry) == ("cli", "edition.load", slug)
    # The demo's voting is open: loading it again is the action's refusal, in English.
    assert await run(settings, "edition", "load", "demo") == 2
    assert f"Edition {slug} is locked" in capsys.readouterr().err


async def test_a_file_that_drops_a_category_with_nominations_is_refused(conn, ballot):
    from voting.contest.actions import LoadRefused
    from voting.seed import seed_nominations

    data = edition_data()
    before_voting = FrozenClock(NOW - timedelta(days=2))
    stored = await load_edition(
        conn, ballot, parse_edition(data, now=NOW), clock=before_voting, actor="t"
    )
    await seed_nominations(conn, 3, edition_slug=stored.slug, seed=1, progress=False)
    data["categories"] = data["categories"][:2]  # C3 has a nomination
    with pytest.raises(LoadRefused) as refused:
        await load_edition(
            conn, ballot, parse_edition(data, now=NOW), clock=before_voting, actor="t"
        )
    assert (refused.value.status, refused.value.code) == (409, "category_in_use")
    kept = await edition_store.get_edition(conn, stored.slug)
    assert [c.code for c in kept.categories] == ["C1", "C2", "C3"]
    assert kept.revision == stored.revision
