"""The nomination workflow against real PostgreSQL, without HTTP."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest

from tests.fixtures.editions import load_data
from tests.fixtures.locks import WithoutAdvisoryLocks
from tests.fixtures.nominations import complete, open_edition
from voting import accounts, db, edition_store
from voting import nominations as noms
from voting.contest import parse_edition
from voting.nominations import NominationError, PublicQuery

BASE = "http://testserver"


@pytest.fixture
async def edition(conn, clock):
    return await load_data(conn, open_edition(), clock.now())


@pytest.fixture
async def alice(conn):
    return await accounts.get_or_create(conn, "alice@example.org")


@pytest.fixture
async def bob(conn):
    return await accounts.get_or_create(conn, "bob@example.org")


@pytest.fixture
async def organizer(conn):
    return await accounts.grant(conn, "organizer@itu.example", "organizer")


async def create(conn, edition, user, clock, *, submit=True, key=None, **overrides):
    nomination, _ = await noms.create(
        conn,
        edition,
        user,
        complete(**overrides),
        now=clock.now(),
        base_url=BASE,
        idempotency_key=key,
        submit=submit,
    )
    return nomination


async def decide(conn, edition, organizer, nomination, clock, decision, reason=""):
    return await noms.decide(
        conn,
        edition,
        organizer,
        nomination.public_id,
        {"decision": decision, "reason": reason},
        now=clock.now(),
        base_url=BASE,
    )


async def outbox(conn, to):
    return await conn.fetch("SELECT subject, body FROM outbox WHERE to_addr=$1 ORDER BY id", to)


# -- drafts and submissions --------------------------------------------------------------------


async def test_a_draft_then_a_submission(conn, edition, alice, clock):
    draft, created = await noms.create(
        conn,
        edition,
        alice,
        {"category": "C2", "title": "Mountain Village Broadband"},
        now=clock.now(),
        base_url=BASE,
    )
    assert created and draft.status == "draft" and draft.country == ""
    assert draft.public_id.startswith("N") and len(draft.public_id) == 9
    assert await outbox(conn, "alice@example.org") == []

    with pytest.raises(NominationError) as missing:
        await noms.submit(conn, edition, alice, draft.public_id, now=clock.now(), base_url=BASE)
    assert missing.value.code == "invalid"
    assert {"organization", "country", "summary", "languages"} <= set(missing.value.fields)

    clock.advance(timedelta(minutes=5))
    await noms.update(
        conn, edition, alice, draft.public_id, complete(), now=clock.now(), base_url=BASE
    )
    submitted = await noms.submit(
        conn, edition, alice, draft.public_id, now=clock.now(), base_url=BASE
    )
    assert submitted.status == "submitted" and submitted.submitted_at == clock.now()
    assert submitted.contact_email == "prizes@example.org"
    assert submitted.languages == ("en", "fr", "rw")

    mails = await outbox(conn, "alice@example.org")
    assert len(mails) == 1 and draft.public_id in mails[0]["subject"]
    assert f"{BASE}/nominations/{draft.public_id}" in mails[0]["body"]
    actions = await conn.fetch(
        "SELECT actor, action FROM audit_log WHERE subject=$1 ORDER BY id", draft.public_id
    )
    assert [(a["actor"], a["action"]) for a in actions] == [
        (f"user:{alice.id}", "nomination.create"),
        (f"user:{alice.id}", "nomination.submit"),
    ]


async def test_submitting_twice_is_harmless(conn, edition, alice, clock):
    nomination = await create(conn, edition, alice, clock)
    again = await noms.submit(
        conn, edition, alice, nomination.public_id, now=clock.now(), base_url=BASE
    )
    assert again.status == "submitted"
    assert len(await outbox(conn, "alice@example.org")) == 1


async def test_the_same_idempotency_key_gives_one_nomination(conn, edition, alice, clock):
    first = await create(conn, edition, alice, clock, key="form-123")
    second, created = await noms.create(
        conn,
        edition,
        alice,
        complete(),
        now=clock.now(),
        base_url=BASE,
        idempotency_key="form-123",
        submit=True,
    )
    assert not created and second.public_id == first.public_id
    assert await conn.fetchval("SELECT count(*) FROM nominations") == 1


async def test_a_concurrent_double_click_creates_one_nomination(
    conn, database_url, edition, alice, clock
):
    other = await db.connect(database_url)
    try:
        results = await asyncio.gather(
            *(
                noms.create(
                    c,
                    edition,
                    alice,
                    complete(),
                    now=clock.now(),
                    base_url=BASE,
                    idempotency_key="double-click",
                    submit=True,
                )
                for c in (conn, other)
            )
        )
    finally:
        await other.close()
    assert {n.public_id for n, _ in results} == {results[0][0].public_id}
    assert sorted(created for _, created in results) == [False, True]
    assert await conn.fetchval("SELECT count(*) FROM nominations") == 1
    assert len(await outbox(conn, "alice@example.org")) == 1


async def test_the_double_click_race_happens_without_an_idempotency_key(
    conn, database_url, edition, alice, clock
):
    """The control of the test above: the same two concurrent creations, without the key
    that guards them, make two nominations. So the workload really races, and the test
    above would fail if the key stopped guarding it."""
    other = await db.connect(database_url)
    try:
        results = await asyncio.gather(
            *(
                noms.create(
                    c, edition, alice, complete(), now=clock.now(), base_url=BASE, submit=False
                )
                for c in (conn, other)
            )
        )
    finally:
        await other.close()
    assert [created for _, created in results] == [True, True]
    assert await conn.fetchval("SELECT count(*) FROM nominations") == 2


async def test_both_double_clicks_get_past_the_look_up_and_the_unique_key_decides(
    conn, database_url, edition, alice, clock
):
    """In the guarded double click, both requests find no nomination under the key and go
    on to insert (each issues a public id): the look-up alone would let both through, and
    the unique (owner, key) index is what turns the second into the first's nomination."""
    other = await db.connect(database_url)
    try:
        results = await asyncio.gather(
            *(
                noms.create(
                    c,
                    edition,
                    alice,
                    complete(),
                    now=clock.now(),
                    base_url=BASE,
                    idempotency_key="double-click",
                    submit=False,
                )
                for c in (conn, other)
            )
        )
    finally:
        await other.close()
    assert sorted(created for _, created in results) == [False, True]
    assert await conn.fetchval("SELECT count(*) FROM issued_public_ids") == 2
    assert await conn.fetchval("SELECT count(*) FROM nominations") == 1


