"""Server-rendered SVG charts for the committee's pages: no script, no CDN, no library.

Each chart is a `<figure>`: an SVG with `role="img"`, a `<title>` and a `<desc>` that say
what it shows in words, then a data table in a `<details>` for those who would rather
read (or cannot see) the picture. Lines are told apart by colour AND dash pattern AND a
marker shape, and each is named in a legend, so no information rests on colour alone
(WCAG 1.4.1); every colour keeps at least 3:1 contrast with the white ground (1.4.11).
Only presentation attributes are used, never `style=`: the pages' Content-Security-Policy
allows no inline style.

- `timeline_chart`: running totals over time, one line per series (votes per nomination,
  votes per category, fraud flags per detector);
- `ranking_chart`: horizontal bars in rank order, optionally split into parts (public
  votes and expert scores of a merged ranking) told apart by pattern as well as colour.

Texts come in already translated (the callers use gettext); numbers and instants are
formatted for the page's language here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from html import escape
from itertools import count

from markupsafe import Markup

from ..contest import GENEVA
from ..i18n import format_instant, format_number, format_tick, gettext, ngettext

# Okabe-Ito hues, darkened where needed to keep 3:1 against white (tests/web/test_charts.py).
PALETTE = ("#0072B2", "#D55E00", "#007A5E", "#A6477F", "#000000", "#8C6D00", "#5A5A5A")
DASHES = ("", "8 4", "2 3", "10 3 2 3", "4 4", "1 2", "12 4 4 4")
MARKERS = ("circle", "square", "triangle", "diamond", "cross", "triangle-down", "bar")
# Two parts of a ranking bar: a solid fill and a hatched one.
PART_FILLS = ("#0072B2", "url(#{id}-hatch)")
# At most this many series are drawn by name; the rest are summed into one line
# ("N others"), so a chart has at most MAX_SERIES + 1 lines.
MAX_SERIES = 5
OTHERS_KEY = "_others"

_ids = count(1)


@dataclass(frozen=True)
class Series:
    """One line: `points` are (bucket start, amount in that bucket), in any order."""

    key: str
    label: str
    points: tuple[tuple[datetime, int], ...]

    @property
    def total(self) -> int:
        return sum(n for _, n in self.points)


@dataclass(frozen=True)
class RankEntry:
    """One bar: its label, its value, and optionally the parts the value is made of."""

    label: str
    value: float
    parts: tuple[float, ...] = ()
    note: str = ""  # e.g. "winner", shown as text beside the bar


@dataclass
class _Svg:
    width: int
    height: int
    uid: str
    parts: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.parts.append(text)


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def _marker(kind: str, x: float, y: float, colour: str) -> str:
    r = 4.0
    if kind == "circle":
        return f'<circle cx="{_fmt(x)}" cy="{_fmt(y)}" r="{r}" fill="{colour}"/>'
    if kind == "square":
        return (
            f'<rect x="{_fmt(x - r)}" y="{_fmt(y - r)}" width="{2 * r}" height="{2 * r}"'
            f' fill="{colour}"/>'
        )
    if kind in {"triangle", "triangle-down"}:
        d = -1 if kind == "triangle" else 1
        corners = ((x - r, y - d * r), (x + r, y - d * r), (x, y + d * r))
        points = " ".join(f"{_fmt(a)},{_fmt(b)}" for a, b in corners)
        return f'<polygon points="{points}" fill="{colour}"/>'
    if kind == "diamond":
        corners = ((x, y - r), (x + r, y), (x, y + r), (x - r, y))
        points = " ".join(f"{_fmt(a)},{_fmt(b)}" for a, b in corners)
        return f'<polygon points="{points}" fill="{colour}"/>'
    if kind == "cross":
        return (
            f'<path d="M{_fmt(x - r)} {_fmt(y - r)}L{_fmt(x + r)} {_fmt(y + r)}'
            f'M{_fmt(x - r)} {_fmt(y + r)}L{_fmt(x + r)} {_fmt(y - r)}" stroke="{colour}"'
            ' stroke-width="2"/>'
        )
    return (
        f'<rect x="{_fmt(x - 1.5)}" y="{_fmt(y - r)}" width="3" height="{2 * r}" fill="{colour}"/>'
    )


def _nice_top(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above `value` (axis top)."""
    if value <= 0:
        return 1
    magnitude = 1.0
    while magnitude * 10 <= value:
        magnitude *= 10
    while magnitude > value:
        magnitude /= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _figure(svg: _Svg, title: str, description: str, table: str, lang: str | None) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {svg.width}'
        f' {svg.height}" role="img" aria-labelledby="{svg.uid}-title {svg.uid}-desc"'
        # Time runs left to right in every language here, Arabic included, as on a clock
        # face; the page around the chart follows the reader's direction.
        ' direction="ltr" font-size="12" font-family="system-ui, sans-serif">'
        f'<title id="{svg.uid}-title">{escape(title)}</title>'
        f'<desc id="{svg.uid}-desc">{escape(description)}</desc>'
    )
    summary = escape(gettext("The figures as a table", lang))
    # Safe: every text that came from outside went through escape() above.
    return Markup(  # noqa: S704
        f'<figure class="chart-figure" aria-labelledby="{svg.uid}-caption">'
        f"{head}{''.join(svg.parts)}</svg>"
        f'<figcaption id="{svg.uid}-caption">{escape(title)}</figcaption>'
        f"<details><summary>{summary}</summary>{table}</details></figure>"
    )


