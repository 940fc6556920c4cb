"""Tests for voting.contest: editions, calendar and Geneva wall time.

Everything runs against the real IANA rules shipped with zoneinfo/tzdata. The summer-time
changes used below are the EU rule Geneva follows (01:00 UTC on the last Sunday of March
and of October); test_eu_rule_matches_iana_data checks that premise against the database
so that the property tests cannot silently test the wrong instants.
"""

from __future__ import annotations

import calendar
import copy
import json
import tomllib
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import voting.contest as contest
from voting.contest import (
    GENEVA,
    PHASES,
    Category,
    Edition,
    EditionFileError,
    EditionRules,
    Phase,
    builtin_edition_path,
    load_edition_file,
    local_to_utc,
    parse_edition,
    to_local,
)
from voting.i18n import LANGUAGES, localized

# The stored shape of the default rules (editions.rules, the API's "rules"), written out
# so that a change to a default or to a key shows here.
DEFAULT_RULES = {
    "completeness_rule": False,
    "nominations_per_organization_per_category": 1,
    "summary_words_min": 150,
    "summary_words_max": 200,
    "shortlist_size": 5,
    "shortlist_ties": "all_tied_enter",
    "show_live_counts": False,
    "signoffs_required": 2,
    "antifraud": {},
    "privacy": {},
    "merge_rule": "experts_pick",
    "blend_public_weight": 0.5,
    "blend_expert_weight": 0.5,
    "blend_basis": "score",
    "expert_normalization": "none",
    "tie_policy": "joint_winners",
    "no_expert_scores": "public_votes_only",
    "score_min": 1,
    "score_max": 10,
    "criteria": [
        {"code": "impact", "name": "Impact", "weight": 1.0},
        {"code": "sustainability", "name": "Sustainability", "weight": 1.0},
        {"code": "replicability", "name": "Replicability", "weight": 1.0},
        {"code": "innovation", "name": "Innovation", "weight": 1.0},
        {"code": "relevance", "name": "Relevance to the action line", "weight": 1.0},
    ],
}

ZURICH = ZoneInfo("Europe/Zurich")
NOW = datetime(2014, 1, 10, 9, 30, tzinfo=UTC)
MICRO = timedelta(microseconds=1)
HOUR = timedelta(hours=1)

# The table of CONTEST.md, in order.
CATEGORIES_2014 = [
    (
        "C1",
        "The role of public governance authorities and all stakeholders in the promotion"
        " of ICTs for development",
        "UN/DESA",
    ),
    ("C2", "Information and communication infrastructure", "ITU"),
    ("C3", "Access to information and knowledge", "UNESCO"),
    ("C4", "Capacity building", "UNDP"),
    ("C5", "Building confidence and security in the use of ICTs", "ITU"),
    ("C6", "Enabling environment", "UNDP"),
    ("C7-EGOV", "ICT applications: e-government", "UN/DESA"),
    ("C7-EBUS", "ICT applications: e-business", "UNCTAD"),
    ("C7-ELEARN", "ICT applications: e-learning", "UNESCO"),
    ("C7-EHEALTH", "ICT applications: e-health", "WHO"),
    ("C7-EEMPLOY", "ICT applications: e-employment", "ILO"),
    ("C7-EENV", "ICT applications: e-environment", "WMO"),
    ("C7-EAGRI", "ICT applications: e-agriculture", "FAO"),
    ("C7-ESCI", "ICT applications: e-science", "UNESCO"),
    ("C8", "Cultural diversity and identity, linguistic diversity and local content", "UNESCO"),
    ("C9", "Media", "UNESCO"),
    ("C10", "Ethical dimensions of the Information Society", "UNESCO"),
    ("C11", "International and regional cooperation", "UN/DESA"),
]


# --- helpers ------------------------------------------------------------------------


def last_sunday(year: int, month: int) -> date:
    last = date(year, month, calendar.monthrange(year, month)[1])
    return last - timedelta(days=(last.weekday() - calendar.SUNDAY) % 7)


def eu_change(year: int, month: int) -> datetime:
    day = last_sunday(year, month)
    return datetime(day.year, day.month, day.day, 1, tzinfo=UTC)


def base_data(**top: Any) -> dict[str, Any]:
    """A valid edition in winter time, every boundary well away from a clock change."""
    data: dict[str, Any] = {
        "slug": "test-edition",
        "name": "Test edition",
        "rules": {},
        "categories": [
            {"code": "C1", "name": "Governance", "facilitator": "UN/DESA"},
            {"code": "C2", "name": "Infrastructure", "facilitator": "ITU"},
        ],
        "phases": {
            "nominations": {"opens": "2013-11-01 00:00", "closes": "2013-12-01 23:00"},
            "review": {"opens": "2013-12-01 23:00", "closes": "2014-01-05 12:00"},
            "voting": {"opens": "2014-01-06 09:00", "closes": "2014-01-31 23:00"},
            "expert_review": {"opens": "2014-01-31 23:00", "closes": "2014-02-20 18:00"},
            "results": {"opens": "2014-02-21 18:00", "closes": "2014-12-31 23:00"},
        },
    }
    data.update(top)
    return data


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)


