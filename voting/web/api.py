"""The contest's JSON API: health, editions, phases, categories, and the OpenAPI document."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

import asyncpg
import msgspec
import redis.exceptions
from msgspec import UNSET, Meta, Struct, UnsetType
from starlette.requests import Request
from starlette.routing import Route

from .. import contest as contest_model
from .. import edition_store
from ..i18n import gettext
from .deps import current_edition, services
from .openapi import openapi_document
from .responses import JSON, ApiError, Typed
from .shapes import Answer, AnyObject, Instant, Operation, Text


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


def _edition(edition: contest_model.Edition, now: datetime) -> Edition:
    # The domain's one account of an edition (also the CLI's), as the declared type: a
    # field the type does not declare, or of another type, fails here and in the tests.
    return msgspec.convert(edition.to_dict(now), Edition)


async def contest(request: Request) -> Typed:
    edition = await current_edition(request)
    return Typed(_edition(edition, services(request).clock.now()))


async def editions(request: Request) -> Typed:
    svc = services(request)
    async with svc.db.acquire() as conn:
        found = await edition_store.list_editions(conn)
    now = svc.clock.now()
    return Typed(Editions(editions=[_edition(e, now) for e in found]))


async def edition_detail(request: Request) -> Typed:
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
    return Typed(_edition(edition, svc.clock.now()))


async def categories(request: Request) -> Typed:
    edition = await current_edition(request)
    return Typed(
        Categories(
            edition=edition.slug,
            categories=[
                Category(
                    code=c.code,
                    name=str.__str__(c.name),
                    description=str.__str__(c.description),
                    facilitator=c.facilitator,
                    # The name and description in the other languages the edition gives.
                    translations=c.translations,
                )
                for c in edition.categories
            ],
        )
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


TRANSLATIONS = "name and description per language (fr, es, ar, zh, ru)"


class Phase(Struct):
    name: str
    opens_utc: Instant
    closes_utc: Instant
    opens_local: Instant
    closes_local: Instant
    utc_offset_opens: str
    utc_offset_closes: str


# kw_only: the fields in the order the answer has always given them.
class Category(Struct, kw_only=True):
    code: str
    name: str
    description: str | UnsetType = UNSET
    facilitator: str | UnsetType = UNSET
    position: Annotated[int, Meta(description="its place in the edition's order")] | UnsetType = (
        UNSET
    )
    translations: (
        Annotated[dict[str, dict[str, str]], Meta(description=TRANSLATIONS)] | UnsetType
    ) = UNSET


class Edition(Struct, kw_only=True):
    slug: str
    name: str
    translations: Annotated[
        dict[str, dict[str, str]], Meta(description="the name per language (fr, es, ar, zh, ru)")
    ]
    timezone: str
    is_rehearsal: bool
    current_phase: str | None
    phases: list[Phase]
    categories: list[Category]
    rules: AnyObject


class Editions(Struct):
    editions: list[Edition]


class Categories(Struct):
    edition: str
    categories: list[Category]


class Slug(Struct):
    slug: Text


NO_EDITION = "No edition is loaded"
API = [
    Operation(
        "GET",
        "/api/contest",
        "The current edition, its phases in UTC and Geneva time, and its phase now",
        {200: Answer("The current edition", Edition), 404: NO_EDITION},
    ),
    Operation("GET", "/api/editions", "Every loaded edition", {200: Answer("Editions", Editions)}),
    Operation(
        "GET",
        "/api/editions/{slug}",
        "One edition by its slug",
        {200: Answer("The edition", Edition), 404: "No such edition"},
        path_params=Slug,
    ),
    Operation(
        "GET",
        "/api/categories",
        "The categories of the current edition",
        {200: Answer("Categories", Categories), 404: NO_EDITION},
    ),
    Operation("GET", "/api/openapi.json", "This document", {200: Answer("OpenAPI 3.1", AnyObject)}),
]
