"""Pages in the six UN languages: how the language is chosen, Arabic right to left, dates
and numbers as each language writes them, Geneva time, messages from the rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures.editions import load_builtin
from voting.contest import GENEVA
from voting.i18n import (
    LANGUAGES,
    format_instant,
    format_number,
    gettext,
    negotiate,
    reset_language,
    use_language,
)

# A word of the home page in each language, from its catalog.
HOME_WORD = {
    "en": "Categories",
    "fr": "Catégories",
    "es": "Categorías",
    "ru": "Категории",
    "zh": "类别",
    "ar": "الفئات",
}


async def test_every_page_comes_in_each_language_and_arabic_right_to_left(app, client, conn):
    await load_builtin(conn, "wsis-2014", app.state.services.clock.now())
    for lang in LANGUAGES:
        r = await client.get(f"/?lang={lang}")
        assert r.status_code == 200
        assert f'<html lang="{lang}" dir="{"rtl" if lang == "ar" else "ltr"}">' in r.text
        assert HOME_WORD[lang] in r.text
        assert r.headers["content-language"] == lang
        assert "Accept-Language" in r.headers["vary"]


async def test_the_language_comes_from_the_browser_then_the_cookie_then_the_link(client):
    r = await client.get("/signin", headers={"accept-language": "ru-RU,ru;q=0.9,en;q=0.5"})
    assert 'lang="ru"' in r.text and "lang=" not in r.headers.get("set-cookie", "")
    # A choice made with the switcher sticks, over the browser's preference.
    r = await client.get("/signin?lang=es", headers={"accept-language": "ru"})
    assert 'lang="es"' in r.text and "lang=es" in r.headers["set-cookie"]
    r = await client.get("/signin", headers={"accept-language": "ru"})
    assert 'lang="es"' in r.text
    r = await client.get("/signin?lang=zh")
    assert 'lang="zh"' in r.text


async def test_the_switcher_keeps_the_page_and_its_query(app, client, conn):
    await load_builtin(conn, "wsis-2014", app.state.services.clock.now())
    r = await client.get("/categories?q=health&country=RW")
    for lang in LANGUAGES:
        assert f'href="/categories?q=health&amp;country=RW&amp;lang={lang}"' in r.text
    assert r.text.count('aria-current="true"') >= 1


async def test_messages_made_in_the_rules_reach_the_visitor_in_their_language(client):
    r = await client.post("/api/votes", json={"nomination": "X"}, headers={"accept-language": "fr"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "not_signed_in"  # codes stay stable for programs
    assert r.json()["error"]["message"] == "Confirmez votre adresse e-mail avant de voter."
    r = await client.get("/nowhere", headers={"accept-language": "ar"})
    assert r.status_code == 404 and 'dir="rtl"' in r.text
    assert gettext("There is nothing at this address.", "ar") in r.text


async def test_deadline_in_geneva_time_in_each_language(app, client, conn):
    await load_builtin(conn, "wsis-2014", app.state.services.clock.now())
    expected = {
        "en": "18 April 2014, 23:00 (CEST)",
        "fr": "18 avril 2014, 23:00 (CEST)",
        "es": "18 de abril de 2014, 23:00 (CEST)",
        "ru": "18 апреля 2014\u202fг., 23:00 (CEST)",
        "zh": "2014年4月18日 23:00 (CEST)",
        "ar": "18 أبريل 2014، 23:00 (CEST)",
    }
    for lang, text in expected.items():
        r = await client.get(f"/?lang={lang}")
        assert text in r.text, lang
        # The instant is machine-readable too, for the visitor's own time zone (localtime.js).
        assert 'datetime="2014-04-18T21:00:00Z" data-local="1"' in r.text


def test_numbers_follow_the_language():
    assert format_number(1234567, "en") == "1,234,567"
    assert format_number(1234567, "es") == "1.234.567"
    assert format_number(1234567, "fr") == "1\u202f234\u202f567"
    assert format_number(1234567, "ru") == "1\u00a0234\u00a0567"


@settings(max_examples=80, deadline=None)
@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31)),
    st.sampled_from(LANGUAGES),
)
def test_any_instant_reads_as_geneva_wall_time_in_any_language(naive, lang):
    instant = naive.replace(tzinfo=UTC)
    local = instant.astimezone(GENEVA)
    text = format_instant(instant, GENEVA, lang)
    assert f"{local:%H:%M}" in text
    assert text.endswith(f"({local.tzname()})")
    assert local.tzname() in {"CET", "CEST"}
    assert str(local.year) in text


def test_summer_time_changes_come_from_the_zone_database():
    # The last Sunday of March 2026: 01:00 UTC is the change, CET before, CEST after.
    change = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert format_instant(change - timedelta(minutes=1), GENEVA, "en").endswith("01:59 (CET)")
    assert format_instant(change, GENEVA, "en").endswith("03:00 (CEST)")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_an_instant_with_seconds_is_told_to_the_second(lang):
    # 23:00:30 in Geneva (CEST) is 21:00:30 UTC: never rounded down to the minute.
    instant = datetime(2026, 4, 18, 21, 0, 30, tzinfo=UTC)
    assert "23:00:30" in format_instant(instant, GENEVA, lang)
    # A whole minute keeps the short form.
    assert "23:00:" not in format_instant(instant.replace(second=0), GENEVA, lang)


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=60))
def test_any_accept_language_header_gives_a_supported_language(header):
    assert negotiate(header) in LANGUAGES


def test_quality_values_are_honoured():
    assert negotiate("fr;q=0.2, zh-CN;q=0.8, de") == "zh"
    assert negotiate("ar;q=0, es") == "es"
    assert negotiate("de, it") == "en"


def test_the_language_of_the_request_is_the_default_of_gettext():
    token = use_language("es")
    try:
        assert gettext("Sign in") == "Iniciar sesión"
        assert gettext("Sign in", "en") == "Sign in"
    finally:
        reset_language(token)
    assert gettext("Sign in") == "Sign in"


@pytest.mark.parametrize(
    ("lang", "score", "large"),
    [
        ("en", "7.9", "12,345.678"),
        ("fr", "7,9", "12\u202f345,678"),
        ("es", "7,9", "12.345,678"),
        ("ru", "7,9", "12\u00a0345,678"),
        ("zh", "7.9", "12,345.678"),
        ("ar", "7.9", "12,345.678"),
    ],
)
def test_a_computed_figure_reads_as_the_language_writes_it(lang, score, large):
    from voting.i18n import format_figure

    # The results store figures as decimal text with six places: never shown as such.
    assert format_figure("7.900000", lang) == score
    assert format_figure("12345.678000", lang) == large
    assert format_figure("8.000000", lang) == "8"
    assert format_figure(None, lang) == "—"
    # Every place the results keep: figures that rank apart read apart.
    assert format_figure("7.123400", lang) != format_figure("7.123100", lang)
    assert format_figure("0.000001", lang)[-1] == "1"


@settings(max_examples=120, deadline=None)
@given(
    st.decimals(min_value=-(10**6), max_value=10**6, places=6, allow_nan=False),
    st.sampled_from(LANGUAGES),
)
def test_a_figure_reads_back_as_the_same_number_in_every_language(value, lang):
    from babel.numbers import get_decimal_symbol, parse_decimal

    from voting.i18n import format_figure

    text = format_figure(f"{value:.6f}", lang)
    # No trailing zeros after the decimal sign, and the same number read back.
    assert not (get_decimal_symbol(lang) in text and text.endswith("0"))
    assert parse_decimal(text, locale=lang) == value


@pytest.mark.parametrize("lang", LANGUAGES)
def test_staff_pages_write_every_instant_one_way(lang):
    """The chart tables, the live page and the committee's tables all go through the one
    format (format_instant, the `geneva` filter): the same instant reads the same."""
    from voting.web.templating import build_environment

    instant = datetime(2026, 4, 18, 21, 0, tzinfo=UTC)
    env = build_environment(lang)
    via_filter = env.from_string("{{ at|geneva }}").render(at=instant)
    via_seconds_fmt = env.from_string('{{ at|geneva("%d %b %Y %H:%M") }}').render(at=instant)
    assert via_filter == via_seconds_fmt == format_instant(instant, GENEVA, lang)
