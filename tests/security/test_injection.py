"""SQL and template injection strings in every text field a person fills in: stored as
written, shown back escaped, never run, never breaking a query."""

from datetime import timedelta

import markupsafe

from tests.fixtures.editions import load_data
from tests.fixtures.flows import csrf_from
from tests.fixtures.nominations import (
    SENTENCE,
    complete,
    open_edition,
    public_id_from,
    sign_in_quick,
)
from tests.fixtures.security import client_with_roles
from tests.fixtures.voting import open_voting

SQL = "Robert'); DROP TABLE nominations;-- \" OR '1'='1"
TEMPLATE = "{{ 7*7 }} {% if true %}T{% endif %} ${7*7} #{7*7} {{config}}"
MARKUP = "<script>alert('x')</script><img src=x onerror=alert(1)>"
PAYLOAD = f"{SQL} {TEMPLATE} {MARKUP}"


def shows_escaped(page: str, text: str) -> bool:
    """The text is on the page as text: its markup escaped, nothing of it evaluated."""
    return str(markupsafe.escape(text)) in page


def summary_with(payload: str) -> str:
    # The summary must be 150 to 200 words: the payload among 15 ordinary sentences.
    return payload + " " + " ".join([SENTENCE] * 15)


async def test_nomination_text_fields_are_stored_as_written_and_shown_escaped(
    client, app, conn, clock
):
    await load_data(conn, open_edition(), clock.now())
    await sign_in_quick(client, app, "nominator@example.org")
    page = await client.get("/nominations/new")
    fields = {
        "title": f"Title {PAYLOAD}"[:150],
        "organization": f"Org {PAYLOAD}"[:150],
        "summary": summary_with(PAYLOAD),
        "description": f"Description {PAYLOAD}",
        "partners": f"Partner {PAYLOAD}",
    }
    created = await client.post(
        "/nominations/new",
        data={**complete(**fields), "csrf_token": csrf_from(page.text)},
    )
    assert created.status_code == 303, created.text[:500]
    public_id = public_id_from(created.headers["location"])
    row = await conn.fetchrow("SELECT * FROM nominations WHERE public_id=$1", public_id)
    for name in ("title", "organization", "summary", "description"):
        assert row[name] == fields[name].strip(), name
    # Partners are a list, one per line or semicolon: the same text, split there.
    assert row["partners"] == [part.strip() for part in fields["partners"].split(";")]
    assert await conn.fetchval("SELECT count(*) FROM nominations") == 1  # the table is there

    # The draft's form gives the values back inside its fields.
    form = (await client.get(f"/nominations/{public_id}/edit")).text
    assert MARKUP not in form and shows_escaped(form, fields["description"])
    submitted = await client.post(
        f"/nominations/{public_id}/submit", data={"csrf_token": csrf_from(form)}
    )
    assert submitted.status_code == 303, submitted.text[:300]
    for path in (f"/nominations/{public_id}", "/dashboard"):
        response = await client.get(path)
        assert response.status_code == 200, path
        shown = response.text
        assert MARKUP not in shown, path
        assert "onerror=alert(1)>" not in shown, path
        assert shows_escaped(shown, fields["title"]), path
        assert "{{ 7*7 }}" in shown and "T{% endif %}" in shown, path  # shown, not run
    api = (await client.get(f"/api/nominations/{public_id}")).json()["nomination"]
    assert api["title"] == fields["title"] and api["summary"] == fields["summary"]

    # The organizer sees it escaped too, and answers with a reason of the same kind.
    organizer, token = await client_with_roles(app, conn, "organizer@example.org", ["organizer"])
    try:
        review = (await organizer.get(f"/organizer/nominations/{public_id}")).text
        assert MARKUP not in review and shows_escaped(review, fields["organization"])
        reason = f"Please fix: {PAYLOAD}"
        decided = await organizer.post(
            f"/organizer/nominations/{public_id}/decision",
            data={"decision": "return", "reason": reason, "csrf_token": token},
        )
        assert decided.status_code == 303, decided.text[:300]
    finally:
        await organizer.aclose()
    assert (
        await conn.fetchval("SELECT decision_reason FROM nominations WHERE public_id=$1", public_id)
        == reason
    )
    dashboard = (await client.get("/dashboard")).text
    assert MARKUP not in dashboard and shows_escaped(dashboard, reason)
    audit = await conn.fetchval("SELECT count(*) FROM audit_log WHERE subject=$1", public_id)
    assert audit >= 1


async def test_search_and_filters_take_injection_strings_as_plain_text(client, app, conn, clock):
    await load_data(conn, open_edition(), clock.now())
    for query in (SQL, TEMPLATE, MARKUP, "%", "_", "\\", "' OR 1=1 --", "a:*|b&!c"):
        r = await client.get("/api/nominations", params={"q": query, "country": query})
        assert r.status_code in (200, 422), (query, r.status_code)
        page = await client.get("/categories", params={"q": query})
        assert page.status_code == 200, (query, page.status_code)
        assert MARKUP not in page.text
    assert await conn.fetchval("SELECT count(*) FROM editions") == 1


async def test_an_extension_reason_is_kept_verbatim_and_shown_escaped(app, conn, clock):
    edition, _, _ = await open_voting(app, conn)
    organizer, token = await client_with_roles(app, conn, "org2@example.org", ["organizer"])
    try:
        closes = edition.phase("voting").closes_at.astimezone(edition.tz)
        later = (closes + timedelta(days=1)).strftime("%Y-%m-%d %H:%M")
        reason = f"Outage: {PAYLOAD}"
        r = await organizer.post(
            "/organizer/voting/extend",
            data={"new_close": later, "reason": reason, "csrf_token": token},
        )
        assert r.status_code == 200, r.text[:300]
        assert MARKUP not in r.text and shows_escaped(r.text, reason)
    finally:
        await organizer.aclose()
    stored = await conn.fetchval("SELECT reason FROM audit_log WHERE action='voting.extend'")
    assert stored == reason


async def test_a_nul_character_is_a_4xx_that_says_so_not_a_500(client, app, conn, clock):
    await load_data(conn, open_edition(), clock.now())
    r = await client.get("/api/nominations?q=a%00b")
    assert r.status_code == 400 and "NUL" in r.json()["error"]["message"]
    r = await client.post(
        "/api/voters/signin",
        content=b'{"email": "a\\u0000@example.org"}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422 and "NUL" in r.json()["error"]["message"]
