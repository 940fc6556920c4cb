"""voting/tally/publication.py as the committee's actions: the sign-off that publishes,
dated by the engine's clock, and one publication whichever door (page button, CLI)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tests.fixtures.cli import run
from tests.fixtures.flows import csrf_from
from tests.fixtures.results import at_real_time, move_to, reload_edition, scored_edition, staff
from voting.clock import FrozenClock
from voting.settings import Settings
from voting.tally import publication as pub
from voting.tally.results import compute


async def _sign(conn: asyncpg.Connection, s: dict[str, Any], member: int, clock: FrozenClock):
    results = await compute(conn, s["edition"], s["edition_id"])
    return await pub.sign_off_and_publish(
        conn,
        s["edition"],
        s["edition_id"],
        user_id=s["committee"][member],
        email=f"member{member + 1}@example.org",
        digest=results.digest(),
        clock=clock,
    )


async def test_the_last_signature_without_the_publish_step_only_signs(
    conn: asyncpg.Connection,
) -> None:
    s = await scored_edition(conn, "results")
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    await _sign(conn, s, 0, clock)
    results = await compute(conn, s["edition"], s["edition_id"])
    quiet = await pub.sign_off_and_publish(
        conn,
        s["edition"],
        s["edition_id"],
        user_id=s["committee"][1],
        email="member2@example.org",
        digest=results.digest(),
        clock=clock,
        publish_now=False,
    )
    assert len(quiet.signers) == 2 and quiet.publication is None
    assert await pub.get_publication(conn, s["edition_id"]) is None
    # The preview is the publication the explicit step then makes, field for field.
    preview = pub.preview(results, quiet.signers, "user:member2@example.org", clock.now())
    published, created = await pub.publish(
        conn,
        s["edition"],
        s["edition_id"],
        now=clock.now(),
        actor="user:member2@example.org",
        digest=results.digest(),
    )
    assert created
    assert (preview.results, preview.rules, preview.merkle_root, preview.leaf_count) == (
        published.results,
        published.rules,
        published.merkle_root,
        published.leaf_count,
    )
    assert (preview.signers, preview.published_at) == (published.signers, published.published_at)


async def test_publishing_a_state_other_than_the_one_previewed_is_refused(
    conn: asyncpg.Connection,
) -> None:
    s = await scored_edition(conn, "results")
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    await _sign(conn, s, 0, clock)
    with pytest.raises(pub.PublicationRefused) as refused:
        await pub.publish(
            conn, s["edition"], s["edition_id"], now=clock.now(), actor="t", digest="0" * 64
        )
    assert refused.value.code == "stale"
    assert await pub.get_publication(conn, s["edition_id"]) is None


async def _publish_audit(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT actor, edition, detail FROM audit_log WHERE action='results.publish'"
    )
    return [dict(r) for r in rows]


def _expected_detail(publication: pub.Publication) -> dict[str, Any]:
    """What `publish` records, whoever calls it."""
    return {
        "digest": publication.digest,
        "merkle_root": publication.merkle_root,
        "leaf_count": publication.leaf_count,
        "signers": list(publication.signers),
        "winners": {c["code"]: c["winners"] for c in publication.results["categories"]},
    }


async def test_the_signature_that_completes_the_count_publishes_dated_by_the_clock(
    conn: asyncpg.Connection,
) -> None:
    s = await scored_edition(conn, "results")
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    first = await _sign(conn, s, 0, clock)
    assert (first.signers, first.publication) == (["member1@example.org"], None)
    clock.advance(timedelta(minutes=3))
    second = await _sign(conn, s, 1, clock)
    assert second.signers == ["member1@example.org", "member2@example.org"]
    assert second.publication is not None
    assert second.publication == await pub.get_publication(conn, s["edition_id"])
    # The engine's clock dates the signatures and the publication, not the database's.
    assert second.publication.published_at == clock.now()
    signed_at = await conn.fetch("SELECT signed_at FROM result_signoffs ORDER BY signed_at")
    assert [r["signed_at"] for r in signed_at] == [clock.now() - timedelta(minutes=3), clock.now()]
    [entry] = await _publish_audit(conn)
    assert entry["actor"] == "user:member2@example.org"
    assert entry["detail"] == _expected_detail(second.publication)
    # A third member is too late: the results are published.
    with pytest.raises(pub.PublicationRefused) as refused:
        await _sign(conn, s, 2, clock)
    assert refused.value.code == "published"


async def test_before_the_results_phase_signatures_wait_and_the_cli_publishes(
    conn: asyncpg.Connection, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    s = await scored_edition(conn, "expert_review")
    clock = FrozenClock(datetime.now(UTC))
    for member in (0, 1, 2):
        done = await _sign(conn, s, member, clock)
        assert done.publication is None
    assert await pub.get_publication(conn, s["edition_id"]) is None
    await move_to(conn, s["edition_id"], "results")
    assert await run(settings, "results", "publish", "--by", "secretariat") == 0
    capsys.readouterr()
    publication = await pub.get_publication(conn, s["edition_id"])
    assert publication is not None and len(publication.signers) == 3
    [entry] = await _publish_audit(conn)
    assert entry["actor"] == "cli:secretariat"
    assert entry["detail"] == _expected_detail(publication)


async def test_the_page_button_publishes_through_the_same_function(
    mail_app: Any, smtp: Any, conn: asyncpg.Connection
) -> None:
    at_real_time(mail_app)
    s = await scored_edition(conn, "expert_review")
    clock = FrozenClock(datetime.now(UTC))
    for member in (0, 1):
        await _sign(conn, s, member, clock)
    await move_to(conn, s["edition_id"], "results")
    s["edition"] = await reload_edition(conn, s["edition"].slug)
    chair = await staff(mail_app, smtp, conn, "member1@example.org", "committee")
    try:
        page = await chair.get("/committee/results")
        assert re.search(r"2 of 2", page.text)
        r = await chair.post(
            "/committee/results/publish", data={"csrf_token": csrf_from(page.text)}
        )
        assert r.status_code == 200 and "The results are published." in r.text
    finally:
        await chair.aclose()
    publication = await pub.get_publication(conn, s["edition_id"])
    assert publication is not None
    assert publication.published_at == mail_app.state.services.clock.now()
    [entry] = await _publish_audit(conn)
    assert entry["actor"] == "user:member1@example.org"
    assert entry["detail"] == _expected_detail(publication)
