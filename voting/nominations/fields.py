"""A nomination's fields: validation that answers per field and never raises.

`validate(raw, edition=..., today=..., complete=...)` takes whatever a form or a JSON body
held and returns either clean `Fields` or a `{field: Problem}` map. A draft (`complete`
False) may leave fields empty but may not hold malformed values; a submission
(`complete` True) needs every required field and the summary's word count.

Libraries: pycountry for ISO 3166-1 countries and ISO 639 languages (the standards'
own lists, kept up to date), email-validator through `voting.emails` for the contact
address, idna (UTS 46) for the website's host name; `urllib.parse` splits the URL. No
URL-validation package: what the contest needs (http or https, a real-looking public host
name, no credentials) is a few lines over those, and the packages that exist either accept
far more (any scheme) or bring their own idea of what a TLD is.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import idna
import pycountry

from ..contest import Edition
from ..emails import InvalidEmail, parse_email
from ..i18n import N_, gettext

__all__ = [
    "FIELDS",
    "STAKEHOLDER_TYPES",
    "Fields",
    "Problem",
    "Validation",
    "count_words",
    "countries",
    "country_name",
    "language_name",
    "normalize_key",
    "validate",
]

STAKEHOLDER_TYPES: dict[str, str] = {
    "government": N_("Government"),
    "private_sector": N_("Private sector"),
    "civil_society": N_("Civil society"),
    "international_organization": N_("International organization"),
    "academia": N_("Academia"),
    "other": N_("Other"),
}

# The fields a nominator fills, in form order.
FIELDS = (
    "category",
    "title",
    "organization",
    "stakeholder_type",
    "country",
    "website",
    "start_date",
    "contact_email",
    "summary",
    "description",
    "partners",
    "languages",
    "earlier_winner",
    "translations",
)

# A nomination's title and summary may also be given in the other official languages
# (optional; the English text stays the one of record). A form sends them as
# `title_fr`, `summary_fr`, ...; JSON as {"translations": {"fr": {"title", "summary"}}}.
TRANSLATED = ("title", "summary")
OTHER_LANGUAGES = ("fr", "es", "ar", "zh", "ru")
TRANSLATION_KEYS = tuple(f"{name}_{lang}" for lang in OTHER_LANGUAGES for name in TRANSLATED)

TITLE_MIN, TITLE_MAX = 3, 150
ORGANIZATION_MIN, ORGANIZATION_MAX = 2, 200
SUMMARY_MAX_CHARS = 3000  # 200 words of very long words; stops a megabyte "summary"
DESCRIPTION_MIN, DESCRIPTION_MAX = 20, 6000
WEBSITE_MAX = 500
PARTNERS_MAX, PARTNER_MAX_CHARS = 20, 200
LANGUAGES_MAX = 30
EARLIEST_START = date(1950, 1, 1)

# A word: letters or digits, with inner apostrophes, hyphens and digit separators
# ("don't", "e-government", "2,000", "3.5" are one word each).
WORD = re.compile(r"\w+(?:['’\-.,]\w+)*")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
_TRUE = frozenset({"1", "true", "on", "yes"})
_FALSE = frozenset({"", "0", "false", "off", "no"})


@dataclass(frozen=True)
class Problem:
    """One thing wrong, as a translatable template and its parameters."""

    code: str
    template: str
    params: tuple[tuple[str, Any], ...] = ()

    def text(self, lang: str = "en") -> str:
        return gettext(self.template, lang).format(**dict(self.params))

    def __str__(self) -> str:
        return self.text()


def problem(code: str, template: str, **params: Any) -> Problem:
    return Problem(code, template, tuple(sorted(params.items())))


@dataclass(frozen=True)
class Fields:
    """A nomination's content after validation: stripped, normalized, typed."""

    category: str
    title: str
    organization: str
    stakeholder_type: str | None
    country: str | None
    website: str | None
    start_date: date | None
    contact_email: str | None
    summary: str
    description: str
    partners: tuple[str, ...]
    languages: tuple[str, ...]
    earlier_winner: bool
    # {lang: {"title": ..., "summary": ...}}, only what was given.
    translations: dict[str, dict[str, str]] = field(default_factory=dict, hash=False)

    @property
    def title_key(self) -> str:
        return normalize_key(self.title)

    @property
    def organization_key(self) -> str:
        return normalize_key(self.organization)

    @property
    def search_text(self) -> str:
        """What public search matches: title, organization and country (code and name)."""
        parts = [self.title, self.organization]
        if self.country:
            parts += [self.country, country_name(self.country)]
        return normalize_key(" ".join(parts))


