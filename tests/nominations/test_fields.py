"""The nomination rules without a server: fields, normalization, public ids, the calendar."""

from __future__ import annotations

import re
import string
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.editions import edition_data
from tests.fixtures.nominations import SUMMARY, complete, open_edition
from voting.contest import parse_edition
from voting.nominations import (
    FIELDS,
    TRANSLATION_KEYS,
    count_words,
    countries,
    geneva_wall,
    nominations_problem,
    normalize_key,
    normalize_public_id,
    review_problem,
    validate,
    validate_decision,
)
from voting.nominations.workflow import CROCKFORD, new_public_id

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
TODAY = date(2026, 3, 20)
EDITION = parse_edition(open_edition(), now=NOW)


def check(complete_: bool = True, **overrides):
    return validate(complete(**overrides), edition=EDITION, today=TODAY, complete=complete_)


def words(n: int) -> str:
    return " ".join(f"word{i}" for i in range(n))


# -- a complete nomination ---------------------------------------------------------------------


def test_a_complete_nomination_is_cleaned_and_normalized():
    result = check(
        title="  Mountain   Village Broadband ",
        country="rw",
        stakeholder_type="Private sector",
        website="broadband.example.org/villages",
        contact_email=" Prizes@EXAMPLE.org ",
        languages="English, fr; Kiswahili, en",
        partners="ITU\n\nITU\nLocal municipalities ",
        category="c2",
    )
    assert result.ok, result.messages()
    fields = result.fields
    assert fields.title == "Mountain Village Broadband"
    assert fields.country == "RW"
    assert fields.category == "C2"
    assert fields.stakeholder_type == "private_sector"
    assert fields.website == "https://broadband.example.org/villages"
    assert fields.contact_email == "prizes@example.org"
    assert fields.languages == ("en", "fr", "sw")
    assert fields.partners == ("ITU", "Local municipalities")
    assert fields.start_date == date(2019, 5, 1)
    assert fields.organization_key == "ministry of ict rwanda"
    assert "rwanda" in fields.search_text and "rw" in fields.search_text.split()


def test_json_lists_are_accepted_for_partners_and_languages():
    result = check(partners=["ITU", "UNESCO"], languages=["en", "ara"])
    assert result.ok, result.messages()
    assert result.fields.languages == ("en", "ar")
    assert result.fields.partners == ("ITU", "UNESCO")


# -- each field's checks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("title", "ab", "too_short"),
        ("title", "x" * 151, "too_long"),
        ("title", "", "required"),
        ("title", ["a list"], "type"),
        ("title", "bad\x00byte", "control"),
        ("category", "C99", "unknown"),
        ("category", "", "required"),
        ("organization", "", "required"),
        ("organization", "x", "too_short"),
        ("organization", "x" * 201, "too_long"),
        ("stakeholder_type", "ministry", "unknown"),
        ("stakeholder_type", "", "required"),
        ("country", "XX", "unknown"),
        ("country", "Rwanda", "unknown"),
        ("country", "", "required"),
        ("website", "ftp://example.org", "scheme"),
        ("website", "javascript:alert(1)", "scheme"),
        ("website", "https://user:pw@example.org", "credentials"),
        ("website", "http://localhost/", "host"),
        ("website", "http://exa_mple.org", "host"),
        ("website", "https://example.org:99999", "invalid"),
        ("website", "https://example .org", "spaces"),
        ("website", "https://" + "a" * 500 + ".org", "too_long"),
        ("website", "", "required"),
        ("start_date", "01/05/2019", "format"),
        ("start_date", "2019-02-30", "invalid"),
        ("start_date", "1949-12-31", "too_early"),
        ("start_date", "2026-03-21", "future"),
        ("start_date", "", "required"),
        ("contact_email", "not an address", "invalid"),
        ("contact_email", "", "required"),
        ("summary", "", "required"),
        ("summary", words(149), "word_count"),
        ("summary", words(201), "word_count"),
        ("summary", "x" * 3001, "too_long"),
        ("description", "", "required"),
        ("description", "too short", "too_short"),
        ("description", "x" * 6001, "too_long"),
        ("partners", "\n".join(f"Partner {i}" for i in range(21)), "too_many"),
        ("partners", "x" * 201, "too_long"),
        ("languages", "English, Klingonese", "unknown"),
        ("languages", "", "required"),
        ("languages", ", ".join(c for c in ["en", "fr", "es", "ar", "ru", "zh"] * 1), None),
        ("earlier_winner", "yes", "earlier_winner"),
        ("earlier_winner", "perhaps", "type"),
    ],
)
def test_each_field_is_checked(field, value, code):
    result = check(**{field: value})
    if code is None:
        assert result.ok, result.messages()
        return
    assert not result.ok
    assert set(result.errors) == {field}, result.messages()
    assert result.errors[field].code == code
    assert result.errors[field].text()  # a message a person can read


