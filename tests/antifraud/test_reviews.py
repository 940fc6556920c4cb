"""voting/antifraud/reviews.py: a nominator's review request and the committee's answer,
called directly and through the pages, which must take the same action."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fixtures.flows import csrf_from, sign_in
from tests.fixtures.voting import open_voting, voting_edition
from voting import accounts
from voting.antifraud.reviews import (
    MAX_MESSAGE,
    ReviewRefused,
    all_requests,
    answer_review,
    ask_review,
    checked_message,
    requests_for,
)
from voting.clock import FrozenClock
from voting.errors import Refusal


@given(st.text(max_size=MAX_MESSAGE + 50))
def test_a_message_is_recorded_stripped_or_refused_with_its_field(raw: str) -> None:
    try:
        kept = checked_message(raw)
    except ReviewRefused as exc:
        assert exc.status == 422 and exc.code == "invalid"
        assert not raw.strip() or len(raw.strip()) > MAX_MESSAGE
        assert exc.fields == {"message": "too long" if raw.strip() else "required"}
        return
    assert kept == raw.strip() and 0 < len(kept) <= MAX_MESSAGE


async def test_ask_and_answer_by_the_clock_on_the_record_once(conn, ballot, clock):
    edition, edition_id = await voting_edition(conn, ballot, clock.now())
    owner = await accounts.get_or_create(conn, "nominator@example.org")
    close = edition.phase("voting").closes_at

    async def ask(at, message="Our staff voted from one office."):
        return await ask_review(
            conn,
            edition,
            edition_id,
            "C1-0001",
            user_id=owner.id,
            email=owner.email,
            message=message,
            clock=FrozenClock(at),
        )

    # Before the close: refused, whatever the message.
    with pytest.raises(ReviewRefused) as refused:
        await ask(close - timedelta(seconds=1))
    assert (refused.value.status, refused.value.code) == (403, "voting_open")
    with pytest.raises(ReviewRefused) as refused:
        await ask(close, message="   ")
    assert refused.value.fields == {"message": "required"}
    asked_at = close + timedelta(hours=2)
    request_id = await ask(asked_at, message="  Our staff voted from one office.  ")
    [mine] = await requests_for(conn, edition_id, "C1-0001")
    # The engine's clock, not the database's now().
    assert mine["asked_at"] == asked_at and mine["message"] == "Our staff voted from one office."
    assert mine["answered_at"] is None

    async def answer(text, at, rid=request_id, eid=edition_id):
        return await answer_review(
            conn,
            edition,
            eid,
            rid,
            email="chair@example.org",
            answer=text,
            clock=FrozenClock(at),
        )

    with pytest.raises(ReviewRefused) as refused:
        await answer(" ", asked_at)
    assert (refused.value.code, refused.value.fields) == ("invalid", {"answer": "required"})
    answered_at = asked_at + timedelta(days=1)
    done = await answer("Released after checking.", answered_at)
    assert (done.request_id, done.nomination, done.answered_at) == (
        request_id,
        "C1-0001",
        answered_at,
    )
    # Once: a second answer, another edition's request, no request at all: 409.
    for rid, eid in ((request_id, edition_id), (request_id, edition_id + 1), (10**9, edition_id)):
        with pytest.raises(Refusal) as refused:
            await answer("Again.", answered_at + timedelta(hours=1), rid, eid)
        assert (refused.value.status, refused.value.code) == (409, "answered")
    [listed] = await all_requests(conn, edition_id)
    assert (
        listed["answered_at"] == answered_at and listed["answered_by"] == "user:chair@example.org"
    )
    audit = await conn.fetch(
        "SELECT actor, action, edition, subject, reason FROM audit_log"
        " WHERE action LIKE 'fraud.review%' ORDER BY id"
    )
    assert [tuple(r) for r in audit] == [
        (
            "user:nominator@example.org",
            "fraud.review_asked",
            edition.slug,
            "nomination:C1-0001",
            "Our staff voted from one office.",
        ),
        (
            "user:chair@example.org",
            "fraud.review_answered",
            edition.slug,
            "nomination:C1-0001",
            "Released after checking.",
        ),
    ]


async def test_the_pages_take_the_same_action_and_word_refusals_in_the_readers_language(
    mail_client, mail_app, smtp, conn
):
    edition, edition_id, noms = await open_voting(mail_app, conn)
    target = noms["C2"][0]
    owner = await accounts.get_or_create(conn, "nominator@example.org")
    await conn.execute("UPDATE nominations SET owner_id=$1 WHERE public_id=$2", owner.id, target)
    await sign_in(mail_client, mail_app, smtp, "nominator@example.org")
    clock = mail_app.state.services.clock
    clock.set(edition.phase("voting").closes_at + timedelta(minutes=5))
    page = await mail_client.get(f"/nominations/{target}/held-votes?lang=fr")
    empty = await mail_client.post(
        f"/nominations/{target}/held-votes?lang=fr",
        data={"csrf_token": csrf_from(page.text), "message": "  "},
    )
    assert empty.status_code == 422 and "Dites ce que le comité doit examiner" in empty.text
    sent = await mail_client.post(
        f"/nominations/{target}/held-votes?lang=fr",
        data={"csrf_token": csrf_from(page.text), "message": "Nos équipes ont voté au bureau."},
    )
    assert sent.status_code == 200 and "Votre demande a été transmise au comité" in sent.text
    # The same record the direct call makes: the page's clock, its audit row.
    [row] = await requests_for(conn, edition_id, target)
    assert row["asked_at"] == clock.now()
    entry = await conn.fetchrow(
        "SELECT actor, subject, reason FROM audit_log WHERE action='fraud.review_asked'"
    )
    assert tuple(entry) == (
        "user:nominator@example.org",
        f"nomination:{target}",
        "Nos équipes ont voté au bureau.",
    )
    # The committee's empty answer: the app's one error answer, worded in the language.
    await accounts.grant(conn, "nominator@example.org", "committee")
    await sign_in(mail_client, mail_app, smtp, "nominator@example.org")
    reviews = await mail_client.get("/committee/reviews")
    request_id = await conn.fetchval("SELECT id FROM vote_review_requests")
    r = await mail_client.post(
        f"/committee/reviews/{request_id}?lang=es",
        data={"csrf_token": csrf_from(reviews.text), "answer": " "},
    )
    assert r.status_code == 422 and "Escriba la respuesta del comité" in r.text
    r = await mail_client.post(
        f"/committee/reviews/{request_id}",
        data={"csrf_token": csrf_from(reviews.text), "answer": "Released."},
    )
    assert r.status_code == 303
    again = await mail_client.post(
        f"/committee/reviews/{request_id}",
        data={"csrf_token": csrf_from(reviews.text), "answer": "Released."},
        headers={"accept": "application/json"},
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "answered"
    [row] = await requests_for(conn, edition_id, target)
    assert row["answered_at"] == clock.now() and row["answer"] == "Released."
