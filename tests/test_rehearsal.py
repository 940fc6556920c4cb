"""Rehearsal editions: a clone open to votes now, minted voters accepted only there, and a
drop that leaves nothing of it while the real edition's votes stay untouched."""

import asyncio

import pytest

from tests.fixtures.services import TEST_SECRET
from tests.fixtures.voting import flush, open_voting, redis_now
from voting import cli, edition_store, rehearsal
from voting.ballot import Ballot
from voting.security import REHEARSAL_VOTER, VOTER_LINK


async def _rehearse(app, conn, **kw):
    svc = app.state.services
    real, real_id, noms = await open_voting(app, conn)
    made = await rehearsal.create(
        conn, svc.r, svc.settings.redis_prefix, now=await redis_now(svc.r), **kw
    )
    app.state.voting.catalog.invalidate()
    return real, real_id, noms, made


async def _session(client, app, slug, n=0):
    [token] = rehearsal.voter_tokens(app.state.tokens, TEST_SECRET, slug, 1, start=n)
    r = await client.post("/api/rehearsal/session", json={"token": token})
    assert r.status_code == 200, r.text
    assert r.json()["voter"] is True and r.json()["edition"] == slug
    return r.json()["csrf_token"]


async def test_create_clones_the_accepted_nominations_into_an_open_rehearsal(app, conn):
    real, real_id, noms, made = await _rehearse(app, conn, slug="rehearsal-one", hours=2)
    copy = await edition_store.get_edition(conn, "rehearsal-one")
    assert copy.is_rehearsal and copy.categories == real.categories
    assert copy.phase("voting").contains(await redis_now(app.state.services.r))
    # Never the current edition: the public site goes on showing the real one.
    assert (await edition_store.current_edition(conn)).slug == real.slug
    rows = await conn.fetch(
        "SELECT n.public_id, n.category, n.title FROM nominations n JOIN editions e"
        " ON e.id = n.edition_id WHERE e.slug = $1 AND n.status = 'accepted'",
        "rehearsal-one",
    )
    originals = await conn.fetch(
        "SELECT public_id, category, title FROM nominations WHERE edition_id=$1", real_id
    )
    assert made.nominations == len(rows) == len(originals) == sum(map(len, noms.values()))
    assert sorted((r["category"], r["title"]) for r in rows) == sorted(
        (r["category"], r["title"]) for r in originals
    )
    # New public ids: a rehearsal vote can never name a real nomination.
    assert not {r["public_id"] for r in rows} & {r["public_id"] for r in originals}
    # Its window is in Redis, where the cast script reads it.
    window = await Ballot(app.state.services.r, app.state.services.settings.redis_prefix).window(
        "rehearsal-one"
    )
    assert window == (made.opens_at, made.closes_at)
    actions = await conn.fetch("SELECT action FROM audit_log WHERE edition='rehearsal-one'")
    assert "rehearsal.create" in {a["action"] for a in actions}


async def test_create_refuses_what_it_cannot_rehearse(app, conn):
    _, _, _, made = await _rehearse(app, conn, slug="rehearsal-two")
    svc = app.state.services
    now = await redis_now(svc.r)
    with pytest.raises(rehearsal.RehearsalError, match="exists already"):
        await rehearsal.create(conn, svc.r, "p", now=now, slug="rehearsal-two")
    with pytest.raises(rehearsal.RehearsalError, match="itself a rehearsal"):
        await rehearsal.create(conn, svc.r, "p", now=now, source_slug=made.slug)
    with pytest.raises(rehearsal.RehearsalError, match="no edition"):
        await rehearsal.create(conn, svc.r, "p", now=now, source_slug="nope")
    with pytest.raises(rehearsal.RehearsalError, match="7 days"):
        await rehearsal.create(conn, svc.r, "p", now=now, hours=0)


async def test_minted_voters_vote_in_the_rehearsal_and_never_in_the_real_edition(app, client, conn):
    real, real_id, noms, made = await _rehearse(app, conn, slug="rehearsal-three")
    svc = app.state.services
    ballot = Ballot(svc.r, svc.settings.redis_prefix)
    rows = await conn.fetch(
        "SELECT n.public_id, n.category FROM nominations n JOIN editions e ON e.id=n.edition_id"
        " WHERE e.slug='rehearsal-three' ORDER BY n.category, n.public_id"
    )
    first = {}
    for r in rows:
        first.setdefault(r["category"], r["public_id"])
    csrf = await _session(client, app, made.slug)
    h = {"X-CSRF-Token": csrf}
    r = await client.post("/api/votes", json={"nomination": first["C1"]}, headers=h)
    assert r.status_code == 202, r.text
    assert r.json()["edition"] == "rehearsal-three"
    again = await client.post("/api/votes", json={"nomination": first["C1"]}, headers=h)
    assert again.status_code == 409
    # A real nomination is not open to a rehearsal voter.
    r = await client.post("/api/votes", json={"nomination": noms["C2"][0]}, headers=h)
    assert r.status_code == 404
    assert await ballot.live_counts(real.slug) == {}
    assert await ballot.live_counts("rehearsal-three") == {first["C1"]: 1}
    await flush(app)
    assert await conn.fetchval("SELECT count(*) FROM votes WHERE edition_id=$1", real_id) == 0
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM votes v JOIN editions e ON e.id=v.edition_id"
            " WHERE e.slug='rehearsal-three'"
        )
        == 1
    )
    # The minted voter is recorded as verified, in the rehearsal only.
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM voters v JOIN editions e ON e.id=v.edition_id"
            " WHERE e.slug='rehearsal-three' AND v.domain=$1",
            rehearsal.REHEARSAL_DOMAIN,
        )
        == 1
    )


