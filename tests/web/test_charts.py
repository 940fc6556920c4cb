"""The committee's SVG charts: what they draw, that they say it in words and in a table,
and that the committee pages carry them."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures.flows import sign_in
from tests.fixtures.voting import flush, open_voting, verify_voter
from voting import accounts
from voting.web import chart_data
from voting.web.charts import (
    MAX_SERIES,
    OTHERS_KEY,
    PALETTE,
    RankEntry,
    Series,
    others_of,
    ranking_chart,
    summarise_series,
    timeline_chart,
)

START = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


def svg_of(markup: str) -> ET.Element:
    match = re.search(r"<svg .*?</svg>", str(markup), re.S)
    assert match, "no SVG in the chart"
    return ET.fromstring(match.group(0))  # noqa: S314 (our own output)


def table_rows(markup: str) -> list[list[str]]:
    body = re.search(r"<tbody>(.*?)</tbody>", str(markup), re.S).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    return [
        [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r)]
        for r in rows
    ]


def contrast(colour: str) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    lum = 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    return 1.05 / (lum + 0.05)


def test_every_line_colour_keeps_3_to_1_against_white():
    assert all(contrast(c) >= 3.0 for c in PALETTE)


def test_a_timeline_says_what_it_shows_in_words_and_in_a_table():
    series = [
        Series(
            "N1",
            "Digital farms",
            ((START + timedelta(hours=1), 5), (START + timedelta(hours=3), 2)),
        ),
        Series("N2", "Open maps <&>", ((START + timedelta(hours=2), 4),)),
    ]
    chart = timeline_chart(
        series,
        start=START,
        end=START + timedelta(hours=4),
        title="Votes over time",
        description="Running totals per nomination.",
        value_label="Votes",
        lang="en",
    )
    svg = svg_of(chart)
    assert svg.get("role") == "img"
    title_id, desc_id = svg.get("aria-labelledby").split()
    assert svg.find(f"{SVG}title").get("id") == title_id
    assert svg.find(f"{SVG}title").text == "Votes over time"
    assert svg.find(f"{SVG}desc").get("id") == desc_id
    # No inline style: the Content-Security-Policy forbids it.
    assert "style=" not in str(chart)
    # Lines differ by dash as well as colour; each is named with its total in the legend.
    paths = [p for p in svg.iter(f"{SVG}path") if p.get("fill") == "none"]
    assert len(paths) == 2 and paths[0].get("stroke-dasharray") != paths[1].get("stroke-dasharray")
    texts = " ".join(t.text or "" for t in svg.iter(f"{SVG}text"))
    assert "Digital farms (7)" in texts and "Open maps <&> (4)" in texts
    assert "&lt;&amp;&gt;" in str(chart)
    # The table: one row per bucket with votes, running totals per series.
    rows = table_rows(chart)
    assert [r[1:] for r in rows] == [["5", "0"], ["5", "4"], ["7", "4"]]
    assert "The figures as a table" in str(chart)


def test_more_than_six_series_keep_the_five_largest_and_name_how_many_others():
    series = [
        Series(f"N{i}", f"Project {i}", ((START + timedelta(minutes=i), i + 1),)) for i in range(10)
    ]
    chart = timeline_chart(
        series,
        start=START,
        end=START + timedelta(hours=1),
        title="t",
        description="d",
        value_label="v",
        others=others_of("{n} other nomination", "{n} other nominations", "en"),
        lang="en",
    )
    texts = " ".join(t.text or "" for t in svg_of(chart).iter(f"{SVG}text"))
    for i in range(5, 10):
        assert f"Project {i} ({i + 1})" in texts
    assert "5 other nominations (15)" in texts  # 1 + 2 + 3 + 4 + 5
    assert "Project 4 " not in texts
    paths = [p for p in svg_of(chart).iter(f"{SVG}path") if p.get("fill") == "none"]
    assert len(paths) == MAX_SERIES + 1


@pytest.mark.parametrize(
    ("lang", "one", "many"),
    [
        ("en", "1 other nomination", "12 other nominations"),
        ("fr", "1 autre candidature", "12 autres candidatures"),
        ("es", "1 candidatura más", "12 candidaturas más"),
        ("ru", "ещё 1 номинация", "ещё 12 номинаций"),
        ("zh", "其他 1 项提名", "其他 12 项提名"),
        ("ar", "1 ترشيح آخر", "12 ترشيحًا آخر"),
    ],
)
def test_the_others_line_says_how_many_in_each_language(lang, one, many):
    label = others_of("{n} other nomination", "{n} other nominations", lang)
    assert (label(1), label(12)) == (one, many)


series_strategy = st.lists(
    st.lists(st.tuples(st.integers(0, 240), st.integers(0, 50)), max_size=8),
    max_size=14,
)


@settings(max_examples=80, deadline=None)
@given(series_strategy, st.integers(1, 8))
def test_summarising_loses_no_vote_and_keeps_the_largest_by_name(raw, keep):
    series = [
        Series(f"K{i:02d}", f"S{i}", tuple((START + timedelta(minutes=m), n) for m, n in points))
        for i, points in enumerate(raw)
    ]
    out = summarise_series(series, lambda n: f"{n} others", keep)
    # The invariant: the summarised total is the sum of all series, bucket by bucket too.
    assert sum(s.total for s in out) == sum(s.total for s in series)
    per_bucket: dict = {}
    for s in series:
        for at, n in s.points:
            per_bucket[at] = per_bucket.get(at, 0) + n
    summed: dict = {}
    for s in out:
        for at, n in s.points:
            summed[at] = summed.get(at, 0) + n
    assert {k: v for k, v in summed.items() if v} == {k: v for k, v in per_bucket.items() if v}
    assert len(out) <= keep + 1
    named = [s for s in out if s.key != OTHERS_KEY]
    if len(out) < len(series):
        rest = [s for s in series if s.key not in {n.key for n in named}]
        assert out[-1].key == OTHERS_KEY and out[-1].label == f"{len(rest)} others"
        assert min(s.total for s in named) >= max(s.total for s in rest)
    else:
        assert {s.key for s in out} == {s.key for s in series}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.integers(0, 240), st.integers(0, 50)), max_size=12),
        min_size=1,
        max_size=9,
    )
)
def test_the_table_ends_on_each_lines_total(raw):
    series = [
        Series(f"K{i}", f"Series {i}", tuple((START + timedelta(minutes=m), n) for m, n in points))
        for i, points in enumerate(raw)
    ]
    chart = timeline_chart(
        series,
        start=START,
        end=START + timedelta(hours=4),
        title="t",
        description="d",
        value_label="v",
        lang="en",
    )
    svg_of(chart)  # well-formed whatever the input
    drawn = [s for s in series if s.total]
    if not drawn:
        assert "Nothing to show yet." in str(chart)
        return
    last = table_rows(chart)[-1][1:]
    totals = sorted(int(x.replace(",", "")) for x in last)
    expected = sorted(s.total for s in drawn)
    if len(drawn) > MAX_SERIES + 1:  # the smallest are summed into "others"
        keep = MAX_SERIES
        expected = sorted([*expected[-keep:], sum(expected[:-keep])])
    assert totals == expected


def test_numbers_and_times_follow_the_language():
    series = [Series("N1", "Projet", ((START + timedelta(hours=1), 12345),))]
    chart = timeline_chart(
        series,
        start=START,
        end=START + timedelta(hours=2),
        title="t",
        description="d",
        value_label="v",
        lang="fr",
    )
    assert "12\u202f345" in str(chart) or "12\u00a0345" in str(chart)
    assert "mars" in str(chart)
    assert "Les chiffres sous forme de tableau" in str(chart)


def test_ranking_chart_keeps_the_order_and_splits_the_parts():
    entries = [
        RankEntry("Winner project", 82.5, (50.0, 32.5), note="winner"),
        RankEntry("Second project", 70.0, (30.0, 40.0)),
        RankEntry("Third", 12.0, (12.0, 0.0)),
    ]
    chart = ranking_chart(
        entries,
        title="Merged ranking",
        description="Public votes and expert scores, merged.",
        value_label="Points",
        part_labels=("Public vote", "Experts"),
        decimals=1,
        lang="en",
    )
    svg = svg_of(chart)
    labels = [
        t.text for t in svg.iter(f"{SVG}text") if t.text and t.text[0].isdigit() and ". " in t.text
    ]
    assert labels == ["1. Winner project", "2. Second project", "3. Third"]
    # The second part is hatched (a pattern), not only another colour.
    assert svg.find(f"{SVG}defs/{SVG}pattern") is not None
    fills = {r.get("fill") for r in svg.iter(f"{SVG}rect")}
    assert any(f.startswith("url(#") for f in fills if f)
    rows = table_rows(chart)
    assert rows[0] == ["1", "Winner project (winner)", "82.5", "50", "32.5"]
    assert "style=" not in str(chart)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=60 * 24 * 90))
def test_buckets_give_at_most_120_points_when_they_can(minutes):
    start = START
    end = start + timedelta(minutes=minutes)
    size = chart_data.bucket_for(start, end)
    assert size in chart_data.BUCKETS
    if (end - start) / chart_data.BUCKETS[-1] <= chart_data.MAX_POINTS:
        assert (end - start) / size <= chart_data.MAX_POINTS
    smaller = [b for b in chart_data.BUCKETS if b < size]
    assert all((end - start) / b > chart_data.MAX_POINTS for b in smaller)


async def test_committee_pages_carry_the_charts(mail_client, mail_app, smtp, conn):
    _, edition_id, noms = await open_voting(mail_app, conn)
    csrf = await verify_voter(mail_client, mail_app, smtp, "chart-voter@example.org")
    for code in ("C1", "C2"):
        r = await mail_client.post(
            "/api/votes", json={"nomination": noms[code][0]}, headers={"X-CSRF-Token": csrf}
        )
        assert r.status_code == 202
    await flush(mail_app)
    chart_data._cache.clear()
    await accounts.grant(conn, "chair@example.org", "committee")
    await sign_in(mail_client, mail_app, smtp, "chair@example.org")
    live = await mail_client.get("/committee/live")
    assert live.status_code == 200
    assert "Votes over time, per category" in live.text
    assert "Votes over time in C1, per nomination" in live.text
    assert 'http-equiv="refresh"' not in live.text and 'data-refresh="15"' in live.text
    fraud = await mail_client.get("/committee/fraud/C1")
    assert fraud.status_code == 200
    assert "Votes over time in C1, per nomination" in fraud.text
    assert "Fraud flags over time in C1, per detector" in fraud.text
    title = await conn.fetchval(
        "SELECT title FROM nominations WHERE public_id=$1 AND edition_id=$2",
        noms["C1"][0],
        edition_id,
    )
    assert title[:10] in fraud.text


def _entry(
    nomination,
    title,
    votes,
    *,
    rank=None,
    public_rank=None,
    merged=None,
    parts=(None, None),
    winner=False,
):
    return {
        "nomination": nomination,
        "title": title,
        "official_votes": votes,
        "public_rank": public_rank,
        "shortlisted": True,
        "rank": rank,
        "winner": winner,
        "merged": merged,
        "public_part": parts[0],
        "expert_part": parts[1],
    }


def test_the_merged_ranking_of_issue_7s_result_table():
    table = {
        "code": "C4",
        "entries": [
            _entry(
                "N2",
                "Second",
                90,
                rank=2,
                public_rank=1,
                merged="0.400000",
                parts=("0.300000", "0.100000"),
            ),
            _entry(
                "N1",
                "First",
                70,
                rank=1,
                public_rank=2,
                merged="0.650000",
                parts=("0.150000", "0.500000"),
                winner=True,
            ),
            {**_entry("N3", "Not shortlisted", 1), "shortlisted": False},
        ],
    }
    chart = str(chart_data.merged_ranking_chart(table, blend=True))
    assert "Merged ranking in C4" in chart
    rows = table_rows(chart)
    assert [r[1] for r in rows] == ["First (winner)", "Second"]
    assert rows[0][2:] == ["0.65", "0.15", "0.5"]
    # Before any expert score: the shortlist by official votes, the public side.
    for e in table["entries"]:
        e.update(merged=None, rank=None, public_part=None, expert_part=None, winner=False)
    chart = str(chart_data.merged_ranking_chart(table, blend=True))
    assert "Shortlist ranking in C4, by official votes" in chart
    assert [r[1] for r in table_rows(chart)] == ["Second", "First"]