async def test_another_nominators_nomination_looks_missing(conn, edition, alice, bob, clock):
    mine = await create(conn, edition, alice, clock, submit=False)
    for attempt in (
        noms.update(conn, edition, bob, mine.public_id, complete(), now=clock.now(), base_url=BASE),
        noms.submit(conn, edition, bob, mine.public_id, now=clock.now(), base_url=BASE),
    ):
        with pytest.raises(NominationError) as refused:
            await attempt
        assert refused.value.code == "not_found"
    assert (await noms.get(conn, mine.public_id)).status == "draft"


# -- the phase, in Geneva time -----------------------------------------------------------------


async def test_nominations_close_at_the_exact_instant(conn, alice, clock):
    data = open_edition()
    data["phases"]["nominations"] = {"opens": "2026-03-01 00:00", "closes": "2026-03-31 23:00"}
    data["phases"]["review"] = {"opens": "2026-03-31 23:00", "closes": "2026-04-05 00:00"}
    data["phases"]["voting"] = {"opens": "2026-04-05 00:00", "closes": "2026-04-20 23:00"}
    data["phases"]["expert_review"] = {"opens": "2026-04-21 00:00", "closes": "2026-05-01 00:00"}
    data["phases"]["results"] = {"opens": "2026-05-01 00:00", "closes": "2026-06-01 00:00"}
    edition = await load_data(conn, data, clock.now())
    close = edition.phase("nominations").closes_at
    assert close.isoformat() == "2026-03-31T21:00:00+00:00"  # CEST since 29 March

    clock.set(close - timedelta(microseconds=1))
    draft = await create(conn, edition, alice, clock, submit=False)
    clock.set(close)
    for attempt in (
        noms.submit(conn, edition, alice, draft.public_id, now=clock.now(), base_url=BASE),
        noms.update(
            conn, edition, alice, draft.public_id, complete(), now=clock.now(), base_url=BASE
        ),
        noms.create(conn, edition, alice, complete(), now=clock.now(), base_url=BASE),
    ):
        with pytest.raises(NominationError) as late:
            await attempt
        assert late.value.code == "nominations_closed"
        assert "31 March 2026, 23:00 Geneva time (CEST, UTC+02:00)" in str(late.value)

    clock.set(close - timedelta(microseconds=1))
    on_time = await noms.submit(
        conn, edition, alice, draft.public_id, now=clock.now(), base_url=BASE
    )
    assert on_time.status == "submitted"