@dataclass(frozen=True)
class Validation:
    fields: Fields | None
    errors: dict[str, Problem]

    @property
    def ok(self) -> bool:
        return self.fields is not None

    def messages(self, lang: str = "en") -> dict[str, str]:
        return {name: p.text(lang) for name, p in self.errors.items()}


# -- normalization -----------------------------------------------------------------------------


def normalize_key(text: str) -> str:
    """Case, accents, spacing and punctuation removed: how titles and names are compared.

    "Ministry of ICT, Rwanda" and "ministry of ICT – RWANDA" give the same key.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    out: list[str] = []
    for ch in decomposed:
        kind = unicodedata.category(ch)
        if kind == "Mn":  # combining accents
            continue
        out.append(ch.casefold() if kind[0] in "LN" else " ")
    return " ".join("".join(out).split())


def count_words(text: str) -> int:
    """Words as a reader counts them: "e-government", "don't" and "2,000" are one each."""
    return len(WORD.findall(text))


# -- reference data ----------------------------------------------------------------------------


@functools.cache
def _countries() -> dict[str, str]:
    # The ISO 3166-1 short names, not pycountry's "common" ones: a UN contest lists
    # countries as the standard (and the UN) names them.
    return {c.alpha_2: c.name for c in pycountry.countries}


def countries(lang: str | None = None) -> list[tuple[str, str]]:
    """(code, name) of every ISO 3166-1 country, by name: in `lang` when given (the
    CLDR names Babel ships), else the ISO English ones."""
    named = [(code, country_name(code, lang)) for code in _countries()]
    return sorted(named, key=lambda item: normalize_key(item[1]))


def country_name(code: str, lang: str | None = None) -> str:
    """The ISO English name (what search and the API use), or the name in `lang` for a
    page, from CLDR (Babel), falling back to the ISO name."""
    if lang and lang != "en":
        there = _cldr(lang).territories.get(code)
        if there:
            return str(there)
    return _countries().get(code, code)


@functools.cache
def _cldr(lang: str) -> Any:
    from babel import Locale

    return Locale.parse(lang)


@functools.cache
def _languages() -> tuple[dict[str, str], dict[str, str]]:
    """Lookup (code or name, case-folded) -> code; and code -> name.

    The code kept is ISO 639-1 where the language has one (en, fr, sw), else ISO 639-3.
    """
    lookup: dict[str, str] = {}
    names: dict[str, str] = {}
    by_name: dict[str, str] = {}
    for lang in pycountry.languages:
        code = getattr(lang, "alpha_2", None) or lang.alpha_3
        name = lang.name.removesuffix(" (macrolanguage)")
        names[code] = name
        # Codes win over names: "en" is English, not the language named "En".
        for attr in ("alpha_2", "alpha_3", "bibliographic"):
            if hasattr(lang, attr):
                lookup[getattr(lang, attr).casefold()] = code
        for attr in ("name", "common_name", "inverted_name"):
            if hasattr(lang, attr):
                by_name.setdefault(getattr(lang, attr).casefold(), code)
        by_name.setdefault(name.casefold(), code)
    for key, code in by_name.items():
        lookup.setdefault(key, code)
    # Names people write that ISO spells otherwise.
    for alias, code in (("kiswahili", "sw"), ("farsi", "fa"), ("mandarin", "zh")):
        lookup.setdefault(alias, code)
    return lookup, names


def language_name(code: str, lang: str | None = None) -> str:
    """A language's English name, or its name in `lang` (CLDR) for a page."""
    if lang and lang != "en":
        there = _cldr(lang).languages.get(code)
        if there:
            return str(there)
    return _languages()[1].get(code, code)


