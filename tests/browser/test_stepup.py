"""The step-up challenge in a real browser: a vote whose score asks for it shows the
ALTCHA widget, which passes the axe audit, is reached and ticked by keyboard, solves in
the browser (its worker allowed by the site's CSP) and lets the vote through."""

from __future__ import annotations

import re

from playwright.async_api import Browser, expect

from tests.fixtures.browser import Site, Watched, _tab_to, audit, describe, mail_link, screenshot

# A desktop Chrome's agent: the headless one names itself, which scores higher.
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/120.0.0.0 Safari/537.36"
)


async def test_a_driven_browser_solves_the_challenge_by_keyboard_and_votes(
    browser: Browser, voting_site: Site
):
    site = voting_site
    # Playwright's Chromium reports navigator.webdriver = true: the ballot page's script
    # sends it, and that alone puts the vote in the middle band.
    context = await browser.new_context(
        locale="fr-FR", user_agent=CHROME, viewport={"width": 1100, "height": 900}
    )
    watched = Watched(await context.new_page())
    page = watched.page
    email = "challenged.voter@example.org"
    await page.goto(f"{site.url}/vote")
    await page.fill("#email", email)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Consultez votre messagerie")
    await page.goto(await mail_link(page, site, email, "/vote/confirm"))
    await page.locator("form[action='/vote/confirm'] button").click()

    nomination = site.nominations["C3"][0]
    await page.goto(f"{site.url}/vote/C3")
    assert await page.locator("input[name=webdriver]").input_value() == "1"
    await page.wait_for_timeout(2500)  # longer than min_form_seconds: only webdriver counts
    await page.locator(f"#n-{nomination}").check()
    await page.locator("form[action='/vote/C3'] button[type=submit]").click()
    await expect(page.locator("altcha-widget")).to_be_attached()
    await expect(page.locator("#challenge-heading")).to_contain_text("Encore une étape")
    checkbox = page.get_by_label("Je suis une personne")
    await expect(checkbox).to_be_visible()
    violations = await audit(page)
    assert not violations, describe(violations)
    await screenshot(page, "voter-challenge")

    await _tab_to(page, "input[type=checkbox]")
    await page.keyboard.press("Space")
    await expect(page.locator("input[name=altcha]")).not_to_have_value("", timeout=60_000)
    # Said to screen readers too, in the page's language.
    await expect(page.locator("#challenge-status")).to_have_text(
        "C'est fait : vous pouvez envoyer le formulaire."
    )
    assert await page.locator(f"#n-{nomination}").is_checked()  # the choice was kept
    await page.locator("form[action='/vote/C3'] button[type=submit]").click()
    await expect(page.locator(".receipt code")).to_be_visible()
    await screenshot(page, "voter-challenge-solved")
    # Chromium logs the 428 page itself as a failed resource; nothing else may fail (a
    # CSP refusal of the widget's script, style or worker, a script error).
    watched.errors = [e for e in watched.errors if "status of 428" not in e]
    watched.assert_clean()


async def _vote_from_the_nomination_page(
    browser: Browser, site: Site, email: str, nomination: str, *, hide_webdriver: bool
) -> tuple[Watched, str]:
    """A voter confirms an address, opens a project's page, follows its vote button to
    the ballot and confirms there; returns the page and the form body sent."""
    context = await browser.new_context(
        locale="en-GB", user_agent=CHROME, viewport={"width": 1100, "height": 900}
    )
    if hide_webdriver:
        # The same browser, its automation trace hidden before any of the site's scripts.
        await context.add_init_script(
            "Object.defineProperty(Navigator.prototype, 'webdriver', {get: () => false})"
        )
    watched = Watched(await context.new_page())
    page = watched.page
    await page.goto(f"{site.url}/vote")
    await page.fill("#email", email)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Check your mail")
    await page.goto(await mail_link(page, site, email, "/vote/confirm"))
    await page.locator("form[action='/vote/confirm'] button").click()
    await page.wait_for_load_state()

    await page.goto(f"{site.url}/nominations/{nomination}")
    # The project page's button opens the category's ballot with the project chosen.
    await page.locator("section.vote-box").get_by_role("link", name="Vote for this project").click()
    await page.wait_for_url(re.compile(rf"/vote/{category_of(site, nomination)}\?choose="))
    form = page.locator("main form[method=post]").filter(has=page.locator("#n-" + nomination))
    await expect(form.locator("input[name=webdriver]")).to_have_value("" if hide_webdriver else "1")
    assert await page.locator(f"#n-{nomination}").is_checked()
    await page.wait_for_timeout(2500)  # longer than min_form_seconds: only webdriver counts
    async with page.expect_request(lambda r: r.method == "POST" and "/vote/" in r.url) as sent:
        await form.get_by_role("button", name="Confirm my vote").click()
    body = (await sent.value).post_data or ""
    await page.wait_for_load_state()
    return watched, body


def category_of(site: Site, nomination: str) -> str:
    return next(c for c, ids in site.nominations.items() if nomination in ids)


async def test_a_vote_from_a_project_page_reports_a_driven_browser(
    browser: Browser, voting_site: Site
):
    """A vote started from a project's page carries navigator.webdriver as the ballot's
    does (the same page and stepup.js): a driven browser is asked for the challenge; the
    same browser with the trace hidden is counted at once."""
    site = voting_site
    category = "C2"
    nomination = site.nominations[category][0]

    watched, body = await _vote_from_the_nomination_page(
        browser, site, "driven.from.page@example.org", nomination, hide_webdriver=False
    )
    page = watched.page
    assert "webdriver=1" in body.split("&")
    await expect(page.locator("altcha-widget")).to_be_attached()
    await expect(page.locator("#challenge-heading")).to_contain_text("One more step")
    # The ballot of the category comes back with the project kept as the choice.
    assert await page.locator(f"#n-{nomination}").is_checked()
    watched.errors = [e for e in watched.errors if "status of 428" not in e]
    watched.assert_clean()

    watched, body = await _vote_from_the_nomination_page(
        browser, site, "plain.from.page@example.org", nomination, hide_webdriver=True
    )
    page = watched.page
    assert "webdriver=" in body.split("&")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your vote is recorded")
    await expect(page.locator("altcha-widget")).to_have_count(0)
    watched.assert_clean()
