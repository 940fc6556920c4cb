"""The people's side, what was left of issue 19 (items 5 and 8), in Chromium: the live
page that opens with its figures and a jump list, its charts naming categories and
projects; "did you mean" on the vote form; each language's title and summary on the
organizers' review page. Each page is axe-clean, fits a 390 px phone, and leaves a
screenshot under artifacts/browser/. (The committee's preview of the public results is
in test_staff_journeys.py, where the stuck committee publishes through it.)"""

from __future__ import annotations

import re

from playwright.async_api import Browser, Page, expect

from tests.fixtures.browser import (
    Site,
    audit,
    describe,
    new_page,
    phone,
    screenshot,
    sign_in_staff,
    width,
)
from voting import accounts, db
from voting.i18n import gettext

LIVE_COMMITTEE = "people.committee@example.org"
REVIEWER = "people.organizer@example.org"


async def clean(page: Page, name: str) -> None:
    violations = await audit(page)
    assert not violations, f"{name}:\n{describe(violations)}"
    await screenshot(page, name)


async def grant(site: Site, email: str, role: str) -> None:
    conn = await db.connect(site.server.database_url)
    try:
        await accounts.grant(conn, email, role)
    finally:
        await conn.close()


def whole(text: str) -> int:
    return int(re.sub(r"\D", "", text))


async def test_the_live_page_opens_with_its_figures_and_a_jump_list(
    browser: Browser, voting_site: Site
):
    site = voting_site
    await grant(site, LIVE_COMMITTEE, "committee")
    watched = await new_page(browser)
    page = watched.page
    await sign_in_staff(page, site, LIVE_COMMITTEE)
    await page.goto(f"{site.url}/committee/live")

    # The summary comes first, before any chart or table: four figures with their names.
    summary = page.get_by_role("region", name="At a glance")
    await expect(summary).to_be_visible()
    figures = summary.locator("dl.figures > div")
    await expect(figures).to_have_count(4)
    counted = whole(await figures.nth(0).locator("dd").inner_text())
    voters = whole(await figures.nth(1).locator("dd").inner_text())
    # The headline is the sum of the tables below it; the voters are the ledger's (the
    # site was seeded with 240 votes from 240 voters).
    cells = await page.locator(
        "#live-figures section > table tbody tr td.num:nth-of-type(2)"
    ).all_inner_texts()
    assert counted == sum(whole(c) for c in cells)
    assert voters >= 240
    await expect(figures.nth(3).locator("dd")).to_contain_text("day")
    first_heading = page.locator("main h2").first
    await expect(first_heading).to_have_text("At a glance")

    # The jump list: a labelled navigation, reached and followed by keyboard.
    jumps = page.get_by_role("navigation", name="Categories on this page")
    await expect(jumps.get_by_role("link")).to_have_count(4)
    link = jumps.get_by_role("link", name="C3 · Access to information")
    await link.focus()
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"#cat-C3$"))
    assert await page.evaluate("document.activeElement.id") == "cat-C3"
    # Back up to the list from the section, by keyboard too.
    back = page.locator("section[aria-labelledby=cat-C3]").get_by_role(
        "link", name="Back to the list of categories"
    )
    await back.focus()
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"#jump-heading$"))

    # The charts' legends name categories and projects, never codes alone.
    overall = page.locator("section[aria-labelledby=overall-heading] svg text")
    legend = " ".join(await overall.all_text_contents())
    assert "Public governance (" in legend and "Infrastructure (" in legend
    c1_title = await page.locator(
        "section[aria-labelledby=cat-C1] tbody th[scope=row] a"
    ).first.inner_text()
    c1_legend = " ".join(
        await page.locator("section[aria-labelledby=cat-C1] svg text").all_text_contents()
    )
    assert c1_title[:15] in c1_legend
    assert not re.search(r"\bN[0-9A-Z]{8}\b", c1_legend)
    await clean(page, "people-live-en")

    # In French: the figures in French digits, names in French, the axe still clean.
    await page.goto(f"{site.url}/committee/live?lang=fr")
    summary = page.get_by_role("region", name="En un coup d'œil")
    await expect(summary).to_be_visible()
    legend = " ".join(
        await page.locator("section[aria-labelledby=overall-heading] svg text").all_text_contents()
    )
    assert "Gouvernance publique (" in legend
    await clean(page, "people-live-fr")
    await page.goto(f"{site.url}/committee/live?lang=ar")
    await expect(page.get_by_role("navigation", name="الفئات في هذه الصفحة")).to_be_visible()
    await clean(page, "people-live-ar")
    watched.assert_clean()

    # On a phone, nothing scrolls sideways.
    context, small = await phone(browser)
    await sign_in_staff(small.page, site, LIVE_COMMITTEE)
    await small.page.goto(f"{site.url}/committee/live")
    assert await width(small.page) <= 390
    await screenshot(small.page, "people-live-phone")
    await context.close()