def render_toml(data: dict[str, Any]) -> str:
    """Enough of a TOML writer for edition files, so tests can go through tomllib."""
    lines = [
        f"{key} = {toml_value(value)}"
        for key, value in data.items()
        if key not in ("rules", "phases", "categories")
    ]
    lines.append("[rules]")
    lines += [f"{key} = {toml_value(value)}" for key, value in data.get("rules", {}).items()]
    for name, table in data.get("phases", {}).items():
        lines.append(f"[phases.{name}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
    for category in data.get("categories", []):
        lines.append("[[categories]]")
        lines += [f"{key} = {toml_value(value)}" for key, value in category.items()]
    return "\n".join(lines) + "\n"


def raises_edition_error(data: dict[str, Any], **kwargs: Any) -> EditionFileError:
    with pytest.raises(EditionFileError) as info:
        parse_edition(data, now=kwargs.pop("now", NOW), source="test.toml", **kwargs)
    return info.value


def calendar_through(local: datetime, index: int, render: Callable[[datetime], Any]) -> dict:
    """Phases whose boundary number ``index`` (0..9) is ``local``; the others sit whole
    days away at the same wall time, so only that one boundary can be at a clock change."""
    bounds = [render(local + timedelta(days=i - index)) for i in range(10)]
    return {
        name: {"opens": bounds[2 * k], "closes": bounds[2 * k + 1]} for k, name in enumerate(PHASES)
    }


def iana_readings(local: datetime, change: datetime) -> list[datetime]:
    """The UTC instants that show ``local`` on Geneva clocks, found by converting UTC to
    local only (always unambiguous), independently of the fold logic under test."""
    offsets = {
        (change - MICRO).astimezone(ZURICH).utcoffset(),
        change.astimezone(ZURICH).utcoffset(),
    }
    candidates = {local.replace(tzinfo=UTC) - offset for offset in offsets if offset is not None}
    return sorted(u for u in candidates if u.astimezone(ZURICH).replace(tzinfo=None) == local)


# --- strategies ---------------------------------------------------------------------

years = st.integers(min_value=2000, max_value=2037)
change_months = st.sampled_from([3, 10])
changes = st.builds(eu_change, years, change_months)
# Offsets cluster on the change itself and a microsecond either side; random ones cover
# the three hours around it.
offsets_us = st.one_of(
    st.sampled_from([0, -1, 1, -3_600_000_000, 3_600_000_000, -3_599_999_999]),
    st.integers(min_value=-3 * 3_600_000_000, max_value=3 * 3_600_000_000),
)
instants_near_change = st.builds(
    lambda change, us: change + timedelta(microseconds=us), changes, offsets_us
)


@st.composite
def wall_times_near_change(draw: st.DrawFn) -> tuple[datetime, datetime]:
    year, month = draw(years), draw(change_months)
    day = last_sunday(year, month)
    seconds = draw(
        st.one_of(
            st.sampled_from([7199, 7200, 7201, 9000, 10799, 10800, 10801]),
            st.integers(min_value=-2 * 3600, max_value=6 * 3600),
        )
    )
    local = datetime(day.year, day.month, day.day) + timedelta(seconds=seconds)
    return local, eu_change(year, month)


@st.composite
def unusable_wall_times(draw: st.DrawFn) -> tuple[datetime, str]:
    """A Geneva wall time in the skipped (March) or repeated (October) hour."""
    year, month = draw(years), draw(change_months)
    day = last_sunday(year, month)
    seconds = draw(st.integers(min_value=7200, max_value=10799))
    local = datetime(day.year, day.month, day.day) + timedelta(seconds=seconds)
    return local, ("does not exist" if month == 3 else "happens twice")


# --- the 2014 edition ---------------------------------------------------------------


@pytest.fixture(scope="module")
def wsis2014() -> Edition:
    return load_edition_file(builtin_edition_path("wsis-2014"), now=NOW)


def test_2014_voting_closes_at_2100_utc(wsis2014: Edition) -> None:
    voting = wsis2014.phase("voting")
    assert voting.closes_at == datetime(2014, 4, 18, 21, 0, tzinfo=UTC)
    assert voting.closes_at.utcoffset() == timedelta(0)
    as_dict = voting.to_dict(wsis2014.tz)
    assert as_dict["closes_utc"] == "2014-04-18T21:00:00Z"
    assert as_dict["closes_local"] == "2014-04-18T23:00:00+02:00"
    assert as_dict["utc_offset_closes"] == "+02:00"


def test_2014_deadline_instant_belongs_to_expert_review(wsis2014: Edition) -> None:
    deadline = datetime(2014, 4, 18, 21, 0, tzinfo=UTC)
    voting = wsis2014.phase("voting")
    assert voting.contains(deadline - MICRO)
    assert not voting.contains(deadline)
    current = wsis2014.current_phase(deadline - MICRO)
    assert current is not None and current.name == "voting"
    current = wsis2014.current_phase(deadline)
    assert current is not None and current.name == "expert_review"


def test_2014_categories_match_the_call(wsis2014: Edition) -> None:
    got = [(c.code, c.name, c.facilitator) for c in wsis2014.categories]
    assert got == CATEGORIES_2014
    assert [c.position for c in wsis2014.categories] == list(range(1, 19))
    assert wsis2014.category("C7-EHEALTH") == Category(
        "C7-EHEALTH",
        CATEGORIES_2014[9][1],
        "WHO",
        10,
        "Health care and health information reached through ICTs, including telemedicine.",
    )
    assert wsis2014.category("C12") is None


@pytest.mark.parametrize("name", ["wsis-2014", "demo"])
def test_built_in_editions_name_every_category_in_six_languages(name: str) -> None:
    edition = load_edition_file(builtin_edition_path(name), now=datetime.now(UTC))
    others = {lang for lang in LANGUAGES if lang != "en"}
    assert set(edition.translations) == others
    for category in edition.categories:
        assert category.description, category.code
        assert set(category.translations) == others, category.code
        for lang in others:
            name_there = localized(category.name, lang)
            text_there = localized(category.description, lang)
            # Written in that language, not the English copied over.
            assert name_there != category.name
            assert text_there != category.description
    # What the API shows: the English text, and the others beside it.
    as_dict = edition.categories[8].to_dict()
    assert as_dict["name"] == "ICT applications: e-learning"
    assert as_dict["translations"]["zh"]["name"] == "信息通信技术应用：电子学习"


def test_translations_are_checked_like_every_other_field() -> None:
    data = base_data()
    data["translations"] = {"de": {"name": "WSIS-Preise"}}
    with pytest.raises(EditionFileError, match=r"translations\.de: unknown key"):
        parse_edition(data, now=NOW)
    data["translations"] = {"fr": {"name": ""}}
    with pytest.raises(EditionFileError, match=r"translations\.fr\.name: must be a non-empty"):
        parse_edition(data, now=NOW)
    data["translations"] = {"fr": {"name": "Prix"}}
    data["categories"][0]["translations"] = {"ru": {"title": "x"}}
    with pytest.raises(EditionFileError, match=r"translations\.ru\.title: unknown key"):
        parse_edition(data, now=NOW)
    data["categories"][0]["translations"] = {"ru": {"name": "Инфраструктура"}}
    edition = parse_edition(data, now=NOW)
    assert localized(edition.name, "fr") == "Prix"
    # A language the data lacks falls back to English.
    assert localized(edition.name, "zh") == edition.name
    assert localized(edition.categories[0].name, "ru") == "Инфраструктура"
    assert localized(edition.categories[0].description, "ru") == ""


def test_2014_calendar_and_rules(wsis2014: Edition) -> None:
    assert wsis2014.slug == "wsis-2014"
    assert wsis2014.name == "WSIS Project Prizes 2014"
    assert wsis2014.timezone == "Europe/Zurich"
    assert wsis2014.is_rehearsal is False
    assert [p.name for p in wsis2014.phases] == list(PHASES)
    assert to_local(wsis2014.phase("results").opens_at).date() == date(2014, 6, 10)
    assert wsis2014.rules == replace(
        EditionRules(), results=replace(EditionRules().results, completeness_rule=True)
    )
    assert wsis2014.rules.to_json() == {**DEFAULT_RULES, "completeness_rule": True}
    for earlier, later in zip(wsis2014.phases, wsis2014.phases[1:], strict=False):
        assert earlier.closes_at <= later.opens_at


def test_2014_current_phase_outside_the_calendar(wsis2014: Edition) -> None:
    first, last = wsis2014.phases[0], wsis2014.phases[-1]
    assert wsis2014.current_phase(first.opens_at - MICRO) is None
    assert wsis2014.current_phase(first.opens_at) == first
    assert wsis2014.current_phase(last.closes_at - MICRO) == last
    assert wsis2014.current_phase(last.closes_at) is None


def test_2014_to_dict(wsis2014: Edition) -> None:
    now = datetime(2014, 4, 1, tzinfo=UTC)
    as_dict = wsis2014.to_dict(now)
    assert as_dict["slug"] == "wsis-2014"
    assert as_dict["timezone"] == "Europe/Zurich"
    assert as_dict["current_phase"] == "voting"
    assert [p["name"] for p in as_dict["phases"]] == list(PHASES)
    egov = as_dict["categories"][6]
    assert {key: egov[key] for key in ("code", "name", "facilitator", "position")} == {
        "code": "C7-EGOV",
        "name": "ICT applications: e-government",
        "facilitator": "UN/DESA",
        "position": 7,
    }
    assert egov["translations"]["es"]["name"] == "Aplicaciones de las TIC: gobierno electrónico"
    assert as_dict["translations"]["fr"]["name"] == "Prix des projets du SMSI 2014"
    assert as_dict["rules"]["completeness_rule"] is True
    json.dumps(as_dict)  # the API serves it as JSON
    assert wsis2014.to_dict(datetime(2013, 1, 1, tzinfo=UTC))["current_phase"] is None


# --- January: winter time -----------------------------------------------------------


def test_january_deadline_at_2300_geneva_is_2200_utc() -> None:
    data = base_data()
    data["phases"]["voting"]["closes"] = "2014-01-31 23:00"
    edition = parse_edition(data, now=NOW)
    voting = edition.phase("voting")
    assert voting.closes_at == datetime(2014, 1, 31, 22, 0, tzinfo=UTC)
    assert voting.to_dict(GENEVA)["closes_local"] == "2014-01-31T23:00:00+01:00"
    assert voting.to_dict(GENEVA)["utc_offset_closes"] == "+01:00"
    assert voting.to_dict(GENEVA)["closes_utc"] == "2014-01-31T22:00:00Z"


@given(years, st.integers(min_value=1, max_value=31))
def test_any_january_2300_geneva_is_2200_utc(year: int, day: int) -> None:
    assert local_to_utc(datetime(year, 1, day, 23, 0)) == datetime(year, 1, day, 22, tzinfo=UTC)


# --- the premise of the property tests ----------------------------------------------


def test_eu_rule_matches_iana_data() -> None:
    for year in range(2000, 2038):
        spring, autumn = eu_change(year, 3), eu_change(year, 10)
        assert spring.astimezone(ZURICH).utcoffset() == 2 * HOUR
        assert (spring - MICRO).astimezone(ZURICH).utcoffset() == HOUR
        assert autumn.astimezone(ZURICH).utcoffset() == HOUR
        assert (autumn - MICRO).astimezone(ZURICH).utcoffset() == 2 * HOUR


# --- properties around both yearly changes -------------------------------------------


@given(instants_near_change, st.integers(min_value=1, max_value=6 * 3_600_000_000))
@example(eu_change(2014, 3), 1)
@example(eu_change(2014, 10) - HOUR, 3_600_000_000)
def test_phase_contains_opening_never_closing(opens: datetime, length_us: int) -> None:
    closes = opens + timedelta(microseconds=length_us)
    phase = Phase("voting", opens, closes)
    assert phase.contains(opens)
    assert not phase.contains(closes)
    assert phase.contains(closes - MICRO)
    assert not phase.contains(opens - MICRO)
    assert not phase.contains(closes + MICRO)
    # The same instants seen through another zone are the same instants.
    assert phase.contains(opens.astimezone(ZURICH))
    assert not phase.contains(closes.astimezone(ZURICH))


@given(wall_times_near_change(), st.integers(min_value=0, max_value=3))
def test_file_boundary_at_clock_change(case: tuple[datetime, datetime], boundary: int) -> None:
    """A wall time that exists once, written as a shared boundary between two phases,
    belongs to the later phase only; a microsecond before belongs to the earlier one."""
    local, change = case
    readings = iana_readings(local, change)
    assume(len(readings) == 1)  # the others are refused, see the tests below
    earlier, later = PHASES[boundary], PHASES[boundary + 1]
    phases = calendar_through(local, 2 * boundary + 1, lambda d: f"{d:%Y-%m-%d %H:%M:%S}")
    phases[later]["opens"] = phases[earlier]["closes"]
    edition = parse_edition(base_data(phases=phases), now=NOW)
    instant = readings[0]
    assert edition.phase(earlier).closes_at == instant
    assert edition.phase(later).opens_at == instant
    assert not edition.phase(earlier).contains(instant)
    assert edition.phase(later).contains(instant)
    assert edition.current_phase(instant) == edition.phase(later)
    assert edition.current_phase(instant - MICRO) == edition.phase(earlier)
    assert edition.current_phase(instant + MICRO) == edition.phase(later)


@given(wall_times_near_change())
@example((datetime(2014, 3, 30, 1, 59, 59), eu_change(2014, 3)))
@example((datetime(2014, 3, 30, 3, 0), eu_change(2014, 3)))
@example((datetime(2014, 10, 26, 1, 59, 59), eu_change(2014, 10)))
@example((datetime(2014, 10, 26, 3, 0), eu_change(2014, 10)))
def test_local_to_utc_round_trips_or_refuses(case: tuple[datetime, datetime]) -> None:
    local, change = case
    readings = iana_readings(local, change)
    in_changed_hour = local.date() == change.date() and 2 <= local.hour < 3
    if change.month == 3:
        assert len(readings) == (0 if in_changed_hour else 1)
    else:
        assert len(readings) == (2 if in_changed_hour else 1)

    if len(readings) == 1:
        instant = local_to_utc(local)
        assert instant == readings[0]
        assert instant.tzinfo is UTC
        back = to_local(instant)
        assert back.replace(tzinfo=None) == local
        summer, winter = 2 * HOUR, HOUR
        if change.month == 3:
            assert back.utcoffset() == (summer if instant >= change else winter)
        else:
            assert back.utcoffset() == (winter if instant >= change else summer)
        assert local_to_utc(back.replace(tzinfo=None), ZURICH) == instant
    else:
        with pytest.raises(EditionFileError) as info:
            local_to_utc(local)
        message = str(info.value)
        assert f"{local:%Y-%m-%d %H:%M}" in message
        assert "Europe/Zurich" in message
        if readings:
            assert "happens twice" in message
            assert "clocks go back from 03:00 to 02:00 that night" in message
        else:
            assert "does not exist" in message
            assert "clocks jump from 02:00 to 03:00 that night" in message


@given(instants_near_change)
def test_utc_to_local_to_utc(instant: datetime) -> None:
    local = to_local(instant)
    # Compared in UTC: interzone == is always False for a wall time in a fold (PEP 495).
    assert local.astimezone(UTC) == instant
    assert local.tzinfo is not None and local.utcoffset() in (HOUR, 2 * HOUR)
    naive = local.replace(tzinfo=None)
    in_repeated_hour = naive.date() == last_sunday(naive.year, 10) and 2 <= naive.hour < 3
    if in_repeated_hour:
        with pytest.raises(EditionFileError, match="happens twice"):
            local_to_utc(naive)
    else:
        assert local_to_utc(naive) == instant


@settings(max_examples=150)
@given(
    unusable_wall_times(),
    st.integers(min_value=0, max_value=9),
    st.sampled_from(["minutes", "seconds", "toml-datetime"]),
)
@example((datetime(2014, 3, 30, 2, 30), "does not exist"), 5, "minutes")
@example((datetime(2014, 10, 26, 2, 30), "happens twice"), 5, "toml-datetime")
def test_unusable_wall_times_are_refused_in_files(
    case: tuple[datetime, str], boundary: int, form: str
) -> None:
    local, problem = case
    if form == "minutes":
        local = local.replace(second=0)
    renderers: dict[str, Callable[[datetime], Any]] = {
        "minutes": lambda d: f"{d:%Y-%m-%d %H:%M}",
        "seconds": lambda d: f"{d:%Y-%m-%d %H:%M:%S}",
        "toml-datetime": lambda d: d,  # what tomllib gives for a TOML local date-time
    }
    data = base_data(phases=calendar_through(local, boundary, renderers[form]))
    data = tomllib.loads(render_toml(data))
    field = f"phases.{PHASES[boundary // 2]}.{('opens', 'closes')[boundary % 2]}"
    with pytest.raises(EditionFileError) as info:
        parse_edition(data, now=NOW, source="edition.toml")
    error = info.value
    assert error.field == field
    assert str(error).startswith(f"edition.toml: {field}: {local:%Y-%m-%d %H:%M}")
    assert f"{problem} in Europe/Zurich" in str(error)

    # The same calendar an hour later on that day is accepted: the error is about the
    # changed hour and nothing else.
    data = base_data(phases=calendar_through(local + HOUR, boundary, renderers[form]))
    parse_edition(data, now=NOW)


def test_gap_message_is_exact() -> None:
    data = base_data(
        phases=calendar_through(datetime(2014, 3, 30, 2, 30), 5, lambda d: f"{d:%Y-%m-%d %H:%M}")
    )
    error = raises_edition_error(data)
    assert str(error) == (
        "test.toml: phases.voting.closes: 2014-03-30 02:30 does not exist in Europe/Zurich "
        "(clocks jump from 02:00 to 03:00 that night)"
    )


def test_fold_message_is_exact() -> None:
    with pytest.raises(EditionFileError) as info:
        local_to_utc(datetime(2014, 10, 26, 2, 30))
    assert str(info.value) == (
        "2014-10-26 02:30 happens twice in Europe/Zurich "
        "(clocks go back from 03:00 to 02:00 that night)"
    )


def test_other_zones_use_their_own_transitions() -> None:
    # Lord Howe moves its clocks by half an hour: nothing may assume whole hours.
    lord_howe = ZoneInfo("Australia/Lord_Howe")
    with pytest.raises(EditionFileError, match=r"from 02:00 to 02:30 that night"):
        local_to_utc(datetime(2014, 10, 5, 2, 15), lord_howe)
    with pytest.raises(EditionFileError, match=r"from 02:00 to 01:30 that night"):
        local_to_utc(datetime(2014, 4, 6, 1, 45), lord_howe)
    # Samoa skipped 30 December 2011 entirely.
    with pytest.raises(EditionFileError, match=r"2011-12-30 00:00 to 2011-12-31 00:00"):
        local_to_utc(datetime(2011, 12, 30, 12), ZoneInfo("Pacific/Apia"))
    new_york = ZoneInfo("America/New_York")
    assert local_to_utc(datetime(2014, 4, 18, 23), new_york) == datetime(2014, 4, 19, 3, tzinfo=UTC)


# --- the demo edition ---------------------------------------------------------------


@settings(max_examples=50)
@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2037, 12, 31),
        timezones=st.sampled_from([UTC, ZURICH, ZoneInfo("Asia/Tokyo")]),
    )
)
def test_demo_voting_is_open_when_loaded(now: datetime) -> None:
    demo = load_edition_file(builtin_edition_path("demo"), now=now)
    assert demo.slug == "demo"
    assert demo.phase("voting").contains(now)
    current = demo.current_phase(now)
    assert current is not None and current.name == "voting"
    assert demo.to_dict(now)["current_phase"] == "voting"
    floor = now.astimezone(UTC).replace(second=0, microsecond=0)
    assert demo.phase("nominations").opens_at == floor - timedelta(days=40)
    assert demo.phase("voting").opens_at == floor - timedelta(days=1)
    assert demo.phase("voting").closes_at == floor + timedelta(days=14)
    assert demo.phase("results").closes_at == floor + timedelta(days=60)
    for earlier, later in zip(demo.phases, demo.phases[1:], strict=False):
        assert earlier.closes_at == later.opens_at


