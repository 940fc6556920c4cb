"""Sign-off and publication, the ledger export and inclusion proofs, `voting verify`."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.fixtures.results import (
    expert,
    move_to,
    publish,
    reload_edition,
    results_edition,
    scored_edition,
    sign,
)
from voting import cli
from voting.tally import publication as pub
from voting.tally.verify import check_export, check_proof


async def test_publication_is_refused_before_the_results_phase(conn: asyncpg.Connection) -> None:
    s = await scored_edition(conn, "expert_review")
    assert await sign(conn, s, 0) == ["member1@example.org"]
    assert len(await sign(conn, s, 1)) == 2
    with pytest.raises(pub.PublicationRefused) as refused:
        await publish(conn, s)
    assert refused.value.code == "too_early" and "results phase opens" in refused.value.message
    assert await pub.get_publication(conn, s["edition_id"]) is None


async def test_sign_off_waits_for_the_close_of_voting(conn: asyncpg.Connection) -> None:
    edition, edition_id, _ = await results_edition(conn, "voting")
    member = await expert(conn, "m@example.org", "committee")
    with pytest.raises(pub.PublicationRefused) as refused:
        await pub.sign_off(
            conn,
            edition,
            edition_id,
            user_id=member,
            email="m@example.org",
            digest="x",
            now=datetime.now(UTC),
        )
    assert refused.value.code == "voting_open"


async def test_one_signature_of_two_is_not_enough_then_publication_is_final(
    conn: asyncpg.Connection,
) -> None:
    s = await scored_edition(conn, "results")
    await sign(conn, s, 0)
    await sign(conn, s, 0)  # the same member twice is still one signature
    with pytest.raises(pub.PublicationRefused) as refused:
        await publish(conn, s)
    assert refused.value.code == "needs_signoffs"
    assert refused.value.message.startswith("1 of the 2")
    # A signature on another state does not count for this one.
    with pytest.raises(pub.PublicationRefused) as stale:
        await pub.sign_off(
            conn,
            s["edition"],
            s["edition_id"],
            user_id=s["committee"][1],
            email="member2@example.org",
            digest="0" * 64,
            now=datetime.now(UTC),
        )
    assert stale.value.code == "stale"

    await sign(conn, s, 1)
    first, created = await publish(conn, s)
    assert created and first.signers == ("member1@example.org", "member2@example.org")
    again, created_again = await publish(conn, s)
    assert (again.id, created_again) == (first.id, False)
    assert await conn.fetchval("SELECT count(*) FROM publications") == 1
    with pytest.raises(pub.PublicationRefused, match="already published"):
        await sign(conn, s, 2)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await conn.execute("UPDATE publications SET merkle_root='x'")
    # Later decisions on votes change the ledger, never the publication.
    await conn.execute("UPDATE votes SET verdict='voided' WHERE voter_id='v0-8'")
    assert (await pub.get_publication(conn, s["edition_id"])) == first
    audit = await conn.fetch("SELECT action FROM audit_log WHERE action LIKE 'results.%'")
    assert [a["action"] for a in audit] == ["results.signoff", "results.signoff", "results.publish"]


async def test_publication_needs_an_expert_figure_for_every_shortlisted_nomination(
    conn: asyncpg.Connection,
) -> None:
    s = await scored_edition(conn, "expert_review")
    unscored = s["noms"]["C3"][0]
    await conn.execute("DELETE FROM expert_reviews WHERE nomination=$1", unscored)
    await move_to(conn, s["edition_id"], "results")
    s["edition"] = await reload_edition(conn, s["edition"].slug)
    with pytest.raises(pub.PublicationRefused) as refused:
        await sign(conn, s, 0)
    assert refused.value.code == "unscored" and unscored in refused.value.message


async def published(conn: asyncpg.Connection) -> tuple[dict[str, Any], pub.Publication, dict]:
    s = await scored_edition(conn, "results")
    await sign(conn, s, 0)
    await sign(conn, s, 1)
    publication, _ = await publish(conn, s)
    body = b"".join(
        [c async for c in pub.export_chunks(conn, publication, s["edition"].slug, batch=7)]
    )
    return s, publication, json.loads(body)


async def test_the_export_recomputes_the_published_counts_and_root(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    s, publication, export = await published(conn)
    assert check_export(export, publication.merkle_root) == []
    official = pub.published_counts(publication)
    assert export["counts"] == official
    assert sum(official.values()) == export["leaf_count"] == len(s["votes"]) - 2
    # The table a person reads and the export agree (the quarantined vote is out).
    c1 = next(c for c in publication.results["categories"] if c["code"] == "C1")
    first = s["noms"]["C1"][0]
    assert next(e for e in c1["entries"] if e["nomination"] == first)["official_votes"] == 9

    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    assert cli.main(["verify", str(path), "--root", publication.merkle_root]) == 0
    assert cli.main(["verify", str(path), "--root", "ab" * 32]) == 1

    def tampered(change: Any) -> dict:
        forged = copy.deepcopy(export)
        change(forged["leaves"])
        return forged

    def retarget(leaves: list) -> None:
        leaves[0][2] = next(n for n in export["counts"] if n != leaves[0][2])

    def new_digest(leaves: list) -> None:
        leaves[3][0] = "0" * 64

    for forged in (
        tampered(retarget),
        tampered(new_digest),
        tampered(lambda leaves: leaves.pop(5)),
        tampered(lambda leaves: leaves.append(["1" * 64, "C1", s["noms"]["C1"][0]])),
        tampered(lambda leaves: leaves.append(list(leaves[0]))),
    ):
        assert check_export(forged, publication.merkle_root) != []
        path.write_text(json.dumps(forged))
        assert cli.main(["verify", str(path)]) == 1
    # Counts and root rewritten to match the forgery: only the published root catches it.
    forged = tampered(retarget)
    forged["counts"] = {}
    for _, _, nomination in forged["leaves"]:
        forged["counts"][nomination] = forged["counts"].get(nomination, 0) + 1
    from voting.tally.verify import leaf_hash, merkle_root

    forged["merkle_root"] = merkle_root([leaf_hash(*leaf) for leaf in forged["leaves"]]).hex()
    assert check_export(forged) == []
    assert check_export(forged, publication.merkle_root) != []
    path.write_text("not json")
    assert cli.main(["verify", str(path)]) == 2


async def test_every_counted_receipt_has_a_proof_and_forgeries_fail(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    s, publication, _ = await published(conn)
    slug = s["edition"].slug
    counted = [
        receipt
        for (voter, category), receipt in s["receipts"].items()
        if voter not in ("held", "void")
    ]
    for receipt in counted:
        proof = await pub.inclusion_proof(conn, publication, slug, receipt)
        assert proof is not None
        assert check_proof(proof, publication.merkle_root) == [], receipt
    held = s["receipts"][("held", "C1")]
    assert await pub.inclusion_proof(conn, publication, slug, held) is None

    proof = await pub.inclusion_proof(conn, publication, slug, counted[0])
    assert proof is not None and len(proof["path"]) >= 4
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(proof))
    assert cli.main(["verify", str(path), "--root", publication.merkle_root]) == 0
    other = next(n for n in s["noms"]["C2"] if n != proof["nomination"])
    forgeries = [
        {**proof, "nomination": other},
        {**proof, "receipt": held},
        {**proof, "path": [[s, h] for s, h in proof["path"][:-1]]},
        {**proof, "path": [["L" if s == "R" else "R", h] for s, h in proof["path"]]},
        {**proof, "path": [[proof["path"][0][0], "00" * 32], *proof["path"][1:]]},
        {**proof, "merkle_root": "ab" * 32},
        {**proof, "path": "nonsense"},
    ]
    for forged in forgeries:
        assert check_proof(forged, publication.merkle_root) != []
        path.write_text(json.dumps(forged))
        assert cli.main(["verify", str(path), "--root", publication.merkle_root]) == 1
