"""Nominations through HTTP: pages, forms, the JSON API, against real PostgreSQL and SMTP."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import msgspec
import orjson
import pytest
from httpx import ASGITransport, AsyncClient
from markupsafe import escape

from tests.fixtures.editions import load_data
from tests.fixtures.flows import csrf_from, sign_in
from tests.fixtures.nominations import (
    complete,
    csrf,
    open_edition,
    public_id_from,
    sign_in_quick,
)
from voting import accounts, mail
from voting import nominations as noms
from voting.web.nominations import OneNomination


@pytest.fixture
async def edition(conn, clock):
    return await load_data(conn, open_edition(), clock.now())


async def _client(app) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def other(app):
    """A second browser on the same engine (its own cookies)."""
    async for c in _client(app):
        yield c


@pytest.fixture
async def organizer_client(mail_app, conn):
    await accounts.grant(conn, "organizer@itu.example", "organizer")
    async for c in _client(mail_app):
        yield c


async def deliver(app) -> int:
    services = app.state.services
    return await mail.send_pending(services.db, services.settings)


def body_of(message) -> str:
    return message.get_content()


# -- the whole flow ----------------------------------------------------------------------------


async def test_the_whole_flow_from_sign_in_to_the_public_list(
    mail_client, mail_app, organizer_client, smtp, edition, clock
):
    nominator = mail_client
    await sign_in(nominator, mail_app, smtp, "Nominator@Ministry.example")

    # A draft with only a category and a title.
    form = await nominator.get("/nominations/new?category=C2")
    assert form.status_code == 200
    assert '<option value="C2" selected>' in form.text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', form.text).group(1)
    draft = await nominator.post(
        "/nominations/new",
        data={
            "csrf_token": csrf_from(form.text),
            "idempotency_key": key,
            "category": "C2",
            "title": "Mountain Village Broadband",
            "action": "save",
        },
    )
    assert draft.status_code == 303
    public_id = public_id_from(draft.headers["location"])
    page = await nominator.get(draft.headers["location"])
    assert "Your draft is saved" in page.text and "Draft" in page.text

    # Completed and submitted from the edit form.
    edit = await nominator.get(f"/nominations/{public_id}/edit")
    assert 'value="Mountain Village Broadband"' in edit.text
    submitted = await nominator.post(
        f"/nominations/{public_id}/edit",
        data={**complete(), "csrf_token": csrf_from(edit.text), "action": "submit"},
    )
    assert submitted.status_code == 303, submitted.text
    assert "done=submitted" in submitted.headers["location"]
    await deliver(mail_app)
    [received] = smtp.mailbox.to("nominator@ministry.example")[1:]
    assert public_id in received["Subject"]

    # Not public yet.
    assert (await organizer_client.get(f"/api/nominations/{public_id}")).status_code == 404
    listing = (await nominator.get("/api/nominations?category=C2")).json()
    assert listing["total"] == 0

    # The organizer sends it back with a reason.
    await sign_in(organizer_client, mail_app, smtp, "organizer@itu.example")
    queue = await organizer_client.get("/organizer")
    assert queue.status_code == 200 and public_id in queue.text
    review = await organizer_client.get(f"/organizer/nominations/{public_id}")
    assert "nominator@ministry.example" in review.text
    returned = await organizer_client.post(
        f"/organizer/nominations/{public_id}/decision",
        data={
            "csrf_token": csrf_from(review.text),
            "decision": "return",
            "reason": "Please name the partners' roles.",
        },
    )
    assert returned.status_code == 303
    await deliver(mail_app)
    back = smtp.mailbox.to("nominator@ministry.example")[-1]
    assert back["Subject"] == f"Your nomination {public_id} needs changes"
    assert "Please name the partners' roles." in body_of(back)
    edit_link = smtp.mailbox.last_link("nominator@ministry.example", "/edit")
    assert edit_link == f"http://testserver/nominations/{public_id}/edit"

    # The nominator sees the reason, edits and resubmits.
    dashboard = await nominator.get("/dashboard")
    assert "Sent back for changes" in dashboard.text
    assert "Please name the partners&#39; roles." in dashboard.text
    edit = await nominator.get(f"/nominations/{public_id}/edit")
    assert "The organizers sent this back" in edit.text
    resubmitted = await nominator.post(
        f"/nominations/{public_id}/edit",
        data={
            **complete(partners="ITU (funding)\nLocal municipalities (sites)"),
            "csrf_token": csrf_from(edit.text),
            "action": "submit",
        },
    )
    assert resubmitted.status_code == 303

    # The organizer accepts.
    review = await organizer_client.get(f"/organizer/nominations/{public_id}")
    accepted = await organizer_client.post(
        f"/organizer/nominations/{public_id}/decision",
        data={"csrf_token": csrf_from(review.text), "decision": "accept", "reason": ""},
    )
    assert accepted.status_code == 303
    await deliver(mail_app)
    subjects = [m["Subject"] for m in smtp.mailbox.to("nominator@ministry.example")]
    assert subjects[-1] == f"Your nomination {public_id} is accepted"
    assert subjects.count(f"We received your nomination {public_id}") == 2

    # The public sees it: category page, search, its page, the JSON API.
    anonymous = organizer_client  # sign out and look as anyone would
    await anonymous.post("/signout", data={"csrf_token": await _token(anonymous)})
    category = await anonymous.get("/categories/C2")
    assert "Mountain Village Broadband" in category.text and public_id in category.text
    found = await anonymous.get("/categories?q=rwanda")
    assert "1 project found." in found.text and public_id in found.text
    public_page = await anonymous.get(f"/nominations/{public_id}")
    assert public_page.status_code == 200
    assert "ITU (funding)" in public_page.text
    assert "prizes@example.org" not in public_page.text  # the contact stays private
    body = (await anonymous.get("/api/nominations?category=C2&q=mountain")).json()
    assert body["total"] == 1
    [item] = body["nominations"]
    assert item["public_id"] == public_id and item["country"] == "RW"
    assert item["country_name"] == "Rwanda" and "contact_email" not in item
    one = (await anonymous.get(f"/api/nominations/{public_id.lower()}")).json()["nomination"]
    assert one["title"] == "Mountain Village Broadband" and "status" not in one
    counts = await anonymous.get("/categories")
    assert re.search(
        r'href="/categories/C2">Infrastructure</a></th>\s*<td>ITU</td>\s*<td>1</td>', counts.text
    )


async def _token(client: AsyncClient) -> str:
    return csrf_from((await client.get("/categories")).text)


# -- forms -------------------------------------------------------------------------------------


async def test_field_errors_are_shown_on_the_form(client, app, edition):
    await sign_in_quick(client, app, "a@example.org")
    form = await client.get("/nominations/new")
    response = await client.post(
        "/nominations/new",
        data={
            **complete(summary="Far too short.", website="ftp://files.example.org", country="XX"),
            "csrf_token": csrf_from(form.text),
            "action": "submit",
        },
    )
    assert response.status_code == 422
    html = response.text
    assert 'role="alert"' in html and "There is a problem" in html
    for field in ("summary", "website", "country"):
        assert f'id="f-{field}-error"' in html
        assert re.search(
            rf'id="f-{field}"[^>]*aria-describedby="[^"]*f-{field}-error"[^>]*aria-invalid="true"',
            html,
        ), field
        assert f'href="#f-{field}"' in html  # the summary links to the field
    assert "The summary has 3 words; it needs 150 to 200." in html
    assert 'id="f-title"' in html and 'value="Mountain Village Broadband"' in html  # kept
    assert 'aria-invalid="true"' not in html.split('id="f-title"')[1].split(">")[0]
    assert (await client.get("/api/me/nominations")).json()["nominations"] == []


async def test_a_double_click_on_submit_creates_one_nomination(client, app, edition, conn):
    await sign_in_quick(client, app, "a@example.org")
    form = await client.get("/nominations/new")
    data = {
        **complete(),
        "csrf_token": csrf_from(form.text),
        "idempotency_key": re.search(r'name="idempotency_key" value="([^"]+)"', form.text).group(1),
        "action": "submit",
    }
    first = await client.post("/nominations/new", data=data)
    second = await client.post("/nominations/new", data=data)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert await conn.fetchval("SELECT count(*) FROM nominations") == 1


async def test_a_late_submission_is_refused_with_the_deadline(client, app, edition, clock):
    await sign_in_quick(client, app, "a@example.org")
    form = await client.get("/nominations/new")
    clock.set(edition.phase("nominations").closes_at)
    response = await client.post(
        "/nominations/new",
        data={**complete(), "csrf_token": csrf_from(form.text), "action": "submit"},
    )
    assert response.status_code == 409
    assert "Nominations closed on" in response.text and "Geneva time" in response.text
    api = await client.post(
        "/api/nominations", json=complete(), headers={"x-csrf-token": await csrf(client)}
    )
    assert api.status_code == 409 and api.json()["error"]["code"] == "nominations_closed"
    assert "Geneva time" in api.json()["error"]["message"]


async def test_a_submitted_nomination_is_not_editable(client, app, edition):
    await sign_in_quick(client, app, "a@example.org")
    created = await client.post(
        "/nominations/new",
        data={**complete(), "csrf_token": await csrf(client), "action": "submit"},
    )
    public_id = public_id_from(created.headers["location"])
    edit = await client.get(f"/nominations/{public_id}/edit")
    assert edit.status_code == 303 and edit.headers["location"] == f"/nominations/{public_id}"
    response = await client.post(
        f"/nominations/{public_id}/edit",
        data={**complete(title="Changed"), "csrf_token": await csrf(client), "action": "save"},
    )
    assert response.status_code == 409 and "only be changed" in response.text


async def test_submitting_a_draft_from_the_dashboard_shows_what_is_missing(client, app, edition):
    await sign_in_quick(client, app, "a@example.org")
    created = await client.post(
        "/nominations/new",
        data={"category": "C1", "title": "Half done", "csrf_token": await csrf(client)},
    )
    public_id = public_id_from(created.headers["location"])
    dashboard = await client.get("/dashboard")
    assert f'action="/nominations/{public_id}/submit"' in dashboard.text
    response = await client.post(
        f"/nominations/{public_id}/submit", data={"csrf_token": csrf_from(dashboard.text)}
    )
    assert response.status_code == 422
    assert 'id="f-summary-error"' in response.text and 'id="f-country-error"' in response.text


# -- CSRF, ownership, roles --------------------------------------------------------------------


async def test_forms_and_api_writes_without_the_csrf_token_are_refused(client, app, edition, conn):
    await sign_in_quick(client, app, "a@example.org")
    draft = await client.post(
        "/nominations/new", data={**complete(), "csrf_token": await csrf(client)}
    )
    public_id = public_id_from(draft.headers["location"])
    refused = [
        await client.post("/nominations/new", data=complete()),
        await client.post("/nominations/new", data={**complete(), "csrf_token": "forged"}),
        await client.post(f"/nominations/{public_id}/edit", data=complete()),
        await client.post(f"/nominations/{public_id}/submit", data={}),
        await client.post("/api/nominations", json=complete()),
        await client.put(f"/api/nominations/{public_id}", json=complete()),
        await client.post(f"/api/nominations/{public_id}/submit"),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert refused[-1].json()["error"]["code"] == "csrf"
    assert await conn.fetchval("SELECT count(*) FROM nominations") == 1
    assert await conn.fetchval("SELECT status FROM nominations") == "draft"


async def test_another_nominators_nomination_is_not_found(client, other, app, edition, conn):
    await sign_in_quick(client, app, "owner@example.org")
    draft = await client.post(
        "/nominations/new", data={**complete(), "csrf_token": await csrf(client)}
    )
    public_id = public_id_from(draft.headers["location"])

    await sign_in_quick(other, app, "intruder@example.org")
    token = await csrf(other)
    responses = [
        await other.get(f"/nominations/{public_id}"),
        await other.get(f"/nominations/{public_id}/edit"),
        await other.post(
            f"/nominations/{public_id}/edit",
            data={**complete(title="Taken over"), "csrf_token": token, "action": "submit"},
        ),
        await other.post(f"/nominations/{public_id}/submit", data={"csrf_token": token}),
        await other.get(f"/api/nominations/{public_id}"),
        await other.put(
            f"/api/nominations/{public_id}", json=complete(), headers={"x-csrf-token": token}
        ),
        await other.post(f"/api/nominations/{public_id}/submit", headers={"x-csrf-token": token}),
    ]
    assert [r.status_code for r in responses] == [404] * len(responses)
    row = await conn.fetchrow("SELECT title, status FROM nominations")
    assert tuple(row) == ("Mountain Village Broadband", "draft")
    assert public_id not in (await other.get("/dashboard")).text


async def test_organizer_routes_need_the_organizer_role(client, app, edition, conn):
    await sign_in_quick(client, app, "nominator@example.org")
    created = await client.post(
        "/nominations/new",
        data={**complete(), "csrf_token": await csrf(client), "action": "submit"},
    )
    public_id = public_id_from(created.headers["location"])
    token = await csrf(client)
    responses = [
        await client.get("/organizer"),
        await client.get(f"/organizer/nominations/{public_id}"),
        await client.post(
            f"/organizer/nominations/{public_id}/decision",
            data={"csrf_token": token, "decision": "accept"},
        ),
    ]
    assert [r.status_code for r in responses] == [403, 403, 403]
    assert "organizer role" in responses[0].text
    assert await conn.fetchval("SELECT status FROM nominations") == "submitted"


async def test_signed_out_visitors_are_sent_to_sign_in(client, edition):
    for path in ("/dashboard", "/nominations/new", "/organizer"):
        response = await client.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == f"/signin?next={path}"
    assert (await client.get("/api/me/nominations")).status_code == 401


async def test_an_organizer_decision_with_errors_is_shown_on_the_review_page(
    client, app, edition, conn
):
    await sign_in_quick(client, app, "nominator@example.org")
    created = await client.post(
        "/nominations/new",
        data={**complete(), "csrf_token": await csrf(client), "action": "submit"},
    )
    public_id = public_id_from(created.headers["location"])
    await accounts.grant(conn, "nominator@example.org", "organizer")
    # A change of roles ends the account's sessions: sign in again with the new role.
    await sign_in_quick(client, app, "nominator@example.org")
    review = await client.get(f"/organizer/nominations/{public_id}")
    response = await client.post(
        f"/organizer/nominations/{public_id}/decision",
        data={"csrf_token": csrf_from(review.text), "decision": "reject", "reason": "no"},
    )
    assert response.status_code == 422
    assert 'id="f-reason-error"' in response.text and 'role="alert"' in response.text
    assert await conn.fetchval("SELECT status FROM nominations") == "submitted"


# -- the JSON API ------------------------------------------------------------------------------


async def test_the_nominator_api(client, app, edition):
    await sign_in_quick(client, app, "api@example.org")
    mine = (await client.get("/api/me/nominations")).json()
    headers = {"x-csrf-token": mine["csrf_token"], "idempotency-key": "k-1"}

    bad = await client.post(
        "/api/nominations",
        json={**complete(country="ZZ", start_date="2030-01-01"), "submit": True},
        headers=headers,
    )
    assert bad.status_code == 422
    assert set(bad.json()["error"]["fields"]) == {"country", "start_date"}

    unknown = await client.post(
        "/api/nominations", json={**complete(), "budget": 5}, headers=headers
    )
    assert unknown.status_code == 422 and unknown.json()["error"]["fields"] == {
        "budget": "Unknown field."
    }

    created = await client.post(
        "/api/nominations", json={"category": "C1", "title": "API draft"}, headers=headers
    )
    assert created.status_code == 201
    nomination = created.json()["nomination"]
    assert nomination["status"] == "draft"
    assert created.headers["location"] == f"/api/nominations/{nomination['public_id']}"
    replay = await client.post(
        "/api/nominations", json={"category": "C1", "title": "API draft"}, headers=headers
    )
    assert replay.status_code == 200
    assert replay.json()["nomination"]["public_id"] == nomination["public_id"]

    path = f"/api/nominations/{nomination['public_id']}"
    updated = await client.put(
        path,
        json={**complete(languages=["en", "rw"], partners=["ITU"]), "submit": False},
        headers=headers,
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["nomination"]["languages"] == ["en", "rw"]
    submitted = await client.post(f"{path}/submit", headers=headers)
    assert submitted.status_code == 200
    assert submitted.json()["nomination"]["status"] == "submitted"
    again = await client.post(f"{path}/submit", headers=headers)
    assert again.status_code == 200
    own = (await client.get(path)).json()["nomination"]
    assert own["status"] == "submitted" and own["contact_email"] == "prizes@example.org"
    listed = (await client.get("/api/me/nominations")).json()["nominations"]
    assert [n["public_id"] for n in listed] == [nomination["public_id"]]


async def test_the_public_api_checks_its_parameters(client, edition):
    response = await client.get("/api/nominations?category=C99&country=Narnia&limit=0")
    assert response.status_code == 422
    assert set(response.json()["error"]["fields"]) == {"category", "country", "limit"}
    assert (await client.get("/api/nominations?offset=-1")).status_code == 422
    assert (await client.get("/api/nominations?edition=nope")).status_code == 404
    assert (await client.get("/api/nominations/NOTANID")).status_code == 404
    ok = (await client.get("/api/nominations?edition=test-edition&country=rw")).json()
    assert ok == {
        "edition": "test-edition",
        "total": 0,
        "limit": 50,
        "offset": 0,
        "nominations": [],
    }
    assert (await client.get("/categories/C99")).status_code == 404


async def test_the_typed_answers_are_the_nominations_account_byte_for_byte(
    client, other, app, edition, conn, clock
):
    """The answers are built as their declared types (web/nominations.py) and say exactly
    what the domain's accounts say (`owner_dict`, `public_dict`), in their order, with
    their instants written as before ("+00:00")."""
    await sign_in_quick(client, app, "nominator@example.org")
    headers = {"x-csrf-token": await csrf(client)}
    created = await client.post(
        "/api/nominations", json={**complete(), "submit": True}, headers=headers
    )
    assert created.status_code == 201 and created.headers["content-type"] == "application/json"
    public_id = created.json()["nomination"]["public_id"]
    stored = await noms.get(conn, public_id)
    assert stored.submitted_at is not None and stored.start_date is not None
    own = orjson.dumps({"nomination": stored.owner_dict()})
    assert created.content == own
    assert (await client.get(f"/api/nominations/{public_id}")).content == own
    mine = await client.get("/api/me/nominations")
    token = mine.json()["csrf_token"]
    assert mine.content == orjson.dumps({"csrf_token": token, "nominations": [stored.owner_dict()]})

    organizer = await accounts.grant(conn, "organizer@example.org", "organizer")
    accepted = await noms.decide(
        conn,
        edition,
        organizer,
        public_id,
        {"decision": "accept"},
        now=clock.now(),
        base_url="http://testserver",
    )
    public = accepted.public_dict()
    one = await other.get(f"/api/nominations/{public_id}")
    assert one.content == orjson.dumps({"nomination": public})
    # The detail is documented as the public shape; the owner's answer is that, and more.
    for answer in (one.content, own):
        assert msgspec.json.decode(answer, type=OneNomination).nomination.public_id == public_id
    listed = await other.get("/api/nominations", params={"limit": "10"})
    assert listed.content == orjson.dumps(
        {"edition": edition.slug, "total": 1, "limit": 10, "offset": 0, "nominations": [public]}
    )


# Each search parameter, each way wrong: (parameter, value, what it needs, in French).
WRONG_SEARCH = [
    *[("limit", v, "Indiquez un nombre entier de 1 à 200.") for v in ("0", "201", "x", "1e2", "")],
    *[
        ("offset", v, "Indiquez un nombre entier, 0 ou plus.")
        for v in ("-1", "1.0", str(2**63), "\u0661")
    ],
    *[("page", v, "Indiquez un nombre entier, 1 ou plus.") for v in ("0", "+1", " 2", str(2**63))],
    # The page's offset must fit bigint too: a page past it is refused with its own bound.
    ("page", str((2**63 - 1) // 50 + 1), f"Indiquez un nombre entier de 1 à {(2**63 - 1) // 50}."),
    ("q", "q" * 201, "Utilisez au plus 200 caractères."),
    ("country", "Narnia", "Choisissez un pays (un code ISO 3166-1 à deux lettres comme RW)."),
    ("country", "XX", "Choisissez un pays (un code ISO 3166-1 à deux lettres comme RW)."),
    ("category", "C99", "Cette catégorie n'existe pas dans cette édition."),
]


@pytest.mark.parametrize(("name", "value", "needs"), WRONG_SEARCH)
async def test_a_wrong_search_parameter_is_named_in_the_readers_language(
    client, edition, name, value, needs
):
    french = {"accept-language": "fr"}
    r = await client.get("/api/nominations", params={name: value}, headers=french)
    assert r.status_code == 422, r.text
    assert r.json() == {
        "error": {
            "code": "invalid_query",
            "message": "Certains paramètres de recherche ne sont pas valides.",
            "fields": {name: needs},
        }
    }
    # The pages take the same parameters through the same type and rules, and say the
    # same on their error page (the category page's category is its path).
    for path in ("/categories", "/categories/C1") if name != "category" else ("/categories",):
        page = await client.get(path, params={name: value}, headers=french)
        assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
        assert "Certains paramètres de recherche ne sont pas valides." in page.text
        assert f"<li><code>{name}</code>: {escape(needs)}</li>" in page.text, path


async def test_every_wrong_search_parameter_is_named_at_once(client, edition):
    r = await client.get(
        "/api/nominations",
        params={"q": "q" * 201, "category": "C99", "country": "XX", "limit": "0", "page": "0"},
    )
    assert r.status_code == 422
    assert set(r.json()["error"]["fields"]) == {"q", "category", "country", "limit", "page"}
    # Right ones are read as their type says: digits with leading zeros, any case.
    ok = await client.get(
        "/api/nominations", params={"limit": "007", "page": "002", "country": "rw"}
    )
    assert ok.status_code == 200 and (ok.json()["limit"], ok.json()["offset"]) == (7, 7)


async def test_pages_render_in_another_language_without_errors(client, app, edition):
    await sign_in_quick(client, app, "fr@example.org")
    for path in ("/categories", "/categories/C1", "/dashboard", "/nominations/new"):
        response = await client.get(f"{path}?lang=fr")
        assert response.status_code == 200
        assert '<html lang="fr"' in response.text


async def test_the_deadline_moves_with_the_clock(client, app, edition, clock):
    await sign_in_quick(client, app, "a@example.org")
    open_page = await client.get("/dashboard")
    assert 'href="/nominations/new"' in open_page.text
    clock.advance(timedelta(days=2))
    closed_page = await client.get("/dashboard")
    assert "Nominations closed on" in closed_page.text
    assert 'class="button" href="/nominations/new"' not in closed_page.text


async def test_the_review_page_shows_each_languages_title_and_summary(client, app, edition, conn):
    await sign_in_quick(client, app, "nominator@example.org")
    created = await client.post(
        "/nominations/new",
        data={
            **complete(),
            "title_fr": "Haut débit des villages de montagne",
            "summary_fr": "Un résumé en français.",
            "title_ar": "النطاق العريض لقرى الجبال",
            "csrf_token": await csrf(client),
            "action": "submit",
        },
    )
    public_id = public_id_from(created.headers["location"])
    await accounts.grant(conn, "nominator@example.org", "organizer")
    await sign_in_quick(client, app, "nominator@example.org")
    review = await client.get(f"/organizer/nominations/{public_id}?lang=es")
    assert review.status_code == 200
    page = review.text
    # Every other language has its place, the given ones with their text, in their
    # own language and direction; the missing ones say the English is shown instead.
    for code in ("ar", "zh", "fr", "ru", "es"):
        assert f'id="tr-{code}"' in page
    assert '<dd lang="fr" dir="ltr">Haut débit des villages de montagne</dd>' in page
    assert "Un résumé en français." in page
    assert '<dd lang="ar" dir="rtl">النطاق العريض لقرى الجبال</dd>' in page
    assert page.count("No se ha dado: quienes leen esta lengua ven el inglés.") == 3


async def test_a_slip_in_the_contact_domain_is_asked_about_once_before_submitting(
    client, app, edition, conn
):
    await sign_in_quick(client, app, "nominator@example.org")
    form = {**complete(contact_email="prizes@gmal.com"), "action": "submit"}
    asked = await client.post("/nominations/new", data={**form, "csrf_token": await csrf(client)})
    assert asked.status_code == 200
    assert "Did you mean prizes@gmail.com?" in asked.text
    assert "Everything you typed is saved as a draft." in asked.text
    assert await conn.fetchval("SELECT status FROM nominations") == "draft"
    assert 'name="as_typed" value="prizes@gmal.com"' in asked.text
    # Submitting the same address again keeps it: asked once.
    action = re.search(r'<form method="post" action="(/nominations/[^"]+/edit)"', asked.text)
    assert action
    kept = await client.post(
        action.group(1),
        data={**form, "as_typed": "prizes@gmal.com", "csrf_token": csrf_from(asked.text)},
    )
    assert kept.status_code == 303
    row = await conn.fetchrow("SELECT status, contact_email FROM nominations")
    assert (row["status"], row["contact_email"]) == ("submitted", "prizes@gmal.com")
