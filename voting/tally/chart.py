"""A server-rendered SVG chart of each nomination's votes over time (no script needed).

One line per nomination: the running total of votes cast, whatever their verdict, so a
burst shows where it happened even when the fraud checks held it. Colours are the
Okabe-Ito palette (told apart by colour-blind readers) and lines also differ by dash.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from markupsafe import Markup

PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
DASHES = ("", "6 3", "2 3", "8 3 2 3")
WIDTH, HEIGHT = 760, 320
LEFT, RIGHT, TOP, BOTTOM = 56, 200, 16, 40


def _x(instant: datetime, start: datetime, end: datetime) -> float:
    span = (end - start).total_seconds() or 1.0
    share = min(max((instant - start).total_seconds() / span, 0.0), 1.0)
    return LEFT + share * (WIDTH - LEFT - RIGHT)


def _y(value: int, top: int) -> float:
    return HEIGHT - BOTTOM - (value / top if top else 0) * (HEIGHT - TOP - BOTTOM)


def votes_chart(
    series: dict[str, list[tuple[datetime, int, int]]],
    labels: dict[str, str],
    *,
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    title: str,
    description: str,
) -> Markup:
    """`series`: nomination -> [(bucket start, votes cast, votes kept)] in time order."""
    totals = {n: sum(c for _, c, _ in points) for n, points in series.items()}
    top = max(totals.values(), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' role="img" aria-labelledby="chart-title chart-desc">',
        f'<title id="chart-title">{escape(title)}</title>',
        f'<desc id="chart-desc">{escape(description)}</desc>',
    ]
    base = HEIGHT - BOTTOM
    parts.append(
        f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" stroke="#555"/>'
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}" stroke="#555"/>'
    )
    for tick in (0, top // 2, top):
        y = _y(tick, top)
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{tick}</text>'
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#ddd"/>'
        )
    for instant, anchor in ((start, "start"), (start + (end - start) / 2, "middle"), (end, "end")):
        local = instant.astimezone(tz)
        parts.append(
            f'<text x="{_x(instant, start, end):.1f}" y="{HEIGHT - BOTTOM + 16}"'
            f' text-anchor="{anchor}" font-size="11">{escape(f"{local:%d %b %H:%M}")}</text>'
        )
    order = sorted(series, key=lambda n: (-totals[n], n))
    for index, nomination in enumerate(order):
        colour = PALETTE[index % len(PALETTE)]
        dash = DASHES[index % len(DASHES)]
        running = 0
        points = [f"{_x(start, start, end):.1f},{_y(0, top):.1f}"]
        for bucket, cast, _ in series[nomination]:
            x = _x(bucket, start, end)
            points.append(f"{x:.1f},{_y(running, top):.1f}")
            running += cast
            points.append(f"{x:.1f},{_y(running, top):.1f}")
        points.append(f"{_x(end, start, end):.1f},{_y(running, top):.1f}")
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash_attr}'
            f' points="{" ".join(points)}"><title>{escape(labels.get(nomination, nomination))}:'
            f" {running}</title></polyline>"
        )
        legend_y = TOP + 8 + index * 18
        if legend_y < HEIGHT - BOTTOM:
            parts.append(
                f'<line x1="{WIDTH - RIGHT + 12}" y1="{legend_y}" x2="{WIDTH - RIGHT + 36}"'
                f' y2="{legend_y}" stroke="{colour}" stroke-width="3"{dash_attr}/>'
                f'<text x="{WIDTH - RIGHT + 42}" y="{legend_y + 4}" font-size="11">'
                f"{escape(nomination)} ({running})</text>"
            )
    parts.append("</svg>")
    # Every piece of text above went through html.escape; the rest is numbers we made.
    return Markup("".join(parts))  # noqa: S704