async def test_nothing_before_nominations_open(conn, alice, clock):
    data = open_edition(phases={"nominations": ("+1h", "+1d")})
    edition = await load_data(conn, data, clock.now())
    with pytest.raises(NominationError) as early:
        await create(conn, edition, alice, clock)
    assert early.value.code == "nominations_not_open"
    assert "Nominations open on" in str(early.value)


# -- one project per organization per category; no project twice -------------------------------


async def test_one_project_per_organization_per_category(conn, edition, alice, bob, clock):
    await create(conn, edition, alice, clock, organization="Ministry of ICT, Rwanda")
    with pytest.raises(NominationError) as refused:
        await create(
            conn,
            edition,
            bob,
            clock,
            organization="  MINISTRY of ICT – Rwanda ",
            title="Another project",
        )
    assert set(refused.value.fields) == {"category"}
    assert "each organization may submit 1" in str(refused.value.fields["category"])
    # Another category, or another organization, is fine; so is a draft.
    await create(conn, edition, bob, clock, category="C3", title="Another project")
    await create(conn, edition, bob, clock, organization="Rwanda ICT Chamber", title="Third")
    await create(conn, edition, bob, clock, submit=False, title="Fourth")


async def test_the_limit_is_an_edition_rule(conn, alice, clock):
    data = open_edition()
    data["rules"] = {"nominations_per_organization_per_category": 2}
    edition = await load_data(conn, data, clock.now())
    await create(conn, edition, alice, clock, title="First")
    await create(conn, edition, alice, clock, title="Second")
    with pytest.raises(NominationError) as refused:
        await create(conn, edition, alice, clock, title="Third")
    assert "category" in refused.value.fields


async def test_a_rejected_project_frees_the_place_but_not_the_title(
    conn, edition, alice, organizer, clock
):
    first = await create(conn, edition, alice, clock, title="Village Broadband")
    await decide(conn, edition, organizer, first, clock, "reject", "Not an ICT project at all.")
    with pytest.raises(NominationError) as same:
        await create(conn, edition, alice, clock, title="village  broadband!")
    assert set(same.value.fields) == {"title"}
    await create(conn, edition, alice, clock, title="A different project")


async def test_the_same_project_is_not_submitted_twice_even_in_another_category(
    conn, edition, alice, bob, clock
):
    await create(conn, edition, alice, clock, title="Mountain Village Broadband")
    with pytest.raises(NominationError) as refused:
        await create(
            conn,
            edition,
            bob,
            clock,
            category="C3",
            title="MOUNTAIN village, broadband.",
            organization="ministry of ict rwanda",
        )
    assert set(refused.value.fields) == {"title"}
    assert "already submitted a project with this title" in str(refused.value.fields["title"])


async def test_racing_submissions_from_one_organization_let_one_through(
    conn, database_url, edition, alice, bob, clock
):
    drafts = [
        await create(conn, edition, user, clock, submit=False, title=f"Project {user.id}")
        for user in (alice, bob)
    ]
    other = await db.connect(database_url)
    try:
        outcomes = await asyncio.gather(
            *(
                noms.submit(c, edition, user, d.public_id, now=clock.now(), base_url=BASE)
                for c, user, d in zip((conn, other), (alice, bob), drafts, strict=True)
            ),
            return_exceptions=True,
        )
    finally:
        await other.close()
    refused = [o for o in outcomes if isinstance(o, NominationError)]
    assert len(refused) == 1 and "category" in refused[0].fields
    assert await conn.fetchval("SELECT count(*) FROM nominations WHERE status='submitted'") == 1


