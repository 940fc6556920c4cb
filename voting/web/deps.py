"""Small helpers handlers share: the services, the current edition, parsed bodies."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import orjson
from starlette.requests import Request

from .. import edition_store
from ..contest import Edition
from ..errors import holds_nul
from ..i18n import gettext
from ..services import Services
from .responses import ApiError


def client_ip(request: Request) -> str:
    # Behind a trusted proxy the app's ProxyHeadersMiddleware has already put the client's
    # address here (the rightmost one the proxies did not add); the leftmost entry of
    # X-Forwarded-For is whatever the client chose to send, and must not be believed.
    return request.client.host if request.client else ""


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


async def current_edition(request: Request) -> Edition:
    async with services(request).db.acquire() as conn:
        edition = await edition_store.current_edition(conn)
    if edition is None:
        raise ApiError(
            404, "no_edition", gettext("No edition is loaded yet (voting edition load FILE).")
        )
    return edition


def require_json(request: Request) -> None:
    """Refuse a body not declared as JSON: a cross-site form or a text/plain "simple
    request" cannot send application/json without the browser asking first (CORS)."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise ApiError(
            415,
            "unsupported_media_type",
            gettext("Send the body as JSON, with Content-Type: application/json."),
        )


async def json_body(request: Request, fields: Collection[str] | None = None) -> dict[str, Any]:
    """The body's JSON object. No text in it may hold a NUL character (valid JSON, but no
    text column can hold it: PostgreSQL would refuse it with a 500): in `fields` when the
    handler names the fields it reads (the others it ignores, whatever they hold), else
    anywhere in the body."""
    raw = await request.body()
    if not raw:
        raise ApiError(400, "empty_body", gettext("The request needs a JSON object body."))
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(
            400,
            "bad_json",
            gettext("The body is not valid JSON: {detail}").format(detail=exc),
        ) from None
    if not isinstance(data, dict):
        raise ApiError(422, "not_an_object", gettext("The body must be a JSON object."))
    read = data if fields is None else {name: data[name] for name in fields if name in data}
    if holds_nul(read):
        raise ApiError(422, "invalid", gettext("Text may not contain the NUL character (\\u0000)."))
    return data