# -- the field checks --------------------------------------------------------------------------


class _Bad(Exception):
    def __init__(self, found: Problem) -> None:
        self.problem = found


def _text(value: Any, *, multiline: bool = False) -> str:
    """A string with surrounding space removed; refuses what PostgreSQL cannot store."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _Bad(problem("type", N_("Enter text here.")))
    text = str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _Bad(
            problem("encoding", N_("This contains characters that are not valid text."))
        ) from None
    for ch in text:
        if unicodedata.category(ch) == "Cc" and not (multiline and ch in "\n\r\t"):
            raise _Bad(problem("control", N_("This contains invisible control characters.")))
    if multiline:
        text = "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n"))
        return text.strip()
    return " ".join(text.split())


def _length(text: str, low: int, high: int) -> None:
    if len(text) < low:
        raise _Bad(problem("too_short", N_("Use at least {min} characters."), min=low))
    if len(text) > high:
        raise _Bad(problem("too_long", N_("Use at most {max} characters."), max=high))


def _category(value: Any, edition: Edition) -> str:
    code = _text(value)
    if not code:
        raise _Bad(problem("required", N_("Choose a category.")))
    for category in edition.categories:
        if category.code.casefold() == code.casefold():
            return category.code
    raise _Bad(problem("unknown", N_("Choose one of this edition's categories.")))


def _stakeholder_type(value: Any) -> str | None:
    kind = _text(value).lower().replace(" ", "_").replace("-", "_")
    if not kind:
        return None
    if kind not in STAKEHOLDER_TYPES:
        raise _Bad(
            problem(
                "unknown",
                N_("Choose one of: {choices}."),
                choices=", ".join(STAKEHOLDER_TYPES),
            )
        )
    return kind


def _country(value: Any) -> str | None:
    code = _text(value).upper()
    if not code:
        return None
    if code not in _countries():
        raise _Bad(
            problem("unknown", N_("Choose a country (an ISO 3166-1 two-letter code like RW)."))
        )
    return code


def _host(host: str) -> str:
    try:
        ascii_host = idna.encode(host.rstrip("."), uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        raise _Bad(problem("host", N_("The address's host name is not valid."))) from None
    labels = ascii_host.split(".")
    if len(labels) < 2 or len(ascii_host) > 253:
        raise _Bad(problem("host", N_("Give a full host name, like www.example.org.")))
    if not all(_HOST_LABEL.match(label) for label in labels) or not _TLD.match(labels[-1]):
        raise _Bad(problem("host", N_("The address's host name is not valid.")))
    return ascii_host


def _website(value: Any) -> str | None:
    url = _text(value)
    if not url:
        return None
    if len(url) > WEBSITE_MAX:
        raise _Bad(problem("too_long", N_("Use at most {max} characters."), max=WEBSITE_MAX))
    if " " in url:
        raise _Bad(problem("spaces", N_("A web address has no spaces.")))
    if "://" not in url and re.match(r"^[\w.-]+\.[^\W\d_]{2,}(?:[/?#:]|$)", url):
        url = f"https://{url}"  # "www.example.org" is what people type
    not_http = problem("scheme", N_("Give an http:// or https:// address."))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _Bad(problem("invalid", N_("This is not a web address."))) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise _Bad(not_http)
    if parts.username is not None or parts.password is not None:
        raise _Bad(problem("credentials", N_("Leave user names and passwords out of the address.")))
    if not parts.hostname:
        raise _Bad(problem("host", N_("Give a full host name, like www.example.org.")))
    host = _host(parts.hostname)
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path, parts.query, parts.fragment))


def _start_date(value: Any, today: date) -> date | None:
    if isinstance(value, datetime):
        day = value.date()
    elif isinstance(value, date):
        day = value
    else:
        text = _text(value)
        if not text:
            return None
        if not _DATE.match(text):
            raise _Bad(problem("format", N_("Give the date as YYYY-MM-DD.")))
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise _Bad(problem("invalid", N_("This date does not exist."))) from None
    if day > today:
        raise _Bad(
            problem(
                "future",
                N_("The project must have started: give a date no later than {today}."),
                today=today.isoformat(),
            )
        )
    if day < EARLIEST_START:
        raise _Bad(
            problem("too_early", N_("Give a date from {earliest} on."), earliest="1950-01-01")
        )
    return day


def _email(value: Any) -> str | None:
    text = _text(value)
    if not text:
        return None
    try:
        return parse_email(text).normalized
    except InvalidEmail:
        raise _Bad(
            problem("invalid", N_("Give a valid email address, like name@example.org."))
        ) from None


def _items(value: Any, *, separators: str) -> list[str]:
    """A list from a JSON array, or from text split on the separators (form fields)."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [_text(item) for item in value]
    text = _text(value, multiline=True)
    return [" ".join(part.split()) for part in re.split(f"[{separators}]", text)]


