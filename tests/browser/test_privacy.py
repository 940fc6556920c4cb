"""Privacy in a real browser: the privacy page reached from the footer, a voter's own
data page and its JSON download (issue 20), each page axe-clean, in English and Arabic."""

from __future__ import annotations

import json

from playwright.async_api import Browser, expect

from tests.fixtures.browser import Site, audit, describe, mail_link, new_page, screenshot


async def test_a_voter_reads_the_privacy_page_and_downloads_their_data(
    browser: Browser, voting_site: Site
):
    site = voting_site
    watched = await new_page(browser)
    page = watched.page
    email = "privacy.voter@example.org"

    # Not signed in: the data page (401) says what to do first. In a tab of its own: the
    # 401 is a console error there, which this test expects.
    stranger = await page.context.new_page()
    response = await stranger.goto(f"{site.url}/my-data")
    assert response is not None and response.status == 401
    await expect(stranger.get_by_role("alert")).to_contain_text(
        "Confirm your email address, or sign in as a nominator, first"
    )
    await stranger.close()

    await page.goto(f"{site.url}/vote")
    await page.locator("#email").fill(email)
    await page.get_by_role("button", name="Send me the link").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Check your mail")
    await page.goto(await mail_link(page, site, email, "/vote/confirm"))
    await page.locator("form[action='/vote/confirm'] button").click()
    await expect(page.get_by_role("heading", name="My votes")).to_be_visible()

    nomination = site.nominations["C2"][0]
    await page.goto(f"{site.url}/vote/C2")
    await page.wait_for_timeout(2500)  # a person reads the list before choosing
    await page.locator(f"#n-{nomination}").check()
    await page.get_by_role("button", name="Confirm my vote").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your vote is recorded")
    receipt = await page.locator(".receipt code").inner_text()

    # From any page's footer to the privacy notice, then to the data page.
    await page.get_by_role("contentinfo").get_by_role("link", name="Privacy").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Privacy")
    table = page.get_by_role("table", name="What is stored and for how long")
    await expect(table).to_contain_text("Deleted 24 hours after the mail is delivered")
    await expect(table).to_contain_text("Erased 30 days after the results are published")
    violations = await audit(page)
    assert not violations, describe(violations)
    await screenshot(page, "privacy-page")

    await page.get_by_role("link", name="See my data").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("My data")
    await expect(page.locator("main table")).to_contain_text(receipt)
    violations = await audit(page)
    assert not violations, describe(violations)
    await screenshot(page, "my-data")

    async with page.expect_download() as info:
        await page.get_by_role("link", name="Download my data (JSON)").click()
    download = await info.value
    assert download.suggested_filename == "wsis-my-data-browser-vote.json"
    data = json.loads((await download.path()).read_text(encoding="utf-8"))
    [vote] = data["votes"]
    assert (vote["receipt"], vote["category"], vote["nomination"]) == (receipt, "C2", nomination)
    assert email not in json.dumps(data)  # the address is not kept outside the outbox

    # The same pages right to left, in Arabic, still axe-clean.
    for path in ("/privacy?lang=ar", "/my-data?lang=ar"):
        await page.goto(f"{site.url}{path}")
        assert await page.get_attribute("html", "dir") == "rtl"
        violations = await audit(page)
        assert not violations, describe(violations)
    await screenshot(page, "my-data-ar")
    watched.assert_clean()
