"""One nominator touching another's nomination: every route that names a nomination,
enumerated from the app, called by a signed-in nominator who does not own it."""

from tests.fixtures.nominations import complete
from tests.fixtures.security import STAFF_PREFIXES, client_with_roles, endpoints, fill
from tests.fixtures.voting import open_voting

# What anyone may read of an accepted nomination: its public page and public record.
PUBLIC_READS = {("GET", "/nominations/{public_id}"), ("GET", "/api/nominations/{public_id}")}


async def test_a_nominator_cannot_read_change_or_act_on_another_ones_nomination(app, conn):
    _, _, noms = await open_voting(app, conn)
    target = noms["C1"][0]
    before = await conn.fetchrow("SELECT * FROM nominations WHERE public_id=$1", target)
    intruder, csrf = await client_with_roles(app, conn, "intruder@example.org", [])
    named = [
        e
        for e in endpoints(app)
        if "{public_id}" in e.path and not e.path.startswith(STAFF_PREFIXES)
    ]
    assert len(named) >= 6, named
    try:
        for endpoint in named:
            url = fill(endpoint.path, {"public_id": target})
            headers = {"accept": "application/json", "x-csrf-token": csrf}
            if endpoint.method == "GET":
                r = await intruder.get(url, headers=headers)
            elif endpoint.path.startswith("/api/"):
                r = await intruder.request(
                    endpoint.method, url, json=complete(title="Taken over"), headers=headers
                )
            else:
                r = await intruder.request(
                    endpoint.method,
                    url,
                    data={**complete(title="Taken over"), "csrf_token": csrf, "action": "submit"},
                    headers=headers,
                )
            if (endpoint.method, endpoint.path) in PUBLIC_READS:
                assert r.status_code == 200, (endpoint, r.status_code)
                assert before["contact_email"] not in r.text  # the owner's contact stays private
                continue
            assert r.status_code in (403, 404), (endpoint, r.status_code, r.text[:200])
    finally:
        await intruder.aclose()
    after = await conn.fetchrow("SELECT * FROM nominations WHERE public_id=$1", target)
    assert dict(after) == dict(before)
    assert await conn.fetchval("SELECT count(*) FROM vote_review_requests") == 0
