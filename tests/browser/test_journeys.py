"""The people's journeys in a real browser: a nominator from sign-in to submission, a
voter from the email link to two receipts (keyboard only) and the refusal of a second
vote, the committee's pages, the organizer's live operations page. Each keeps a
screenshot under artifacts/browser/."""

from __future__ import annotations

import re

from playwright.async_api import Browser, Page, expect

from tests.fixtures.browser import (
    COMMITTEE,
    ORGANIZER,
    Site,
    _tab_to,
    audit,
    describe,
    mail_link,
    new_page,
    screenshot,
    sign_in_staff,
)

SUMMARY = " ".join(
    ["Farmers in remote districts receive weather, price and soil advice by text message"]
    + ["in their own language, from extension officers who answer questions within a day"] * 12
)


async def test_a_nominator_signs_in_and_submits_a_nomination(
    browser: Browser, nominating_site: Site
):
    site = nominating_site
    watched = await new_page(browser)
    page = watched.page
    await page.goto(f"{site.url}/signin")
    await page.get_by_label("Email address").fill("nominator@example.org")
    await page.get_by_role("button", name="Send me a sign-in link").click()
    await expect(page.get_by_role("status")).to_contain_text("nominator@example.org")
    await page.goto(await mail_link(page, site, "nominator@example.org", "/signin/confirm"))
    await page.get_by_role("button", name="Yes, sign me in").click()
    await page.goto(f"{site.url}/dashboard")
    await expect(page.get_by_role("heading", level=1)).to_have_text("My nominations")
    await page.get_by_role("link", name="Nominate a project").first.click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Nominate a project")
    violations = await audit(page)
    assert not violations, describe(violations)

    await page.locator("#f-category").select_option("C1")
    await page.locator("#f-title").fill("Text-message advice for smallholder farmers")
    await page.locator("#f-website").fill("https://farm-advice.example.org")
    await page.locator("#f-start_date").fill("2021-03-01")
    await page.locator("#f-summary").fill(SUMMARY)
    await page.locator("#f-description").fill(SUMMARY + " " + SUMMARY)
    await page.locator("#f-languages").fill("English, Kinyarwanda")
    await page.locator("#f-organization").fill("Rural Advice Network")
    await page.locator("#f-stakeholder_type").select_option("civil_society")
    await page.locator("#f-country").select_option("RW")
    await page.locator("#f-contact_email").fill("nominator@example.org")
    await page.get_by_role("button", name="Submit nomination").click()

    await expect(page.get_by_role("status")).to_contain_text("Your nomination is submitted")
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Text-message advice for smallholder farmers"
    )
    await screenshot(page, "nominator-submitted")
    await page.goto(f"{site.url}/dashboard")
    await expect(page.locator("table")).to_contain_text(
        "Text-message advice for smallholder farmers"
    )
    watched.assert_clean()


async def _vote_by_keyboard(page: Page, site: Site, category: str, nomination: str) -> str:
    await page.goto(f"{site.url}/vote/{category}")
    await _tab_to(page, "input[type=radio]")
    # Arrow keys move within the radio group; Space selects: find the project wanted.
    for _ in range(20):
        if await page.evaluate("() => document.activeElement.value") == nomination:
            break
        await page.keyboard.press("ArrowDown")
    await page.keyboard.press("Space")
    assert await page.locator(f"#n-{nomination}").is_checked()
    await _tab_to(page, "button[type=submit]:not(.link)")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your vote is recorded")
    receipt = await page.locator(".receipt code").inner_text()
    assert re.fullmatch(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){3}", receipt)
    return receipt


async def test_a_voter_goes_from_the_email_link_to_two_receipts_by_keyboard(
    browser: Browser, voting_site: Site
):
    site = voting_site
    watched = await new_page(browser)
    page = watched.page
    email = "keyboard.voter@example.org"
    await page.goto(f"{site.url}/vote")
    await _tab_to(page, "#email")
    await page.keyboard.type(email)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Check your mail")
    await page.goto(await mail_link(page, site, email, "/vote/confirm"))
    await _tab_to(page, "form[action='/vote/confirm'] button")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="My votes")).to_be_visible()

    # A second tab opens the C1 ballot before the vote: its form will be stale.
    stale = await page.context.new_page()
    await stale.goto(f"{site.url}/vote/C1")
    c1, c2 = site.nominations["C1"], site.nominations["C2"]
    violations = await audit(stale)
    assert not violations, describe(violations)

    first = await _vote_by_keyboard(page, site, "C1", c1[0])
    await screenshot(page, "voter-receipt-c1")
    second = await _vote_by_keyboard(page, site, "C2", c2[-1])
    violations = await audit(page)
    assert not violations, describe(violations)

    # The stale tab tries another C1 project: refused, and told the receipt that stands.
    await stale.locator(f"#n-{c1[-1]}").check()
    await stale.get_by_role("button", name="Confirm my vote").click()
    await expect(stale.get_by_role("heading", level=1)).to_have_text(
        "You have already voted in this category"
    )
    await expect(stale.locator(".receipt code")).to_have_text(first)
    await screenshot(stale, "voter-second-vote-refused")

    await page.goto(f"{site.url}/vote")
    table = page.locator("section[aria-labelledby='my-votes'] table")
    await expect(table).to_contain_text(first)
    await expect(table).to_contain_text(second)
    await screenshot(page, "voter-my-votes")
    watched.assert_clean()