async def test_without_the_organizations_lock_racing_submissions_both_get_through(
    conn, database_url, edition, alice, bob, clock
):
    """The control of the racing test above: the same two submissions, the first still
    uncommitted while the second runs, with the advisory lock dropped. Both pass the
    one-per-category rule (neither sees the other), so the lock is what the racing test
    proves, and that test would fail without it."""
    drafts = [
        await create(conn, edition, user, clock, submit=False, title=f"Project {user.id}")
        for user in (alice, bob)
    ]
    other = await db.connect(database_url)
    first, second = WithoutAdvisoryLocks(conn), WithoutAdvisoryLocks(other)
    try:
        async with conn.transaction():
            await noms.submit(
                first, edition, alice, drafts[0].public_id, now=clock.now(), base_url=BASE
            )
            await noms.submit(
                second, edition, bob, drafts[1].public_id, now=clock.now(), base_url=BASE
            )
    finally:
        await other.close()
    assert first.dropped == 1 and second.dropped == 1
    assert await conn.fetchval("SELECT count(*) FROM nominations WHERE status='submitted'") == 2


async def test_with_the_organizations_lock_the_second_submission_waits_for_the_first(
    conn, database_url, edition, alice, bob, clock
):
    """The same shape with the lock in place: the second submission waits while the first
    is uncommitted, then sees it and is refused."""
    drafts = [
        await create(conn, edition, user, clock, submit=False, title=f"Project {user.id}")
        for user in (alice, bob)
    ]
    other = await db.connect(database_url)
    try:
        async with conn.transaction():
            await noms.submit(
                conn, edition, alice, drafts[0].public_id, now=clock.now(), base_url=BASE
            )
            waiting = asyncio.create_task(
                noms.submit(
                    other, edition, bob, drafts[1].public_id, now=clock.now(), base_url=BASE
                )
            )
            await asyncio.sleep(0.5)
            assert not waiting.done()  # held on the organization's lock
        with pytest.raises(NominationError) as refused:
            await waiting
    finally:
        await other.close()
    assert "category" in refused.value.fields
    assert await conn.fetchval("SELECT count(*) FROM nominations WHERE status='submitted'") == 1


# -- the organizers' decisions -----------------------------------------------------------------


async def test_return_edit_resubmit_accept(conn, edition, alice, organizer, clock):
    nomination = await create(conn, edition, alice, clock)
    returned = await decide(
        conn, edition, organizer, nomination, clock, "return", "Please add the partners' roles."
    )
    assert returned.status == "returned" and returned.decision_reason.startswith("Please")
    with pytest.raises(NominationError):  # a returned one waits for the nominator
        await decide(conn, edition, organizer, nomination, clock, "accept")

    edited = await noms.update(
        conn,
        edition,
        alice,
        nomination.public_id,
        complete(partners="ITU (funding)\nLocal municipalities (sites)"),
        now=clock.now(),
        base_url=BASE,
        submit=True,
    )
    assert edited.status == "submitted" and edited.partners[0] == "ITU (funding)"
    accepted = await decide(conn, edition, organizer, nomination, clock, "accept")
    assert accepted.status == "accepted" and accepted.decided_at == clock.now()

    log = await conn.fetch(
        "SELECT actor, action, reason, detail FROM audit_log WHERE subject=$1 ORDER BY id",
        nomination.public_id,
    )
    assert [r["action"] for r in log] == [
        "nomination.create",
        "nomination.submit",
        "nomination.return",
        "nomination.resubmit",
        "nomination.accept",
    ]
    back = log[2]
    assert back["actor"] == f"user:{organizer.id}"
    assert back["reason"] == "Please add the partners' roles."
    assert back["detail"]["organizer"] == "organizer@itu.example"
    assert back["detail"]["from"] == "submitted" and back["detail"]["to"] == "returned"

    subjects = [m["subject"] for m in await outbox(conn, "alice@example.org")]
    assert subjects == [
        f"We received your nomination {nomination.public_id}",
        f"Your nomination {nomination.public_id} needs changes",
        f"We received your nomination {nomination.public_id}",
        f"Your nomination {nomination.public_id} is accepted",
    ]
    body = (await outbox(conn, "alice@example.org"))[1]["body"]
    assert "Please add the partners' roles." in body
    assert f"{BASE}/nominations/{nomination.public_id}/edit" in body


