"""The public front door in a real browser (issue 19, items 3, 4 and 7): the home page's
call to vote with a running countdown, a voter who starts on a project and comes back to
it, the confirm step from a project page, the receipt's copy button, the nominator who
votes without a second link, and phones: no page, public or staff, scrolls sideways at
390 px, the header and its language menu fit, tables become cards."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.async_api import Browser, Page, expect

from tests.fixtures.browser import (
    NOMINATOR,
    PHONE,
    Site,
    audit,
    describe,
    mail_link,
    new_page,
    phone,
    screenshot,
    sign_in_staff,
    width,
)
from voting import accounts, db
from voting.web.templating import LANGUAGE_NAMES

# Not pages: downloads, machine answers, links that are used up by opening them.
SKIP = ("/api/", "/static/", "/metrics", ".csv", "/signin/confirm", "/vote/confirm", "/signout")


async def crawl(page: Page, site: Site, starts: list[str], limit: int = 70) -> dict[str, int]:
    """Every page reachable by following this site's links from `starts` (the query left
    off: one visit per path), with the document's width at each."""
    seen: dict[str, int] = {}
    queue = list(starts)
    while queue and len(seen) < limit:
        path = queue.pop(0)
        if path in seen or any(part in path for part in SKIP):
            continue
        await page.goto(f"{site.url}{path}")
        seen[path] = await width(page)
        for href in await page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
            parts = urlsplit(href)
            if f"{parts.scheme}://{parts.netloc}" == site.url and parts.path not in seen:
                queue.append(parts.path)
    return seen


async def test_no_page_scrolls_sideways_on_a_phone(browser: Browser, voting_site: Site):
    site = voting_site
    nomination = site.nominations["C1"][0]
    public = ["/", "/vote", "/vote/C1", "/categories", "/categories/C1", "/results", "/receipts"]
    public += [f"/nominations/{nomination}", "/signin", "/nowhere", "/my-votes", "/dev/mail"]
    wide: dict[str, int] = {}
    visited: list[str] = []
    context, watched = await phone(browser)
    found = await crawl(watched.page, site, public)
    visited += found
    wide.update({f"public {p}": w for p, w in found.items() if w > PHONE["width"]})
    await screenshot(watched.page, "phone-signin")
    await context.close()
    # Accounts of their own: the shared ones have spent their hourly sign-in links on
    # the other journeys.
    organizer, committee = "phone.organizer@example.org", "phone.committee@example.org"
    conn = await db.connect(site.server.database_url)
    try:
        await accounts.grant(conn, organizer, "organizer")
        await accounts.grant(conn, committee, "committee")
    finally:
        await conn.close()
    for who, starts in (
        (
            organizer,
            [
                "/organizer",
                "/organizer/voting",
                "/organizer/ops",
                "/organizer/experts",
                "/organizer/mobilisations",
                "/dashboard",
                "/nominations/new",
                "/experts",
            ],
        ),
        (
            committee,
            [
                "/committee/live",
                "/committee/fraud",
                "/committee/results",
                "/committee/reviews",
                "/committee/results/report",
            ],
        ),
    ):
        context, watched = await phone(browser)
        await sign_in_staff(watched.page, site, who)
        found = await crawl(watched.page, site, starts)
        visited += found
        wide.update({f"{who} {p}": w for p, w in found.items() if w > PHONE["width"]})
        await watched.page.goto(f"{site.url}{starts[0]}")
        await screenshot(watched.page, f"phone-{who.split('@')[0]}")
        await context.close()
    # A voter's pages: the ballot with its form, the receipt, the receipts mail page.
    context, watched = await phone(browser)
    page = watched.page
    email = "phone.voter@example.org"
    await page.goto(f"{site.url}/vote")
    await page.get_by_role("textbox", name="Email address").fill(email)
    await page.get_by_role("button", name="Send me the link").click()
    await page.goto(await mail_link(page, site, email, "/vote/confirm"))
    await page.locator("form[action='/vote/confirm'] button").click()
    await page.goto(f"{site.url}/vote/C2")
    await page.locator("input[type=radio]").first.check()
    await page.wait_for_timeout(1500)
    await page.get_by_role("button", name="Confirm my vote").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your vote is recorded")
    if await width(page) > PHONE["width"]:
        wide["voter receipt"] = await width(page)
    violations = await audit(page)
    assert not violations, describe(violations)
    await screenshot(page, "phone-voter-receipt")
    found = await crawl(page, site, ["/vote", "/vote/C1", "/vote/C2", "/receipts"])
    visited += found
    wide.update({f"voter {p}": w for p, w in found.items() if w > PHONE["width"]})
    await context.close()
    assert not wide, f"pages wider than {PHONE['width']} px: {wide}"
    # It did reach the staff pages and the pages behind the public ones.
    assert len(visited) >= 25, visited
    assert any(p.startswith("/committee/fraud/") for p in visited), visited
    assert any(p.startswith("/organizer/nominations/") for p in visited), visited