def test_demo_categories_and_rules() -> None:
    demo = load_edition_file(builtin_edition_path("demo"), now=NOW)
    assert [(c.code, c.name, c.facilitator) for c in demo.categories] == CATEGORIES_2014
    assert demo.rules.results.completeness_rule is False
    assert demo.rules == EditionRules()
    assert demo.rules.to_json() == DEFAULT_RULES


def test_relative_times_truncate_to_the_minute() -> None:
    now = datetime(2014, 3, 30, 0, 34, 56, 789, tzinfo=UTC)
    phases = {
        "nominations": {"opens_in": "-2d", "closes_in": "-90m"},
        "review": {"opens_in": "-1h", "closes_in": "-30s"},
        "voting": {"opens_in": "0s", "closes_in": "+90s"},
        "expert_review": {"opens_in": "+5m", "closes_in": "3h"},
        "results": {"opens": "2014-04-02 12:00", "closes_in": "+7d"},
    }
    edition = parse_edition(base_data(phases=phases), now=now)
    at = {
        (p.name, side): getattr(p, f"{side}_at")
        for p in edition.phases
        for side in ("opens", "closes")
    }
    base = datetime(2014, 3, 30, 0, 34, tzinfo=UTC)
    assert at["nominations", "opens"] == base - timedelta(days=2)
    assert at["nominations", "closes"] == datetime(2014, 3, 29, 23, 4, tzinfo=UTC)
    assert at["review", "opens"] == base - HOUR
    assert at["review", "closes"] == base
    assert at["voting", "opens"] == base
    assert at["voting", "closes"] == datetime(2014, 3, 30, 0, 36, tzinfo=UTC)
    assert at["expert_review", "opens"] == datetime(2014, 3, 30, 0, 39, tzinfo=UTC)
    assert at["expert_review", "closes"] == datetime(2014, 3, 30, 3, 34, tzinfo=UTC)
    assert at["results", "opens"] == datetime(2014, 4, 2, 10, tzinfo=UTC)
    assert at["results", "closes"] == base + timedelta(days=7)