async def test_the_vote_form_asks_about_a_slip_in_the_domain(browser: Browser, voting_site: Site):
    site = voting_site
    for lang in ("en", "ar"):
        watched = await new_page(browser)
        page = watched.page
        await page.goto(f"{site.url}/vote?lang={lang}")
        await page.locator("#email").fill(f"people-{lang}@gmal.com")
        await page.locator("#email").press("Enter")
        question = gettext("Did you mean %(address)s?", lang) % {
            "address": f"people-{lang}@gmail.com"
        }
        await expect(page.get_by_role("heading", name=question)).to_be_visible()
        await clean(page, f"people-vote-typo-{lang}")
        use = gettext("Use %(address)s", lang) % {"address": f"people-{lang}@gmail.com"}
        await page.get_by_role("button", name=use).click()
        await expect(
            page.get_by_role("heading", name=gettext("Check your mail", lang))
        ).to_be_visible()
        await expect(page.locator("main")).to_contain_text(f"people-{lang}@gmail.com")
        watched.assert_clean()
    context, small = await phone(browser)
    await small.page.goto(f"{site.url}/vote")
    await small.page.locator("#email").fill("people-phone@gmal.com")
    await small.page.locator("#email").press("Enter")
    keep = small.page.get_by_role("button", name="Keep people-phone@gmal.com")
    await expect(keep).to_be_visible()
    assert await width(small.page) <= 390
    await screenshot(small.page, "people-vote-typo-phone")
    await context.close()


async def test_the_review_page_shows_each_languages_title_and_summary(
    browser: Browser, voting_site: Site
):
    site = voting_site
    await grant(site, REVIEWER, "organizer")
    nomination = site.nominations["C2"][-1]
    translations = {
        "fr": {"title": "Des villages connectés", "summary": "Un résumé en français."},
        "ar": {"title": "قرى متصلة", "summary": "ملخص بالعربية."},
        "zh": {"title": "互联的村庄", "summary": ""},
    }
    conn = await db.connect(site.server.database_url)
    try:
        await conn.execute(
            "UPDATE nominations SET translations=$2 WHERE public_id=$1", nomination, translations
        )
    finally:
        await conn.close()
    try:
        watched = await new_page(browser)
        page = watched.page
        await sign_in_staff(page, site, REVIEWER)
        for lang in ("en", "ru"):
            await page.goto(f"{site.url}/organizer/nominations/{nomination}?lang={lang}")
            section = page.get_by_role(
                "region", name=gettext("Title and summary in other languages", lang)
            )
            await expect(section).to_be_visible()
            await expect(section.locator("dd[lang=fr]").first).to_have_text(
                "Des villages connectés"
            )
            await expect(section.locator("dd[lang=ar]").first).to_have_attribute("dir", "rtl")
            await expect(section.locator("dd[lang=ar]").first).to_have_text("قرى متصلة")
            await expect(section.locator("dd[lang=zh]").first).to_have_text("互联的村庄")
            missing = gettext("Not given: readers of this language see the English.", lang)
            await expect(section.get_by_text(missing)).to_have_count(2)  # es, ru
            await clean(page, f"people-review-translations-{lang}")
        watched.assert_clean()
        context, small = await phone(browser)
        await sign_in_staff(small.page, site, REVIEWER)
        await small.page.goto(f"{site.url}/organizer/nominations/{nomination}")
        assert await width(small.page) <= 390
        await screenshot(small.page, "people-review-translations-phone")
        await context.close()
    finally:
        conn = await db.connect(site.server.database_url)
        try:
            await conn.execute(
                "UPDATE nominations SET translations='{}' WHERE public_id=$1", nomination
            )
        finally:
            await conn.close()
