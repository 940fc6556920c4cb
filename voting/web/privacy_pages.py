"""The privacy notice (/privacy) and a voter's own data (/my-data, GET /api/me/data).

The notice shows the current edition's retention rules ([rules.privacy], locked at
opening); the data page and its JSON download show what voting/privacy.py's voter_data
gathers: the voter's row, their votes with verdicts and reasons, the fraud signals still
stored on each, and when they are erased.
"""

from __future__ import annotations

import logging
from typing import Any

import redis.exceptions
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import edition_store, privacy
from ..i18n import N_, gettext
from ..privacy_rules import PrivacyRules
from .auth import current_user
from .deps import services
from .nominations import STATUS_LABELS
from .responses import ApiError
from .shapes import Answer, AnyObject, Operation
from .templating import pages
from .voting import runtime, session_voter

log = logging.getLogger(__name__)

# Verdicts as the data page names them (marked for the catalogs).
VERDICTS = {
    "counted": N_("counted"),
    "quarantined": N_("held for review"),
    "released": N_("released"),
    "voided": N_("voided"),
}


async def privacy_page(request: Request) -> Response:
    svc = services(request)
    async with svc.db.acquire() as conn:
        edition = await edition_store.current_edition(conn)
        published_at = None
        if edition is not None:
            published_at = await conn.fetchval(
                "SELECT p.published_at FROM publications p JOIN editions e"
                " ON e.id = p.edition_id WHERE e.slug=$1",
                edition.slug,
            )
    policy = edition.rules.privacy if edition else PrivacyRules()
    return pages(request).render(
        request,
        "privacy.html",
        {
            "edition": edition,
            "policy": policy,
            "erased_at": policy.signals_erased_at(published_at),
            "voter": session_voter(request),
            "user": await current_user(request),
        },
    )


async def _data_of(request: Request) -> dict[str, Any] | None:
    """The voter's data (a voter session) and the account's (a signed-in nominator or
    staff member), whichever the visitor has; None with neither."""
    voter = session_voter(request)
    user = await current_user(request)
    if voter is None and user is None:
        return None
    data: dict[str, Any] = {}
    async with services(request).db.acquire() as conn:
        if voter is not None:
            try:
                pending = await runtime(request).ballot.ballot_of(voter.edition, voter.id)
            except redis.exceptions.RedisError as exc:  # the ledger part still answers
                log.warning("my data: the live ballot could not be read (%s)", type(exc).__name__)
                pending = {}
            data.update(
                await privacy.voter_data(
                    conn, edition_slug=voter.edition, voter_id=voter.id, pending=pending
                )
            )
        if user is not None:
            data["account"] = await privacy.account_data(conn, user.id)
    return data


async def my_data_page(request: Request) -> Response:
    data = await _data_of(request)
    return pages(request).render(
        request,
        "my_data.html",
        {
            "data": data,
            "voter": data.get("voter") if data else None,
            "account": data.get("account") if data else None,
            "verdicts": VERDICTS,
            "statuses": STATUS_LABELS,
            "user": await current_user(request),
        },
        status=200 if data is not None else 401,
    )


async def my_data_api(request: Request) -> Response:
    data = await _data_of(request)
    if data is None:
        raise ApiError(
            401,
            "not_signed_in",
            gettext("Confirm your email address, or sign in as a nominator, first."),
        )
    return Response(
        privacy.to_json(data),
        media_type="application/json",
        headers={
            "Content-Disposition": (
                f'attachment; filename="wsis-my-data-{data.get("edition", "account")}.json"'
            ),
            "Cache-Control": "no-store",
        },
    )


routes = [
    Route("/privacy", privacy_page, methods=["GET"]),
    Route("/my-data", my_data_page, methods=["GET"]),
    Route("/api/me/data", my_data_api, methods=["GET"]),
]

API = [
    Operation(
        "GET",
        "/api/me/data",
        "The signed-in voter's own data (a JSON download): pseudonym, the"
        " signals held on the voter and on each vote, receipts, verdicts and reasons, and"
        " when the signals are erased",
        {
            200: Answer("The voter's data, as an attachment", AnyObject),
            401: "No voter session",
        },
    )
]