# --- validation ---------------------------------------------------------------------


def drop_phase(data: dict) -> None:
    del data["phases"]["review"]


def overlap(data: dict) -> None:
    data["phases"]["review"]["opens"] = "2013-12-01 22:59"


def backwards(data: dict) -> None:
    data["phases"]["voting"]["closes"] = "2014-01-06 08:00"


def empty_phase(data: dict) -> None:
    data["phases"]["voting"]["closes"] = "2014-01-06 09:00"


def duplicate_code(data: dict) -> None:
    data["categories"].append({"code": "C1", "name": "Again", "facilitator": "ITU"})


def duplicate_code_other_case(data: dict) -> None:
    data["categories"][1]["code"] = "c1"


def bad_relative(data: dict) -> None:
    del data["phases"]["voting"]["closes"]
    data["phases"]["voting"]["closes_in"] = "two weeks"


def setter(path: str, value: Any) -> Callable[[dict], None]:
    def apply(data: dict) -> None:
        *parents, last = path.split(".")
        target = data
        for key in parents:
            target = target.setdefault(key, {})
        target[last] = value

    return apply


def deleter(path: str) -> Callable[[dict], None]:
    def apply(data: dict) -> None:
        *parents, last = path.split(".")
        target = data
        for key in parents:
            target = target[key]
        del target[last]

    return apply


