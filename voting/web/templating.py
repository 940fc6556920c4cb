"""Jinja2 with gettext: every string a person reads is translatable from the start.

One environment per language, each with its catalog installed and its own filters, so
dates and numbers come out as that language writes them: `geneva` (an instant in Geneva
time), `geneva_day` (its day), `number`, `figure` (a score or merged figure, at most
three decimals), `percent`, `duration`. The page's language comes from `?lang=`, then
the `lang` cookie, then Accept-Language (`language_of`).
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import jinja2
from babel.units import format_unit
from starlette.requests import Request
from starlette.responses import HTMLResponse

from ..contest import GENEVA
from ..i18n import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    N_,
    RTL_LANGUAGES,
    format_day,
    format_duration,
    format_figure,
    format_instant,
    format_number,
    format_percent,
    negotiate,
    reset_language,
    translations,
    use_language,
)
from .csrf import csrf_token
from .nextpath import safe_next

TEMPLATE_DIR = Path(__file__).parent / "templates"
# Each language named in itself: a visitor who cannot read the page can still find theirs.
LANGUAGE_NAMES = {
    "en": "English",
    "ar": "العربية",
    "zh": "中文",
    "fr": "Français",
    "ru": "Русский",
    "es": "Español",
}


# Words templates compute and then translate: home.html's phase names
# (`phase.name|replace("_", " ")|capitalize`) and the fraud flags' statuses. Marked here
# so that extraction finds them and the catalogs hold them.
COMPUTED_WORDS = (
    N_("Nominations"),
    N_("Review"),
    N_("Voting"),
    N_("Expert review"),
    N_("Results"),
    N_("open"),
    N_("released"),
    N_("voided"),
    N_("mixed"),
)


def _geneva(instant: datetime | None, fmt: str | None = None, lang: str | None = None) -> str:
    """An instant in Geneva time, in `lang` (default: the request's language).

    `fmt` is kept for callers that ask for seconds ("...%S"): the wording itself comes
    from the language's CLDR data, except in English, the contest's house style."""
    return format_instant(instant, GENEVA, lang, seconds=bool(fmt and "%S" in fmt))


def _time_left(until: datetime, now: datetime, lang: str = DEFAULT_LANGUAGE) -> str:
    """The time from `now` to `until` as the language writes durations ("2 days 3 hr 4 min
    5 sec" in English), the same units localtime.js then counts down in the browser."""
    seconds = max(0, int((until - now).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    units = (("day", days), ("hour", hours), ("minute", minutes), ("second", secs))
    return " ".join(
        format_unit(value, f"duration-{name}", length="short", locale=lang) for name, value in units
    )


def build_environment(lang: str = DEFAULT_LANGUAGE) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=jinja2.select_autoescape(("html", "xml")),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
    )
    env.filters["geneva"] = partial(_geneva, lang=lang)
    env.filters["geneva_day"] = lambda d: format_day(d, GENEVA, lang) if d else ""
    env.filters["iso"] = lambda d: d.isoformat().replace("+00:00", "Z") if d else ""
    env.filters["number"] = partial(format_number, lang=lang)
    env.filters["percent"] = partial(format_percent, lang=lang)
    env.filters["figure"] = partial(format_figure, lang=lang)
    env.filters["duration"] = partial(format_duration, lang=lang)
    env.filters["time_left"] = partial(_time_left, lang=lang)
    env.filters["safe_next"] = safe_next
    # One environment per language: newstyle gettext then escapes and formats
    # placeholders the same way in every language.
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    return env


def language_of(request: Request) -> str:
    chosen = request.query_params.get("lang") or request.cookies.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    return negotiate(request.headers.get("accept-language"))


def _here(request: Request) -> str:
    """This page's local path and query, for a sign-in link to return to it."""
    url = request.url
    return url.path + (f"?{url.query}" if url.query else "")


def language_links(request: Request) -> list[tuple[str, str, str]]:
    """(code, name, link) for the language switcher: the same page, its query kept."""
    links = []
    for code in LANGUAGES:
        url = request.url.include_query_params(lang=code)
        links.append((code, LANGUAGE_NAMES[code], f"{url.path}?{url.query}"))
    return links


class Pages:
    """Renders a template in the request's language, with the shared page context."""

    def __init__(self) -> None:
        self.envs = {lang: build_environment(lang) for lang in LANGUAGES}

    def render(
        self, request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200
    ) -> HTMLResponse:
        lang = language_of(request)
        template = self.envs[lang].get_template(name)
        ctx: dict[str, Any] = {
            "request": request,
            "lang": lang,
            "dir": "rtl" if lang in RTL_LANGUAGES else "ltr",
            "languages": [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
            "language_links": language_links(request),
            "csrf_token": request.scope.get("csrf_token", ""),
            "current_user": request.scope.get("user"),
            # A confirmed voter (the header shows it, with sign-out); read, not checked:
            # the vote itself checks the session.
            "voter_session": "session" in request.scope and bool(request.session.get("voter")),
            "current_language_name": LANGUAGE_NAMES[lang],
            "here": _here(request),
        }
        ctx.update(context or {})
        # Data texts (edition and category names, nominations) follow the language of the
        # request through i18n.Localized: the page's language is theirs.
        token = use_language(lang)
        try:
            body = template.render(ctx)
        finally:
            reset_language(token)
        response = HTMLResponse(body, status_code=status)
        if request.query_params.get("lang") in LANGUAGES and request.query_params.get(
            "lang"
        ) != request.cookies.get("lang"):
            response.set_cookie("lang", lang, max_age=365 * 86400, samesite="lax")
        response.headers["content-language"] = lang
        # The same address answers in several languages: caches must keep them apart.
        response.headers["vary"] = "Accept-Language, Cookie"
        return response


def pages(request: Request) -> Pages:
    """The app's renderer, with this request's CSRF token ready for its forms."""
    request.scope["csrf_token"] = csrf_token(request)
    return request.app.state.pages  # type: ignore[no-any-return]
