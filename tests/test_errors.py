"""voting/errors.py: one Refusal base, worded once, where the answer is written."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.fixtures.flows import csrf_from, sign_in
from tests.fixtures.voting import open_voting
from voting import accounts
from voting.antifraud.quarantine import DecisionRefused
from voting.errors import Refusal
from voting.i18n import LANGUAGES, N_
from voting.nominations import NominationError
from voting.nominations.fields import problem
from voting.web.responses import ApiError


def test_a_refusal_is_worded_per_language_and_keeps_its_code_and_fields() -> None:
    refused = Refusal(
        422,
        "reason_required",
        N_("An extension needs a reason, for the record."),
        fields={"reason": "required"},
    )
    assert refused.message == str(refused) == "An extension needs a reason, for the record."
    texts = {lang: refused.text(lang) for lang in LANGUAGES}
    assert len(set(texts.values())) == len(LANGUAGES)  # a real translation in each
    assert refused.body("fr") == {
        "error": {
            "code": "reason_required",
            "message": texts["fr"],
            "fields": {"reason": "required"},
        }
    }


@given(st.text(), st.integers(min_value=400, max_value=599))
def test_parameters_are_filled_after_translation_whatever_they_hold(value: str, status: int):
    # A parameter may be named like the refusal's own attributes, and hold braces.
    refused = Refusal(status, "x", N_("There is no vote with receipt {receipt}."), receipt=value)
    assert refused.status == status
    for lang in LANGUAGES:
        assert value in refused.text(lang)
    named = Refusal(409, "x", "{status} / {code}", status="s", code="c")
    assert named.message == "s / c" and named.status == 409


def test_what_the_http_layer_words_itself_is_not_translated_again() -> None:
    worded = ApiError(404, "not_found", "Il n’y a rien à {cette} adresse.", extra={"a": 1})
    assert isinstance(worded, Refusal)
    assert worded.text("en") == worded.message == "Il n’y a rien à {cette} adresse."
    assert worded.body("zh")["error"] == {
        "code": "not_found",
        "message": "Il n’y a rien à {cette} adresse.",
        "a": 1,
    }


def test_a_nomination_refusal_words_its_fields_in_the_readers_language() -> None:
    refused = NominationError(
        "invalid",
        problem("invalid", N_("Some fields need attention.")),
        {"reason": problem("too_short", N_("Use at least {min} characters."), min=10)},
    )
    assert refused.status == 422 and refused.fields is not None
    english, french = refused.body("en")["error"], refused.body("fr")["error"]
    assert english["fields"]["reason"] != french["fields"]["reason"]
    assert "10" in french["fields"]["reason"]
    assert isinstance(DecisionRefused(404, N_("There is no fraud flag {flag}."), flag=3), Refusal)


async def test_the_app_words_a_domain_refusal_once_in_json_and_on_a_page(
    mail_client, mail_app, smtp, conn
):
    await open_voting(mail_app, conn)
    await accounts.grant(conn, "chair@example.org", "committee")
    await sign_in(mail_client, mail_app, smtp, "chair@example.org")
    token = (await mail_client.get("/api/session")).json()["csrf_token"]
    r = await mail_client.post(
        "/api/fraud/votes/ABCD-EFGH-2345-WXYZ?lang=fr",
        json={"action": "void", "reason": "checked"},
        headers={"X-CSRF-Token": token},
    )
    assert r.status_code == 404
    assert r.json() == {
        "error": {
            "code": "decision_refused",
            "message": "Aucun vote ne porte le reçu ABCD-EFGH-2345-WXYZ.",
        }
    }
    # The same refusal from the committee's form: the error page, in Spanish.
    page = await mail_client.get("/committee/fraud/C1")
    r = await mail_client.post(
        "/committee/fraud-votes?lang=es",
        data={
            "csrf_token": csrf_from(page.text),
            "receipt": "ABCD-EFGH-2345-WXYZ",
            "action": "void",
            "confirm_void": "yes",
            "reason": "checked",
            "category": "C1",
        },
    )
    assert r.status_code == 404 and "No hay ningún voto con el recibo" in r.text


def test_an_instant_in_a_refusal_is_written_the_one_way_in_each_language():
    from datetime import UTC, datetime

    from voting.contest import GENEVA
    from voting.errors import Refusal
    from voting.i18n import LANGUAGES, format_instant

    at = datetime(2026, 4, 18, 21, 0, tzinfo=UTC).astimezone(GENEVA)
    refusal = Refusal(409, "closed", "It closed at {when}.", when=at)
    assert refusal.message == "It closed at 18 April 2026, 23:00 (CEST)."
    for lang in LANGUAGES:
        assert refusal.text(lang) == f"It closed at {format_instant(at, GENEVA, lang)}."
    assert "18 avril 2026" in refusal.text("fr")
