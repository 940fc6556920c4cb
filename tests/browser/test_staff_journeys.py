"""The staff journeys in Chromium: the stuck committee first.

An edition whose public vote has closed, with category C3 shortlisted but no expert
assigned to it, and the rule `no_expert_scores = "block"`: the expert review closed with
C1 and C2 scored and C3 not. The committee lands on its desk and is told why it cannot
sign and what to do; the organizer lands on hers, is warned on the expert page, invites
a new expert, extends the expert review with the date and time pickers and assigns him;
he scores C3; time passes; both committee members sign off and the results are
published. axe-core audits every staff page on the way; screenshots go to
artifacts/browser/.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from playwright.async_api import Browser, Page, expect

from tests.fixtures.browser import (
    COMMITTEE,
    ORGANIZER,
    Site,
    _site,
    audit,
    describe,
    new_page,
    phone,
    screenshot,
    sign_in_staff,
    width,
)
from tests.fixtures.editions import edition_data
from voting import accounts, db
from voting.contest import GENEVA

JUDGE = "judge@example.org"
NEW_JUDGE = "new.judge@example.org"
SECOND_MEMBER = "second.member@example.org"
CRITERIA = ("impact", "sustainability", "replicability", "innovation", "relevance")
STAGES = {
    # (opens, closes) in days from now
    "expert_review": {
        "nominations": (-60, -40),
        "review": (-40, -20),
        "voting": (-20, -1),
        "expert_review": (-1, 10),
        "results": (10, 40),
    },
    "results": {
        "nominations": (-80, -60),
        "review": (-60, -40),
        "voting": (-40, -20),
        "expert_review": (-20, -1),
        "results": (-1, 30),
    },
}


async def move_to(conn: asyncpg.Connection, edition_id: int, stage: str) -> None:
    """Time passes (tests only): the edition's calendar as at `stage`."""
    now = datetime.now(UTC)
    for name, (opens, closes) in STAGES[stage].items():
        await conn.execute(
            "UPDATE phases SET opens_at=$3, closes_at=$4 WHERE edition_id=$1 AND name=$2",
            edition_id,
            name,
            now + timedelta(days=opens),
            now + timedelta(days=closes),
        )


async def score(conn: asyncpg.Connection, edition_id: int, user_id: int, nomination: str) -> None:
    await conn.execute(
        "INSERT INTO expert_reviews (edition_id, user_id, nomination, comment)"
        " VALUES ($1, $2, $3, '')",
        edition_id,
        user_id,
        nomination,
    )
    await conn.executemany(
        "INSERT INTO expert_scores (edition_id, user_id, nomination, criterion, score)"
        " VALUES ($1, $2, $3, $4, 7)",
        [(edition_id, user_id, nomination, c) for c in CRITERIA],
    )


@pytest.fixture(scope="session")
async def stuck_site(
    pg_admin_url: str, template_db: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Site]:
    data = edition_data(
        nominations=("-60d", "-40d"),
        review=("-40d", "-20d"),
        voting=("-20d", "-1d"),
        expert_review=("-1d", "+10d"),
        results=("+10d", "+40d"),
    )
    data["slug"] = "browser-stuck"
    data["name"] = "WSIS Prizes browser test (results)"
    data["rules"] = {"no_expert_scores": "block", "shortlist_size": 2}
    async for site in _site(
        pg_admin_url, template_db, redis_url, tmp_path_factory.mktemp("st"), data
    ):
        conn = await db.connect(site.server.database_url)
        try:
            judge = (await accounts.grant(conn, JUDGE, "expert")).id
            await accounts.grant(conn, SECOND_MEMBER, "committee")
            await conn.executemany(
                "INSERT INTO expert_assignments (edition_id, user_id, category, assigned_by)"
                " VALUES ($1, $2, $3, 'test')",
                [(site.edition_id, judge, c) for c in ("C1", "C2")],
            )
            for category in ("C1", "C2"):
                for nomination in site.nominations[category]:
                    await score(conn, site.edition_id, judge, nomination)
            await move_to(conn, site.edition_id, "results")
        finally:
            await conn.close()
        yield site


async def audited(page: Page, name: str) -> None:
    violations = await audit(page)
    assert not violations, f"{name}:\n{describe(violations)}"
    await screenshot(page, name)


