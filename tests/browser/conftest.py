"""Headless Chromium (Debian's package, driven by Playwright) against real `voting serve`
processes, and the axe-core audit injected into their pages.

Two sites, each a server with a database and a Redis prefix of its own, started once for
the session: one whose edition takes nominations, one whose edition is in its public vote
(with seeded projects, ledger votes spread over the last day, and a fraud flag, so the
committee's charts have something to draw). Screenshots go to artifacts/browser/.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.fixtures import live_server
from tests.fixtures.antifraud import add_vote
from tests.fixtures.editions import edition_data
from voting import accounts, db, edition_store
from voting.contest import parse_edition
from voting.seed import seed_nominations

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = live_server.REPO / "artifacts" / "browser"
AXE = live_server.REPO / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.1 A and AA: what the public pages promise.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

ORGANIZER = "organizer@example.org"
COMMITTEE = "committee@example.org"
NOMINATOR = "nominator@minict.example"


@dataclass
class Site:
    server: live_server.LiveServer
    edition_id: int
    nominations: dict[str, list[str]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url


def _need_chromium() -> None:
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: apt-get install -y chromium"


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    _need_chromium()
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def _site(
    pg_admin_url: str, template_db: str, redis_url: str, tmp: Path, data: dict[str, Any]
) -> AsyncIterator[Site]:
    database_url = await live_server.own_database(pg_admin_url, template_db)
    prefix = f"b{uuid.uuid4().hex[:10]}"
    conn = await db.connect(database_url)
    try:
        now = datetime.now(UTC)
        edition = parse_edition(data, now=now)
        # Saved "before" its calendar began, as an organizer would have loaded it.
        await edition_store.save_edition(
            conn, edition, now=now - timedelta(days=400), actor="test", make_current=True
        )
        edition_id = await conn.fetchval("SELECT id FROM editions WHERE slug=$1", data["slug"])
        for email, role in ((ORGANIZER, "organizer"), (COMMITTEE, "committee")):
            await accounts.grant(conn, email, role)
        nominations: dict[str, list[str]] = {}
        if _voting(data):
            nominations = await _seed_voting(conn, edition_id, data["slug"], now)
    finally:
        await conn.close()
    server = live_server.start(database_url, redis_url, prefix, tmp)
    try:
        yield Site(server, edition_id, nominations)
    finally:
        live_server.stop(server)
        await live_server.drop_prefix(redis_url, prefix)
        await live_server.drop_database(pg_admin_url, database_url)


def _voting(data: dict[str, Any]) -> bool:
    return str(data["phases"]["voting"]["opens_in"]).startswith("-")


async def _seed_voting(
    conn: asyncpg.Connection, edition_id: int, slug: str, now: datetime
) -> dict[str, list[str]]:
    await seed_nominations(conn, 9, edition_slug=slug, seed=11, progress=False)
    rows = await conn.fetch(
        "SELECT public_id, category FROM nominations WHERE edition_id=$1 AND status='accepted'"
        " ORDER BY public_id",
        edition_id,
    )
    by_category: dict[str, list[str]] = {}
    for r in rows:
        by_category.setdefault(r["category"], []).append(r["public_id"])
    # Votes over the last day, heavier on one project, and a burst flagged by a detector.
    rng = random.Random(5)
    for i in range(240):
        category = rng.choice(sorted(by_category))
        nomination = by_category[category][0 if rng.random() < 0.6 else -1]
        at = now - timedelta(minutes=rng.randint(5, 23 * 60))
        await add_vote(
            conn,
            edition_id,
            f"seed{i:05d}",
            category,
            nomination,
            at=at,
            ip=f"198.51.100.{i % 200}",
        )
    await conn.execute(
        "INSERT INTO fraud_flags (edition_id, detector, finding, category, nomination, evidence,"
        " created_at) VALUES ($1, 'burst', 'seeded', 'C1', $2, $3, $4)",
        edition_id,
        by_category["C1"][0],
        {"networks": ["198.51.100.0/24"], "votes": 40},
        now - timedelta(hours=3),
    )
    # A declared campaign waiting for the organizers, and a sign-in turned away.
    owner = await accounts.get_or_create(conn, NOMINATOR)
    await conn.execute(
        "UPDATE nominations SET owner_id=$1 WHERE public_id=$2", owner.id, by_category["C1"][0]
    )
    await conn.execute(
        "INSERT INTO mobilisations (edition_id, nomination, declared_by, domains, networks,"
        " expected_votes, starts_at, ends_at) VALUES ($1, $2, $3, '{minict.example}',"
        " '{196.12.40.0/24}', 300, $4, $5)",
        edition_id,
        by_category["C1"][0],
        owner.id,
        now,
        now + timedelta(days=2),
    )
    await conn.execute(
        "INSERT INTO signin_refusals (edition_id, network, domain, reason)"
        " VALUES ($1, '203.0.113.0/24', 'farm.example', 'too_many_links_network')",
        edition_id,
    )
    return by_category


# The test categories' names in the other five languages, as the built-in editions ship
# theirs (issue 19): the screenshots then show each language's own script.
_CATEGORY_NAMES = {
    "C1": (
        "Gouvernance publique",
        "Gobernanza pública",
        "الحوكمة العامة",
        "公共治理",
        "Государственное управление",
    ),
    "C2": ("Infrastructure", "Infraestructura", "البنية التحتية", "基础设施", "Инфраструктура"),
    "C3": (
        "Accès à l'information",
        "Acceso a la información",
        "النفاذ إلى المعلومات",
        "获取信息",
        "Доступ к информации",
    ),
}


def _in_six_languages(data: dict[str, Any], phase_zh: str) -> None:
    data["translations"] = {"zh": {"name": f"信息社会世界峰会奖浏览器测试（{phase_zh}）"}}
    for category in data["categories"]:
        names = _CATEGORY_NAMES[category["code"]]
        category["translations"] = {
            lang: {"name": name}
            for lang, name in zip(("fr", "es", "ar", "zh", "ru"), names, strict=True)
        }


@pytest.fixture(scope="session")
async def voting_site(
    pg_admin_url: str, template_db: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Site]:
    data = edition_data(
        nominations=("-40d", "-20d"),
        review=("-20d", "-2d"),
        voting=("-1d", "+14d"),
        expert_review=("+14d", "+30d"),
        results=("+30d", "+60d"),
    )
    data["slug"] = "browser-vote"
    data["name"] = "WSIS Prizes browser test (voting)"
    _in_six_languages(data, "投票")
    async for site in _site(
        pg_admin_url, template_db, redis_url, tmp_path_factory.mktemp("vs"), data
    ):
        yield site


@pytest.fixture(scope="session")
async def nominating_site(
    pg_admin_url: str, template_db: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Site]:
    data = edition_data(
        nominations=("-1h", "+20d"),
        review=("+20d", "+30d"),
        voting=("+30d", "+44d"),
        expert_review=("+44d", "+60d"),
        results=("+60d", "+90d"),
    )
    data["slug"] = "browser-nominate"
    data["name"] = "WSIS Prizes browser test (nominations)"
    _in_six_languages(data, "提名")
    async for site in _site(
        pg_admin_url, template_db, redis_url, tmp_path_factory.mktemp("ns"), data
    ):
        yield site


class Watched:
    """A page whose console errors (a CSP refusal, a script error) fail the test."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def assert_clean(self) -> None:
        assert not self.errors, f"browser console errors: {self.errors}"