async def test_rejected_is_final(conn, edition, alice, organizer, clock):
    nomination = await create(conn, edition, alice, clock)
    await decide(conn, edition, organizer, nomination, clock, "reject", "Outside the WSIS scope.")
    for attempt in (
        noms.submit(conn, edition, alice, nomination.public_id, now=clock.now(), base_url=BASE),
        noms.update(
            conn, edition, alice, nomination.public_id, complete(), now=clock.now(), base_url=BASE
        ),
    ):
        with pytest.raises(NominationError) as refused:
            await attempt
        assert refused.value.code == "final"
    with pytest.raises(NominationError) as undecidable:
        await decide(conn, edition, organizer, nomination, clock, "accept")
    assert undecidable.value.code == "not_in_review"
    mails = await outbox(conn, "alice@example.org")
    assert "Outside the WSIS scope." in mails[-1]["body"]


async def test_the_same_decision_twice_is_recorded_once(conn, edition, alice, organizer, clock):
    nomination = await create(conn, edition, alice, clock)
    await decide(conn, edition, organizer, nomination, clock, "accept")
    await decide(conn, edition, organizer, nomination, clock, "accept")
    assert (
        await conn.fetchval("SELECT count(*) FROM audit_log WHERE action='nomination.accept'") == 1
    )


async def test_drafts_cannot_be_decided(conn, edition, alice, organizer, clock):
    draft = await create(conn, edition, alice, clock, submit=False)
    with pytest.raises(NominationError) as refused:
        await decide(conn, edition, organizer, draft, clock, "accept")
    assert refused.value.code == "not_in_review"


async def test_a_decision_needs_a_reason_to_reject_or_return(
    conn, edition, alice, organizer, clock
):
    nomination = await create(conn, edition, alice, clock)
    with pytest.raises(NominationError) as refused:
        await decide(conn, edition, organizer, nomination, clock, "reject", "")
    assert set(refused.value.fields) == {"reason"}
    assert (await noms.get(conn, nomination.public_id)).status == "submitted"


async def test_an_organizer_marks_an_earlier_winner(conn, edition, alice, organizer, clock):
    nomination = await create(conn, edition, alice, clock)
    marked = await noms.decide(
        conn,
        edition,
        organizer,
        nomination.public_id,
        {"decision": "reject", "reason": "Won the 2015 prize.", "earlier_winner": "yes"},
        now=clock.now(),
        base_url=BASE,
    )
    assert marked.status == "rejected" and marked.earlier_winner_marked
    detail = await conn.fetchval(
        "SELECT detail FROM audit_log WHERE action='nomination.reject' AND subject=$1",
        nomination.public_id,
    )
    assert detail["earlier_winner"] is True


async def test_a_declared_earlier_winner_cannot_be_submitted(conn, edition, alice, clock):
    with pytest.raises(NominationError) as refused:
        await create(conn, edition, alice, clock, earlier_winner="yes")
    assert set(refused.value.fields) == {"earlier_winner"}


async def test_decisions_stop_when_voting_opens(conn, edition, alice, bob, organizer, clock):
    first = await create(conn, edition, alice, clock)
    second = await create(conn, edition, bob, clock, organization="Other org", title="Other")
    clock.set(edition.phase("voting").opens_at - timedelta(microseconds=1))
    assert (await decide(conn, edition, organizer, first, clock, "accept")).status == "accepted"
    clock.set(edition.phase("voting").opens_at)
    with pytest.raises(NominationError) as closed:
        await decide(conn, edition, organizer, second, clock, "accept")
    assert closed.value.code == "review_closed"
    assert "Geneva time" in str(closed.value)
    assert (await noms.get(conn, second.public_id)).status == "submitted"


# -- what others read --------------------------------------------------------------------------


