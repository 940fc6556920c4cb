"""JSON responses and the one shape of every API error."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class JSON(JSONResponse):
    """orjson: faster than the standard library and serializes datetimes as ISO 8601."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


class ApiError(Exception):
    """Raised by handlers; becomes `{"error": {"code", "message", "fields"?}}` with status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.extra = extra or {}
        self.headers = headers

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            error["fields"] = self.fields
        error.update(self.extra)
        return {"error": error}

    def response(self) -> JSON:
        return JSON(self.body(), status_code=self.status, headers=self.headers)


def error_response(status: int, code: str, message: str, **kw: Any) -> JSON:
    return ApiError(status, code, message, **kw).response()
