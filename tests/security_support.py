"""What the security tests share: every route the app serves, a client signed in with
every staff role and as a voter, and stand-in values for path parameters."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from httpx import ASGITransport, AsyncClient
from starlette.routing import Route

from tests.flows import csrf_from
from tests.nominations_support import sign_in_quick
from tests.test_voting_http import open_voting
from voting import accounts
from voting.security import VOTER_LINK
from voting.voters import identify

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
STAFF_PREFIXES = ("/organizer", "/committee", "/experts", "/api/fraud")


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # the route's template, e.g. /nominations/{public_id}/edit
    name: str


def endpoints(app: Any) -> list[Endpoint]:
    found = []
    for route in app.routes:
        if isinstance(route, Route):
            for method in sorted(route.methods or []):
                if method != "HEAD":
                    found.append(Endpoint(method, route.path, route.endpoint.__name__))
    return found


PARAM = re.compile(r"{(\w+)(?::\w+)?}")


def fill(path: str, values: dict[str, str]) -> str:
    """The template with each parameter replaced by a stand-in (a real one where known)."""
    return PARAM.sub(lambda m: quote(values.get(m.group(1), "1"), safe=""), path)


@dataclass
class World:
    client: AsyncClient
    csrf: str
    values: dict[str, str]
    edition_slug: str


async def everyone(app: Any, conn: Any, email: str = "all.roles@example.org") -> World:
    """An open vote with nominations, and a client signed in as staff with every role
    and, in the same session, as a verified voter."""
    edition, _, noms = await open_voting(app, conn)
    for role in ("organizer", "expert", "committee"):
        await accounts.grant(conn, email, role)
    client = AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver")
    await sign_in_quick(client, app, email)
    await confirm_voter(client, app, edition.slug, f"voter.{email}")
    session = (await client.get("/api/session")).json()
    assert session["voter"] is True
    values = {
        "code": "C1",
        "public_id": noms["C1"][0],
        "slug": edition.slug,
        "receipt": "AAAA-BBBB-CCCC-DDDD",
    }
    return World(client, session["csrf_token"], values, edition.slug)


async def confirm_voter(client: AsyncClient, app: Any, edition: str, email: str) -> None:
    """Open a voter link's page and press its button (the mail itself is tested elsewhere)."""
    voter_id, address = identify(app.state.services.settings.secret_key, email)
    token = app.state.tokens.dumps_link(
        VOTER_LINK, {"v": voter_id, "d": address.domain, "e": edition}
    )
    page = await client.get(f"/vote/confirm?token={quote(token)}")
    confirmed = await client.post(
        "/vote/confirm", data={"token": token, "csrf_token": csrf_from(page.text)}
    )
    assert confirmed.status_code == 303, confirmed.text
