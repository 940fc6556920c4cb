"""A request the result rules refuse, worded for people in their language."""

from __future__ import annotations

from typing import Any

from ..i18n import gettext


class Refusal(ValueError):
    """`status` and `code` become the HTTP answer; `template` (marked with N_ where it is
    raised) is translated, then filled with `params`."""

    def __init__(
        self,
        status: int,
        code: str,
        template: str,
        *,
        fields: dict[str, str] | None = None,
        **params: Any,
    ) -> None:
        self.status = status
        self.code = code
        self.template = template
        self.params = params
        self.fields = fields
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return self.template.format(**self.params)

    def text(self, lang: str) -> str:
        return gettext(self.template, lang).format(**self.params)
