"""Every organizer, expert and committee route, called without its role: anonymous, as a
voter, as a nominator with no role, and as staff holding only the other roles. The routes
are enumerated from the app, so a new staff page is covered the day it is added."""

from httpx import ASGITransport, AsyncClient

from tests.fixtures.security import client_with_roles, confirm_voter, endpoints, everyone, fill

# Which role a path needs, by where it lives.
ROLE_OF_PREFIX = {
    "/organizer": "organizer",
    "/committee": "committee",
    "/experts": "expert",
    "/api/fraud": "committee",
    "/api/mobilisations": "organizer",
}
ROLES = ("organizer", "expert", "committee")


def needed_role(path: str) -> str | None:
    for prefix, role in ROLE_OF_PREFIX.items():
        if path == prefix or path.startswith(prefix + "/"):
            return role
    if path == "/api/live-counts":
        return "committee"  # unless the edition shows live counts; this one does not
    return None


async def call(client, csrf, endpoint, values):
    url = fill(endpoint.path, values)
    headers = {"accept": "application/json", "x-csrf-token": csrf}
    if endpoint.method == "GET":
        return await client.get(url, headers=headers)
    # The token is there: what refuses the request must be the missing role.
    if endpoint.path.startswith("/api/"):
        return await client.request(endpoint.method, url, json={}, headers=headers)
    return await client.request(endpoint.method, url, data={"csrf_token": csrf}, headers=headers)


async def test_staff_routes_refuse_everyone_without_the_role(app, conn):
    world = await everyone(app, conn)  # an open vote, nominations, a voter session
    staff = [(e, needed_role(e.path)) for e in endpoints(app) if needed_role(e.path)]
    assert len(staff) >= 15, staff

    anonymous = AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver")
    anonymous_csrf = (await anonymous.get("/api/session")).json()["csrf_token"]
    nominator, nominator_csrf = await client_with_roles(app, conn, "nominator@example.org", [])
    others = {
        role: await client_with_roles(
            app, conn, f"not-{role}@example.org", [r for r in ROLES if r != role]
        )
        for role in ROLES
    }
    voter = AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver")
    await confirm_voter(voter, app, world.edition_slug, "just.a.voter@example.org")
    voter_csrf = (await voter.get("/api/session")).json()["csrf_token"]
    try:
        for endpoint, role in staff:
            # Nobody signed in, or only a voter (a voter session is no staff session):
            # 401, or a page's redirect to the sign-in form.
            for who, (client, csrf) in {
                "anonymous": (anonymous, anonymous_csrf),
                "voter": (voter, voter_csrf),
            }.items():
                r = await call(client, csrf, endpoint, world.values)
                refused = r.status_code == 401 or (
                    r.status_code in (302, 303) and r.headers["location"].startswith("/signin")
                )
                assert refused, (who, endpoint, r.status_code, r.text[:200])
            # Signed in, but without this role: 403.
            for who, (client, csrf) in {
                "nominator": (nominator, nominator_csrf),
                f"staff without {role}": others[role],
            }.items():
                r = await call(client, csrf, endpoint, world.values)
                assert r.status_code == 403, (who, endpoint, r.status_code, r.text[:200])
                assert r.json()["error"]["code"] == "forbidden", (who, endpoint, r.text)
    finally:
        for client in (anonymous, voter, nominator, world.client, *(c for c, _ in others.values())):
            await client.aclose()