INVALID = [
    pytest.param(drop_phase, "phases", "missing [phases.review]", id="missing-phase"),
    pytest.param(deleter("phases"), "phases", "is missing", id="no-phases"),
    pytest.param(
        overlap,
        "phases.review.opens",
        "is before phases.nominations closes at 2013-12-01 23:00",
        id="overlap",
    ),
    pytest.param(backwards, "phases.voting", "not after it opens", id="closes-before-opens"),
    pytest.param(empty_phase, "phases.voting", "not after it opens", id="closes-when-opens"),
    pytest.param(
        setter("phases.vote", {"opens": "2014-01-01 00:00"}),
        "phases.vote",
        "did you mean 'voting'",
        id="unknown-phase",
    ),
    pytest.param(
        setter("phases.voting.opens_in", "+1d"),
        "phases.voting",
        "either opens or opens_in, not both",
        id="opens-and-opens-in",
    ),
    pytest.param(
        deleter("phases.voting.closes"), "phases.voting.closes", "is missing", id="missing-close"
    ),
    pytest.param(
        setter("phases.voting.closes_in", "two weeks"),
        "phases.voting",
        "either closes or closes_in",
        id="closes-and-closes-in",
    ),
    pytest.param(
        bad_relative, "phases.voting.closes_in", "not an offset from now like", id="bad-relative"
    ),
    pytest.param(
        setter("phases.voting.ends", "2014-01-31 23:00"),
        "phases.voting.ends",
        "unknown key",
        id="unknown-phase-key",
    ),
    pytest.param(
        setter("phases.voting.closes", "18.04.2014 23:00"),
        "phases.voting.closes",
        "is not a wall time like",
        id="bad-wall-time",
    ),
    pytest.param(
        setter("phases.voting.closes", "2014-02-30 23:00"),
        "phases.voting.closes",
        "is not a real date and time",
        id="impossible-date",
    ),
    pytest.param(
        setter("phases.voting.closes", datetime(2014, 1, 31, 23, tzinfo=UTC)),
        "phases.voting.closes",
        "carries a UTC offset",
        id="offset-datetime",
    ),
    pytest.param(
        setter("phases.voting.closes", date(2014, 1, 31)),
        "phases.voting.closes",
        "needs both a date and a time",
        id="date-only",
    ),
    pytest.param(
        setter("phases.voting.closes", 20140131),
        "phases.voting.closes",
        "must be a wall time",
        id="number-as-time",
    ),
    pytest.param(
        setter("phases.voting", "2014-01-31"),
        "phases.voting",
        "must be a table",
        id="phase-not-table",
    ),
    pytest.param(
        duplicate_code,
        "categories[2].code",
        "duplicate category code 'C1'",
        id="duplicate-category",
    ),
    pytest.param(
        duplicate_code_other_case,
        "categories[1].code",
        "duplicate category code 'c1', already used by categories[0]",
        id="duplicate-category-case",
    ),
    pytest.param(setter("categories", []), "categories", "non-empty array", id="no-categories"),
    pytest.param(deleter("categories"), "categories", "at least one", id="missing-categories"),
    pytest.param(
        setter("categories", [{"code": "C1", "name": "Governance"}]),
        "categories[0].facilitator",
        "is missing",
        id="category-no-facilitator",
    ),
    pytest.param(
        setter("categories", [{"code": "C 1", "name": "x", "facilitator": "ITU"}]),
        "categories[0].code",
        "letters, digits",
        id="category-bad-code",
    ),
    pytest.param(
        setter(
            "categories", [{"code": "C1", "name": "x", "facilitator": "ITU", "facilitater": "ITU"}]
        ),
        "categories[0].facilitater",
        "did you mean 'facilitator'",
        id="category-unknown-key",
    ),
    pytest.param(setter("slug", "WSIS_2014"), "slug", "lowercase letters", id="slug-case"),
    pytest.param(setter("slug", "x"), "slug", "2 to 63", id="slug-short"),
    pytest.param(setter("slug", "a" * 64), "slug", "2 to 63", id="slug-long"),
    pytest.param(setter("slug", "-wsis"), "slug", "starting with a letter", id="slug-hyphen"),
    pytest.param(setter("slug", 2014), "slug", "2014", id="slug-number"),
    pytest.param(deleter("slug"), "slug", "is missing", id="slug-missing"),
    pytest.param(setter("name", "  "), "name", "non-empty string", id="name-blank"),
    pytest.param(
        setter("rules.completness_rule", True),
        "rules.completness_rule",
        "unknown key; did you mean 'completeness_rule'",
        id="unknown-rule",
    ),
    pytest.param(
        setter("rules.shortlist_size", "5"),
        "rules.shortlist_size",
        "must be int",
        id="rule-str-for-int",
    ),
    pytest.param(
        setter("rules.shortlist_size", True),
        "rules.shortlist_size",
        "must be int",
        id="rule-bool-for-int",
    ),
    pytest.param(
        setter("rules.completeness_rule", 1),
        "rules.completeness_rule",
        "must be bool",
        id="rule-int-for-bool",
    ),
    pytest.param(
        setter("rules.shortlist_ties", 3),
        "rules.shortlist_ties",
        "must be str",
        id="rule-int-for-str",
    ),
    pytest.param(
        setter("rules.shortlist_size", 0), "rules.shortlist_size", "at least 1", id="rule-too-small"
    ),
    pytest.param(
        setter("rules.summary_words_max", 100),
        "rules.summary_words_max",
        "below rules.summary_words_min 150",
        id="rule-max-below-min",
    ),
    pytest.param(
        setter("rules", ["completeness_rule"]), "rules", "must be a table", id="rules-not-table"
    ),
    pytest.param(
        setter("timezone", "Europe/Geneva"),
        "timezone",
        "'Europe/Geneva' is not an IANA time zone name",
        id="tz-unknown",
    ),
    pytest.param(
        setter("timezone", "europe/zurich"),
        "timezone",
        "did you mean 'Europe/Zurich'",
        id="tz-case",
    ),
    pytest.param(setter("timezone", "localtime"), "timezone", "not an IANA", id="tz-localtime"),
    pytest.param(setter("timezone", "../../etc/passwd"), "timezone", "not an IANA", id="tz-path"),
    pytest.param(setter("timezone", 1), "timezone", "must be a string", id="tz-number"),
    pytest.param(setter("rehearsal", "yes"), "rehearsal", "true or false", id="rehearsal-str"),
    pytest.param(
        setter("timezones", "UTC"),
        "timezones",
        "did you mean 'timezone'",
        id="unknown-top-level-key",
    ),
]


