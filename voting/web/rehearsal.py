"""POST /api/rehearsal/session: a minted rehearsal voter token for a voter session.

What a real voter gets by confirming an email link, a load test's voter gets with a
token from `voting rehearsal mint-voters` (voting/rehearsal.py). The token is accepted
only for an edition whose `is_rehearsal` is true: a real edition's votes can never come
from minted voters. The session is a fresh one (nothing from before survives), and the
voter is recorded as verified, as a real one would be.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from ..antifraud.minimise import address_key
from ..i18n import gettext
from ..rehearsal import load_voter_token
from ..voters import Voter, record_verification
from .csrf import csrf_token
from .deps import json_body, services
from .openapi import error_response, json_response
from .responses import JSON, ApiError
from .templating import language_of
from .voting import client_ip


async def rehearsal_session(request: Request) -> JSON:
    body = await json_body(request, ("token",))
    lang = language_of(request)
    token = body.get("token")
    if not isinstance(token, str) or not token:
        raise ApiError(
            422,
            "invalid",
            gettext("Give the rehearsal voter token.", lang),
            fields={"token": "required"},
        )
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

OPENAPI_PATHS = {
    "/api/rehearsal/session": {
        "post": {
            "summary": "Exchange a rehearsal voter token for a voter session (load tests)",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["token"],
                            "properties": {"token": {"type": "string", "minLength": 1}},
                        }
                    }
                },
            },
            "responses": {
                "200": json_response(
                    "A voter session for the rehearsal edition",
                    {
                        "type": "object",
                        "required": ["voter", "edition", "csrf_token"],
                        "properties": {
                            "voter": {"type": "boolean"},
                            "edition": {"type": "string"},
                            "csrf_token": {"type": "string"},
                        },
                    },
                ),
                "400": error_response("Malformed body"),
                "403": error_response("Not a valid token, or not for a rehearsal edition"),
                "404": error_response("The rehearsal is gone"),
                "422": error_response("No token given"),
            },
        }
    }
}