async def new_page(
    browser: Browser, *, locale: str = "en-GB", timezone: str = "America/New_York"
) -> Watched:
    """A fresh visitor: its own cookies, a browser language and a time zone of its own
    (not Geneva's, so the visitor's local time is shown beside Geneva time)."""
    context = await browser.new_context(
        locale=locale, timezone_id=timezone, viewport={"width": 1100, "height": 900}
    )
    return Watched(await context.new_page())


async def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, "a screenshot of a rendered page is not that small"
    return path


async def audit(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it stands (CSP left on: the
    script is evaluated through the DevTools protocol, not injected as a tag)."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(AXE.read_text(encoding="utf-8"))
    result = await page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})"
        ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + n.failureSummary)})))",
        AXE_TAGS,
    )
    return list(result)


def describe(violations: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']}\n  " + "\n  ".join(v["nodes"]) for v in violations
    )


async def mail_link(page: Page, site: Site, address: str, path: str) -> str:
    """The newest link to `path` mailed to `address`, read off the development mailbox
    page as a person would (the engine sends no real mail without an SMTP URL)."""
    await page.goto(f"{site.url}/dev/mail")
    for article in await page.locator("article.mail").all():
        text = await article.inner_text()
        if address in text:
            link = article.locator(f"a[href*='{path}']").first
            href = await link.get_attribute("href")
            assert href
            return href
    raise AssertionError(f"no mail with a {path} link for {address}")


# A staff account's session cookies per site, after its first sign-in: a link costs one of
# the 3 a mailbox may have an hour, and the suite signs the same organizer and committee
# member in more often than that. Later sign-ins reuse the session, as a browser would.
_STAFF_COOKIES: dict[tuple[str, str], list[Any]] = {}


async def sign_in_staff(page: Page, site: Site, email: str) -> None:
    known = _STAFF_COOKIES.get((site.url, email))
    if known is not None:
        await page.context.add_cookies(known)
        await page.goto(f"{site.url}/")
        return
    await _sign_in_by_link(page, site, email)
    _STAFF_COOKIES[(site.url, email)] = [
        cookie for cookie in await page.context.cookies() if cookie["name"] != "lang"
    ]


async def _sign_in_by_link(page: Page, site: Site, email: str) -> None:
    await page.goto(f"{site.url}/signin")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_role("button", name="Send me a sign-in link").click()
    await page.get_by_role("heading", name="Check your mail").wait_for()
    await page.goto(await mail_link(page, site, email, "/signin/confirm"))
    await page.get_by_role("button", name="Yes, sign me in").click()
    await page.wait_for_load_state()
