"""Jinja2 with gettext: every string a person reads is translatable from the start."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from ..contest import GENEVA
from ..i18n import DEFAULT_LANGUAGE, LANGUAGES, RTL_LANGUAGES, negotiate, translations

TEMPLATE_DIR = Path(__file__).parent / "templates"
LANGUAGE_NAMES = {
    "en": "English",
    "ar": "العربية",
    "zh": "中文",
    "fr": "Français",
    "ru": "Русский",
    "es": "Español",
}


def _geneva(instant: datetime | None, fmt: str = "%d %B %Y, %H:%M") -> str:
    if instant is None:
        return ""
    local = instant.astimezone(GENEVA)
    return f"{local.strftime(fmt)} ({local.tzname()})"


def build_environment(lang: str = DEFAULT_LANGUAGE) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=jinja2.select_autoescape(("html", "xml")),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
    )
    env.filters["geneva"] = _geneva
    env.filters["iso"] = lambda d: d.isoformat().replace("+00:00", "Z") if d else ""
    # One environment per language: newstyle gettext then escapes and formats
    # placeholders the same way in every language.
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    return env


def language_of(request: Request) -> str:
    chosen = request.query_params.get("lang") or request.cookies.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    return negotiate(request.headers.get("accept-language"))


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
            "csrf_token": request.scope.get("csrf_token", ""),
            "current_user": request.scope.get("user"),
        }
        ctx.update(context or {})
        body = template.render(ctx)
        response = HTMLResponse(body, status_code=status)
        if request.query_params.get("lang") in LANGUAGES and request.query_params.get(
            "lang"
        ) != request.cookies.get("lang"):
            response.set_cookie("lang", lang, max_age=365 * 86400, samesite="lax")
        if lang != DEFAULT_LANGUAGE:
            response.headers["content-language"] = lang
        return response


def pages(request: Request) -> Pages:
    """The app's renderer, with this request's CSRF token ready for its forms."""
    from ..security import csrf_token

    request.scope["csrf_token"] = csrf_token(request)
    return request.app.state.pages  # type: ignore[no-any-return]
