"""One base for every refusal of the engine's rules.

A `Refusal` is the engine saying no, and why: an HTTP `status`, a stable `code` that
programs may rely on, an untranslated `template` (marked with `N_` where it is raised)
with named `params` (an instant among them is written in the reader's language), and,
where the request had fields, the `fields` at fault. It is worded for a person once,
where the answer is written: the web layer's one handler (voting/app.py) writes
`text(language)` into the JSON error or the error page, a page that shows the refusal
beside its form does the same, and the command line prints the English `message`.
Nothing compares the wording of a refusal: code reads `code`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .i18n import DEFAULT_LANGUAGE, format_instant, gettext

# No text the engine takes may hold a NUL character (PostgreSQL's text cannot): the
# middleware refuses it in the address (400), the types in the fields they read (422).
NO_NUL = r"^[^\x00]*$"


def holds_nul(value: Any) -> bool:
    """Whether a decoded JSON value holds a NUL anywhere (keys too): the rule of `NO_NUL`
    for what is read without a type."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(holds_nul(item) for item in value)
    return False


def _worded(params: dict[str, Any], lang: str | None) -> dict[str, Any]:
    """The params as the reader's language writes them: an instant (a datetime with its
    zone, the edition's) the one way every page writes instants (voting/i18n.py)."""
    return {
        name: format_instant(value, value.tzinfo, lang)
        if isinstance(value, datetime) and value.tzinfo is not None
        else value
        for name, value in params.items()
    }


class Refusal(Exception):
    """`status` and `code` become the HTTP answer; `template` is translated, then filled
    with `params`."""

    def __init__(
        self,
        status: int,
        code: str,
        template: str,
        /,
        *,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        **params: Any,
    ) -> None:
        self.status = status
        self.code = code
        self.template = template
        self.params = params
        self.fields = fields
        self.headers = headers
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """In English, for the command line and the logs."""
        return self.template.format(**_worded(self.params, DEFAULT_LANGUAGE))

    def text(self, lang: str | None = None) -> str:
        """In `lang` (default: the request's language, see voting/i18n.py)."""
        return gettext(self.template, lang).format(**_worded(self.params, lang))

    def body(self, lang: str | None = None) -> dict[str, Any]:
        """The one shape of every API error: `{"error": {"code", "message", "fields"?}}`."""
        error: dict[str, Any] = {"code": self.code, "message": self.text(lang)}
        if self.fields:
            error["fields"] = self.fields
        return {"error": error}