async def test_the_header_fits_a_phone_in_every_language(browser: Browser, voting_site: Site):
    context, watched = await phone(browser)
    page = watched.page
    for lang in ("en", "fr", "es", "ar", "zh", "ru"):
        await page.goto(f"{voting_site.url}/?lang={lang}")
        assert await width(page) <= PHONE["width"], lang
        summary = page.locator("details.languages summary")
        await expect(summary).to_contain_text(LANGUAGE_NAMES[lang])
        header = await page.locator(".site-header").bounding_box()
        assert header is not None
        # Brand, main links and the language menu: a few short lines, not a wall.
        assert header["height"] < 260, (lang, header)
        await screenshot(page, f"phone-home-{lang}")
    # The menu opens and takes the reader to another language, by keyboard too.
    await page.goto(f"{voting_site.url}/?lang=en")
    menu = page.locator("details.languages")
    await menu.locator("summary").focus()
    await page.keyboard.press("Enter")
    await expect(menu.get_by_role("link", name="中文")).to_be_visible()
    assert await width(page) <= PHONE["width"]
    violations = await audit(page)
    assert not violations, describe(violations)
    await page.keyboard.press("Escape")
    await expect(menu.get_by_role("link", name="中文")).to_be_hidden()
    await menu.locator("summary").click()
    await menu.get_by_role("link", name="中文").click()
    await expect(page.locator("html")).to_have_attribute("lang", "zh")
    watched.assert_clean()
    await context.close()


async def test_tables_become_cards_on_a_phone(browser: Browser, voting_site: Site):
    context, watched = await phone(browser)
    page = watched.page
    await page.goto(f"{voting_site.url}/")
    cell = page.locator("section[aria-labelledby='calendar-heading'] tbody td").first
    assert await cell.evaluate("td => getComputedStyle(td).display") == "block"
    assert await cell.get_attribute("data-label") == "Opens"
    before = await cell.evaluate("td => getComputedStyle(td, '::before').content")
    assert "Opens" in before
    await screenshot(page, "phone-calendar-cards")
    violations = await audit(page)
    assert not violations, describe(violations)
    await context.close()


async def test_the_home_page_leads_with_the_vote_and_counts_down(
    browser: Browser, voting_site: Site
):
    watched = await new_page(browser)
    page = watched.page
    # The time left is in the page as served; the script only keeps it moving.
    served = await (await page.request.get(f"{voting_site.url}/")).text()
    assert "data-countdown" in served and "Time left:" in served
    await page.goto(f"{voting_site.url}/")
    call = page.locator("section.call")
    await expect(call.get_by_role("heading", level=2)).to_have_text("Public online voting is open")
    countdown = call.locator("[data-countdown]")
    first = await countdown.inner_text()
    await expect(countdown).not_to_have_text(first, timeout=3000)
    await screenshot(page, "home-vote-call")
    violations = await audit(page)
    assert not violations, describe(violations)
    await call.get_by_role("link", name="Vote", exact=True).click()
    await expect(page).to_have_url(f"{voting_site.url}/vote")
    results = await page.goto(f"{voting_site.url}/results")
    assert results is not None and results.status == 200
    await expect(page.get_by_role("heading", level=2)).to_have_text(
        "The results are not published yet"
    )
    watched.assert_clean()


