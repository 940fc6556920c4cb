"""The public pages against WCAG 2.1 A/AA with axe-core in headless Chromium, in English
and in Arabic (right to left), plus what axe cannot judge alone: the skip link first in
the focus order, a visible focus, and the right-to-left layout."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests.fixtures.browser import (
    COMMITTEE,
    NOMINATOR,
    ORGANIZER,
    Site,
    audit,
    describe,
    new_page,
    screenshot,
    sign_in_staff,
)

PUBLIC = [
    "/",
    "/categories",
    "/categories/C1",
    "/vote",
    "/vote/C1",
    "/signin",
    "/privacy",
    "/nowhere",
]


@pytest.mark.parametrize("lang", ["en", "ar"])
async def test_public_pages_pass_the_axe_audit(browser: Browser, voting_site: Site, lang: str):
    watched = await new_page(browser, locale="ar-EG" if lang == "ar" else "en-GB")
    page = watched.page
    nomination = voting_site.nominations["C2"][0]
    found = {}
    for path in [*PUBLIC, f"/nominations/{nomination}"]:
        await page.goto(f"{voting_site.url}{path}")
        assert await page.get_attribute("html", "lang") == lang
        violations = await audit(page)
        if violations:
            found[path] = describe(violations)
        if path == "/nowhere":  # asked for on purpose: its 404 is the page under test
            watched.errors[:] = [e for e in watched.errors if "404" not in e]
    assert not found, "\n\n".join(f"{path}:\n{text}" for path, text in found.items())
    watched.assert_clean()


async def test_declared_mobilisation_pages_pass_the_axe_audit(browser: Browser, voting_site: Site):
    """The nominator's declaration form, the organizers' queue and the committee's fraud
    page (declared support, refused sign-ins): signed in, each as its role."""
    nomination = voting_site.nominations["C1"][0]
    found = {}
    for email, path in (
        (NOMINATOR, f"/nominations/{nomination}/mobilisation"),
        (ORGANIZER, "/organizer/mobilisations"),
        (COMMITTEE, "/committee/fraud/C1"),
        (NOMINATOR, "/my-data"),  # the account's own data (README, Privacy)
    ):
        watched = await new_page(browser)
        page = watched.page
        await sign_in_staff(page, voting_site, email)
        await page.goto(f"{voting_site.url}{path}")
        assert await page.locator("h1").count() == 1
        violations = await audit(page)
        if violations:
            found[path] = describe(violations)
        watched.assert_clean()
    assert not found, "\n\n".join(f"{path}:\n{text}" for path, text in found.items())


@pytest.mark.parametrize("lang", ["en", "ar"])
async def test_the_bought_votes_audit_on_the_fraud_page_passes_the_axe_audit(
    browser: Browser, voting_site: Site, lang: str
):
    """The committee's per-nomination audit: a summary and a captioned table of figures
    for each nomination with votes, in English and right to left in Arabic."""
    watched = await new_page(browser)
    page = watched.page
    await sign_in_staff(page, voting_site, COMMITTEE)  # (its labels are read in English)
    await page.goto(f"{voting_site.url}/committee/fraud/C1?lang={lang}")
    assert await page.get_attribute("html", "dir") == ("rtl" if lang == "ar" else "ltr")
    section = page.locator("section[aria-labelledby=audit-heading]")
    heading = "تدقيق الأصوات المشتراة" if lang == "ar" else "Audit for bought votes"
    await expect(section.get_by_role("heading", level=2)).to_have_text(heading)
    nominations = voting_site.nominations["C1"]
    tables = section.get_by_role("table")
    assert await tables.count() >= 1
    for table in await tables.all():
        caption = "ملف الناخبين" if lang == "ar" else "Voters' profile"
        await expect(table.locator("caption")).to_contain_text(caption)
        assert await table.locator("th[scope=row]").count() == 10
    first = section.get_by_role("article").filter(has=page.locator(f"#audit-{nominations[0]}"))
    await expect(first.locator(".audit-summary")).not_to_be_empty()
    violations = await audit(page)
    assert not violations, describe(violations)
    watched.assert_clean()


async def test_other_languages_pass_on_the_home_and_ballot_pages(
    browser: Browser, voting_site: Site
):
    watched = await new_page(browser)
    page = watched.page
    for lang in ("zh", "fr", "ru", "es"):
        for path in ("/", "/vote/C1"):
            await page.goto(f"{voting_site.url}{path}?lang={lang}")
            violations = await audit(page)
            assert not violations, f"{lang} {path}:\n{describe(violations)}"
    watched.assert_clean()


async def test_keyboard_first_stop_is_the_skip_link_and_focus_is_visible(
    browser: Browser, voting_site: Site
):
    watched = await new_page(browser)
    page = watched.page
    await page.goto(f"{voting_site.url}/categories")
    await page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    await expect(skip).to_be_focused()
    await expect(skip).to_be_in_viewport()
    outline = await skip.evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline == "solid"
    await page.keyboard.press("Enter")
    assert await page.evaluate("() => document.activeElement.id") == "main"
    # The next Tab lands inside the main content, not back in the header.
    await page.keyboard.press("Tab")
    assert await page.evaluate("() => !!document.activeElement.closest('main')")


async def test_arabic_lays_out_right_to_left(browser: Browser, voting_site: Site):
    watched = await new_page(browser, locale="ar")
    page = watched.page
    await page.goto(f"{voting_site.url}/vote")
    assert await page.get_attribute("html", "dir") == "rtl"
    assert (
        await page.evaluate("() => getComputedStyle(document.querySelector('main')).direction")
        == "rtl"
    )
    # The heading starts at the right edge of the content, and nothing overflows sideways.
    heading = await page.locator("h1").bounding_box()
    main = await page.locator("main").bounding_box()
    assert heading and main and heading["x"] + heading["width"] > main["x"] + main["width"] - 40
    assert await page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    await screenshot(page, "vote-arabic")
    watched.assert_clean()


async def test_the_audit_does_catch_a_violation(browser: Browser, voting_site: Site):
    """The audit is only worth its silence if it speaks up: break a page on purpose."""
    watched = await new_page(browser)
    page = watched.page
    await page.goto(f"{voting_site.url}/signin")
    await page.evaluate(
        "() => { document.querySelector('label[for=email]').remove();"
        " const p = document.createElement('p'); p.textContent = 'faint';"
        " p.setAttribute('class', 'local-time'); p.style.color = '#cccccc';"
        " document.querySelector('main').append(p); }"
    )
    ids = {v["id"] for v in await audit(page)}
    assert {"label", "color-contrast"} <= ids
