"""POST /api/rehearsal/session: a minted rehearsal voter token for a voter session.

What a real voter gets by confirming an email link, a load test's voter gets with a
token from `voting rehearsal mint-voters` (voting/rehearsal.py). The token is accepted
only for an edition whose `is_rehearsal` is true: a real edition's votes can never come
from minted voters. The session is a fresh one (nothing from before survives), and the
voter is recorded as verified, as a real one would be.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from msgspec import Meta, Struct
from starlette.requests import Request
from starlette.routing import Route

from ..antifraud.minimise import address_key
from ..i18n import N_, gettext
from ..rehearsal import load_voter_token
from ..voters import Voter, record_verification
from .csrf import csrf_token
from .deps import services
from .responses import JSON, ApiError
from .shapes import NO_NUL, Answer, Operation, Words, read_body
from .templating import language_of
from .voting import client_ip


class RehearsalToken(Struct):
    token: Annotated[str, Meta(min_length=1, pattern=NO_NUL)]

    words: ClassVar[dict[str, Words]] = {
        "token": Words(N_("Give the rehearsal voter token."), code="required")
    }


class RehearsalSession(Struct):
    voter: bool
    edition: str
    csrf_token: str


async def rehearsal_session(request: Request) -> JSON:
    token = (await read_body(request, RehearsalToken)).token
    lang = language_of(request)
    payload = load_voter_token(request.app.state.tokens, token)
    if payload is None:
        raise ApiError(
            403,
            "bad_token",
            gettext("This is not a valid rehearsal voter token, or it has expired.", lang),
        )
    svc = services(request)
    voter = Voter(payload["v"], payload["d"], payload["e"])
    async with svc.db.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT id, is_rehearsal FROM editions WHERE slug=$1", voter.edition
        )
        if row is None:
            raise ApiError(
                404, "no_such_edition", gettext("The rehearsal this token is for is gone.", lang)
            )
        if not row["is_rehearsal"]:
            # Only a forged or misdirected token names a real edition: never a session.
            raise ApiError(
                403,
                "not_a_rehearsal",
                gettext("Rehearsal voter tokens are accepted only for a rehearsal edition.", lang),
            )
        await record_verification(
            conn,
            row["id"],
            voter,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
            address_key=address_key(services(request).settings.secret_key),
        )
    request.session.clear()
    request.session["voter"] = voter.to_session()
    return JSON({"voter": True, "edition": voter.edition, "csrf_token": csrf_token(request)})


routes = [Route("/api/rehearsal/session", rehearsal_session, methods=["POST"])]

API = [
    Operation(
        "POST",
        "/api/rehearsal/session",
        "Exchange a rehearsal voter token for a voter session (load tests)",
        {
            200: Answer("A voter session for the rehearsal edition", RehearsalSession),
            400: "Malformed body",
            403: "Not a valid token, or not for a rehearsal edition",
            404: "The rehearsal is gone",
            422: "No token given",
        },
        body=RehearsalToken,
    )
]