async def test_a_voter_starts_on_a_project_comes_back_and_confirms_there(
    browser: Browser, voting_site: Site
):
    site = voting_site
    watched = await new_page(browser)
    page = watched.page
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    target = site.nominations["C3"][0]
    await page.goto(f"{site.url}/nominations/{target}")
    title = (await page.get_by_role("heading", level=1).inner_text()).strip()
    await page.get_by_role(
        "link", name="Confirm your email address to vote for this project"
    ).click()
    email = "from.a.project@example.org"
    await page.get_by_role("textbox", name="Email address").fill(email)
    await page.get_by_role("button", name="Send me the link").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Check your mail")
    await page.goto(await mail_link(page, site, email, "/vote/confirm"))
    await page.locator("form[action='/vote/confirm'] button").click()
    # Back on the project, signed in, with sign-out in the header.
    await expect(page).to_have_url(f"{site.url}/nominations/{target}")
    await expect(page.locator(".site-header")).to_contain_text("Signed in to vote")
    await expect(
        page.locator(".site-header").get_by_role("button", name="Sign out")
    ).to_be_visible()
    await page.get_by_role("link", name="Vote for this project").click()
    # The ballot, this project chosen: nothing is cast until the voter confirms.
    await expect(page.locator(f"#n-{target}")).to_be_checked()
    await page.wait_for_timeout(1500)  # a person reads before confirming
    await page.get_by_role("button", name="Confirm my vote").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your vote is recorded")
    await expect(page.locator("dl.facts")).to_contain_text(title)
    receipt = (await page.locator("#receipt-code").inner_text()).strip()
    await page.get_by_role("button", name="Copy the receipt").click()
    await expect(page.get_by_text("Copied.")).to_be_visible()
    assert await page.evaluate("navigator.clipboard.readText()") == receipt
    await expect(page.get_by_role("button", name="Print this page")).to_be_visible()
    await screenshot(page, "voter-receipt-names-the-project")
    violations = await audit(page)
    assert not violations, describe(violations)
    await page.get_by_label("Email me my receipts: the address you confirmed").fill(email)
    await page.get_by_role("button", name="Email me my receipts").click()
    await expect(page.get_by_role("status")).to_contain_text("We sent your receipts")
    violations = await audit(page)
    assert not violations, describe(violations)
    await page.goto(f"{site.url}/dev/mail")
    await expect(page.locator("article.mail").first).to_contain_text(receipt)
    await page.goto(f"{site.url}/vote")
    await expect(page.get_by_role("link", name="Check a receipt").first).to_be_visible()
    watched.assert_clean()


async def test_a_nominator_votes_without_a_second_link(browser: Browser, voting_site: Site):
    site = voting_site
    watched = await new_page(browser)
    page = watched.page
    await sign_in_staff(page, site, NOMINATOR)
    target = site.nominations["C2"][-1]
    await page.goto(f"{site.url}/nominations/{target}")
    await expect(page.locator(".site-header")).to_contain_text(f"Signed in as {NOMINATOR}")
    await screenshot(page, "nominator-votes-as-account")
    violations = await audit(page)
    assert not violations, describe(violations)
    await page.get_by_role("button", name=f"Vote as {NOMINATOR}").click()
    # Straight to the ballot's confirm step, the project chosen, no mail in between.
    await expect(page).to_have_url(f"{site.url}/vote/C2?choose={target}")
    await expect(page.locator(f"#n-{target}")).to_be_checked()
    await expect(page.get_by_role("button", name="Confirm my vote")).to_be_visible()
    watched.assert_clean()


async def test_signing_in_to_continue_is_a_page_with_the_link(browser: Browser, voting_site: Site):
    watched = await new_page(browser)
    page = watched.page
    answer = await page.goto(f"{voting_site.url}/committee/live")
    assert answer is not None and answer.status == 401
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to continue")
    violations = await audit(page)
    assert not violations, describe(violations)
    await screenshot(page, "sign-in-to-continue")
    await page.get_by_role("main").get_by_role("link", name="Sign in").click()
    await expect(page).to_have_url(f"{voting_site.url}/signin?next=/committee/live")
    assert await page.locator("input[name=next]").get_attribute("value") == "/committee/live"
    # The 401 was asked for on purpose: its console line is the page under test.
    watched.errors[:] = [e for e in watched.errors if "401" not in e]
    watched.assert_clean()
