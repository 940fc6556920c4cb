"""Six languages by eye (issue 19, items 5, 6 and 9): a nominator in each language, from
a mistyped address (typo help) to a refused submission that keeps everything typed, with
the live word count; the organizer's deadline pickers. Every page is axe-clean, and each
language leaves a screenshot under artifacts/browser/, Chinese with real glyphs (the
browser tests install Debian's fonts-noto-cjk: `./dev`'s browser_tools)."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.fixtures.browser import (
    ORGANIZER,
    Site,
    audit,
    describe,
    mail_link,
    new_page,
    screenshot,
    sign_in_staff,
)
from voting.i18n import LANGUAGES, gettext

BROWSER_LOCALE = {
    "en": "en-GB",
    "fr": "fr-FR",
    "es": "es-ES",
    "ar": "ar-EG",
    "zh": "zh-CN",
    "ru": "ru-RU",
}
C1_NAME = {
    "en": "Public governance",
    "fr": "Gouvernance publique",
    "es": "Gobernanza pública",
    "ar": "الحوكمة العامة",
    "zh": "公共治理",
    "ru": "Государственное управление",
}
TITLE = {
    "en": "Village broadband",
    "fr": "Haut débit pour les villages",
    "es": "Banda ancha para las aldeas",
    "ar": "النطاق العريض للقرى",
    "zh": "乡村宽带",
    "ru": "Широкополосный доступ для сел",
}

# Two different ideographs drawn with the page's sans-serif font: without a CJK font both
# come out as the same empty box ("tofu"), so their pixels are equal.
GLYPHS_DIFFER = """() => {
  const canvas = document.createElement("canvas");
  canvas.width = 48; canvas.height = 48;
  const ctx = canvas.getContext("2d");
  const draw = (text) => {
    ctx.clearRect(0, 0, 48, 48);
    ctx.font = "40px sans-serif";
    ctx.fillText(text, 0, 40);
    return Array.from(ctx.getImageData(0, 0, 48, 48).data).join(",");
  };
  const one = draw("类"), two = draw("票"), blank = draw("");
  return one !== two && one !== blank;
}"""


async def _axe_clean(page: Page) -> None:
    violations = await audit(page)
    assert not violations, describe(violations)


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_a_nominator_in_each_language_keeps_every_word_typed(
    browser: Browser, nominating_site: Site, lang: str
):
    site = nominating_site
    watched = await new_page(browser, locale=BROWSER_LOCALE[lang])
    page = watched.page
    if lang == "zh":
        assert await page.evaluate(GLYPHS_DIFFER), "no CJK font: apt-get install fonts-noto-cjk"

    # A slip in the domain: asked once, in the reader's language.
    address = f"nominator-{lang}@example.org"
    await page.goto(f"{site.url}/signin?lang={lang}")
    await page.locator("#email").fill(f"nominator-{lang}@gmial.com")
    await page.locator("form[novalidate] button[type=submit]").click()
    question = gettext("Did you mean %(address)s?", lang) % {
        "address": f"nominator-{lang}@gmail.com"
    }
    await expect(page.get_by_role("heading", level=2)).to_have_text(question)
    await expect(page.locator("#email")).to_have_value(f"nominator-{lang}@gmial.com")
    await _axe_clean(page)
    await screenshot(page, f"words-typo-{lang}")
    # The person corrects it themselves (the hint never changes the address alone).
    await page.locator("#email").fill(address)
    await page.locator("form[novalidate] button[type=submit]").click()
    await page.goto(await mail_link(page, site, address, "/signin/confirm"))
    await page.locator("main form button[type=submit]").first.click()
    await page.wait_for_load_state()

    await page.goto(f"{site.url}/nominations/new?lang={lang}")
    assert await page.get_attribute("html", "lang") == lang
    # The category's name in the reader's language, from the edition's data.
    await expect(page.locator("#f-category option[value=C1]")).to_have_text(f"C1: {C1_NAME[lang]}")
    await page.locator("#f-category").select_option("C1")
    await page.locator("#f-title").fill(TITLE[lang])
    await page.locator("#f-start_date").fill("2021-03-01")
    await page.locator("#f-organization").fill("Rural Advice Network")
    summary = " ".join(["word"] * 20)
    await page.locator("#f-summary").fill(summary)
    # The live count, in the page's language and digits, against the edition's limits.
    count = page.locator("#f-summary-count")
    await expect(count).to_be_visible()
    await expect(count).to_have_attribute("data-state", "under")
    digits = await page.evaluate(
        "([lang, values]) => values.map(v => new Intl.NumberFormat(lang).format(v))",
        [lang, [20, 150]],
    )
    expected = gettext("{n} words: at least {min} are needed.", lang).format(
        n=digits[0], min=digits[1]
    )
    await expect(count).to_have_text(expected)
    await page.locator("button[value=submit]").click()

    # Refused, nothing lost: the draft is saved, every field as typed, the problems listed.
    saved = gettext(
        "Not submitted yet, but nothing is lost: everything you typed is saved as a draft."
        " Fix what is marked, then submit again.",
        lang,
    )
    await expect(page.get_by_role("status").filter(has_text=saved)).to_be_visible()
    await expect(page.locator("#f-title")).to_have_value(TITLE[lang])
    await expect(page.locator("#f-organization")).to_have_value("Rural Advice Network")
    await expect(page.locator("#f-start_date")).to_have_value("2021-03-01")
    await expect(page.locator("#f-summary")).to_have_value(summary)
    await expect(page.locator(".error-summary")).to_be_visible()
    assert await page.locator("form[action$='/edit']").count() == 1
    await _axe_clean(page)
    await screenshot(page, f"words-form-{lang}")
    # The refusal's 422 was asked for: it is the page under test.
    watched.errors[:] = [e for e in watched.errors if "422" not in e]
    watched.assert_clean()


async def test_the_organizer_moves_the_close_with_pickers_in_chinese(
    browser: Browser, voting_site: Site
):
    site = voting_site
    watched = await new_page(browser)  # signs in in English, then picks Chinese
    page = watched.page
    await sign_in_staff(page, site, ORGANIZER)
    await page.goto(f"{site.url}/organizer/voting?lang=zh")
    date = page.locator("#new_date")
    time = page.locator("#new_time")
    assert await date.get_attribute("type") == "date"
    assert await time.get_attribute("type") == "time"
    current = await date.input_value()
    assert current and await time.input_value()
    await _axe_clean(page)
    # A close earlier than the current one: refused in Chinese, the input kept.
    await date.fill("2020-01-01")
    await page.locator("#reason").fill("网络故障")
    await page.locator("#extend-heading ~ form button[type=submit]").click()
    error = page.locator("#extend-error")
    refusal = gettext("The new close must be later than the current one ({when}).", "zh")
    await expect(error).to_contain_text(refusal.split("{when}")[0])
    await expect(page.locator("#new_date")).to_have_value("2020-01-01")
    await expect(page.locator("#reason")).to_have_value("网络故障")
    assert await page.evaluate(GLYPHS_DIFFER)
    await _axe_clean(page)
    await screenshot(page, "words-organizer-extend-zh")
    watched.errors[:] = [e for e in watched.errors if "422" not in e]
    watched.assert_clean()


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_the_voters_pages_in_each_language_for_the_eye(
    browser: Browser, voting_site: Site, lang: str
):
    """The pages a voter meets first, in each language, axe-clean, kept as screenshots
    (lang-LANG-PAGE.png) for a reader of that language to check."""
    site = voting_site
    watched = await new_page(browser, locale=BROWSER_LOCALE[lang])
    page = watched.page
    nomination = site.nominations["C1"][0]
    for name, path in (
        ("home", "/"),
        ("categories", "/categories"),
        ("vote", "/vote"),
        ("nomination", f"/nominations/{nomination}"),
    ):
        await page.goto(f"{site.url}{path}?lang={lang}")
        assert await page.get_attribute("html", "lang") == lang
        await _axe_clean(page)
        await screenshot(page, f"lang-{lang}-{name}")
    if lang == "zh":
        assert await page.evaluate(GLYPHS_DIFFER)
    watched.assert_clean()
