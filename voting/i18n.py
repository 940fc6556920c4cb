"""Interface text goes through gettext, in the six official UN languages.

Catalogs live in voting/locale/<lang>/LC_MESSAGES/messages.po (Babel), compiled to
messages.mo and committed, so an install needs no compile step; `voting i18n
extract|update|compile` keeps them in step with the code (voting/i18n_catalogs.py).

The language of the request being served is kept in a context variable that the
request middleware sets (voting/web/observability.py): code deep in the rules can then
call `gettext(...)` without threading the language through every call, and an API error
raised there reaches the visitor in the language the page is in.
"""

from __future__ import annotations

import gettext as _gettext
from contextvars import ContextVar, Token
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal as _Decimal
from functools import cache
from pathlib import Path

from babel import numbers as _numbers
from babel.dates import format_date, format_time, format_timedelta, get_datetime_format
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).parent / "locale"
# The six official UN languages; English is the source language.
LANGUAGES = ("en", "ar", "zh", "fr", "ru", "es")
DEFAULT_LANGUAGE = "en"
RTL_LANGUAGES = frozenset({"ar"})

_current: ContextVar[str] = ContextVar("language", default=DEFAULT_LANGUAGE)


def current_language() -> str:
    return _current.get()


def use_language(lang: str) -> Token[str]:
    """Make `lang` the language of the code that runs from here in this context; give the
    token to `reset_language` to go back."""
    return _current.set(lang if lang in LANGUAGES else DEFAULT_LANGUAGE)


def reset_language(token: Token[str]) -> None:
    _current.reset(token)


@cache
def translations(lang: str) -> _gettext.NullTranslations:
    if lang not in LANGUAGES or lang == DEFAULT_LANGUAGE:
        return NullTranslations()
    return Translations.load(str(LOCALE_DIR), [lang])


def gettext(message: str, lang: str | None = None) -> str:
    """`message` in `lang`, or in the language of the request being served."""
    return translations(lang or _current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int, lang: str | None = None) -> str:
    return translations(lang or _current.get()).ngettext(singular, plural, n)


# Marks a string for extraction where it is translated later, at display time.
def N_(message: str) -> str:
    return message


def negotiate(accept_language: str | None) -> str:
    """Pick the best supported language from an Accept-Language header."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            choices.append((-quality, index, primary))
    return min(choices)[2] if choices else DEFAULT_LANGUAGE


# -- numbers and instants, as each language writes them (CLDR data through Babel) ---------


def format_number(value: float | int, lang: str | None = None) -> str:
    """1234567 -> "1,234,567" (en), "1 234 567" (fr, ru), "1.234.567" (es)."""
    return _numbers.format_decimal(value, locale=lang or _current.get())


def format_figure(value: object, lang: str | None = None, decimals: int = 6) -> str:
    """A computed figure (a score, a merged figure: a Decimal, its text as the results
    store it, or a float) as the language writes it, at most `decimals` decimals and no
    trailing zeros: "7.900000" -> "7.9" (en), "7,9" (fr); None -> "—". Six, the places
    the results keep: two figures that rank apart never read the same."""
    if value is None or value == "":
        return "—"
    number = value if isinstance(value, int) else _Decimal(str(value))
    pattern = "#,##0" + ("." + "#" * decimals if decimals else "")
    return _numbers.format_decimal(number, format=pattern, locale=lang or _current.get())


def format_percent(share: float, lang: str | None = None) -> str:
    """0.125 -> "12.5%" (en), "12,5 %" (fr): one decimal, the language's signs."""
    return _numbers.format_percent(share, "#,##0.0%", locale=lang or _current.get())


def format_duration(seconds: float, lang: str | None = None) -> str:
    """612 -> "10 minutes" (en), "10 минут" (ru): a length of time in its largest whole
    unit, as the language says it (CLDR through Babel)."""
    return format_timedelta(timedelta(seconds=seconds), threshold=2, locale=lang or _current.get())


def format_instant(
    instant: datetime | None, tz: tzinfo, lang: str | None = None, *, seconds: bool = False
) -> str:
    """An instant as a wall time in `tz`, with the zone's abbreviation for that instant.

    The seconds show when asked for, and whenever the instant has any: a close at
    23:00:30 must not read as 23:00, half a minute before it happens.

    English keeps the house style the contest has always used ("18 April 2014, 23:00
    (CEST)"); the other languages take their long date and 24-hour time from CLDR. The
    abbreviation comes from the IANA database, so summer time shows as CEST, winter as CET.
    """
    if instant is None:
        return ""
    local = instant.astimezone(tz)
    lang = lang or _current.get()
    seconds = seconds or local.second != 0 or local.microsecond != 0
    if lang == DEFAULT_LANGUAGE:
        clock = "%H:%M:%S" if seconds else "%H:%M"
        return f"{format_day(instant, tz, lang)}, {local.strftime(clock)} ({local.tzname()})"
    date_part = format_day(instant, tz, lang)
    time_part = format_time(local, "HH:mm:ss" if seconds else "HH:mm", locale=lang)
    # CLDR's glue is a pattern like "{1}, {0}"; quotes mark literal text in it.
    glue = get_datetime_format("medium", locale=lang).replace("'", "")
    return f"{glue.format(time_part, date_part)} ({local.tzname()})"


def format_day(instant: datetime, tz: tzinfo, lang: str | None = None) -> str:
    """The day of an instant in `tz`, written as format_instant writes its date: "18
    April 2014" (en), "18 avril 2014" (fr). For what is dated to the day, such as the
    public results' publication, which its committee preview must show as it will be."""
    local = instant.astimezone(tz)
    lang = lang or _current.get()
    if lang == DEFAULT_LANGUAGE:
        return local.strftime("%d %B %Y")
    return format_date(local, "long", locale=lang)


def format_tick(instant: datetime, tz: tzinfo, lang: str | None = None) -> str:
    """A short day-and-time label for a chart's axis: "18 Apr 23:00", "4月18日 23:00"."""
    from babel.dates import format_skeleton

    local = instant.astimezone(tz)
    lang = lang or _current.get()
    return f"{format_skeleton('MMMd', local, locale=lang)} {local:%H:%M}"


# -- data in several languages (edition names, categories, nominations) -------------------


class Localized(str):
    """A text from the data (not the code) with its translations: the English text is
    the string itself, so storage, comparison, sorting and JSON see what they always saw;
    a page shows it in the reader's language. Jinja escapes every value through
    `__html__`, so `{{ category.name }}` in any template comes out in the language of the
    request being served, with no change to the template; a language the data lacks
    falls back to English."""

    translations: dict[str, str]

    def __new__(cls, text: str, translations: dict[str, str] | None = None) -> Localized:
        value = super().__new__(cls, text)
        value.translations = {
            lang: str(other)
            for lang, other in (translations or {}).items()
            if lang in LANGUAGES and lang != DEFAULT_LANGUAGE and other
        }
        return value

    def in_language(self, lang: str | None = None) -> str:
        return self.translations.get(lang or _current.get(), str.__str__(self))

    def __html__(self) -> str:
        from markupsafe import escape

        return str(escape(self.in_language()))

    def __reduce__(self) -> tuple[object, ...]:
        return (Localized, (str.__str__(self), self.translations))


def localized(value: str, lang: str | None = None) -> str:
    """A data text in `lang` (default: the request's), whatever its type."""
    return value.in_language(lang) if isinstance(value, Localized) else value
