"""Never stuck at the end, over HTTP: a shortlisted category without an expert is flagged
on the organizers' page and named on the committee's; organizers invite an expert,
extend the expert review and assign a replacement on the record; the committee then
signs off and publishes. Plus each staff role's desk and the staff invitations."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from httpx import ASGITransport, AsyncClient

from tests.fixtures.flows import csrf_from, sign_in
from tests.fixtures.results import (
    add_votes,
    assign,
    at_real_time,
    expert,
    move_to,
    results_edition,
    score,
    spread,
    staff,
)
from voting.contest import GENEVA


async def stuck_edition(conn: asyncpg.Connection, rule: str) -> dict[str, Any]:
    """Votes in C1-C3; a judge assigned to and scoring C1 and C2; nobody on C3; the
    expert review then closes (scores frozen) and the results phase opens."""
    _, edition_id, noms = await results_edition(
        conn, "expert_review", rules={"no_expert_scores": rule}
    )
    for category, ids in noms.items():
        await add_votes(conn, edition_id, spread(category, {ids[0]: 5, ids[1]: 3, ids[2]: 1}))
    judge = await expert(conn, "judge@example.org")
    await assign(conn, edition_id, judge, "C1", "C2")
    for category in ("C1", "C2"):
        for position, nomination in enumerate(noms[category][:2]):
            await score(conn, edition_id, judge, nomination, 8 - position, 7)
    await move_to(conn, edition_id, "results")
    rows = await conn.fetch(
        "SELECT public_id, title FROM nominations WHERE edition_id=$1", edition_id
    )
    titles = {r["public_id"]: r["title"] for r in rows}
    return {"edition_id": edition_id, "noms": noms, "titles": titles}


async def test_the_stuck_committee_is_warned_and_unstuck_on_the_record(
    mail_app: Any, smtp: Any, conn: asyncpg.Connection
) -> None:
    at_real_time(mail_app)
    s = await stuck_edition(conn, "block")
    c3 = s["noms"]["C3"][:2]
    organizer = await staff(mail_app, smtp, conn, "org@example.org", "organizer")
    member1 = await staff(mail_app, smtp, conn, "member1@example.org", "committee")
    member2 = await staff(mail_app, smtp, conn, "member2@example.org", "committee")
    try:
        # The organizers' page warns, naming the category and the titles.
        page = await organizer.get("/organizer/experts")
        assert page.status_code == 200
        warning = re.search(r'<li id="warn-C3">(.*?)</li>', page.text, re.S)
        assert warning and "no expert is assigned" in warning.group(1)
        assert 'id="warn-C1"' not in page.text and 'id="warn-C2"' not in page.text
        assert "scores are frozen unless you extend it" in page.text

        # The committee page names the category and the titles, and says what to do.
        results = await member1.get("/committee/results")
        assert "Why these results cannot be signed yet" in results.text
        for nomination in c3:
            assert s["titles"][nomination].replace("'", "&#39;") in results.text
        assert "extend it" in results.text
        digest = re.search(r'name="digest" value="([0-9a-f]+)"', results.text)
        assert digest
        refused = await member1.post(
            "/committee/results/signoff",
            data={"csrf_token": csrf_from(results.text), "digest": digest.group(1)},
        )
        assert refused.status_code == 409

        # Organizers invite a new expert from the page, on the record.
        accounts_page = await organizer.get("/organizer/staff")
        invited = await organizer.post(
            "/organizer/staff",
            data={
                "csrf_token": csrf_from(accounts_page.text),
                "email": "New.Judge@Example.org",
                "role": "expert",
            },
        )
        assert invited.status_code == 200 and "new.judge@example.org now has the" in invited.text

        # Extending the review needs a reason and a later close; then it reopens.
        token = csrf_from(page.text)
        later = datetime.now(UTC).astimezone(GENEVA) + timedelta(days=3)
        form = {
            "csrf_token": token,
            "close_date": f"{later:%Y-%m-%d}",
            "close_time": f"{later:%H:%M}",
            "reason": "",
        }
        no_reason = await organizer.post("/organizer/experts/extend", data=form)
        assert no_reason.status_code == 422 and "needs a reason" in no_reason.text
        earlier = await organizer.post(
            "/organizer/experts/extend",
            data={**form, "close_date": "2020-01-01", "reason": "late judge"},
        )
        assert earlier.status_code == 422 and "must be later" in earlier.text
        garbled = await organizer.post(
            "/organizer/experts/extend", data={**form, "close_time": "25:99", "reason": "x"}
        )
        assert garbled.status_code == 422 and "date and a time" in garbled.text
        extended = await organizer.post(
            "/organizer/experts/extend", data={**form, "reason": "C3 had no expert"}
        )
        assert extended.status_code == 200, extended.text
        assert "The expert review now closes on" in extended.text
        audit = await conn.fetchrow(
            "SELECT actor, reason, detail FROM audit_log WHERE action='expert_review.extend'"
        )
        assert audit["actor"] == "user:org@example.org" and audit["reason"] == "C3 had no expert"
        assert audit["detail"]["reopened"] is True

        # A replacement: the old judge's C2 goes to the new one, C3 is assigned.
        replaced = await organizer.post(
            "/organizer/experts/replace",
            data={
                "csrf_token": token,
                "expert": "judge@example.org",
                "replacement": "new.judge@example.org",
                "category": "C2",
                "reason": "",
            },
        )
        assert replaced.status_code == 422 and "needs a reason" in replaced.text
        replaced = await organizer.post(
            "/organizer/experts/replace",
            data={
                "csrf_token": token,
                "expert": "judge@example.org",
                "replacement": "new.judge@example.org",
                "category": "C2",
                "reason": "judge is away",
            },
        )
        assert replaced.status_code == 200
        assert "new.judge@example.org replaces judge@example.org in: C2." in replaced.text
        assigned = await organizer.post(
            "/organizer/experts",
            data={
                "csrf_token": token,
                "email": "new.judge@example.org",
                "category": "C3",
                "action": "assign",
            },
        )
        assert assigned.status_code == 200
        actions = [
            r["action"]
            for r in await conn.fetch("SELECT action FROM audit_log ORDER BY id")
            if r["action"].startswith(("expert", "user.grant"))
        ]
        assert actions[-5:] == [
            "expert_review.extend",
            "expert.assign",
            "expert.unassign",
            "expert.replace",
            "expert.assign",
        ]

        # The new expert scores C2 and C3 through the page (the review is open again).
        judge = AsyncClient(transport=ASGITransport(app=mail_app), base_url="http://testserver")
        await sign_in(judge, mail_app, smtp, "new.judge@example.org")
        for nomination in [*s["noms"]["C2"][:2], *c3]:
            form_page = await judge.get(f"/experts/nominations/{nomination}")
            saved = await judge.post(
                f"/experts/nominations/{nomination}",
                data={
                    "csrf_token": csrf_from(form_page.text),
                    "score_impact": "6",
                    "score_innovation": "6",
                    "comment": "",
                },
            )
            assert saved.status_code == 200, saved.text
        await judge.aclose()
        covered = await organizer.get("/organizer/experts")
        assert "Categories that need you" not in covered.text

        # Time passes: the review closes, the results phase opens; both sign, publish.
        await move_to(conn, s["edition_id"], "results")
        for member in (member1, member2):
            page = await member.get("/committee/results")
            assert "Why these results cannot be signed yet" not in page.text
            # The last signer signs and publishes on the preview of the public page.
            if member is member2:
                page = await member.get("/committee/results/preview")
                assert "Sign and publish these results" in page.text
            digest = re.search(r'name="digest" value="([0-9a-f]+)"', page.text)
            assert digest
            signed = await member.post(
                "/committee/results/signoff",
                data={
                    "csrf_token": csrf_from(page.text),
                    "digest": digest.group(1),
                    "publish": "yes",
                },
            )
            assert signed.status_code == 200, signed.text
        assert "The results are published." in signed.text
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM publications WHERE edition_id=$1", s["edition_id"]
            )
            == 1
        )
        public = await member1.get("/results")
        assert public.status_code == 200
        assert s["titles"][c3[0]].replace("'", "&#39;") in public.text
    finally:
        for client in (organizer, member1, member2):
            await client.aclose()


async def test_a_category_no_expert_scored_is_ranked_by_public_votes_and_marked(
    mail_app: Any, smtp: Any, conn: asyncpg.Connection
) -> None:
    at_real_time(mail_app)
    await stuck_edition(conn, "public_votes_only")
    member = await staff(mail_app, smtp, conn, "member1@example.org", "committee")
    organizer = await staff(mail_app, smtp, conn, "org@example.org", "organizer")
    try:
        page = await member.get("/committee/results")
        assert "Why these results cannot be signed yet" not in page.text
        assert "ranked by public votes alone (no expert score)" in page.text
        category = await member.get("/committee/results/C3")
        assert "ranked by public votes alone, as the edition" in category.text
        experts_page = await organizer.get("/organizer/experts")
        assert "will be ranked by public votes alone" in experts_page.text
        digest = re.search(r'name="digest" value="([0-9a-f]+)"', page.text)
        assert digest
        signed = await member.post(
            "/committee/results/signoff",
            data={"csrf_token": csrf_from(page.text), "digest": digest.group(1)},
        )
        assert signed.status_code == 200 and "Your sign-off is recorded." in signed.text
        assert await conn.fetchval("SELECT count(*) FROM result_signoffs") == 1
    finally:
        await member.aclose()
        await organizer.aclose()


async def test_each_staff_role_lands_on_its_desk_with_what_needs_doing(
    mail_app: Any, smtp: Any, conn: asyncpg.Connection
) -> None:
    at_real_time(mail_app)
    await stuck_edition(conn, "block")
    # Sign-in with no `next` lands staff on /staff, nominators on /dashboard.
    client = AsyncClient(transport=ASGITransport(app=mail_app), base_url="http://testserver")
    from voting import accounts

    await accounts.grant(conn, "org@example.org", "organizer")
    page = await client.get("/signin")
    await client.post(
        "/signin", data={"email": "org@example.org", "csrf_token": csrf_from(page.text)}
    )
    from voting import mail

    services = mail_app.state.services
    await mail.send_pending(services.db, services.settings)
    link = smtp.mailbox.last_link("org@example.org", "/signin/confirm")
    path = link.split("testserver", 1)[-1] if "testserver" in link else link
    confirm = await client.get(path)
    token = re.search(r'name="token" value="([^"]+)"', confirm.text)
    assert token
    landed = await client.post(
        path.split("?")[0], data={"token": token.group(1), "csrf_token": csrf_from(confirm.text)}
    )
    assert landed.status_code == 303 and landed.headers["location"] == "/staff"
    desk = await client.get("/staff")
    assert desk.status_code == 200
    assert "Organizer: what needs doing now" in desk.text
    assert "Categories the expert review does not cover yet" in desk.text and "C3" in desk.text
    # One staff navigation links every organizer page.
    nav = re.search(r'<nav aria-label="Staff".*?</nav>', desk.text, re.S)
    assert nav
    for href in (
        "/organizer",
        "/organizer/voting",
        "/organizer/experts",
        "/organizer/mobilisations",
        "/organizer/staff",
        "/organizer/ops",
    ):
        assert f'href="{href}"' in nav.group(0)
    assert "/committee/fraud" not in nav.group(0)
    await client.aclose()

    member = await staff(mail_app, smtp, conn, "member1@example.org", "committee")
    judge = await staff(mail_app, smtp, conn, "judge@example.org", "expert")
    try:
        desk = await member.get("/staff")
        assert "Prize committee: what needs doing now" in desk.text
        assert "Open fraud flags" in desk.text and "Review requests waiting" in desk.text
        assert "Categories without the expert scores the rule needs" in desk.text
        assert "Organizer: what needs doing now" not in desk.text
        assert 'href="/committee/fraud"' in desk.text and 'href="/committee/live"' in desk.text
        desk = await judge.get("/staff")
        assert "Expert: what needs doing now" in desk.text
        assert "Shortlisted nominations scored" in desk.text and "4 / 4" in desk.text
        # Not an organizer: no staff accounts page.
        assert (await member.get("/organizer/staff")).status_code == 403
    finally:
        await member.aclose()
        await judge.aclose()


async def test_staff_invitations_say_what_was_wrong(
    mail_app: Any, smtp: Any, conn: asyncpg.Connection
) -> None:
    at_real_time(mail_app)
    await results_edition(conn, "expert_review")
    organizer = await staff(mail_app, smtp, conn, "org@example.org", "organizer")
    try:
        page = await organizer.get("/organizer/staff")
        assert page.status_code == 200 and "org@example.org" in page.text
        token = csrf_from(page.text)
        bad = await organizer.post(
            "/organizer/staff",
            data={"csrf_token": token, "email": "not an address", "role": "expert"},
        )
        assert bad.status_code == 422 and 'aria-invalid="true"' in bad.text
        assert 'value="not an address"' in bad.text  # the input is kept
        boss = await organizer.post(
            "/organizer/staff",
            data={"csrf_token": token, "email": "boss@example.org", "role": "organizer"},
        )
        assert boss.status_code == 422 and "expert or the committee role" in boss.text
        assert await conn.fetchval("SELECT count(*) FROM users WHERE email='boss@example.org'") == 0
        myself = await organizer.post(
            "/organizer/staff",
            data={"csrf_token": token, "email": "Org@Example.org", "role": "committee"},
        )
        assert myself.status_code == 422 and "your own account" in myself.text
        assert await conn.fetchval("SELECT roles FROM users WHERE email='org@example.org'") == [
            "organizer"
        ]
        no_token = await organizer.post(
            "/organizer/staff", data={"email": "a@example.org", "role": "expert"}
        )
        assert no_token.status_code == 403
        # A slip in a webmail domain is asked about before any role is granted; the
        # answer posts the form again, the role kept.
        slip = await organizer.post(
            "/organizer/staff",
            data={"csrf_token": token, "email": "judge@hotmial.com", "role": "expert"},
        )
        assert slip.status_code == 200 and "Did you mean judge@hotmail.com?" in slip.text
        assert await conn.fetchval("SELECT count(*) FROM users WHERE email LIKE 'judge@%'") == 0
        choice = re.search(
            r'<form method="post" action="/organizer/staff" class="inline-choice">(.*?)</form>',
            slip.text,
            re.S,
        )
        assert choice
        fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', choice.group(1)))
        assert fields["role"] == "expert" and fields["email"] == "judge@hotmail.com"
        used = await organizer.post("/organizer/staff", data=fields)
        assert used.status_code == 200 and "Did you mean" not in used.text
        assert await conn.fetchval("SELECT roles FROM users WHERE email='judge@hotmail.com'") == [
            "expert"
        ]
        done = await organizer.post(
            "/organizer/staff",
            data={"csrf_token": token, "email": "member@example.org", "role": "committee"},
        )
        assert done.status_code == 200
        row = await conn.fetchrow(
            "SELECT actor, detail FROM audit_log WHERE action='user.grant'"
            " AND subject='member@example.org'"
        )
        assert row["actor"] == "user:org@example.org" and row["detail"]["role"] == "committee"
        assert await conn.fetchval("SELECT roles FROM users WHERE email='member@example.org'") == [
            "committee"
        ]
    finally:
        await organizer.aclose()


async def test_the_record_says_who_did_what_and_when_in_words(
    mail_app: Any, smtp: Any, conn: asyncpg.Connection
) -> None:
    at_real_time(mail_app)
    await stuck_edition(conn, "block")
    organizer = await staff(mail_app, smtp, conn, "org@example.org", "organizer")
    judge = await staff(mail_app, smtp, conn, "judge@example.org", "expert")
    try:
        page = await organizer.get("/organizer/staff")
        await organizer.post(
            "/organizer/staff",
            data={
                "csrf_token": csrf_from(page.text),
                "email": "m@example.org",
                "role": "committee",
            },
        )
        later = datetime.now(UTC).astimezone(GENEVA) + timedelta(days=2)
        await organizer.post(
            "/organizer/experts/extend",
            data={
                "csrf_token": csrf_from(page.text),
                "close_date": f"{later:%Y-%m-%d}",
                "close_time": f"{later:%H:%M}",
                "reason": "a late panel",
            },
        )
        record = await organizer.get("/staff/record")
        assert record.status_code == 200
        assert "Expert review extended" in record.text and "a late panel" in record.text
        assert "Staff role given" in record.text and "m@example.org" in record.text
        assert "user:org@example.org" not in record.text and ">org@example.org<" in record.text
        accounts_only = await organizer.get("/staff/record?kind=accounts")
        assert "Staff role given" in accounts_only.text
        assert "Expert review extended" not in accounts_only.text
        bogus = await organizer.get("/staff/record?kind=everything-please")
        assert bogus.status_code == 422 and "Unknown kind of entry" in bogus.text
        assert (await judge.get("/staff/record")).status_code == 403
        french = await organizer.get("/staff/record?lang=fr")
        assert "Évaluation des experts prolongée" in french.text
    finally:
        await organizer.aclose()
        await judge.aclose()


def test_every_recorded_action_the_code_writes_has_words() -> None:
    from pathlib import Path

    from voting import audit_wording

    written = set()
    for path in Path("voting").rglob("*.py"):
        text = path.read_text()
        written |= set(re.findall(r'action="([a-z_]+\.[a-z_]+)"', text))
        written |= set(re.findall(r"VALUES \(\$1, '([a-z_]+\.[a-z_]+)'", text))
    # Built from a variable: nominations' decisions, campaigns' decisions, fraud's.
    written |= {f"nomination.{d}" for d in ("accept", "reject", "return", "submit")}
    written |= {f"mobilisation.{d}" for d in ("approve", "reject")}
    written |= {"fraud.release", "fraud.void", "fraud.release_flag", "fraud.void_flag"}
    assert written - set(audit_wording.ACTIONS) == set()
    assert audit_wording.actor_words("user:ana@example.org", "en") == "ana@example.org"
    assert audit_wording.actor_words("cli:ana", "en") == "ana (command line)"
    assert audit_wording.actor_words("cli", "fr") == "la ligne de commande"
    assert audit_wording.action_words("something.new", "fr") == "something.new"
    from voting.antifraud.detectors import DETECTORS, SAME_VOTER
    from voting.antifraud.wording import DETECTOR_WORDS, detector_words

    assert set(DETECTORS) | {SAME_VOTER} == set(DETECTOR_WORDS)
    assert detector_words("burst", "fr").startswith("Une poussée soudaine")


async def test_voiding_from_the_fraud_page_needs_the_box_that_names_what_it_voids(
    mail_app: Any, smtp: Any, conn: asyncpg.Connection
) -> None:
    at_real_time(mail_app)
    s = await stuck_edition(conn, "block")
    nomination = s["noms"]["C1"][0]
    receipt = await conn.fetchval(
        "SELECT receipt FROM votes WHERE edition_id=$1 AND nomination=$2 LIMIT 1",
        s["edition_id"],
        nomination,
    )
    await conn.execute(
        "UPDATE votes SET verdict='quarantined' WHERE receipt=$1", receipt
    )  # as the superuser: a vote held by the fraud layer
    flag_id = await conn.fetchval(
        "INSERT INTO fraud_flags (edition_id, detector, finding, category, nomination)"
        " VALUES ($1, 'burst', 'f', 'C1', $2) RETURNING id",
        s["edition_id"],
        nomination,
    )
    await conn.execute(
        "INSERT INTO fraud_flag_votes (flag_id, edition_id, voter_id, category)"
        " SELECT $1, edition_id, voter_id, category FROM votes WHERE receipt=$2",
        flag_id,
        receipt,
    )
    member = await staff(mail_app, smtp, conn, "member1@example.org", "committee")
    try:
        page = await member.get("/committee/fraud/C1")
        assert "A sudden burst of votes for this nomination" in page.text
        assert s["titles"][nomination].replace("'", "&#39;") in page.text
        assert "the 1 votes this flag holds for" in page.text and 'class="danger"' in page.text
        form = {
            "csrf_token": csrf_from(page.text),
            "action": "void",
            "reason": "a bought vote",
            "category": "C1",
        }
        unticked = await member.post(f"/committee/fraud/flags/{flag_id}", data=form)
        assert unticked.status_code == 422 and "Nothing was voided" in unticked.text
        assert await conn.fetchval("SELECT verdict FROM votes WHERE receipt=$1", receipt) == (
            "quarantined"
        )
        one = await member.post("/committee/fraud-votes", data={**form, "receipt": receipt})
        assert one.status_code == 422
        ticked = await member.post(
            f"/committee/fraud/flags/{flag_id}", data={**form, "confirm_void": "yes"}
        )
        assert ticked.status_code == 303
        assert await conn.fetchval("SELECT verdict FROM votes WHERE receipt=$1", receipt) == (
            "voided"
        )
    finally:
        await member.aclose()