def test_summary_word_limits_are_inclusive_and_come_from_the_edition():
    assert check(summary=words(150)).ok
    assert check(summary=words(200)).ok
    data = open_edition()
    data["rules"] = {"summary_words_min": 20, "summary_words_max": 30}
    strict = parse_edition(data, now=NOW)

    def with_summary(n: int) -> bool:
        raw = complete(summary=words(n))
        return validate(raw, edition=strict, today=TODAY, complete=True).ok

    assert [with_summary(n) for n in (19, 20, 30, 31)] == [False, True, True, False]
    message = validate(complete(summary=words(5)), edition=strict, today=TODAY, complete=True)
    assert str(message.errors["summary"]) == "The summary has 5 words; it needs 20 to 30."


def test_start_date_today_in_the_editions_zone_is_not_in_the_future():
    assert check(start_date="2026-03-20").ok
    assert not check(start_date="2026-03-21").ok


def test_the_earliest_allowed_start_date_is_accepted():
    assert check(start_date="1950-01-01").ok


def test_internationalized_website_hosts_are_encoded():
    result = check(website="https://bücher.example/katalog")
    assert result.ok, result.messages()
    assert result.fields.website == "https://xn--bcher-kva.example/katalog"


def test_a_draft_needs_only_a_category_and_a_title():
    result = validate(
        {"category": "C1", "title": "Work in progress"},
        edition=EDITION,
        today=TODAY,
        complete=False,
    )
    assert result.ok, result.messages()
    assert result.fields.country is None and result.fields.summary == ""
    empty = validate({}, edition=EDITION, today=TODAY, complete=False)
    assert set(empty.errors) == {"category", "title"}


def test_a_draft_may_be_short_but_not_malformed():
    raw = {"category": "C1", "title": "Draft", "summary": "ten words", "contact_email": "nope"}
    result = validate(raw, edition=EDITION, today=TODAY, complete=False)
    assert set(result.errors) == {"contact_email"}


def test_an_earlier_winner_may_be_drafted_but_not_submitted():
    draft = validate(
        {"category": "C1", "title": "Old winner", "earlier_winner": True},
        edition=EDITION,
        today=TODAY,
        complete=False,
    )
    assert draft.ok and draft.fields.earlier_winner
    result = check(earlier_winner=True)
    assert "not eligible" in str(result.errors["earlier_winner"])


def test_every_error_names_only_known_fields():
    result = validate(
        {f: {"not": "a value"} for f in FIELDS}, edition=EDITION, today=TODAY, complete=True
    )
    assert set(result.errors) <= set(FIELDS)
    assert set(result.errors) == set(FIELDS)


# -- normalization and counting ----------------------------------------------------------------


def test_organization_and_title_keys_ignore_case_spacing_accents_and_punctuation():
    assert normalize_key("Ministry of ICT, Rwanda") == normalize_key("ministry  of ICT – RWANDA")
    assert normalize_key("Société Générale!") == normalize_key("societe generale")
    assert normalize_key("e-Health: Phase 2") == "e health phase 2"
    assert normalize_key("Digital Farms") != normalize_key("Digital Firms")


def test_words_are_counted_as_people_count_them():
    assert count_words("e-government don't reach 2,000 people in 3.5 years") == 8
    assert count_words("  ") == 0
    assert count_words(SUMMARY) == 160