@pytest.mark.parametrize(("mutate", "field", "fragment"), INVALID)
def test_invalid_editions_are_refused(
    mutate: Callable[[dict], None], field: str, fragment: str
) -> None:
    data = base_data()
    parse_edition(copy.deepcopy(data), now=NOW)  # the starting point is valid
    mutate(data)
    error = raises_edition_error(data)
    assert isinstance(error, ValueError)
    assert error.field == field
    assert fragment in str(error)
    assert str(error).startswith(f"test.toml: {field}: ")


def test_phases_may_leave_gaps_and_current_phase_is_none_there() -> None:
    edition = parse_edition(base_data(), now=NOW)
    review, voting = edition.phase("review"), edition.phase("voting")
    assert review.closes_at < voting.opens_at
    assert edition.current_phase(review.closes_at) is None
    assert edition.current_phase(voting.opens_at - MICRO) is None
    assert edition.current_phase(voting.opens_at) == voting


def test_rules_merge_over_defaults_and_defaults_are_not_shared() -> None:
    edition = parse_edition(
        base_data(rules={"shortlist_size": 3, "show_live_counts": True}), now=NOW
    )
    assert edition.rules.results.shortlist_size == 3
    assert edition.rules.voting.show_live_counts is True
    assert edition.rules.to_json() == {
        **DEFAULT_RULES,
        "shortlist_size": 3,
        "show_live_counts": True,
    }
    assert EditionRules().results.shortlist_size == 5
    plain = parse_edition(base_data(), now=NOW)
    assert plain.rules == EditionRules()


