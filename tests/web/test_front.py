"""The public front door (issue 19, items 3 and 4): the home page's states, voting from a
project through the ballot's confirm step, returning where one started after signing in
(never to another site), the nominator who votes without a second link, the receipt."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote, urljoin, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fixtures.flows import csrf_from, sign_in
from tests.fixtures.voting import open_voting, reading, verify_voter
from voting import mail
from voting.web.nextpath import safe_next

OPEN_REDIRECTS = [
    "//evil.example",
    "//evil.example/path",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    "%2F%2Fevil.example",
    "/%2F%2Fevil.example",
    "/%2f/evil.example",
    "/%5Cevil.example",
    "/%255C%255Cevil.example",
    "/%252F%252Fevil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "/\x00/evil.example",
    "/%09/evil.example",
    " //evil.example",
    "/\u3000/evil.example",
    "evil.example",
    "",
]


@pytest.mark.parametrize("spelling", OPEN_REDIRECTS)
def test_next_refuses_every_open_redirect_spelling(spelling: str) -> None:
    assert safe_next(spelling, "/vote") == "/vote"


@pytest.mark.parametrize(
    "path",
    ["/nominations/AB12CD", "/vote/C7-EHEALTH", "/categories/C1?q=a%20b&page=2", "/"],
)
def test_next_keeps_local_paths(path: str) -> None:
    assert safe_next(path, "/vote") == path


@given(st.text(max_size=40))
def test_whatever_next_is_given_the_browser_stays_on_the_site(raw: str) -> None:
    """The invariant: whatever the text, the answer resolves on this site, whether a
    browser reads it as it is or after decoding it again."""
    out = safe_next(raw, "/vote")
    assert out.startswith("/")
    for seen in (out, out.replace("\\", "/")):
        resolved = urlsplit(urljoin("https://vote.example/here", seen))
        assert resolved.scheme == "https" and resolved.netloc == "vote.example"
    assert not any(ord(ch) < 32 or ord(ch) == 127 for ch in out)


@given(st.sampled_from(["//", "/\\", "\\\\", "/%2F", "/%5C", "https:"]), st.text(max_size=20))
def test_a_prefix_that_leaves_the_site_is_refused_whatever_follows(prefix: str, rest: str) -> None:
    assert safe_next(prefix + rest, "/vote") == "/vote"


async def _voter_link(client, app, smtp, email: str, next_path: str) -> str:
    page = await client.get(f"/vote?next={quote(next_path, safe='')}")
    action = re.search(r'action="(/vote/signin[^"]*)"', page.text).group(1)
    sent = await client.post(
        action.replace("&amp;", "&"), data={"email": email, "csrf_token": csrf_from(page.text)}
    )
    assert sent.status_code == 200, sent.text
    svc = app.state.services
    await mail.send_pending(svc.db, svc.settings)
    link = smtp.mailbox.last_link(email, "/vote/confirm")
    parts = urlsplit(link)
    confirm = await client.get(f"{parts.path}?{parts.query}")
    token = re.search(r'name="token" value="([^"]+)"', confirm.text).group(1)
    done = await client.post(
        "/vote/confirm", data={"token": token, "csrf_token": csrf_from(confirm.text)}
    )
    assert done.status_code == 303
    return done.headers["location"]


async def test_a_voter_who_starts_on_a_project_returns_to_it(mail_client, mail_app, smtp, conn):
    _, _, noms = await open_voting(mail_app, conn)
    target = noms["C2"][0]
    anonymous = await mail_client.get(f"/nominations/{target}")
    assert f'href="/vote?next=/nominations/{target}"' in anonymous.text
    assert 'href="/vote/C2"' in anonymous.text  # "Vote in this category"
    location = await _voter_link(
        mail_client, mail_app, smtp, "back@example.org", f"/nominations/{target}"
    )
    assert location == f"/nominations/{target}"
    page = await mail_client.get(location)
    assert "Signed in to vote" in page.text and 'action="/signout"' in page.text


@pytest.mark.parametrize("evil", ["//evil.example/", "/\\evil.example", "/%2F%2Fevil.example"])
async def test_a_voter_link_never_leads_off_the_site(mail_client, mail_app, smtp, conn, evil):
    await open_voting(mail_app, conn)
    location = await _voter_link(mail_client, mail_app, smtp, "stay@example.org", evil)
    assert location == "/vote"


async def test_a_staff_sign_in_never_leads_off_the_site(mail_client, mail_app, smtp):
    for evil in ("/\\evil.example", "/%2F%2Fevil.example", "/\t/evil.example"):
        page = await mail_client.get(f"/signin?next={quote(evil, safe='')}")
        assert 'name="next" value="/dashboard"' in page.text


async def test_a_nominator_who_signs_in_from_a_category_returns_to_it(
    mail_client, mail_app, smtp, conn
):
    await open_voting(mail_app, conn)
    category = await mail_client.get("/categories/C1?q=data")
    assert 'href="/signin?next=/categories/C1%3Fq%3Ddata"' in category.text
    page = await mail_client.get("/signin?next=/categories/C1%3Fq%3Ddata")
    assert 'name="next" value="/categories/C1?q=data"' in page.text
    sent = await mail_client.post(
        "/signin",
        data={
            "email": "returning@example.org",
            "csrf_token": csrf_from(page.text),
            "next": "/categories/C1?q=data",
        },
    )
    assert sent.status_code == 200
    svc = mail_app.state.services
    await mail.send_pending(svc.db, svc.settings)
    parts = urlsplit(smtp.mailbox.last_link("returning@example.org", "/signin/confirm"))
    confirm = await mail_client.get(f"{parts.path}?{parts.query}")
    token = re.search(r'name="token" value="([^"]+)"', confirm.text).group(1)
    done = await mail_client.post(
        parts.path, data={"token": token, "csrf_token": csrf_from(confirm.text)}
    )
    assert done.status_code == 303 and done.headers["location"] == "/categories/C1?q=data"


async def test_voting_from_a_project_goes_through_the_ballots_confirm_step(
    mail_client, mail_app, smtp, conn
):
    _, _, noms = await open_voting(mail_app, conn)
    target = noms["C2"][0]
    await verify_voter(mail_client, mail_app, smtp, "deliberate@example.org")
    page = await mail_client.get(f"/nominations/{target}")
    link = f"/vote/C2?choose={target}#n-{target}"
    assert f'href="{link}"' in page.text
    assert 'method="post" action="/vote/C2"' not in page.text  # no one-click vote
    ballot = await mail_client.get(link.split("#")[0])
    assert re.search(rf'value="{target}" required checked', ballot.text)
    assert "Confirm my vote" in ballot.text
    form_token = re.search(r'name="form_token" value="([^"]+)"', ballot.text).group(1)
    reading(mail_app)
    voted = await mail_client.post(
        "/vote/C2",
        data={"nomination": target, "csrf_token": csrf_from(ballot.text), "form_token": form_token},
    )
    assert voted.status_code == 202, voted.text
    title = await conn.fetchval("SELECT title FROM nominations WHERE public_id=$1", target)
    # The receipt names the project, offers copy, print, mail, and the receipt check.
    assert title in voted.text
    assert 'data-copy="receipt-code"' in voted.text and "data-print" in voted.text
    assert 'action="/receipts/email"' in voted.text
    receipt = re.search(r'id="receipt-code"><code>([^<]+)<', voted.text).group(1)
    assert f'href="/receipts?code={receipt}"' in voted.text
    home = await mail_client.get("/vote")
    assert 'href="/receipts"' in home.text

    # Email me my receipts: only to the mailbox that was confirmed.
    csrf = csrf_from(home.text)
    wrong = await mail_client.post(
        "/receipts/email", data={"email": "someone.else@example.org", "csrf_token": csrf}
    )
    assert wrong.status_code == 422 and "not the address you confirmed" in wrong.text
    assert 'value="someone.else@example.org"' in wrong.text  # what was typed is kept
    assert 'aria-describedby="receipts-email-error"' in wrong.text
    bad = await mail_client.post("/receipts/email", data={"email": "no at", "csrf_token": csrf})
    assert bad.status_code == 422
    sent = await mail_client.post(
        "/receipts/email", data={"email": "Deliberate@Example.org", "csrf_token": csrf}
    )
    assert sent.status_code == 200 and "We sent your receipts" in sent.text
    svc = mail_app.state.services
    await mail.send_pending(svc.db, svc.settings)
    body = smtp.mailbox.to("deliberate@example.org")[-1].get_content()
    assert receipt in body and title in body


async def test_a_nominator_votes_without_proving_the_mailbox_again(
    mail_client, mail_app, smtp, conn
):
    _, _, noms = await open_voting(mail_app, conn)
    await sign_in(mail_client, mail_app, smtp, "nominator@minict.example")
    target = f"/nominations/{noms['C1'][0]}"
    project = await mail_client.get(target)
    assert 'action="/vote/as-account"' in project.text
    assert f'name="next" value="/vote/C1?choose={noms["C1"][0]}"' in project.text
    page = await mail_client.get(f"/vote?next={quote(target, safe='')}")
    assert "Vote as nominator@minict.example" in page.text
    assert "Signed in as nominator@minict.example" in page.text
    links_before = len(smtp.mailbox.to("nominator@minict.example"))
    done = await mail_client.post(
        "/vote/as-account", data={"csrf_token": csrf_from(page.text), "next": target}
    )
    assert done.status_code == 303 and done.headers["location"] == target
    session = (await mail_client.get("/api/session")).json()
    assert session["voter"] is True
    assert len(smtp.mailbox.to("nominator@minict.example")) == links_before  # no new link
    # The same pseudonym a link to that mailbox would give: recorded once, as a voter.
    assert await conn.fetchval("SELECT count(*) FROM voters WHERE domain='minict.example'") == 1
    # Still signed in as the nominator.
    assert "Signed in as nominator@minict.example" in (await mail_client.get("/vote")).text
    # Every page shows it, whether or not its handler looks the account up.
    for path in ("/vote/C1", "/results", "/receipts", "/nowhere"):
        assert "Signed in as nominator@minict.example" in (await mail_client.get(path)).text
    again = await mail_client.post(
        "/vote/as-account", data={"csrf_token": session["csrf_token"], "next": "//evil.example"}
    )
    assert again.status_code == 303 and again.headers["location"] == "/vote"
    forged = await mail_client.post("/vote/as-account", data={"csrf_token": "forged"})
    assert forged.status_code == 403


async def test_voting_as_the_account_with_a_scripts_traces_goes_through_the_voter_sign_in(
    mail_client, mail_app, smtp, conn
):
    """The account's own sign-in asks no challenge; a request that scores high (here a
    headless browser without a language or Fetch Metadata) is sent to the voters'
    sign-in, which does (found by review: it was a way round admit_signin)."""
    _, _, noms = await open_voting(mail_app, conn)
    await sign_in(mail_client, mail_app, smtp, "nominator@minict.example")
    page = await mail_client.get("/vote")
    target = f"/nominations/{noms['C1'][0]}"
    done = await mail_client.post(
        "/vote/as-account",
        data={"csrf_token": csrf_from(page.text), "next": target},
        headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0"},
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/vote?next={quote(target, safe='')}"
    assert (await mail_client.get("/api/session")).json()["voter"] is False
    assert await conn.fetchval("SELECT count(*) FROM voters") == 0


async def test_voting_as_the_account_needs_a_signed_in_account(mail_client, mail_app, conn):
    await open_voting(mail_app, conn)
    page = await mail_client.get("/vote")
    assert "/vote/as-account" not in page.text
    r = await mail_client.post("/vote/as-account", data={"csrf_token": csrf_from(page.text)})
    assert r.status_code == 401
    assert "Sign in to continue" in r.text and 'href="/signin' in r.text


async def test_the_home_page_leads_with_the_vote_then_thanks_then_the_date(
    mail_client, mail_app, conn
):
    edition, _, _ = await open_voting(mail_app, conn)
    home = await mail_client.get("/")
    assert 'class="button" href="/vote"' in home.text
    assert "Time left:" in home.text and "data-countdown" in home.text
    assert re.search(r"\d+ days? \d+ hr \d+ min \d+ sec", home.text)
    category = await mail_client.get("/categories/C1")
    assert 'href="/vote/C1"' in category.text and "Vote in this category" in category.text
    clock = mail_app.state.services.clock
    clock.set(edition.phase("voting").closes_at + timedelta(hours=1))
    closed = await mail_client.get("/")
    assert "Voting has closed: thank you" in closed.text
    assert "Results will be published on" in closed.text
    assert 'class="button" href="/vote"' not in closed.text
    results = await mail_client.get("/results")
    assert results.status_code == 200 and "Results will be published on" in results.text
    ballot = await mail_client.get("/vote/C1")
    assert "Voting has closed: thank you" in ballot.text


async def test_the_ballot_counts_down_near_the_close(mail_client, mail_app, conn):
    edition, _, _ = await open_voting(mail_app, conn)
    clock = mail_app.state.services.clock
    closes = edition.phase("voting").closes_at
    clock.set(closes - timedelta(days=5))
    far = await mail_client.get("/vote/C1")
    assert "Time left:" not in far.text
    clock.set(closes - timedelta(hours=5, minutes=3, seconds=2))
    near = await mail_client.get("/vote/C1")
    assert "Voting closes soon. Time left:" in near.text
    assert "0 days 5 hr 3 min 2 sec" in near.text
    assert f'data-countdown="{closes.isoformat().replace("+00:00", "Z")}"' in near.text


async def test_signing_in_is_a_page_with_the_link_not_an_error(mail_client, mail_app, conn):
    await open_voting(mail_app, conn)
    page = await mail_client.get("/vote")
    r = await mail_client.post(
        "/vote/C1", data={"csrf_token": csrf_from(page.text), "nomination": "X"}
    )
    assert r.status_code == 401
    assert "<h1>Sign in to continue</h1>" in r.text
    assert 'href="/vote?next=/vote/C1"' in r.text
    assert "Something is not right" not in r.text


async def test_the_header_has_a_language_menu(mail_client, mail_app, conn):
    _, _, noms = await open_voting(mail_app, conn)
    # The menu names the page's language in itself, on every page (a page's own context
    # must not shadow it: the project page has a `language_name` of its own).
    for path in ("/", "/vote/C1", f"/nominations/{noms['C1'][0]}", "/categories/C1"):
        for lang, name in (("fr", "Français"), ("zh", "中文"), ("ar", "العربية")):
            page = await mail_client.get(f"{path}?lang={lang}")
            assert '<details class="languages">' in page.text
            assert page.text.count('hreflang="') == 6
            assert '<summary><span class="visually-hidden">' in page.text
            assert f'<span lang="{lang}">{name}</span></summary>' in page.text, (path, lang)


async def test_the_vote_form_asks_about_a_slip_in_the_domain_before_sending(client, app, conn):
    await open_voting(app, conn)
    page = await client.get("/vote?next=/vote/C1")
    token = csrf_from(page.text)
    asked = await client.post(
        "/vote/signin?next=/vote/C1", data={"email": "voter@gmal.com", "csrf_token": token}
    )
    assert asked.status_code == 200
    assert "Did you mean voter@gmail.com?" in asked.text
    assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
    # Both answers post back to the same address, `next` kept; keeping the address typed
    # sends the link to it, not asked again.
    assert asked.text.count('action="/vote/signin?next=/vote/C1" class="inline-choice"') == 2
    kept = await client.post(
        "/vote/signin?next=/vote/C1",
        data={"email": "voter@gmal.com", "as_typed": "voter@gmal.com", "csrf_token": token},
    )
    assert kept.status_code == 200 and "Did you mean" not in kept.text
    assert await conn.fetchval("SELECT count(*) FROM outbox") == 1
    # In the reader's language.
    french = await client.post(
        "/vote/signin?lang=fr", data={"email": "autre@gmial.com", "csrf_token": token}
    )
    assert "Vouliez-vous dire autre@gmail.com ?" in french.text