async def test_a_rehearsal_survives_a_redis_wipe_like_the_real_edition(app, client, conn):
    from voting.ledger import Flusher, repair

    _, _, _, made = await _rehearse(app, conn, slug="rehearsal-wiped")
    svc = app.state.services
    prefix = svc.settings.redis_prefix
    ballot = Ballot(svc.r, prefix)
    keys = ballot.keys(made.slug)
    [nom] = await conn.fetch(
        "SELECT n.public_id FROM nominations n JOIN editions e ON e.id=n.edition_id"
        " WHERE e.slug=$1 AND n.category='C1' ORDER BY n.public_id LIMIT 1",
        made.slug,
    )
    csrf = await _session(client, app, made.slug)
    h = {"X-CSRF-Token": csrf}
    r = await client.post("/api/votes", json={"nomination": nom["public_id"]}, headers=h)
    assert r.status_code == 202, r.text
    long_lived = Flusher(svc.r, svc.db, prefix, consumer="long-lived", claim_idle_ms=0)
    assert (await long_lived.flush_once()).inserted == 1
    # Redis loses everything of this engine (this test's prefix only).
    await svc.r.delete(*[k async for k in svc.r.scan_iter(match=f"{prefix}:*")])
    # Repair writes the rehearsal's window back and puts it on the flushers' list.
    assert await repair(svc.r, conn, prefix, made.slug) == 1
    for shard in range(keys.shards):
        assert await svc.r.hget(keys.window(shard), "closes")
    assert made.slug in await long_lived.editions()
    again = await client.post("/api/votes", json={"nomination": nom["public_id"]}, headers=h)
    assert again.status_code == 409  # the ballot came back
    csrf = await _session(client, app, made.slug, n=1)
    r = await client.post(
        "/api/votes", json={"nomination": nom["public_id"]}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 202, r.text
    # The flusher that made its groups before the wipe drains the new vote.
    assert (await long_lived.flush_once()).inserted == 1
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM votes v JOIN editions e ON e.id=v.edition_id WHERE e.slug=$1",
            made.slug,
        )
        == 2
    )


async def test_tokens_are_refused_for_a_real_edition_and_when_forged(app, client, conn):
    real, _, _, _ = await _rehearse(app, conn, slug="rehearsal-four")
    tokens = app.state.tokens
    # Signed for the rehearsal purpose but naming the real edition: never a session.
    forged = tokens.dumps(REHEARSAL_VOTER, {"v": "a" * 32, "d": "x.invalid", "e": real.slug})
    r = await client.post("/api/rehearsal/session", json={"token": forged})
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_a_rehearsal"
    # A voter sign-in link is signed for another purpose: it does not pass for a token.
    link = tokens.dumps_link(VOTER_LINK, {"v": "a" * 32, "d": "x.invalid", "e": "rehearsal-four"})
    r = await client.post("/api/rehearsal/session", json={"token": link})
    assert r.status_code == 403 and r.json()["error"]["code"] == "bad_token"
    r = await client.post("/api/rehearsal/session", json={"token": link[:-3] + "abc"})
    assert r.status_code == 403
    r = await client.post("/api/rehearsal/session", json={})
    assert r.status_code == 422 and "token" in r.json()["error"]["fields"]
    r = await client.post("/api/rehearsal/session", content=b"nope")
    assert r.status_code == 400
    gone = tokens.dumps(REHEARSAL_VOTER, {"v": "a" * 32, "d": "x.invalid", "e": "no-such"})
    r = await client.post("/api/rehearsal/session", json={"token": gone})
    assert r.status_code == 404
    # No session came out of any of these.
    assert (await client.get("/api/session")).json()["voter"] is False
    # Minting for the real edition is refused too.
    with pytest.raises(rehearsal.RehearsalError, match="real edition"):
        await rehearsal.mint_voters(conn, tokens, TEST_SECRET, real.slug, 5)