def test_timezone_default_and_other_zone() -> None:
    assert parse_edition(base_data(), now=NOW).timezone == "Europe/Zurich"
    tokyo = parse_edition(base_data(timezone="Asia/Tokyo", rehearsal=True), now=NOW)
    assert tokyo.tz == ZoneInfo("Asia/Tokyo")
    assert tokyo.is_rehearsal is True
    assert tokyo.phase("voting").closes_at == datetime(2014, 1, 31, 14, tzinfo=UTC)
    assert tokyo.phase("voting").to_dict(tokyo.tz)["utc_offset_closes"] == "+09:00"


def test_toml_local_datetime_literals_are_wall_time(tmp_path: Path) -> None:
    data = base_data()
    data["phases"]["voting"]["closes"] = datetime(2014, 1, 31, 23, 0)
    path = tmp_path / "edition.toml"
    path.write_text(render_toml(data), encoding="utf-8")
    assert "closes = 2014-01-31T23:00:00" in path.read_text(encoding="utf-8")
    edition = load_edition_file(path, now=NOW)
    assert edition.phase("voting").closes_at == datetime(2014, 1, 31, 22, tzinfo=UTC)


def test_load_edition_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('slug = "x\n', encoding="utf-8")
    with pytest.raises(EditionFileError, match=r"broken\.toml: not valid TOML"):
        load_edition_file(path, now=NOW)
    data = base_data()
    data["phases"]["voting"]["closes"] = datetime(2014, 3, 30, 2, 30)
    data["phases"]["expert_review"] = {"opens": "2014-03-31 00:00", "closes": "2014-04-01 00:00"}
    data["phases"]["results"] = {"opens": "2014-04-01 00:00", "closes": "2014-05-01 00:00"}
    path.write_text(render_toml(data), encoding="utf-8")
    with pytest.raises(EditionFileError) as info:
        load_edition_file(str(path), now=NOW)
    assert str(info.value).startswith(f"{path}: phases.voting.closes: 2014-03-30 02:30 does")