async def test_votable_nominations_are_the_accepted_ones(
    conn, edition, alice, bob, organizer, clock
):
    accepted = await create(conn, edition, alice, clock)
    await decide(conn, edition, organizer, accepted, clock, "accept")
    pending = await create(conn, edition, bob, clock, organization="Other org", title="Other")
    await create(conn, edition, bob, clock, submit=False, title="A draft")
    eid = await edition_store.edition_id(conn, edition.slug)
    votable = await noms.votable_nominations(conn, eid)
    assert votable == [
        {
            "public_id": accepted.public_id,
            "category": "C2",
            "title": "Mountain Village Broadband",
            "organization": "Ministry of ICT, Rwanda",
            "country": "RW",
        }
    ]
    assert pending.public_id not in {v["public_id"] for v in votable}


async def test_public_search_by_title_organization_and_country(
    conn, edition, alice, bob, organizer, clock
):
    made = []
    for user, org, title, country, category in (
        (alice, "Ministry of ICT, Rwanda", "Mountain Village Broadband", "RW", "C2"),
        (bob, "Société Numérique", "Rural Telemedicine Network", "SN", "C2"),
        (bob, "Kenya ICT Authority", "Open Data Portal", "KE", "C3"),
    ):
        n = await create(
            conn, edition, user, clock, organization=org, title=title, country=country,
            category=category,
        )  # fmt: skip
        made.append(await decide(conn, edition, organizer, n, clock, "accept"))
    await create(conn, edition, alice, clock, organization="Hidden", title="Rural Hidden")
    eid = await edition_store.edition_id(conn, edition.slug)

    async def titles(**query):
        total, found = await noms.public_list(conn, eid, PublicQuery(**query))
        assert total == len(found)
        return [n.title for n in found]

    assert await titles() == [
        "Mountain Village Broadband",
        "Rural Telemedicine Network",
        "Open Data Portal",
    ]
    assert await titles(q="rural") == ["Rural Telemedicine Network"]  # not the unaccepted one
    assert await titles(q="societe numer") == ["Rural Telemedicine Network"]
    assert await titles(q="rwan") == ["Mountain Village Broadband"]
    assert await titles(q="Senegal") == ["Rural Telemedicine Network"]
    assert await titles(q="'); DROP TABLE nominations; --") == []
    assert await titles(q="!!!") == await titles()
    assert await titles(country="KE") == ["Open Data Portal"]
    assert await titles(category="C2", q="network") == ["Rural Telemedicine Network"]
    total, page = await noms.public_list(conn, eid, PublicQuery(limit=1, offset=1))
    assert total == 3 and [n.title for n in page] == ["Rural Telemedicine Network"]


# -- the schema --------------------------------------------------------------------------------


async def test_replacing_the_edition_keeps_nominations_unless_their_category_goes(
    conn, edition, alice, clock
):
    nomination = await create(conn, edition, alice, clock, submit=False)
    data = open_edition(phases={"nominations": ("-1d", "+2d"), "review": ("+2d", "+3d")})
    extended = await load_data(conn, data, clock.now())
    assert (await noms.get(conn, nomination.public_id)).status == "draft"
    assert extended.phase("nominations").closes_at > edition.phase("nominations").closes_at

    data["categories"] = [c for c in data["categories"] if c["code"] != "C2"]
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await edition_store.save_edition(
            conn, parse_edition(data, now=clock.now()), now=clock.now(), actor="test"
        )
    assert (await noms.get(conn, nomination.public_id)).category == "C2"


async def test_public_ids_are_never_reused(conn, edition, alice, clock):
    nomination = await create(conn, edition, alice, clock, submit=False)
    await conn.execute("DELETE FROM editions")
    assert await noms.get(conn, nomination.public_id) is None
    assert await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM issued_public_ids WHERE public_id=$1)", nomination.public_id
    )
    issued = await noms.issue_public_ids(conn, 50)
    assert nomination.public_id not in issued and len(set(issued)) == 50


async def test_the_database_refuses_an_incomplete_submission(conn, edition, alice, clock):
    draft = await create(conn, edition, alice, clock, submit=False, country="")
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute(
            "UPDATE nominations SET status='submitted', submitted_at=now() WHERE public_id=$1",
            draft.public_id,
        )
