"""JSON responses and the one shape of every API error (voting/errors.py)."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
from starlette.responses import JSONResponse, Response

from ..errors import Refusal


class JSON(JSONResponse):
    """orjson: faster than the standard library and serializes datetimes as ISO 8601."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


_ENCODER = msgspec.json.Encoder()


class Typed(Response):
    """An answer built as the Struct the route declares (web/shapes.py `Answer`), encoded
    by msgspec: what the document says the route answers is the type the answer is."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _ENCODER.encode(content)


class ApiError(Refusal):
    """A refusal the HTTP layer words itself (already in the request's language), for
    what is no domain rule: a malformed body, a missing page, a role. Becomes
    `{"error": {"code", "message", "fields"?, ...extra}}` with its status.

    `fields_worded`: each field's text is a sentence for a person, in the request's language
    (the query's refusal, web/shapes.py), so an error page shows them too; most refusals
    name their fields with stable codes ("required") that only programs read."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        fields_worded: bool = False,
    ) -> None:
        self._worded = message
        self.fields_worded = fields_worded
        super().__init__(status, code, message, fields=fields, headers=headers)
        self.extra = extra or {}

    @property
    def message(self) -> str:
        return self._worded

    def text(self, lang: str | None = None) -> str:
        return self._worded

    def body(self, lang: str | None = None) -> dict[str, Any]:
        body = super().body(lang)
        body["error"].update(self.extra)
        return body

    def response(self) -> JSON:
        return JSON(self.body(), status_code=self.status, headers=self.headers)


def refusal_response(refusal: Refusal, lang: str) -> JSON:
    """A refusal as the JSON API answers it, worded in `lang`."""
    return JSON(refusal.body(lang), status_code=refusal.status, headers=refusal.headers)


def error_response(status: int, code: str, message: str, **kw: Any) -> JSON:
    return ApiError(status, code, message, **kw).response()