async def test_the_stuck_committee_is_warned_and_unstuck(browser: Browser, stuck_site: Site):
    site = stuck_site
    c3 = site.nominations["C3"]

    # 1. The committee lands on its desk, which says what blocks the results.
    committee = await new_page(browser)
    page = committee.page
    await sign_in_staff(page, site, COMMITTEE)
    await expect(page).to_have_url(re.compile(r"/staff$"))
    await expect(
        page.get_by_role("heading", name="Prize committee: what needs doing now")
    ).to_be_visible()
    await expect(
        page.get_by_text("Categories without the expert scores the rule needs")
    ).to_be_visible()
    await audited(page, "staff-desk-committee")
    staff_nav = page.get_by_role("navigation", name="Staff")
    await staff_nav.get_by_role("link", name="Committee results").click()
    await expect(
        page.get_by_role("heading", name="Why these results cannot be signed yet")
    ).to_be_visible()
    blocked = page.locator("section.warning-box")
    await expect(blocked).to_contain_text("C3 ·")
    named = re.findall(r"\(([0-9A-Z]{9})\)", await blocked.inner_text())
    shortlisted = sorted(set(named))
    assert len(shortlisted) == 2 and set(shortlisted) <= set(c3), named
    await expect(blocked).to_contain_text("ask the organizers to assign an expert")
    await audited(page, "committee-results-blocked")
    # Signing is refused, with the reason on the page.
    await page.get_by_role("button", name="I have reviewed these results and sign them off").click()
    await expect(page.get_by_role("alert")).to_contain_text("No expert score yet")
    # The refusal's 409 is the page under test, not a fault.
    committee.errors[:] = [e for e in committee.errors if "409" not in e]

    # 2. The organizer lands on her desk, is warned, and unsticks the review.
    organizer = await new_page(browser)
    page = organizer.page
    await sign_in_staff(page, site, ORGANIZER)
    await expect(page).to_have_url(re.compile(r"/staff$"))
    await expect(
        page.get_by_text("Categories the expert review does not cover yet")
    ).to_be_visible()
    await audited(page, "staff-desk-organizer")
    await (
        page.get_by_role("navigation", name="Staff")
        .get_by_role("link", name="Expert panel")
        .click()
    )
    warning = page.locator("#warn-C3")
    await expect(warning).to_contain_text("no expert is assigned")
    await expect(page.get_by_text("scores are frozen unless you extend it")).to_be_visible()
    await audited(page, "organizer-experts-warned")

    await (
        page.get_by_role("navigation", name="Staff")
        .get_by_role("link", name="Staff accounts")
        .click()
    )
    await page.get_by_label("Email address", exact=True).fill(NEW_JUDGE)
    await page.get_by_label("Expert (scores the shortlists of the categories assigned)").check()
    await page.get_by_role("button", name="Invite", exact=True).click()
    await expect(page.get_by_role("status")).to_contain_text(f"{NEW_JUDGE} now has the expert role")
    await audited(page, "organizer-staff-accounts")

    await (
        page.get_by_role("navigation", name="Staff")
        .get_by_role("link", name="Expert panel")
        .click()
    )
    later = (datetime.now(UTC) + timedelta(days=3)).astimezone(GENEVA)
    await page.get_by_label("New close: date (Geneva time)").fill(f"{later:%Y-%m-%d}")
    await page.get_by_label("New close: time (Geneva time, 24 h)").fill(f"{later:%H:%M}")
    await page.locator("#x-reason").fill("C3 had no expert: a new judge takes it")
    await page.get_by_role("button", name="Extend the expert review").click()
    await expect(page.get_by_role("status")).to_contain_text("The expert review now closes on")
    await page.locator("#f-email").fill(NEW_JUDGE)
    await page.locator("#cat-C3").check()
    await page.get_by_role("button", name="Assign", exact=True).click()
    await expect(page.get_by_role("status")).to_contain_text(f"Assigned {NEW_JUDGE} to: C3.")
    await expect(page.locator("#warn-C3")).to_contain_text("no complete expert score yet")
    await audited(page, "organizer-experts-extended")

    # 3. The new expert lands on his desk and scores C3.
    judge = await new_page(browser)
    page = judge.page
    await sign_in_staff(page, site, NEW_JUDGE)
    await expect(page).to_have_url(re.compile(r"/staff$"))
    await expect(page.get_by_role("heading", name="Expert: what needs doing now")).to_be_visible()
    await audited(page, "staff-desk-expert")
    for nomination in shortlisted:
        await page.goto(f"{site.url}/experts/nominations/{nomination}")
        for criterion in CRITERIA:
            await page.locator(f"#f-score-{criterion}").select_option("8")
        await page.get_by_role("button", name="Save my scores").click()
        await expect(page.get_by_role("status")).to_contain_text("Your scores are saved.")

    # The organizer's page no longer warns.
    page = organizer.page
    await page.reload()
    await expect(page.get_by_role("heading", name="Categories that need you")).to_have_count(0)

    # 4. Time passes: the review closes; both members sign off; the last signature publishes.
    conn = await db.connect(site.server.database_url)
    try:
        await move_to(conn, site.edition_id, "results")
    finally:
        await conn.close()
    page = committee.page
    await page.goto(f"{site.url}/committee/results")
    await expect(
        page.get_by_role("heading", name="Why these results cannot be signed yet")
    ).to_have_count(0)
    await page.get_by_role("button", name="I have reviewed these results and sign them off").click()
    await expect(page.get_by_role("status")).to_contain_text("Your sign-off is recorded.")
    # The last signer publishes as a step of its own, on a preview of the public page.
    second = await new_page(browser)
    await sign_in_staff(second.page, site, SECOND_MEMBER)
    await second.page.goto(f"{site.url}/committee/results")
    await expect(
        second.page.get_by_role("button", name="I have reviewed these results and sign them off")
    ).to_have_count(0)
    await second.page.get_by_role(
        "link", name="Preview the public page, then sign and publish"
    ).focus()
    await second.page.keyboard.press("Enter")
    await expect(second.page).to_have_url(re.compile(r"/committee/results/preview$"))
    await expect(second.page.get_by_text("Preview: not public yet.")).to_be_visible()
    preview = second.page.locator("#public-results")
    await expect(preview.get_by_role("heading", name=re.compile(r"^C3 · "))).to_be_visible()
    previewed = await preview.inner_html()
    await audited(second.page, "committee-results-preview")
    # On a phone the preview does not scroll sideways either.
    context, small = await phone(browser)
    await sign_in_staff(small.page, site, SECOND_MEMBER)
    await small.page.goto(f"{site.url}/committee/results/preview")
    await expect(small.page.get_by_text("Preview: not public yet.")).to_be_visible()
    assert await width(small.page) <= 390
    await screenshot(small.page, "committee-results-preview-phone")
    await context.close()
    # Nothing is public yet.
    public = await new_page(browser)
    await public.page.goto(f"{site.url}/results")
    await expect(public.page.locator("#public-results")).to_have_count(0)
    await second.page.get_by_role("button", name="Sign and publish these results").click()
    await expect(second.page.get_by_role("status")).to_contain_text("The results are published.")
    await public.page.goto(f"{site.url}/results")
    await expect(public.page.get_by_role("heading", name=re.compile(r"^C3 · "))).to_be_visible()
    # What the last signer saw is what everyone now sees, to the character.
    assert await public.page.locator("#public-results").inner_html() == previewed
    await audited(public.page, "results-published-after-unsticking")
    for watched in (committee, organizer, judge, second, public):
        watched.assert_clean()


async def test_the_staff_pages_pass_the_axe_audit_in_every_language(
    browser: Browser, stuck_site: Site
):
    # One sign-in for all six languages: a mailbox gets 3 links an hour.
    watched = await new_page(browser)
    page = watched.page
    await sign_in_staff(page, stuck_site, ORGANIZER)
    found = {}
    for lang in ("en", "fr", "es", "ar", "zh", "ru"):
        for path in ("/staff", "/organizer/experts", "/organizer/staff", "/staff/record"):
            await page.goto(f"{stuck_site.url}{path}?lang={lang}")
            assert await page.get_attribute("html", "lang") == lang
            assert await page.locator("nav.staff-nav a").count() >= 8
            violations = await audit(page)
            if violations:
                found[f"{lang} {path}"] = describe(violations)
        await screenshot(page, f"staff-record-{lang}")
        await page.goto(f"{stuck_site.url}/staff?lang={lang}")
        await screenshot(page, f"staff-desk-organizer-{lang}")
    assert not found, "\n\n".join(f"{path}:\n{text}" for path, text in found.items())
    watched.assert_clean()