# --- API contract -------------------------------------------------------------------


def test_constants() -> None:
    assert GENEVA == ZoneInfo("Europe/Zurich")
    assert PHASES == ("nominations", "review", "voting", "expert_review", "results")
    assert EditionRules().to_json() == DEFAULT_RULES
    # The order is the one error messages list the keys in.
    assert list(EditionRules().to_json()) == list(DEFAULT_RULES)


def test_builtin_edition_path() -> None:
    # The built-in editions sit in the package, beside voting/contest/.
    editions = Path(contest.__file__).parent.parent / "editions"
    assert builtin_edition_path("demo") == editions / "demo.toml"
    assert builtin_edition_path("wsis-2014").is_file()
    with pytest.raises(ValueError, match="not the name of a built-in edition"):
        builtin_edition_path("../secrets")


def test_naive_datetimes_are_refused_where_instants_are_expected() -> None:
    naive = datetime(2014, 4, 18, 21)
    with pytest.raises(ValueError, match="naive"):
        to_local(naive)
    with pytest.raises(ValueError, match="naive wall time"):
        local_to_utc(naive.replace(tzinfo=UTC))
    with pytest.raises(ValueError, match="aware"):
        Phase("voting", naive, naive + HOUR)
    phase = Phase("voting", naive.replace(tzinfo=UTC), naive.replace(tzinfo=UTC) + HOUR)
    with pytest.raises(ValueError, match="aware"):
        phase.contains(naive)
    with pytest.raises(ValueError, match="now must be an aware"):
        parse_edition(base_data(), now=naive)


def test_phase_normalises_to_utc_and_refuses_empty_span() -> None:
    local = datetime(2014, 4, 18, 23, tzinfo=ZURICH)
    phase = Phase("voting", local - HOUR, local)
    assert phase.closes_at.tzinfo is UTC
    assert phase.closes_at == datetime(2014, 4, 18, 21, tzinfo=UTC)
    assert phase.to_dict(ZURICH) == {
        "name": "voting",
        "opens_utc": "2014-04-18T20:00:00Z",
        "closes_utc": "2014-04-18T21:00:00Z",
        "opens_local": "2014-04-18T22:00:00+02:00",
        "closes_local": "2014-04-18T23:00:00+02:00",
        "utc_offset_opens": "+02:00",
        "utc_offset_closes": "+02:00",
    }
    with pytest.raises(ValueError, match="not after"):
        Phase("voting", local, local)


def test_phase_to_dict_across_the_spring_change() -> None:
    phase = Phase("voting", eu_change(2014, 3) - HOUR, eu_change(2014, 3))
    as_dict = phase.to_dict(GENEVA)
    assert as_dict["opens_local"] == "2014-03-30T01:00:00+01:00"
    assert as_dict["closes_local"] == "2014-03-30T03:00:00+02:00"
    assert (as_dict["utc_offset_opens"], as_dict["utc_offset_closes"]) == ("+01:00", "+02:00")
    west = Phase("voting", datetime(2014, 1, 1, tzinfo=UTC), datetime(2014, 7, 1, tzinfo=UTC))
    assert west.to_dict(ZoneInfo("America/St_Johns"))["utc_offset_opens"] == "-03:30"


def test_edition_lookups() -> None:
    edition = parse_edition(base_data(), now=NOW)
    assert edition.phase("voting").name == "voting"
    with pytest.raises(KeyError, match="unknown phase 'vote'"):
        edition.phase("vote")
    assert edition.category("C2") == Category("C2", "Infrastructure", "ITU", 2)
    assert edition.category("c2") is None
    with pytest.raises(ValueError, match="phases must be"):
        Edition("x", "X", "Europe/Zurich", (), edition.phases[::-1], EditionRules())
