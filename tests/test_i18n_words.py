"""No English on a non-English page, and forms that keep what people typed (issue 19,
items 5 and 6): every error a person can meet on the sign-in, nomination and deadline
forms, rendered in each language; edition data in the reader's language; typo help."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given
from hypothesis import strategies as st

from tests.fixtures.editions import load_builtin, load_data
from tests.fixtures.flows import csrf_from, sign_in
from tests.fixtures.nominations import SUMMARY, complete, open_edition, sign_in_quick
from tests.fixtures.voting import open_voting
from voting import accounts
from voting.contest import GENEVA, builtin_edition_path, load_edition_file
from voting.emails import (
    _SYNTAX,
    _SYNTAX_FALLBACK,
    PROVIDERS,
    InvalidEmail,
    parse_email,
    suggest_address,
    suggest_domain,
    syntax_message,
)
from voting.i18n import LANGUAGES, gettext, localized

OTHERS = [lang for lang in LANGUAGES if lang != "en"]
NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)

# One address for each kind of mistake email-validator tells apart, and the sentence of
# ours it must become. A new release that rewords a message fails here, not on a page.
BAD_ADDRESSES = {
    "ann.example.org": "An email address needs an @ sign, like name@example.org.",
    "ann＠example.org": "An email address needs an @ sign, like name@example.org.",
    "@example.org": "Write your name or box before the @ sign.",
    "ann@": "Write the domain after the @ sign, like example.org.",
    "Ann <ann@example.org>": "Enter the address alone, without a name, brackets or other words.",
    "ann..lee@example.org": (
        "An email address cannot start or end with a period or a hyphen, nor have two of"
        " them in a row (also around the @ sign)."
    ),
    "ann@-example.org": (
        "An email address cannot start or end with a period or a hyphen, nor have two of"
        " them in a row (also around the @ sign)."
    ),
    "ann@example.invalid": "The domain after the @ sign is reserved and cannot receive mail.",
    "ann@localhost": "The part after the @ sign should be a domain, like example.org.",
    "ann@example.123": "The part after the @ sign should be a domain, like example.org.",
    "ann lee@example.org": "An email address cannot contain spaces: remove them.",
    "ann@exa_mple.org": "The domain after the @ sign contains characters a domain cannot have.",
    "a(nn@example.org": "The part before the @ sign contains characters an address cannot have.",
    "ann@" + "x" * 64 + ".org": "That email address is too long.",
}


def library_message(address: str) -> str:
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        return str(exc)
    raise AssertionError(f"{address!r} is valid to email-validator")


@pytest.mark.parametrize("address", sorted(BAD_ADDRESSES))
def test_each_kind_of_email_mistake_gets_its_own_sentence(address):
    assert syntax_message(library_message(address)) == BAD_ADDRESSES[address]


def test_every_sentence_is_reachable_or_the_fallback():
    sentences = {sentence for _, sentence in _SYNTAX}
    assert sentences <= set(BAD_ADDRESSES.values())
    assert syntax_message("Something email-validator may say one day.") == _SYNTAX_FALLBACK


@pytest.mark.parametrize("lang", OTHERS)
def test_every_email_sentence_is_translated(lang):
    for sentence in {s for _, s in _SYNTAX} | {_SYNTAX_FALLBACK}:
        assert gettext(sentence, lang) != sentence, (lang, sentence)


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_the_sign_in_page_says_each_mistake_in_the_readers_language(client, lang):
    page = await client.get(f"/signin?lang={lang}")
    token = csrf_from(page.text)
    for address, sentence in BAD_ADDRESSES.items():
        r = await client.post("/signin", data={"email": address, "csrf_token": token, "next": "/"})
        assert r.status_code == 422, (address, r.text)
        text = html.unescape(r.text)
        assert gettext(sentence, lang) in text, (lang, address)
        # Not one of the library's English sentences.
        assert library_message(address) not in text
        # What was typed comes back in the field.
        assert f'value="{html.escape(address)}"' in r.text or f'value="{address}"' in text


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("gmial.com", "gmail.com"),
        ("gmal.com", "gmail.com"),
        ("gmail.co", "gmail.com"),
        ("gmail.cmo", "gmail.com"),
        ("hotmial.com", "hotmail.com"),
        ("yahooo.com", "yahoo.com"),
        ("outlok.com", "outlook.com"),
        ("protonmial.com", "protonmail.com"),
        ("yandex.ri", "yandex.ru"),
        ("icloud.co", "icloud.com"),
    ],
)
def test_a_slip_in_a_webmail_domain_is_caught(typed, meant):
    assert suggest_domain(typed) == meant
    assert suggest_address(f"Ann.Lee@{typed}") == f"Ann.Lee@{meant}"


@pytest.mark.parametrize(
    "domain", ["gmail.com", "itu.int", "un.org", "example.org", "ilo.org", "mail.ru", "qq.co"]
)
def test_real_and_short_domains_get_no_hint(domain):
    assert suggest_domain(domain) is None


@given(domain=st.sampled_from(sorted(PROVIDERS)))
def test_no_provider_domain_is_ever_corrected(domain):
    assert suggest_domain(domain) is None


@given(
    domain=st.sampled_from(sorted(d for d in PROVIDERS if len(d) >= 8)),
    position=st.integers(min_value=0, max_value=50),
    letter=st.sampled_from("abcdefghijklmnopqrstuvwxyz"),
)
def test_a_suggestion_is_a_provider_domain_one_or_two_slips_away(domain, position, letter):
    at = position % len(domain)
    typed = domain[:at] + letter + domain[at + 1 :]
    found = suggest_domain(typed)
    if typed in PROVIDERS:
        assert found is None
    elif found is not None:
        assert found in PROVIDERS and found != typed
        assert sum(a != b for a, b in zip(found, typed, strict=False)) <= 2 or len(found) != len(
            typed
        )


def test_the_suggestion_never_changes_what_parses():
    # A hint is a question to the person: the address as typed stays valid.
    assert parse_email("ann@gmial.com").normalized == "ann@gmial.com"
    with pytest.raises(InvalidEmail):
        parse_email("ann@gmial")


async def test_a_typo_is_asked_about_once_and_the_person_chooses(mail_client, mail_app, smtp, conn):
    page = await mail_client.get("/signin?lang=fr")
    token = csrf_from(page.text)
    asked = await mail_client.post(
        "/signin", data={"email": "ann@gmial.com", "csrf_token": token, "next": "/"}
    )
    assert asked.status_code == 200
    text = html.unescape(asked.text)
    assert "Vouliez-vous dire ann@gmail.com ?" in text
    assert 'value="ann@gmial.com"' in asked.text  # what was typed is kept
    outbox = await conn.fetchval("SELECT count(*) FROM outbox")
    assert outbox == 0  # nothing sent before the person chose
    # Keeping the address as typed sends the link to it.
    kept = await mail_client.post(
        "/signin",
        data={
            "email": "ann@gmial.com",
            "as_typed": "ann@gmial.com",
            "csrf_token": token,
            "next": "/",
        },
    )
    assert kept.status_code == 200 and "Vouliez-vous dire" not in html.unescape(kept.text)
    assert await conn.fetchval("SELECT count(*) FROM outbox") == 1
    # Taking the suggestion: the suggested address, confirmed by the same field.
    took = await mail_client.post(
        "/signin",
        data={
            "email": "ann@gmail.com",
            "as_typed": "ann@gmail.com",
            "csrf_token": token,
            "next": "/",
        },
    )
    assert took.status_code == 200
    assert await conn.fetchval("SELECT count(*) FROM outbox") == 2


# -- the organizers' deadline extension ---------------------------------------------------------


async def test_the_extension_form_speaks_the_organizers_language_and_keeps_the_input(
    mail_client, mail_app, smtp, conn
):
    edition, _, _ = await open_voting(mail_app, conn)
    await accounts.grant(conn, "organizer@itu.example", "organizer")
    await sign_in(mail_client, mail_app, smtp, "organizer@itu.example")
    page = await mail_client.get("/organizer/voting?lang=fr")
    assert page.status_code == 200
    close = edition.phase("voting").closes_at.astimezone(GENEVA)
    # Date and time pickers, set to the current close in Geneva time.
    assert f'type="date" required min="{close:%Y-%m-%d}" value="{close:%Y-%m-%d}"' in page.text
    assert f'type="time" step="60" required value="{close:%H:%M}"' in page.text
    token = csrf_from(page.text)

    async def extend(**data: str):
        return await mail_client.post(
            "/organizer/voting/extend", data={"csrf_token": token, **data}
        )

    cases = [
        (
            {"new_date": "demain", "new_time": "23:00", "reason": "panne du réseau"},
            gettext("Give the new close as a date and a time, Geneva time.", "fr"),
        ),
        (
            {"new_date": f"{close:%Y-%m-%d}", "new_time": f"{close:%H:%M}", "reason": "x"},
            gettext("The new close must be later than the current one ({when}).", "fr").split(
                "{when}"
            )[0],
        ),
        (
            {"new_date": f"{close + timedelta(days=1):%Y-%m-%d}", "new_time": "12:00"},
            gettext("An extension needs a reason, for the record.", "fr"),
        ),
        (
            {"new_date": "2099-01-01", "new_time": "12:00", "reason": "trop tard"},
            gettext("The new close would swallow the whole expert review phase.", "fr"),
        ),
    ]
    for data, french in cases:
        r = await extend(**data)
        assert r.status_code == 422, (data, r.text)
        text = html.unescape(r.text)
        assert french in text, (data, text[-3000:])
        for english in ("new close must", "needs a reason", "as a date and a time"):
            assert english not in text
        # Everything typed comes back.
        for value in data.values():
            assert value in text, value
    later = close + timedelta(days=1)
    done = await extend(
        new_date=f"{later:%Y-%m-%d}", new_time=f"{later:%H:%M}", reason="panne du réseau"
    )
    assert done.status_code == 200
    assert "panne du réseau" in done.text


# -- edition data in the reader's language -----------------------------------------------------

CATEGORY_C2 = {
    "en": "Information and communication infrastructure",
    "fr": "Infrastructure de l'information et de la communication",
    "es": "Infraestructura de la información y la comunicación",
    "ar": "البنية التحتية للمعلومات والاتصالات",
    "zh": "信息和通信基础设施",
    "ru": "Информационно-коммуникационная инфраструктура",
}
EDITION_NAME = {
    "en": "WSIS Project Prizes 2014",
    "fr": "Prix des projets du SMSI 2014",
    "zh": "2014年信息社会世界峰会项目奖",
}


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_category_names_come_in_the_readers_language(app, client, conn, lang):
    await load_builtin(conn, "wsis-2014", app.state.services.clock.now())
    page = await client.get(f"/categories?lang={lang}")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert CATEGORY_C2[lang] in text
    for other, name in CATEGORY_C2.items():
        if other != lang:
            assert name not in text, other
    if lang in EDITION_NAME:
        assert EDITION_NAME[lang] in text
    one = html.unescape((await client.get(f"/categories/C2?lang={lang}")).text)
    assert CATEGORY_C2[lang] in one
    # Its description too, from the edition's data.
    c2 = next(
        c
        for c in load_edition_file(builtin_edition_path("wsis-2014"), now=NOW).categories
        if c.code == "C2"
    )
    assert localized(c2.description, lang) in one


async def test_the_api_gives_the_english_text_and_the_translations_beside_it(app, client, conn):
    await load_builtin(conn, "wsis-2014", app.state.services.clock.now())
    r = await client.get("/api/categories", headers={"accept-language": "zh"})
    assert r.status_code == 200
    body = r.json()
    categories = body["categories"] if isinstance(body, dict) else body
    c2 = next(c for c in categories if c["code"] == "C2")
    assert c2["name"] == CATEGORY_C2["en"]
    assert c2["translations"]["zh"]["name"] == CATEGORY_C2["zh"]
    assert c2["description"]


# -- the nomination form keeps the work --------------------------------------------------------


@pytest.fixture
async def nominations_open(conn, clock):
    return await load_data(conn, open_edition(), clock.now())


async def test_a_refused_submission_keeps_every_field_and_saves_the_draft(
    client, app, conn, nominations_open
):
    await sign_in_quick(client, app, "nominator@ministry.example")
    form = await client.get("/nominations/new?lang=es")
    key = re.search(r'name="idempotency_key" value="([^"]+)"', form.text).group(1)
    typed = complete(summary="Too short a summary.", title_fr="Haut débit des villages")
    r = await client.post(
        "/nominations/new",
        data={
            **typed,
            "csrf_token": csrf_from(form.text),
            "idempotency_key": key,
            "action": "submit",
        },
    )
    assert r.status_code == 422
    text = html.unescape(r.text)
    # The problem, in Spanish, where it can be fixed.
    assert (
        gettext("The summary has {words} words; it needs {min} to {max}.", "es").format(
            words=4, min=150, max=200
        )
        in text
    )
    assert (
        gettext(
            "Not submitted yet, but nothing is lost: everything you typed is saved as a draft."
            " Fix what is marked, then submit again.",
            "es",
        )
        in text
    )
    for name in ("title", "organization", "website", "start_date", "contact_email", "title_fr"):
        assert f'value="{typed[name]}"' in text, name
    assert "Too short a summary.</textarea>" in text
    # Saved: one draft, with everything typed; the form now edits it.
    row = await conn.fetchrow(
        "SELECT public_id, status, organization, translations FROM nominations"
    )
    assert row["status"] == "draft" and row["organization"] == typed["organization"]
    assert row["translations"] == {"fr": {"title": "Haut débit des villages"}}
    assert f'action="/nominations/{row["public_id"]}/edit"' in r.text
    # Submitting again, fixed, submits that draft (no second nomination).
    fixed = await client.post(
        f"/nominations/{row['public_id']}/edit",
        data={**typed, "summary": SUMMARY, "csrf_token": csrf_from(r.text), "action": "submit"},
    )
    assert fixed.status_code == 303
    assert await conn.fetchval("SELECT count(*) FROM nominations") == 1
    assert await conn.fetchval("SELECT status FROM nominations") == "submitted"


async def test_the_summary_states_its_limits_for_the_live_count(client, app, nominations_open):
    await sign_in_quick(client, app, "nominator@ministry.example")
    form = await client.get("/nominations/new?lang=ru")
    assert 'data-words-min="150" data-words-max="200"' in form.text
    assert 'id="f-summary-count"' in form.text and 'aria-live="polite"' in form.text
    assert '<script src="/static/wordcount.js" defer></script>' in form.text
    text = html.unescape(form.text)
    assert gettext("{n} words: at least {min} are needed.", "ru") in text
    # The date picker and its hint agree: no typed format asked of a picker.
    assert 'type="date"' in form.text and "YYYY-MM-DD" not in form.text
    assert (await client.get("/static/wordcount.js")).status_code == 200


async def test_a_nomination_shows_its_title_and_summary_in_the_readers_language(
    client, app, conn, nominations_open
):
    await sign_in_quick(client, app, "nominator@ministry.example")
    token = csrf_from((await client.get("/dashboard")).text)
    body = complete()
    for key in ("partners", "languages"):
        body[key] = body[key].replace("\n", ",").split(",")
    body["translations"] = {
        "zh": {"title": "山村宽带", "summary": "为偏远山村提供负担得起的宽带。"},
        "fr": {"title": "Haut débit des villages de montagne"},
    }
    r = await client.post(
        "/api/nominations", json={**body, "submit": True}, headers={"X-CSRF-Token": token}
    )
    assert r.status_code == 201, r.text
    public_id = r.json()["nomination"]["public_id"]
    assert r.json()["nomination"]["translations"]["zh"]["title"] == "山村宽带"
    await conn.execute(
        "UPDATE nominations SET status='accepted', decided_at=now() WHERE public_id=$1", public_id
    )
    zh = html.unescape((await client.get(f"/nominations/{public_id}?lang=zh")).text)
    assert "<h1>山村宽带</h1>" in zh and "为偏远山村提供负担得起的宽带。" in zh
    fr = html.unescape((await client.get(f"/nominations/{public_id}?lang=fr")).text)
    # French has a title, not a summary: the summary stays English.
    assert "<h1>Haut débit des villages de montagne</h1>" in fr
    assert SUMMARY.split(".")[0] in fr
    ru = html.unescape((await client.get(f"/nominations/{public_id}?lang=ru")).text)
    assert "<h1>Mountain Village Broadband</h1>" in ru
    listing = html.unescape((await client.get("/categories/C2?lang=zh")).text)
    assert "山村宽带" in listing


async def test_api_refusals_come_in_the_language_asked_for(client, app, nominations_open):
    await sign_in_quick(client, app, "nominator@ministry.example")
    token = csrf_from((await client.get("/dashboard")).text)
    headers = {"X-CSRF-Token": token, "accept-language": "fr"}
    r = await client.post("/api/nominations", json={"budget": 5}, headers=headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid"  # codes stay stable for programs
    assert r.json()["error"]["message"] == "Certains champs sont inconnus."
    assert r.json()["error"]["fields"] == {"budget": "Champ inconnu."}
    r = await client.post("/api/nominations", json=[1], headers=headers)
    assert r.status_code == 422
    assert r.json()["error"]["message"] == "Le corps de la requête doit être un objet JSON."
    r = await client.post("/api/nominations", json={"title": "x", "submit": "yes"}, headers=headers)
    assert r.json()["error"]["fields"] == {"submit": "Indiquez true ou false."}


async def test_the_api_names_a_missing_edition_and_bad_json_in_the_readers_language(client):
    r = await client.get("/api/editions/nowhere-2099", headers={"accept-language": "es"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_such_edition"
    assert r.json()["error"]["message"] == "No existe la edición nowhere-2099."
    r = await client.post(
        "/api/voters/signin",
        content=b"{not json",
        headers={"content-type": "application/json", "accept-language": "ru"},
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"].startswith("Тело запроса не является корректным JSON")


# Names that stay as they are in every script.
SAME_EVERYWHERE = {"Redis", "PostgreSQL"}


@pytest.mark.parametrize("lang", ["ar", "zh", "ru"])
def test_no_english_copied_into_a_catalog_of_another_script(lang):
    """In Arabic, Chinese and Russian a translation equal to its English source is
    English left on the page (the catalog check only sees that an entry is filled)."""
    from voting.i18n_catalogs import load_po

    copied = [
        message.id
        for message in load_po(lang)
        if message.id
        and isinstance(message.string, str)
        and message.string == message.id
        and message.id not in SAME_EVERYWHERE
    ]
    assert not copied, copied


async def test_a_close_the_summer_time_change_skips_is_refused_in_words(
    mail_client, mail_app, smtp, conn, clock
):
    from tests.fixtures.editions import edition_data

    # The clock is 20 March 2026; Geneva's clocks jump from 02:00 to 03:00 on 29 March.
    data = edition_data(voting=("-1d", "+14d"), expert_review=("+14d", "+250d"))
    data["phases"]["results"] = {"opens_in": "+250d", "closes_in": "+260d"}
    await load_data(conn, data, clock.now())
    await accounts.grant(conn, "organizer@itu.example", "organizer")
    await sign_in(mail_client, mail_app, smtp, "organizer@itu.example")
    page = await mail_client.get("/organizer/voting?lang=ru")
    token = csrf_from(page.text)
    r = await mail_client.post(
        "/organizer/voting/extend",
        data={
            "csrf_token": token,
            "new_date": "2026-03-29",
            "new_time": "02:30",
            "reason": "сбой сети",
        },
    )
    assert r.status_code == 422
    russian = gettext(
        "{when} is not one single instant in {zone}: the clocks change then. Choose another time.",
        "ru",
    )
    assert russian.split("{zone}")[1] in html.unescape(r.text)
    assert "сбой сети</textarea>" in r.text
