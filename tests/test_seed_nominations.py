"""`voting seed --nominations N`: realistic accepted nominations, fast."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter

from tests.fixtures.editions import load_builtin, load_data
from tests.fixtures.nominations import open_edition
from voting import edition_store
from voting import nominations as noms
from voting.nominations import PublicQuery
from voting.seed import seed_nominations


async def test_seed_creates_n_accepted_nominations_over_every_category(conn, clock):
    edition = await load_builtin(conn, "wsis-2014", clock.now())
    made = await seed_nominations(conn, 90, seed=7, now=clock.now(), progress=False)
    assert made == 90
    eid = await edition_store.edition_id(conn, edition.slug)
    rows = await conn.fetch("SELECT status, category FROM nominations WHERE edition_id=$1", eid)
    assert len(rows) == 90 and {r["status"] for r in rows} == {"accepted"}
    per_category = Counter(r["category"] for r in rows)
    assert set(per_category) == {c.code for c in edition.categories}
    assert set(per_category.values()) == {5}  # 90 over 18 categories, evenly
    assert len(await noms.votable_nominations(conn, eid)) == 90


async def test_seeded_nominations_would_pass_the_submission_rules(conn, clock):
    data = open_edition()
    data["rules"] = {"summary_words_min": 40, "summary_words_max": 60}
    edition = await load_data(conn, data, clock.now())
    await seed_nominations(conn, 60, seed=1, now=clock.now(), progress=False)
    eid = await edition_store.edition_id(conn, edition.slug)
    _, seeded = await noms.public_list(conn, eid, PublicQuery(limit=200))
    today = clock.now().astimezone(edition.tz).date()
    for n in seeded:
        result = noms.validate(
            n.form_values(as_text=False), edition=edition, today=today, complete=True
        )
        assert result.ok, (n.public_id, result.messages())
        assert 40 <= noms.count_words(n.summary) <= 60
    orgs = Counter((noms.normalize_key(n.organization), n.category) for n in seeded)
    assert max(orgs.values()) == 1  # one project per organization per category
    titles = Counter(
        (noms.normalize_key(n.organization), noms.normalize_key(n.title)) for n in seeded
    )
    assert max(titles.values()) == 1
    # Search finds them like any other.
    some = seeded[0]
    total, found = await noms.public_list(conn, eid, PublicQuery(q=some.title))
    assert some.public_id in {n.public_id for n in found} and total >= 1


async def test_seeding_twice_respects_what_is_there(conn, clock):
    data = open_edition()
    data["rules"] = {"nominations_per_organization_per_category": 1}
    await load_data(conn, data, clock.now())
    await seed_nominations(conn, 300, seed=3, now=clock.now(), progress=False)
    await seed_nominations(conn, 300, seed=3, now=clock.now(), progress=False)
    duplicates = await conn.fetchval(
        "SELECT count(*) FROM (SELECT 1 FROM nominations GROUP BY organization_key, category"
        " HAVING count(*) > 1) d"
    )
    assert duplicates == 0
    assert await conn.fetchval("SELECT count(*) FROM nominations") == 600


async def test_the_seed_command_with_a_progress_bar(conn, clock, database_url, redis_url, tmp_path):
    await load_builtin(conn, "demo", clock.now())
    env = {
        **os.environ,
        "VOTING_DATABASE_URL": database_url,
        "VOTING_REDIS_URL": redis_url,
        "VOTING_DATA_DIR": str(tmp_path),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "voting.cli",
        "seed",
        "--nominations",
        "1200",
        "--seed",
        "5",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    assert "created 1200 accepted nominations" in out.decode()
    assert "1200/1200" in err.decode()  # tqdm's bar
    count = await conn.fetchval("SELECT count(*) FROM nominations WHERE status='accepted'")
    assert count == 1200
    audit = await conn.fetchval("SELECT detail FROM audit_log WHERE action='nomination.seed'")
    assert audit == {"count": 1200}


async def test_the_seed_command_needs_an_edition(database_url, redis_url, tmp_path):
    env = {
        **os.environ,
        "VOTING_DATABASE_URL": database_url,
        "VOTING_REDIS_URL": redis_url,
        "VOTING_DATA_DIR": str(tmp_path),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voting.cli", "seed", "--nominations", "5",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2 and "no current edition" in err.decode()