# -- property tests: any input gives clean fields or per-field errors, never an exception ------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(),
    st.text(alphabet=string.printable),
    st.dates().map(date.isoformat),
    st.datetimes().map(lambda d: d),
    st.sampled_from(["RW", "rw", "XX", "C1", "c2", "government", "https://a.example", "en, fr"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
_raw = st.dictionaries(
    st.sampled_from(FIELDS + TRANSLATION_KEYS) | st.text(max_size=10), _values, max_size=16
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(raw=_raw, complete_=st.booleans())
def test_any_input_gives_fields_or_per_field_errors(raw, complete_):
    result = validate(raw, edition=EDITION, today=TODAY, complete=complete_)
    assert (result.fields is None) == bool(result.errors)
    assert set(result.errors) <= set(FIELDS) | set(TRANSLATION_KEYS)
    for problem in result.errors.values():
        assert problem.text()
    if result.fields is not None:
        fields = result.fields
        assert fields.category in {c.code for c in EDITION.categories}
        assert 3 <= len(fields.title) <= 150
        for text in (fields.title, fields.organization, fields.summary, fields.description):
            assert "\x00" not in text
            text.encode("utf-8")
        assert fields.website is None or re.match(r"^https?://[a-z0-9.-]+\.", fields.website)
        assert fields.country is None or fields.country in dict(countries())
        if complete_:
            assert 150 <= count_words(fields.summary) <= 200
            assert not fields.earlier_winner


def _valid_summary(n: int) -> str:
    return " ".join(["project"] * n)


_valid = st.fixed_dictionaries(
    {
        "category": st.sampled_from(["C1", "C2", "C3", "c3"]),
        "title": st.text(
            alphabet=st.characters(categories=("L", "N", "Zs", "P")), min_size=3, max_size=120
        ).filter(lambda t: len(" ".join(t.split())) >= 3),
        "organization": st.text(
            alphabet=st.characters(categories=("L", "N", "Zs")), min_size=2, max_size=150
        ).filter(lambda t: len(" ".join(t.split())) >= 2),
        "stakeholder_type": st.sampled_from(
            ["government", "private_sector", "Civil society", "academia", "other"]
        ),
        "country": st.sampled_from([code for code, _ in countries()]),
        "website": st.from_regex(
            r"https?://[a-z][a-z0-9]{0,20}\.(org|com|int)(/[a-z0-9]{0,10})?", fullmatch=True
        ),
        "start_date": st.dates(min_value=date(1950, 1, 1), max_value=TODAY).map(date.isoformat),
        "contact_email": st.from_regex(r"[a-z][a-z0-9]{0,10}@[a-z]{2,10}\.org", fullmatch=True),
        "summary": st.integers(150, 200).map(_valid_summary),
        "description": st.text(min_size=20, max_size=500).filter(
            lambda t: len(t.strip()) >= 20 and all(c.isprintable() or c in "\n\t" for c in t)
        ),
        "partners": st.lists(st.sampled_from(["ITU", "UNDP", "GSMA", "WHO"]), max_size=4),
        "languages": st.lists(st.sampled_from(["en", "fr", "English", "Arabic", "sw"]), min_size=1),
    }
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(raw=_valid)
def test_every_well_formed_nomination_is_accepted(raw):
    result = validate(raw, edition=EDITION, today=TODAY, complete=True)
    assert result.ok, result.messages()


# -- decisions ---------------------------------------------------------------------------------


def test_a_decision_to_reject_or_return_needs_a_reason():
    assert validate_decision({"decision": "accept"})[0] is not None
    _, errors = validate_decision({"decision": "return", "reason": "short"})
    assert set(errors) == {"reason"}
    decision, errors = validate_decision({"decision": "reject", "reason": "Not an ICT project."})
    assert decision is not None and decision.status == "rejected"
    _, errors = validate_decision({"decision": "promote"})
    assert set(errors) == {"decision"}


def test_an_earlier_winner_can_only_be_rejected():
    _, errors = validate_decision({"decision": "accept", "earlier_winner": "yes"})
    assert set(errors) == {"earlier_winner"}
    decision, _ = validate_decision(
        {"decision": "reject", "earlier_winner": "yes", "reason": "Won the 2015 prize."}
    )
    assert decision is not None and decision.earlier_winner


@settings(max_examples=200, deadline=None)
@given(raw=st.dictionaries(st.sampled_from(["decision", "reason", "earlier_winner", "x"]), _values))
def test_any_decision_input_gives_a_decision_or_per_field_errors(raw):
    decision, errors = validate_decision(raw)
    assert (decision is None) == bool(errors)
    assert set(errors) <= {"decision", "reason", "earlier_winner"}


# -- public ids --------------------------------------------------------------------------------


def test_public_ids_are_short_url_safe_and_typo_tolerant():
    ids = {new_public_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"N[0-9A-HJKMNP-TV-Z]{8}", i) for i in ids)
    assert normalize_public_id("n1abc-d0ef") == "N1ABCD0EF"
    assert normalize_public_id("NOIL23456") == "N01123456"  # O->0, I and L->1
    assert normalize_public_id("N1234567U") is None  # U is not Crockford base32
    assert normalize_public_id("X12345678") is None
    assert normalize_public_id("N123") is None
    assert set(CROCKFORD) == set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


# -- the calendar, in Geneva time --------------------------------------------------------------


def _edition_closing(wall: str, voting_opens: str = "2017-03-16 00:00"):
    data = edition_data()
    data["phases"] = {
        "nominations": {"opens": "2017-01-10 09:00", "closes": wall},
        "review": {"opens": wall, "closes": voting_opens},
        "voting": {"opens": voting_opens, "closes": "2017-04-15 23:00"},
        "expert_review": {"opens": "2017-04-16 00:00", "closes": "2017-04-25 23:00"},
        "results": {"opens": "2017-04-26 00:00", "closes": "2017-06-30 00:00"},
    }
    return parse_edition(data, now=NOW)


def test_the_close_instant_is_refused_and_named_in_geneva_time():
    edition = _edition_closing("2017-02-15 23:00")  # winter: CET, 22:00 UTC
    close = datetime(2017, 2, 15, 22, 0, tzinfo=UTC)
    assert nominations_problem(edition, close - timedelta(microseconds=1)) is None
    refused = nominations_problem(edition, close)
    assert refused is not None and refused.code == "nominations_closed"
    assert refused.text() == (
        "Nominations closed on 15 February 2017, 23:00 Geneva time (CET, UTC+01:00):"
        " late submissions and changes are refused."
    )


def test_summer_time_close_is_2100_utc():
    edition = _edition_closing("2017-04-01 23:00", voting_opens="2017-04-03 00:00")
    close = datetime(2017, 4, 1, 21, 0, tzinfo=UTC)
    assert nominations_problem(edition, close - timedelta(microseconds=1)) is None
    assert "1 April 2017, 23:00 Geneva time (CEST, UTC+02:00)" in str(
        nominations_problem(edition, close)
    )


def test_before_the_opening_nominations_are_refused_with_the_opening_time():
    edition = _edition_closing("2017-02-15 23:00")
    opens = datetime(2017, 1, 10, 8, 0, tzinfo=UTC)
    early = nominations_problem(edition, opens - timedelta(microseconds=1))
    assert early is not None and "10 January 2017, 09:00 Geneva time" in early.text()
    assert nominations_problem(edition, opens) is None


def test_organizers_decide_until_voting_opens():
    edition = _edition_closing("2017-02-15 23:00")
    voting_opens = datetime(2017, 3, 15, 23, 0, tzinfo=UTC)
    assert review_problem(edition, voting_opens - timedelta(microseconds=1)) is None
    assert "16 March 2017, 00:00 Geneva time" in str(review_problem(edition, voting_opens))


def test_geneva_wall_shows_seconds_only_when_there_are_some():
    instant = datetime(2017, 2, 15, 22, 0, 30, 5, tzinfo=UTC)
    assert geneva_wall(instant) == "15 February 2017, 23:00:30.000005 Geneva time (CET, UTC+01:00)"


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(raw=_valid, field=st.sampled_from(FIELDS), value=_values)
def test_a_bad_value_is_reported_on_its_own_field_only(raw, field, value):
    raw = {**raw, field: value}
    result = validate(raw, edition=EDITION, today=TODAY, complete=True)
    assert set(result.errors) <= {field}


def test_title_and_summary_may_come_in_other_languages_checked_like_the_english():
    base = {"category": "C1", "title": "Digital villages"}
    form = {**base, "title_fr": "Villages numériques", "summary_zh": "数字村庄。", "title_ru": ""}
    result = validate(form, edition=EDITION, today=TODAY, complete=False)
    assert result.fields is not None
    assert result.fields.translations == {
        "fr": {"title": "Villages numériques"},
        "zh": {"summary": "数字村庄。"},
    }
    # The same from JSON.
    body = {**base, "translations": {"fr": {"title": "Villages numériques"}}}
    result = validate(body, edition=EDITION, today=TODAY, complete=False)
    assert result.fields is not None
    assert result.fields.translations == {"fr": {"title": "Villages numériques"}}
    # A title too short in French is an error on that field, like the English one.
    result = validate({**base, "title_fr": "V"}, edition=EDITION, today=TODAY, complete=False)
    assert set(result.errors) == {"title_fr"}
    for wrong in ({"de": {"title": "Digitale Dörfer"}}, {"fr": {"website": "x"}}, ["fr"]):
        result = validate(
            {**base, "translations": wrong}, edition=EDITION, today=TODAY, complete=False
        )
        assert set(result.errors) == {"translations"}, wrong