async def test_a_session_for_a_real_edition_that_is_not_current_cannot_vote(app, client, conn):
    """Only rehearsals are voted in beside the current edition."""
    await _rehearse(app, conn, slug="rehearsal-five")
    other = await rehearsal.create(
        conn,
        app.state.services.r,
        app.state.services.settings.redis_prefix,
        now=await redis_now(app.state.services.r),
        slug="rehearsal-six",
    )
    csrf = await _session(client, app, other.slug)
    await conn.execute("UPDATE editions SET is_rehearsal=false WHERE slug='rehearsal-six'")
    app.state.voting.catalog.invalidate()
    nom = await conn.fetchval(
        "SELECT n.public_id FROM nominations n JOIN editions e ON e.id=n.edition_id"
        " WHERE e.slug='rehearsal-six' LIMIT 1"
    )
    r = await client.post("/api/votes", json={"nomination": nom}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 401 and r.json()["error"]["code"] == "not_signed_in"


async def test_drop_removes_the_rehearsal_its_votes_and_keys_and_nothing_else(app, client, conn):
    real, _, _, made = await _rehearse(app, conn, slug="rehearsal-seven")
    svc = app.state.services
    prefix = svc.settings.redis_prefix
    nom = await conn.fetchval(
        "SELECT n.public_id FROM nominations n JOIN editions e ON e.id=n.edition_id"
        " WHERE e.slug='rehearsal-seven' AND n.category='C1' LIMIT 1"
    )
    csrf = await _session(client, app, made.slug)
    r = await client.post("/api/votes", json={"nomination": nom}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 202
    await flush(app)
    real_keys = {k async for k in svc.r.scan_iter(match=f"{prefix}:{{{real.slug}.*")}
    with pytest.raises(rehearsal.RehearsalError, match="real edition"):
        await rehearsal.drop(conn, svc.r, prefix, real.slug)
    gone = await rehearsal.drop(conn, svc.r, prefix, made.slug)
    assert gone["votes"] == 1 and gone["redis_keys"] > 0
    assert await edition_store.get_edition(conn, made.slug) is None
    assert not [k async for k in svc.r.scan_iter(match=f"{prefix}:{{{made.slug}.*")]
    assert made.slug.encode() not in await svc.r.smembers(f"{prefix}:editions")
    # The real edition's keys and row are untouched; its public ids were never reused.
    assert {k async for k in svc.r.scan_iter(match=f"{prefix}:{{{real.slug}.*")} == real_keys
    assert await edition_store.get_edition(conn, real.slug) is not None
    assert await conn.fetchval("SELECT count(*) FROM issued_public_ids WHERE public_id=$1", nom)
    actions = {
        r["action"]
        for r in await conn.fetch("SELECT action FROM audit_log WHERE edition=$1", made.slug)
    }
    assert {"rehearsal.create", "rehearsal.drop"} <= actions


def test_the_rehearsal_commands(
    database_url, redis_url, redis_prefix, tmp_path, monkeypatch, capsys
):
    """create, list, mint-voters, drop: through `voting`, as an organizer runs them."""
    from tests.fixtures.editions import edition_data
    from voting import db
    from voting.contest import parse_edition
    from voting.seed import seed_nominations

    async def real_edition() -> None:
        conn = await db.connect(database_url)
        try:
            from datetime import UTC, datetime

            now = datetime.now(UTC)
            edition = parse_edition(edition_data(), now=now)
            await edition_store.save_edition(
                conn, edition, now=now, actor="test", make_current=True
            )
            await seed_nominations(conn, 6, edition_slug=edition.slug, progress=False)
        finally:
            await conn.close()

    asyncio.run(real_edition())
    for name, value in {
        "VOTING_DATABASE_URL": database_url,
        "VOTING_REDIS_URL": redis_url,
        "VOTING_REDIS_PREFIX": redis_prefix,
        "VOTING_SECRET_KEY": TEST_SECRET,
        "VOTING_DATA_DIR": str(tmp_path),
    }.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["rehearsal", "create", "--slug", "rehearsal-cli", "--hours", "1"]) == 0
    assert "6 nominations" in capsys.readouterr().out
    assert cli.main(["rehearsal", "list"]) == 0
    assert "rehearsal-cli" in capsys.readouterr().out
    out = tmp_path / "voters.txt"
    assert (
        cli.main(["rehearsal", "mint-voters", "rehearsal-cli", "--count", "3", "--out", str(out)])
        == 0
    )
    assert len(set(out.read_text().split())) == 3
    assert cli.main(["rehearsal", "drop", "rehearsal-cli"]) == 0
    assert "dropped rehearsal 'rehearsal-cli'" in capsys.readouterr().out
    assert cli.main(["rehearsal", "drop", "rehearsal-cli"]) == 2
    assert "no edition" in capsys.readouterr().err