async def test_the_committee_reads_live_counts_and_fraud_charts(
    browser: Browser, voting_site: Site
):
    site = voting_site
    watched = await new_page(browser)
    page = watched.page
    await sign_in_staff(page, site, COMMITTEE)
    await page.goto(f"{site.url}/committee/live")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Live counts")
    overall = page.get_by_role("img", name="Votes over time, per category")
    await expect(overall).to_be_visible()
    box = await overall.bounding_box()
    assert box and box["width"] > 500
    await screenshot(page, "committee-live")
    # The chart's table opens from the keyboard too.
    summary = page.locator("figure.chart-figure summary").first
    await summary.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("figure.chart-figure table").first).to_be_visible()

    await page.goto(f"{site.url}/committee/fraud/C1")
    await expect(
        page.get_by_role("img", name=re.compile("Fraud flags over time in C1"))
    ).to_be_visible()
    await expect(page.get_by_role("img", name=re.compile("Votes over time in C1"))).to_be_visible()
    await screenshot(page, "committee-fraud-c1")
    watched.assert_clean()


async def test_the_organizer_watches_operations_refresh_in_place(
    browser: Browser, voting_site: Site
):
    site = voting_site
    watched = await new_page(browser)
    page = watched.page
    await sign_in_staff(page, site, ORGANIZER)
    await page.goto(f"{site.url}/organizer/ops")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Operations")
    figures = page.locator("#ops-figures")
    first = await figures.locator(".as-of time").get_attribute("datetime")
    # Refreshed in place within a few seconds, without a page load.
    await page.evaluate("() => { window.__same_page = true; }")
    await expect(figures.locator(".as-of time")).not_to_have_attribute(
        "datetime", first or "", timeout=12_000
    )
    assert await page.evaluate("() => window.__same_page === true")
    await expect(figures).to_contain_text("answers")
    # Pausing stops the updates (WCAG 2.2.2).
    toggle = page.get_by_role("button", name="Pause updates")
    await toggle.click()
    await expect(page.get_by_role("button", name="Resume updates")).to_have_attribute(
        "aria-pressed", "true"
    )
    await screenshot(page, "organizer-ops")
    watched.assert_clean()


async def test_the_committee_reads_the_results_page_with_the_ranking(
    browser: Browser, voting_site: Site
):
    site = voting_site
    watched = await new_page(browser)
    page = watched.page
    await sign_in_staff(page, site, COMMITTEE)
    await page.goto(f"{site.url}/committee/results")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Results")
    await expect(
        page.get_by_text("Voting is still open: these figures are provisional.")
    ).to_be_visible()
    violations = await audit(page)
    assert not violations, describe(violations)
    await screenshot(page, "committee-results")
    await page.get_by_role("link", name=re.compile(r"^C1 · ")).click()
    ranking = page.get_by_role("img", name=re.compile("Shortlist ranking in C1"))
    await expect(ranking).to_be_visible()
    await screenshot(page, "committee-results-c1")
    watched.assert_clean()


async def test_the_organizer_is_told_what_is_wrong_with_an_extension_by_keyboard(
    browser: Browser, voting_site: Site
):
    """The extension form's refusal (voting/contest/actions.py), worded beside the field
    it concerns; nothing changes, so the shared site stays as it was."""
    site = voting_site
    watched = await new_page(browser)
    page = watched.page
    await sign_in_staff(page, site, ORGANIZER)
    await page.goto(f"{site.url}/organizer/voting")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Voting window")
    # The date and time pickers (Geneva wall time): the time cleared by keyboard.
    await page.get_by_label("Time", exact=True).focus()
    await page.keyboard.press("Backspace")
    await page.get_by_label("Reason (recorded)").focus()
    await page.keyboard.type("servers were slow")
    await page.get_by_role("button", name="Extend voting").focus()
    await page.keyboard.press("Enter")
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("Give the new close as a date and a time, Geneva time.")
    field = page.get_by_label("Time", exact=True)
    await expect(field).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("fieldset:has(#new_time)")).to_have_attribute(
        "aria-describedby", "extend-error"
    )
    # What was typed stays.
    await expect(page.get_by_label("Reason (recorded)")).to_have_value("servers were slow")
    violations = await audit(page)
    assert not violations, describe(violations)
    await screenshot(page, "organizer-extend-refused")
    # The page answers the refused form with its status (422), which Chromium logs; no
    # other error.
    assert watched.errors == [
        "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
    ]