def summarise_series(
    series: list[Series], others: Callable[[int], str], keep: int = MAX_SERIES
) -> list[Series]:
    """The `keep` largest series (by total, then key), and one series summing the rest,
    labelled `others(how many it sums)`, when there are more than `keep + 1`: past a
    few lines a chart cannot be read, and a reader wants the leaders by name. Nothing
    is lost: the totals of what is returned add up to the totals of what was given."""
    ranked = sorted(series, key=lambda s: (-s.total, s.key))
    if len(ranked) <= keep + 1:
        return ranked
    kept, rest = ranked[:keep], ranked[keep:]
    merged: dict[datetime, int] = {}
    for s in rest:
        for at, n in s.points:
            merged[at] = merged.get(at, 0) + n
    return [*kept, Series(OTHERS_KEY, others(len(rest)), tuple(sorted(merged.items())))]


def others_of(singular: str, plural: str, lang: str | None = None) -> Callable[[int], str]:
    """The label of the summed series: "{n} other nominations" with n in the language's
    digits and plural form (both texts are msgids the caller marked)."""
    return lambda n: ngettext(singular, plural, n, lang).format(n=format_number(n, lang))


def timeline_chart(
    series: list[Series],
    *,
    start: datetime,
    end: datetime,
    title: str,
    description: str,
    value_label: str,
    others: Callable[[int], str] | None = None,
    tz: tzinfo = GENEVA,
    lang: str | None = None,
) -> Markup:
    """Running totals from `start` to `end`: a stepped line per series.

    More than MAX_SERIES + 1 series are cut to the MAX_SERIES largest and one line for
    the rest, labelled by `others` with how many it sums ("12 other nominations")."""
    label = others or others_of("{n} other", "{n} others", lang)
    lines = summarise_series([s for s in series if s.total], label)
    width, height = 760, 300
    left, right, top, bottom = 60, 220, 16, 44
    svg = _Svg(width, height, f"chart{next(_ids)}")
    span = max((end - start).total_seconds(), 1.0)
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = {s.key: s.total for s in lines}
    y_top = _nice_top(max(totals.values(), default=0))

    def x_of(at: datetime) -> float:
        share = min(max((at - start).total_seconds() / span, 0.0), 1.0)
        return left + share * plot_w

    def y_of(value: float) -> float:
        return top + plot_h - (value / y_top) * plot_h

    base = top + plot_h
    svg.add('<g class="grid" stroke="#767676" stroke-width="1">')
    # Round steps: 0-20-40-...-100 for a top of 100 or 50, 0-5-10-15-20 for a top of 20.
    leading = int(f"{y_top:e}"[0])
    intervals = 4 if leading == 2 else 5
    for step in range(intervals + 1):
        value = y_top * step / intervals
        y = y_of(value)
        svg.add(
            f'<line x1="{left}" y1="{_fmt(y)}" x2="{left + plot_w}" y2="{_fmt(y)}"'
            f' stroke="{"#767676" if step == 0 else "#d0d0d0"}"/>'
        )
    svg.add("</g>")
    for step in range(intervals + 1):
        value = y_top * step / intervals
        label = format_number(round(value, 1) if y_top < 5 else int(value), lang)
        svg.add(
            f'<text x="{left - 6}" y="{_fmt(y_of(value) + 4)}" text-anchor="end"'
            f' fill="#1a1a1a">{escape(label)}</text>'
        )
    for step, anchor in ((0, "start"), (1, "middle"), (2, "end")):
        at = start + (end - start) * step / 2
        svg.add(
            f'<text x="{_fmt(x_of(at))}" y="{base + 18}" text-anchor="{anchor}"'
            f' fill="#1a1a1a">{escape(format_tick(at, tz, lang))}</text>'
        )
    svg.add(f'<text x="{left}" y="{height - 6}" fill="#1a1a1a">{escape(value_label)}</text>')
    for index, s in enumerate(lines):
        colour, dash, marker = PALETTE[index], DASHES[index], MARKERS[index]
        running = 0
        path = [f"M{_fmt(x_of(start))} {_fmt(y_of(0))}"]
        for at, n in sorted(s.points):
            x = x_of(at)
            path.append(f"L{_fmt(x)} {_fmt(y_of(running))}")
            running += n
            path.append(f"L{_fmt(x)} {_fmt(y_of(running))}")
        path.append(f"L{_fmt(x_of(end))} {_fmt(y_of(running))}")
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        svg.add(
            f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="2.5"'
            f"{dash_attr}/>"
        )
        svg.add(_marker(marker, x_of(end), y_of(running), colour))
        # The legend: a sample of the line (same dash, same marker), its name, its total.
        ly = top + 8 + index * 22
        lx = left + plot_w + 16
        svg.add(
            f'<line x1="{lx}" y1="{ly}" x2="{lx + 28}" y2="{ly}" stroke="{colour}"'
            f' stroke-width="2.5"{dash_attr}/>'
        )
        svg.add(_marker(marker, lx + 28, ly, colour))
        name = s.label if len(s.label) <= 22 else s.label[:21] + "…"
        svg.add(
            f'<text x="{lx + 38}" y="{ly + 4}" fill="#1a1a1a">{escape(name)}'
            f" ({escape(format_number(running, lang))})</text>"
        )
    if not lines:
        svg.add(
            f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle"'
            f' fill="#1a1a1a">{escape(gettext("Nothing to show yet.", lang))}</text>'
        )
    return _figure(svg, title, description, _timeline_table(lines, title, tz, lang), lang)


