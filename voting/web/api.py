"""The contest's JSON API: health, editions, phases, categories, and the OpenAPI document."""

from __future__ import annotations

import asyncio

import asyncpg
import redis.exceptions
from starlette.requests import Request
from starlette.routing import Route

from .. import edition_store
from ..i18n import gettext
from .deps import current_edition, services
from .openapi import error_response, json_response, openapi_document
from .responses import JSON, ApiError


async def healthz(request: Request) -> JSON:
    svc = services(request)
    checks: dict[str, str] = {}

    async def check_db() -> None:
        try:
            async with svc.db.acquire(timeout=2) as conn:
                await conn.fetchval("SELECT 1")
            checks["postgres"] = "ok"
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            checks["postgres"] = f"error: {type(exc).__name__}"

    async def check_redis() -> None:
        try:
            await asyncio.wait_for(svc.r.ping(), 2)
            checks["redis"] = "ok"
        except (OSError, redis.exceptions.RedisError, TimeoutError) as exc:
            checks["redis"] = f"error: {type(exc).__name__}"

    await asyncio.gather(check_db(), check_redis())
    healthy = all(v == "ok" for v in checks.values())
    return JSON({"status": "ok" if healthy else "unavailable", **checks}, 200 if healthy else 503)


async def livez(request: Request) -> JSON:
    """Liveness without I/O: the process answers. Also the benchmark's bare endpoint."""
    return JSON({"status": "alive"})


async def contest(request: Request) -> JSON:
    edition = await current_edition(request)
    return JSON(edition.to_dict(services(request).clock.now()))


async def editions(request: Request) -> JSON:
    svc = services(request)
    async with svc.db.acquire() as conn:
        found = await edition_store.list_editions(conn)
    now = svc.clock.now()
    return JSON({"editions": [e.to_dict(now) for e in found]})


async def edition_detail(request: Request) -> JSON:
    slug = request.path_params["slug"]
    svc = services(request)
    async with svc.db.acquire() as conn:
        edition = await edition_store.get_edition(conn, slug)
    if edition is None:
        raise ApiError(
            404,
            "no_such_edition",
            gettext("There is no edition {slug}.").format(slug=slug[:64]),
        )
    return JSON(edition.to_dict(svc.clock.now()))


async def categories(request: Request) -> JSON:
    edition = await current_edition(request)
    return JSON(
        {
            "edition": edition.slug,
            "categories": [
                {
                    "code": c.code,
                    "name": str.__str__(c.name),
                    "description": str.__str__(c.description),
                    "facilitator": c.facilitator,
                    # The name and description in the other languages the edition gives.
                    "translations": c.translations,
                }
                for c in edition.categories
            ],
        }
    )


async def openapi(request: Request) -> JSON:
    return JSON(openapi_document())


routes = [
    Route("/healthz", healthz),
    Route("/livez", livez),
    Route("/api/contest", contest),
    Route("/api/editions", editions),
    Route("/api/editions/{slug}", edition_detail),
    Route("/api/categories", categories),
    Route("/api/openapi.json", openapi),
]


_EDITION = {"$ref": "#/components/schemas/Edition"}
OPENAPI_PATHS = {
    "/api/contest": {
        "get": {
            "summary": "The current edition, its phases in UTC and Geneva time, and its phase now",
            "responses": {
                "200": json_response("The current edition", _EDITION),
                "404": error_response("No edition is loaded"),
            },
        }
    },
    "/api/editions": {
        "get": {
            "summary": "Every loaded edition",
            "responses": {
                "200": json_response(
                    "Editions",
                    {
                        "type": "object",
                        "required": ["editions"],
                        "properties": {"editions": {"type": "array", "items": _EDITION}},
                    },
                )
            },
        }
    },
    "/api/editions/{slug}": {
        "get": {
            "summary": "One edition by its slug",
            "parameters": [
                {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {
                "200": json_response("The edition", _EDITION),
                "404": error_response("No such edition"),
            },
        }
    },
    "/api/categories": {
        "get": {
            "summary": "The categories of the current edition",
            "responses": {
                "200": json_response(
                    "Categories",
                    {
                        "type": "object",
                        "required": ["edition", "categories"],
                        "properties": {
                            "edition": {"type": "string"},
                            "categories": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/Category"},
                            },
                        },
                    },
                ),
                "404": error_response("No edition is loaded"),
            },
        }
    },
    "/api/openapi.json": {
        "get": {
            "summary": "This document",
            "responses": {"200": json_response("OpenAPI 3.1", {"type": "object"})},
        }
    },
}
