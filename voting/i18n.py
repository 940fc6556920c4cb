"""Interface text goes through gettext from the first page on.

Catalogs live in voting/locale/<lang>/LC_MESSAGES/messages.mo (Babel). Until a language
has a catalog its pages fall back to English, the language the source strings are in.
"""

from __future__ import annotations

import gettext as _gettext
from functools import cache
from pathlib import Path

from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).parent / "locale"
# The six official UN languages; English is the source language.
LANGUAGES = ("en", "ar", "zh", "fr", "ru", "es")
DEFAULT_LANGUAGE = "en"
RTL_LANGUAGES = frozenset({"ar"})


@cache
def translations(lang: str) -> _gettext.NullTranslations:
    if lang not in LANGUAGES or lang == DEFAULT_LANGUAGE:
        return NullTranslations()
    return Translations.load(str(LOCALE_DIR), [lang])


def gettext(message: str, lang: str = DEFAULT_LANGUAGE) -> str:
    return translations(lang).gettext(message)


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
