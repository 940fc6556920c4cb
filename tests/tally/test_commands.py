"""The results commands: voting tally, experts, results publish/status/export/proof, verify."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.fixtures.cli import run
from tests.fixtures.results import expert, results_edition, scored_edition
from voting import cli
from voting.settings import Settings
from voting.tally import publication as pub
from voting.tally.results import compute


async def test_experts_are_assigned_and_listed(
    conn: asyncpg.Connection, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    await results_edition(conn, "expert_review")
    await expert(conn, "judge@example.org")
    assert await run(settings, "experts", "assign", "Judge@Example.org", "C1", "C2") == 0
    assert "assigned C1, C2" in capsys.readouterr().out
    assert await run(settings, "experts", "assign", "judge@example.org", "C9") == 2
    assert "Unknown category C9" in capsys.readouterr().err
    assert await run(settings, "experts", "assign", "nobody@example.org", "C1") == 2
    assert "has no expert account" in capsys.readouterr().err
    assert await run(settings, "experts", "unassign", "judge@example.org", "C2") == 0
    assert await run(settings, "experts", "list") == 0
    listing = capsys.readouterr().out
    assert "judge@example.org" in listing and "C1 " in listing and "0/0 reviewed" in listing
    categories = await conn.fetch("SELECT category FROM expert_assignments")
    assert [r["category"] for r in categories] == ["C1"]


async def test_tally_publish_export_and_verify(
    conn: asyncpg.Connection,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    s: dict[str, Any] = await scored_edition(conn, "results")
    assert await run(settings, "tally") == 0
    out = capsys.readouterr().out
    assert "results not published" in out and "C1 · Public governance" in out
    assert "The experts' mean weighted score picks the winner" in out
    assert "ledger fingerprint (Merkle root of 54 counted votes)" in out
    assert await run(settings, "tally", "--csv", "--category", "C1") == 0
    assert capsys.readouterr().out.startswith("edition,category,")
    assert await run(settings, "tally", "--published") == 2
    capsys.readouterr()

    assert await run(settings, "results", "status") == 0
    assert "0 of 2 sign-offs" in capsys.readouterr().out
    assert await run(settings, "results", "publish") == 1
    assert "0 of the 2 committee sign-offs" in capsys.readouterr().err
    digest = (await compute(conn, s["edition"], s["edition_id"])).digest()
    for member in (0, 1):
        await pub.sign_off(
            conn,
            s["edition"],
            s["edition_id"],
            user_id=s["committee"][member],
            email=f"member{member + 1}@example.org",
            digest=digest,
            now=datetime.now(UTC),
        )
    assert await run(settings, "results", "publish", "--by", "secretariat") == 0
    published = capsys.readouterr().out
    assert "published on" in published and "over 54 votes" in published
    assert await run(settings, "results", "publish") == 0
    assert "already published" in capsys.readouterr().out

    export = tmp_path / "ledger.json"
    assert await run(settings, "results", "export", "--out", str(export)) == 0
    root = json.loads(export.read_text())["merkle_root"]
    assert cli.main(["verify", str(export), "--root", root]) == 0
    assert "54 counted votes" in capsys.readouterr().out

    receipt = s["receipts"][("v1-0", "C2")]
    assert await run(settings, "results", "proof", receipt) == 0
    proof = tmp_path / "proof.json"
    proof.write_text(capsys.readouterr().out)
    assert cli.main(["verify", str(proof), "--root", root]) == 0
    assert await run(settings, "results", "proof", s["receipts"][("held", "C1")]) == 1
    assert await run(settings, "tally", "--published") == 0
    assert "results published" in capsys.readouterr().out