def _partners(value: Any) -> tuple[str, ...]:
    found: list[str] = []
    seen: set[str] = set()
    for name in _items(value, separators="\n;"):
        if not name or normalize_key(name) in seen:
            continue
        if len(name) > PARTNER_MAX_CHARS:
            raise _Bad(
                problem(
                    "too_long",
                    N_("Each partner's name has at most {max} characters."),
                    max=PARTNER_MAX_CHARS,
                )
            )
        seen.add(normalize_key(name))
        found.append(name)
    if len(found) > PARTNERS_MAX:
        raise _Bad(problem("too_many", N_("List at most {max} partners."), max=PARTNERS_MAX))
    return tuple(found)


def _languages_of(value: Any) -> tuple[str, ...]:
    lookup = _languages()[0]
    codes: list[str] = []
    unknown: list[str] = []
    for item in _items(value, separators="\n,;"):
        if not item:
            continue
        code = lookup.get(item.casefold())
        if code is None:
            unknown.append(item)
        elif code not in codes:
            codes.append(code)
    if unknown:
        raise _Bad(
            problem(
                "unknown",
                N_("Unknown language: {names}. Use names or ISO 639 codes, like English or en."),
                names=", ".join(unknown[:5])[:200],
            )
        )
    if len(codes) > LANGUAGES_MAX:
        raise _Bad(problem("too_many", N_("List at most {max} languages."), max=LANGUAGES_MAX))
    return tuple(codes)