def _timeline_table(lines: list[Series], caption: str, tz: tzinfo, lang: str | None) -> str:
    buckets = sorted({at for s in lines for at, n in s.points if n})
    head = "".join(f'<th scope="col">{escape(s.label)}</th>' for s in lines)
    rows = []
    running = {s.key: 0 for s in lines}
    by_series: dict[str, dict[datetime, int]] = {}
    for s in lines:
        sums = by_series.setdefault(s.key, {})
        for at, n in s.points:
            sums[at] = sums.get(at, 0) + n
    for at in buckets:
        cells = []
        for s in lines:
            running[s.key] += by_series[s.key].get(at, 0)
            cells.append(f'<td class="num">{escape(format_number(running[s.key], lang))}</td>')
        when = escape(format_instant(at, tz, lang))
        rows.append(f'<tr><th scope="row">{when}</th>{"".join(cells)}</tr>')
    if not rows:
        rows.append(
            f'<tr><td colspan="{len(lines) + 1}">{escape(gettext("None.", lang))}</td></tr>'
        )
    time_head = escape(gettext("From", lang))
    return (
        f'<table class="chart-data"><caption>{escape(caption)} · '
        f"{escape(gettext('running totals', lang))}</caption>"
        f'<thead><tr><th scope="col">{time_head}</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def ranking_chart(
    entries: list[RankEntry],
    *,
    title: str,
    description: str,
    value_label: str,
    part_labels: tuple[str, ...] = (),
    lang: str | None = None,
    decimals: int = 0,
) -> Markup:
    """Bars in the order given (rank 1 first), each labelled with its rank and value.

    When entries carry `parts` (e.g. the public-vote and expert shares of a merged
    score), each bar is split, the parts told apart by a solid and a hatched fill, and
    `part_labels` names them in a legend and in the table."""
    width = 760
    row_h, top, left, right = 26, 16, 240, 110
    has_parts = bool(part_labels) and any(e.parts for e in entries)
    legend_h = 26 if has_parts else 0
    height = top + legend_h + max(len(entries), 1) * row_h + 30
    svg = _Svg(width, height, f"chart{next(_ids)}")
    svg.add(
        f'<defs><pattern id="{svg.uid}-hatch" width="6" height="6"'
        ' patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        '<rect width="6" height="6" fill="#ffffff"/>'
        '<rect width="3" height="6" fill="#D55E00"/></pattern></defs>'
    )
    top_value = max((e.value for e in entries), default=0) or 1
    plot_w = width - left - right

    def number(value: float) -> str:
        return format_number(round(value, decimals) if decimals else round(value), lang)

    if has_parts:
        x = left
        for index, label in enumerate(part_labels[:2]):
            fill = PART_FILLS[index].format(id=svg.uid)
            svg.add(
                f'<rect x="{x}" y="{top}" width="18" height="14" fill="{fill}"'
                ' stroke="#1a1a1a" stroke-width="1"/>'
            )
            svg.add(f'<text x="{x + 24}" y="{top + 12}" fill="#1a1a1a">{escape(label)}</text>')
            x += 24 + 9 * len(label) + 24
    for index, entry in enumerate(entries):
        y = top + legend_h + index * row_h
        name = entry.label if len(entry.label) <= 30 else entry.label[:29] + "…"
        svg.add(
            f'<text x="{left - 8}" y="{y + 16}" text-anchor="end" fill="#1a1a1a">'
            f"{index + 1}. {escape(name)}</text>"
        )
        x = float(left)
        pieces = entry.parts if has_parts and entry.parts else (entry.value,)
        for p_index, part in enumerate(pieces[:2]):
            w = max(0.0, part) / top_value * plot_w
            fill = PART_FILLS[p_index].format(id=svg.uid) if has_parts else PALETTE[0]
            svg.add(
                f'<rect x="{_fmt(x)}" y="{y + 4}" width="{_fmt(w)}" height="{row_h - 8}"'
                f' fill="{fill}" stroke="#1a1a1a" stroke-width="0.5"/>'
            )
            x += w
        note = f" · {escape(entry.note)}" if entry.note else ""
        svg.add(
            f'<text x="{_fmt(x + 6)}" y="{y + 16}" fill="#1a1a1a">'
            f"{escape(number(entry.value))}{note}</text>"
        )
    base = top + legend_h + max(len(entries), 1) * row_h
    svg.add(f'<text x="{left}" y="{base + 20}" fill="#1a1a1a">{escape(value_label)}</text>')
    return _figure(
        svg,
        title,
        description,
        _ranking_table(entries, title, value_label, part_labels if has_parts else (), number, lang),
        lang,
    )


def _ranking_table(
    entries: list[RankEntry],
    caption: str,
    value_label: str,
    part_labels: tuple[str, ...],
    number: object,
    lang: str | None,
) -> str:
    fmt = number  # a callable: value -> text in the page's language
    head = [gettext("Rank", lang), gettext("Name", lang), value_label, *part_labels[:2]]
    rows = []
    for index, e in enumerate(entries):
        cells = [f'<td class="num">{escape(fmt(e.value))}</td>']  # type: ignore[operator]
        if part_labels:
            for p_index in range(min(2, len(part_labels))):
                part = e.parts[p_index] if p_index < len(e.parts) else 0.0
                cells.append(f'<td class="num">{escape(fmt(part))}</td>')  # type: ignore[operator]
        note = f" ({escape(e.note)})" if e.note else ""
        rows.append(
            f'<tr><td class="num">{index + 1}</td><th scope="row">{escape(e.label)}{note}</th>'
            f"{''.join(cells)}</tr>"
        )
    heads = "".join(f'<th scope="col">{escape(h)}</th>' for h in head)
    return (
        f'<table class="chart-data"><caption>{escape(caption)}</caption>'
        f"<thead><tr>{heads}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
