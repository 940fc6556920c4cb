"""The official tally, the ledger fingerprint and the expert panel, against PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from tests.fixtures.results import add_votes, assign, expert, results_edition, score, spread
from voting.tally import experts as panel
from voting.tally import official_tally
from voting.tally.merkle import counted_leaves
from voting.tally.results import compute, fingerprint
from voting.tally.verify import leaf_hash, merkle_root, receipt_digest


async def test_official_tally_by_verdict(conn: asyncpg.Connection) -> None:
    _, edition_id, noms = await results_edition(conn, "expert_review")
    a, b = noms["C1"][:2]
    await add_votes(
        conn,
        edition_id,
        [
            ("v1", "C1", a, "counted"),
            ("v2", "C1", a, "counted"),
            ("v3", "C1", a, "released"),
            ("v4", "C1", a, "quarantined"),
            ("v5", "C1", a, "voided"),
            ("v6", "C1", b, "quarantined"),
        ],
    )
    tally = await official_tally(conn, edition_id)
    assert tally[a] == {
        "category": "C1",
        "counted": 2,
        "released": 1,
        "quarantined": 1,
        "voided": 1,
        "official": 3,
    }
    assert tally[b]["official"] == 0 and tally[b]["quarantined"] == 1
    assert noms["C1"][2] not in tally  # no vote at all


async def test_official_tally_under_the_completeness_rule(conn: asyncpg.Connection) -> None:
    _, edition_id, noms = await results_edition(
        conn, "expert_review", rules={"completeness_rule": True}
    )
    c1, c2, c3 = noms["C1"][0], noms["C2"][0], noms["C3"][0]
    await add_votes(
        conn,
        edition_id,
        [
            # Complete, one vote quarantined: the quarantined one still completes the
            # ballot, it just does not count itself.
            ("full", "C1", c1, "counted"),
            ("full", "C2", c2, "counted"),
            ("full", "C3", c3, "quarantined"),
            # Two categories of three: none of these count.
            ("partial", "C1", c1, "counted"),
            ("partial", "C2", c2, "counted"),
        ],
    )
    tally = await official_tally(conn, edition_id)
    assert {n: tally[n]["official"] for n in (c1, c2, c3)} == {c1: 1, c2: 1, c3: 0}
    assert tally[c1]["counted"] == 2
    leaves = await counted_leaves(conn, edition_id)
    assert sorted(leaf.nomination for leaf in leaves) == sorted([c1, c2])


async def test_the_leaves_are_the_counted_receipts_hashed_as_the_script_does(
    conn: asyncpg.Connection,
) -> None:
    _, edition_id, noms = await results_edition(conn, "expert_review")
    receipts = await add_votes(conn, edition_id, spread("C1", {noms["C1"][0]: 3}))
    leaves = await counted_leaves(conn, edition_id)
    expected = [
        leaf_hash(receipt_digest(r), "C1", noms["C1"][0]) for r in sorted(receipts.values())
    ]
    assert sorted(leaf.hash for leaf in leaves) == sorted(expected)
    assert (await fingerprint(conn, edition_id)).root == merkle_root(expected).hex()


async def root(conn: asyncpg.Connection, edition_id: int) -> str:
    return (await fingerprint(conn, edition_id)).root


async def test_the_fingerprint_changes_with_any_counted_vote_and_only_then(
    conn: asyncpg.Connection,
) -> None:
    _, edition_id, noms = await results_edition(conn, "expert_review")
    a, b = noms["C1"][:2]
    await add_votes(
        conn,
        edition_id,
        [*spread("C1", {a: 3, b: 2}), ("q1", "C1", a, "quarantined"), ("q2", "C2", a, "voided")],
    )
    start = await root(conn, edition_id)

    async def vote(voter: str, **change: object) -> None:
        # Beyond its verdict a vote is immutable (0011): this is a ledger tampered with by
        # an owner who switched the trigger off, which the fingerprint must show.
        async with conn.transaction():
            await conn.execute("ALTER TABLE votes DISABLE TRIGGER votes_immutable")
            for column, value in change.items():
                await conn.execute(
                    f"UPDATE votes SET {column}=$3 WHERE edition_id=$1 AND voter_id=$2",
                    edition_id,
                    voter,
                    value,
                )
            await conn.execute("ALTER TABLE votes ENABLE TRIGGER votes_immutable")

    # Not counted before or after, or not part of a leaf: the root stays.
    await vote("q1", verdict="voided")
    await vote(f"v-C1-{a}-0", cast_at=datetime(2020, 1, 1, tzinfo=UTC), ip="203.0.113.9")
    await vote(f"v-C1-{a}-1", verdict="released")  # released counts like counted
    assert await root(conn, edition_id) == start
    # A counted vote that goes: a new root; back again: the old root.
    await vote(f"v-C1-{a}-2", verdict="quarantined")
    held = await root(conn, edition_id)
    assert held != start
    await vote(f"v-C1-{a}-2", verdict="counted")
    assert await root(conn, edition_id) == start
    # Any counted vote that changes, or comes: a new root.
    seen = {start, held}
    for change in ({"nomination": b}, {"receipt": "ZZZZ-ZZZZ-ZZZZ-ZZZZ"}, {"category": "C2"}):
        await vote(f"v-C1-{a}-2", **change)
        now = await root(conn, edition_id)
        assert now not in seen
        seen.add(now)
    await add_votes(conn, edition_id, [("late", "C2", noms["C2"][0], "counted")])
    assert await root(conn, edition_id) not in seen


async def test_the_fingerprint_does_not_depend_on_arrival_order(
    conn: asyncpg.Connection,
) -> None:
    _, first, noms = await results_edition(conn, "expert_review", slug="order-a")
    _, second, _ = await results_edition(conn, "expert_review", slug="order-b", nominations=0)
    votes = [
        (f"voter{i}", "C1", noms["C1"][i % 3], "counted", f"R{i:03d}-AAAA-BBBB-CCCC")
        for i in range(12)
    ]
    for edition_id, ordered in ((first, votes), (second, list(reversed(votes)))):
        for i, (v, c, n, verdict, receipt) in enumerate(ordered):
            await conn.execute(
                "INSERT INTO votes (edition_id, voter_id, category, nomination, receipt, cast_at,"
                " stream_id, verdict) VALUES ($1, $2, $3, $4, $5, now(), $6, $7)",
                edition_id,
                v,
                c,
                n,
                receipt,
                f"{i}-0",
                verdict,
            )
    assert await root(conn, first) == await root(conn, second)


async def test_scores_are_frozen_once_the_expert_review_closes(conn: asyncpg.Connection) -> None:
    edition, edition_id, noms = await results_edition(conn, "results")
    await add_votes(conn, edition_id, spread("C1", {noms["C1"][0]: 2}))
    uid = await expert(conn, "late@example.org")
    await assign(conn, edition_id, uid, "C1")
    # The database refuses whatever client writes ...
    with pytest.raises(asyncpg.CheckViolationError, match="frozen"):
        await score(conn, edition_id, uid, noms["C1"][0], 5, 5)
    # ... and the application says why, in words.
    with pytest.raises(panel.ExpertError) as refused:
        await panel.save_review(
            conn,
            edition,
            edition_id,
            user_id=uid,
            email="late@example.org",
            nomination=noms["C1"][0],
            scores={"impact": 5, "innovation": 5},
            comment="",
            shortlisted=[noms["C1"][0]],
            now=datetime.now(UTC),
        )
    assert refused.value.code == "review_closed" and "closed on" in refused.value.message


async def test_an_expert_scores_only_the_shortlist_of_their_categories(
    conn: asyncpg.Connection,
) -> None:
    edition, edition_id, noms = await results_edition(conn, "expert_review")
    short, other = noms["C1"][0], noms["C2"][0]
    uid = await expert(conn, "judge@example.org")
    await assign(conn, edition_id, uid, "C1")
    now = datetime.now(UTC)

    async def save(nomination: str, **scores: object) -> dict[str, int]:
        return await panel.save_review(
            conn,
            edition,
            edition_id,
            user_id=uid,
            email="judge@example.org",
            nomination=nomination,
            scores=scores,
            comment="Solid work.",
            shortlisted=[short, other],
            now=now,
        )

    assert await save(short, impact="8", innovation=6) == {"impact": 8, "innovation": 6}
    assert await save(short, impact=9, innovation=6) == {"impact": 9, "innovation": 6}
    for nomination, scores, code in (
        (other, {"impact": 5, "innovation": 5}, "not_yours"),
        (short, {"impact": 11, "innovation": 5}, "invalid_scores"),
        (short, {"impact": 5}, "invalid_scores"),
        (short, {"impact": "five", "innovation": 5}, "invalid_scores"),
    ):
        with pytest.raises(panel.ExpertError) as refused:
            await save(nomination, **scores)
        assert refused.value.code == code
    with pytest.raises(panel.ExpertError) as refused:
        await panel.save_review(
            conn,
            edition,
            edition_id,
            user_id=uid,
            email="judge@example.org",
            nomination=noms["C1"][1],
            scores={"impact": 5, "innovation": 5},
            comment="",
            shortlisted=[short],
            now=now,
        )
    assert refused.value.code == "not_shortlisted"

    await panel.declare_conflict(
        conn,
        edition,
        edition_id,
        user_id=uid,
        email="judge@example.org",
        nomination=short,
        reason="I advised this project in 2012.",
        shortlisted=[short],
        now=now,
    )
    with pytest.raises(panel.ExpertError) as refused:
        await save(short, impact=1, innovation=1)
    assert refused.value.code == "recused"
    actions = await conn.fetch(
        "SELECT action, subject FROM audit_log WHERE action LIKE 'expert.%' ORDER BY id"
    )
    assert [(a["action"], a["subject"]) for a in actions] == [
        ("expert.score", short),
        ("expert.score", short),
        ("expert.conflict", short),
    ]


async def test_compute_merges_the_ledger_and_the_panel(conn: asyncpg.Connection) -> None:
    edition, edition_id, noms = await results_edition(conn, "expert_review")
    a, b, c = noms["C1"]
    await add_votes(conn, edition_id, spread("C1", {a: 4, b: 3, c: 1}))
    await add_votes(conn, edition_id, [("q", "C1", c, "quarantined"), ("q2", "C1", c, "voided")])
    e1, e2 = await expert(conn, "e1@example.org"), await expert(conn, "e2@example.org")
    await assign(conn, edition_id, e1, "C1")
    await assign(conn, edition_id, e2, "C1")
    await score(conn, edition_id, e1, a, 5, 5)
    await score(conn, edition_id, e1, b, 9, 5)  # (27 + 5) / 4 = 8
    await score(conn, edition_id, e2, a, 6, 6)
    await score(conn, edition_id, e2, b, 7, 7, comment="Replicable.")
    results = await compute(conn, edition, edition_id)
    c1 = next(x for x in results.to_dict()["categories"] if x["code"] == "C1")
    assert c1["shortlist"] == [a, b] and c1["winners"] == [b]
    assert [(e["nomination"], e["rank"], e["expert_figure"]) for e in c1["entries"][:2]] == [
        (b, 1, "7.500000"),
        (a, 2, "5.500000"),
    ]
    assert c1["entries"][0]["experts"]["e2@example.org"] == {
        "weighted": "7.000000",
        "normalized": None,
        "comment": "Replicable.",
    }
    third = c1["entries"][2]
    assert (third["nomination"], third["shortlisted"], third["official_votes"]) == (c, False, 1)
    assert third["votes"] == {
        "counted": 1,
        "released": 0,
        "quarantined": 1,
        "voided": 1,
        "official": 1,
    }
    assert results.fingerprint is not None and results.fingerprint.leaf_count == 8
    # The digest is a function of the state: the same twice, another after a change.
    assert (await compute(conn, edition, edition_id)).digest() == results.digest()
    await conn.execute("UPDATE votes SET verdict='voided' WHERE voter_id='q'")
    assert (await compute(conn, edition, edition_id)).digest() != results.digest()
