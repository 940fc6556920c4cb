"""Sessions end when they should: a staff cookie stops working on sign-out, on a change of
the account's roles and on "sign out everywhere" from another device; a voter's sign-in
starts a fresh session (session fixation)."""

from __future__ import annotations

import asyncio

import pytest
from httpx import ASGITransport, AsyncClient

from tests.fixtures.editions import edition_data, load_data
from tests.fixtures.flows import csrf_from
from tests.fixtures.nominations import sign_in_quick
from tests.fixtures.security import confirm_voter
from tests.fixtures.voting import open_voting
from voting import accounts

JSON = {"accept": "application/json"}


@pytest.fixture
async def edition(conn, clock):
    """The pages of a signed-in person need an edition."""
    return await load_data(conn, edition_data(), clock.now())


def browser(app) -> AsyncClient:
    return AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver")


async def copied(app, original: AsyncClient) -> AsyncClient:
    """Another browser holding a copy of the original's session cookie."""
    thief = browser(app)
    thief.cookies.set("wsis_session", original.cookies["wsis_session"])
    return thief


async def signed_in(http: AsyncClient, path: str = "/dashboard") -> bool:
    r = await http.get(path, headers=JSON)
    assert r.status_code in (200, 303, 401), r.status_code
    return r.status_code == 200


async def test_a_copied_cookie_is_refused_after_sign_out(app, edition):
    async with browser(app) as me:
        await sign_in_quick(me, app, "copied@example.org")
        async with await copied(app, me) as thief:
            assert await signed_in(thief)
            page = await me.get("/dashboard")
            r = await me.post("/signout", data={"csrf_token": csrf_from(page.text)})
            assert r.status_code == 303
            assert not await signed_in(me)
            assert not await signed_in(thief)
            # Its cookie no longer names an account at all.
            assert not await signed_in(thief)


async def test_a_session_ends_when_the_accounts_roles_change(app, conn, edition):
    await accounts.grant(conn, "boss@example.org", "organizer")
    async with browser(app) as me:
        await sign_in_quick(me, app, "boss@example.org")
        assert await signed_in(me, "/organizer")
        # Granting a role the account already has changes nothing.
        await accounts.grant(conn, "boss@example.org", "organizer")
        assert await signed_in(me, "/organizer")
        await accounts.grant(conn, "boss@example.org", "expert")
        assert not await signed_in(me)
        await sign_in_quick(me, app, "boss@example.org")
        assert await signed_in(me, "/experts")
        assert (await accounts.revoke(conn, "boss@example.org", "organizer")) is not None
        assert not await signed_in(me)
        assert await accounts.revoke(conn, "nobody@example.org", "organizer") is None


async def test_sign_out_everywhere_ends_the_other_devices_sessions(app, edition):
    async with browser(app) as laptop, browser(app) as phone:
        await sign_in_quick(laptop, app, "two.devices@example.org")
        await sign_in_quick(phone, app, "two.devices@example.org")
        async with await copied(app, phone) as thief:
            assert await signed_in(laptop) and await signed_in(phone) and await signed_in(thief)
            page = await laptop.get("/dashboard")
            assert 'action="/signout/everywhere"' in page.text
            r = await laptop.post("/signout/everywhere", data={"csrf_token": csrf_from(page.text)})
            assert r.status_code == 303
            for http in (laptop, phone, thief):
                assert not await signed_in(http)
        # A new sign-in works as before.
        await sign_in_quick(phone, app, "two.devices@example.org")
        assert await signed_in(phone)


async def test_sign_out_everywhere_needs_the_forms_token_and_a_sign_in(app, edition):
    async with browser(app) as me:
        await sign_in_quick(me, app, "csrf.everywhere@example.org")
        r = await me.post("/signout/everywhere", data={"csrf_token": "forged"})
        assert r.status_code == 403
        assert await signed_in(me)
    async with browser(app) as stranger:
        page = await stranger.get("/signin")
        r = await stranger.post(
            "/signout/everywhere", data={"csrf_token": csrf_from(page.text)}, headers=JSON
        )
        assert r.status_code == 401


async def test_a_voters_sign_in_starts_a_fresh_session(app, conn):
    edition, _, noms = await open_voting(app, conn)
    async with browser(app) as voter:
        before = (await voter.get("/api/session")).json()
        assert before["voter"] is False
        await voter.get("/vote")  # the shuffle key a visitor gets
        await confirm_voter(voter, app, edition.slug, "fresh.session@example.org")
        after = (await voter.get("/api/session")).json()
        assert after["voter"] is True
        assert after["csrf_token"] != before["csrf_token"]
        ballot = (await voter.get("/api/ballot/C1")).json()
        # The token from before the sign-in is worth nothing now.
        r = await voter.post(
            "/api/votes",
            json={"nomination": noms["C1"][0], "form_token": ballot["form_token"]},
            headers={"x-csrf-token": before["csrf_token"]},
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "csrf"


def test_the_users_command_takes_a_role_away(database_url, redis_url, tmp_path, monkeypatch):
    from tests.fixtures.services import TEST_SECRET
    from voting import cli, db

    async def account(grant: bool) -> tuple[list[str], int]:
        conn = await db.connect(database_url)
        try:
            if grant:
                await accounts.grant(conn, "leaving@example.org", "committee")
            row = await conn.fetchrow(
                "SELECT roles, session_generation FROM users WHERE email=$1",
                "leaving@example.org",
            )
            return list(row["roles"]), int(row["session_generation"])
        finally:
            await conn.close()

    roles, before = asyncio.run(account(grant=True))
    assert roles == ["committee"]
    for name, value in {
        "VOTING_DATABASE_URL": database_url,
        "VOTING_REDIS_URL": redis_url,
        "VOTING_SECRET_KEY": TEST_SECRET,
        "VOTING_DATA_DIR": str(tmp_path),
    }.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["users", "remove", "--role", "committee", "leaving@example.org"]) == 0
    assert asyncio.run(account(grant=False)) == ([], before + 1)
    assert cli.main(["users", "remove", "--role", "committee", "nobody@example.org"]) == 1