def _flag(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _Bad(problem("type", N_("Answer yes or no.")))


def _translations(
    raw: Mapping[str, Any], errors: dict[str, Problem], multiline: Any, sized: Any
) -> dict[str, dict[str, str]]:
    """The optional title and summary in other languages, each checked like the English
    one (length; a title, when given, 3 to 150 characters); errors under `title_fr` etc."""
    given = raw.get("translations")
    flat: dict[str, Any] = {}
    if isinstance(given, Mapping):
        for lang, texts in given.items():
            if lang not in OTHER_LANGUAGES or not isinstance(texts, Mapping):
                errors["translations"] = problem(
                    "invalid",
                    N_("Give translations as {example}, in fr, es, ar, zh or ru."),
                    example='{"fr": {"title": "...", "summary": "..."}}',
                )
                return {}
            for name, text in texts.items():
                if name not in TRANSLATED:
                    errors["translations"] = problem(
                        "invalid", N_("Only the title and the summary can be translated.")
                    )
                    return {}
                flat[f"{name}_{lang}"] = text
    elif given is not None:
        errors["translations"] = problem(
            "invalid",
            N_("Give translations as {example}, in fr, es, ar, zh or ru."),
            example='{"fr": {"title": "...", "summary": "..."}}',
        )
        return {}
    else:
        flat = {key: raw.get(key) for key in TRANSLATION_KEYS}
    out: dict[str, dict[str, str]] = {}
    for lang in OTHER_LANGUAGES:
        for name in TRANSLATED:
            key = f"{name}_{lang}"
            try:
                text = (
                    sized(flat.get(key), TITLE_MIN, TITLE_MAX)
                    if name == "title"
                    else multiline(flat.get(key), SUMMARY_MAX_CHARS)
                )
            except _Bad as bad:
                errors[key] = bad.problem
                continue
            if text:
                out.setdefault(lang, {})[name] = text
    return out


def validate(
    raw: Mapping[str, Any], *, edition: Edition, today: date, complete: bool
) -> Validation:
    """Check every field of a nomination; never raises on any mapping of any values.

    `complete` asks for a submittable nomination (every required field, the summary's
    word count, eligibility); otherwise a draft, which only needs a category and a title.
    """
    errors: dict[str, Problem] = {}
    values: dict[str, Any] = {}
    rules = edition.rules.nominations

    def check(name: str, fn: Any, *args: Any) -> None:
        try:
            values[name] = fn(raw.get(name), *args)
        except _Bad as bad:
            errors[name] = bad.problem

    def required(name: str, message: str) -> None:
        if name not in errors and not values.get(name):
            errors[name] = problem("required", message)

    def sized(value: Any, low: int, high: int) -> str:
        text = _text(value)
        if text:
            _length(text, low, high)
        return text

    def multiline(value: Any, high: int) -> str:
        text = _text(value, multiline=True)
        _length(text, 0, high)
        return text

    check("category", _category, edition)
    check("title", sized, TITLE_MIN, TITLE_MAX)
    check("organization", sized, ORGANIZATION_MIN, ORGANIZATION_MAX)
    check("stakeholder_type", _stakeholder_type)
    check("country", _country)
    check("website", _website)
    check("start_date", _start_date, today)
    check("contact_email", _email)
    check("summary", multiline, SUMMARY_MAX_CHARS)
    check("description", multiline, DESCRIPTION_MAX)
    check("partners", _partners)
    check("languages", _languages_of)
    check("earlier_winner", _flag)
    values["translations"] = _translations(raw, errors, multiline, sized)

    required("title", N_("Give the project's title."))
    if complete:
        required("organization", N_("Give the name of the organization that nominates it."))
        required("stakeholder_type", N_("Choose the kind of organization."))
        required("country", N_("Choose the country."))
        required("website", N_("Give the project's website."))
        required("start_date", N_("Give the date the project started."))
        required("contact_email", N_("Give a contact email address."))
        required("summary", N_("Write the summary that voters will read."))
        required("description", N_("Describe the project."))
        required("languages", N_("Give at least one language the project serves."))
        if "description" not in errors and len(values["description"]) < DESCRIPTION_MIN:
            errors["description"] = problem(
                "too_short", N_("Use at least {min} characters."), min=DESCRIPTION_MIN
            )
        if "summary" not in errors:
            words = count_words(values["summary"])
            low, high = rules.summary_words_min, rules.summary_words_max
            if not low <= words <= high:
                errors["summary"] = problem(
                    "word_count",
                    N_("The summary has {words} words; it needs {min} to {max}."),
                    words=words,
                    min=low,
                    max=high,
                )
        if "earlier_winner" not in errors and values["earlier_winner"]:
            errors["earlier_winner"] = problem(
                "earlier_winner",
                N_("Projects that won a WSIS Prize in an earlier edition are not eligible."),
            )

    if errors:
        return Validation(None, errors)
    return Validation(Fields(**values), {})
