"""The results over HTTP: the panel's pages, the committee's sign-off and publication,
the public results, the exports and the receipt check."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from typing import Any

import asyncpg
from httpx import AsyncClient

from tests.fixtures.flows import csrf_from
from tests.fixtures.results import (
    add_votes,
    at_real_time,
    results_edition,
    scored_edition,
    spread,
    staff,
)
from tests.fixtures.voting import flush, open_voting, verify_voter
from voting.tally.verify import check_export, check_proof


def article(page: str) -> str:
    """The public results' content (results/_public_body.html) out of a whole page."""
    found = re.search(r'<article id="public-results">.*?</article>', page, re.S)
    assert found, "no public results in the page"
    return found.group(0)


async def test_organizer_assigns_and_the_expert_scores_and_declares_a_conflict(
    mail_app: Any, smtp: Any, conn: asyncpg.Connection
) -> None:
    at_real_time(mail_app)
    _, edition_id, noms = await results_edition(conn, "expert_review")
    first, second, third = noms["C1"]
    await add_votes(conn, edition_id, spread("C1", {first: 3, second: 2, third: 1}))
    organizer = await staff(mail_app, smtp, conn, "org@example.org", "organizer")
    judge = await staff(mail_app, smtp, conn, "judge@example.org", "expert")
    try:
        page = await organizer.get("/organizer/experts")
        assert page.status_code == 200 and "judge@example.org" in page.text
        done = await organizer.post(
            "/organizer/experts",
            data={
                "csrf_token": csrf_from(page.text),
                "email": "judge@example.org",
                "category": "C1",
                "action": "assign",
            },
        )
        assert done.status_code == 200 and "Assigned judge@example.org to: C1." in done.text
        nobody = await organizer.post(
            "/organizer/experts",
            data={"csrf_token": csrf_from(page.text), "email": "x@example.org", "category": "C1"},
        )
        assert nobody.status_code == 422 and "has no expert account" in nobody.text

        home = await judge.get("/experts")
        assert home.status_code == 200
        assert f"/experts/nominations/{first}" in home.text
        assert f"/experts/nominations/{third}" not in home.text  # not shortlisted (size 2)
        form = await judge.get(f"/experts/nominations/{first}")
        assert form.status_code == 200 and 'name="score_impact"' in form.text
        token = csrf_from(form.text)
        bad = await judge.post(
            f"/experts/nominations/{first}",
            data={"csrf_token": token, "score_impact": "12", "score_innovation": ""},
        )
        assert bad.status_code == 422
        assert "Give every criterion a whole score from 1 to 10" in bad.text
        assert 'aria-invalid="true"' in bad.text
        saved = await judge.post(
            f"/experts/nominations/{first}",
            data={
                "csrf_token": token,
                "score_impact": "8",
                "score_innovation": "4",
                "comment": "Clear impact.",
            },
        )
        assert saved.status_code == 200 and "Your scores are saved." in saved.text
        rows = await conn.fetch(
            "SELECT criterion, score FROM expert_scores WHERE nomination=$1 ORDER BY criterion",
            first,
        )
        assert [(r["criterion"], int(r["score"])) for r in rows] == [
            ("impact", 8),
            ("innovation", 4),
        ]
        recuse = await judge.post(
            f"/experts/nominations/{second}/conflict",
            data={"csrf_token": token, "reason": "My former employer."},
        )
        assert recuse.status_code == 303
        assert "you are recused" in (await judge.get(f"/experts/nominations/{second}")).text
        assert (await judge.get("/experts/nominations/" + noms["C2"][0])).status_code == 404
        assert (await organizer.get("/experts")).status_code == 403
        finished = await organizer.get("/organizer/experts")
        assert re.search(r"judge@example.org</th>\s*<td>C1</td>\s*<td>1 / 1</td>", finished.text)
    finally:
        await organizer.aclose()
        await judge.aclose()


async def test_two_committee_sign_offs_publish_the_results(
    mail_app: Any, mail_client: AsyncClient, smtp: Any, conn: asyncpg.Connection
) -> None:
    at_real_time(mail_app)
    s = await scored_edition(conn, "results")
    not_yet = await mail_client.get("/api/results")
    assert not_yet.status_code == 404
    assert not_yet.json()["error"]["code"] == "not_published"
    # The page is an expected state, not an error: it says the results are still to come.
    pending = await mail_client.get("/results")
    assert pending.status_code == 200
    assert "The results are not published yet" in pending.text
    assert "Something is not right" not in pending.text

    one = await staff(mail_app, smtp, conn, "member1@example.org", "committee")
    two = await staff(mail_app, smtp, conn, "member2@example.org", "committee")
    judge = await staff(mail_app, smtp, conn, "judge1@example.org", "expert")
    try:
        assert (await judge.get("/committee/results")).status_code == 403
        page = await one.get("/committee/results")
        assert page.status_code == 200 and "0 of 2" in page.text
        digest = re.search(r'name="digest" value="([0-9a-f]{64})"', page.text).group(1)
        signed = await one.post(
            "/committee/results/signoff",
            data={"csrf_token": csrf_from(page.text), "digest": digest},
        )
        assert signed.status_code == 200 and "Your sign-off is recorded." in signed.text
        assert "The results are published" not in signed.text
        assert (await mail_client.get("/api/results")).status_code == 404
        too_soon = await one.post(
            "/committee/results/publish", data={"csrf_token": csrf_from(page.text)}
        )
        assert too_soon.status_code == 409 and "1 of the 2" in too_soon.text

        # The member who signed sees the preview without a second signature to give.
        waiting = await one.get("/committee/results/preview")
        assert "You have signed these results." in waiting.text
        assert "/committee/results/signoff" not in waiting.text

        page2 = await two.get("/committee/results")
        assert "1 of 2" in page2.text
        # The last signer signs nowhere but on the preview of the public page.
        assert 'name="digest"' not in page2.text
        assert 'href="/committee/results/preview"' in page2.text
        preview = await two.get("/committee/results/preview")
        assert preview.status_code == 200
        assert "Preview: not public yet." in preview.text
        assert "Sign and publish these results" in preview.text
        assert re.search(r'name="digest" value="' + digest, preview.text)
        assert (await mail_client.get("/api/results")).status_code == 404
        signed2 = await two.post(
            "/committee/results/signoff",
            data={"csrf_token": csrf_from(preview.text), "digest": digest, "publish": "yes"},
        )
        assert "The results are published." in signed2.text
        # The preview was the public page to the character.
        public_page = await mail_client.get("/results")
        assert article(preview.text) == article(public_page.text)
        assert (await two.get("/committee/results/preview")).status_code == 303

        results = (await mail_client.get("/api/results")).json()
        assert results["signoffs"] == 2
        assert results["rules"]["merge_rule"] == "experts_pick"
        c1 = next(c for c in results["categories"] if c["code"] == "C1")
        assert c1["shortlist"] == s["noms"]["C1"][:2]
        assert len(c1["winners"]) >= 1 and "experts" not in c1["entries"][0]
        public = await mail_client.get("/results")
        assert public.status_code == 200
        assert results["fingerprint"]["merkle_root"] in public.text
        # Once published, the home page leads with the winners, each linked.
        home = await mail_client.get("/")
        assert "The winners" in home.text and 'href="/results"' in home.text
        assert all(f'href="/nominations/{w}"' in home.text for w in c1["winners"])
        assert "Public online voting is open" not in home.text
        export = (await mail_client.get(results["fingerprint"]["export"])).json()
        assert check_export(export, results["fingerprint"]["merkle_root"]) == []
        again = await one.post(
            "/committee/results/publish", data={"csrf_token": csrf_from(page.text)}
        )
        assert again.status_code == 200 and "already published" in again.text

        detail = await one.get("/committee/results/C1")
        assert detail.status_code == 200
        assert "<svg" in detail.text and "judge2@example.org" in detail.text
        # The votes chart names the projects in its legend, never their ids, and no figure
        # on the page is written with six decimals ("7.900000").
        section = re.search(
            r'<section aria-labelledby="chart-heading">.*?</section>', detail.text, re.S
        ).group(0)
        legend = re.findall(
            r"<text [^>]*>([^<]*)</text>", re.search(r"<svg .*?</svg>", section, re.S).group(0)
        )
        c1_titles = [e["title"] for e in c1["entries"]]
        assert any(t[:15] in text for t in c1_titles for text in legend)
        assert not any(re.search(r"\bN[0-9A-Z]{8}\b", text) for text in legend)
        assert not re.search(r"\d\.\d{6}", re.sub(r"<[^>]+>", " ", detail.text))
        french = await one.get("/committee/results/C1?lang=fr")
        assert not re.search(r"\d[.,]\d{6}", re.sub(r"<[^>]+>", " ", french.text))
        assert re.search(r'<td class="num"><strong>\d+,\d+</strong></td>', french.text)
        await one.get("/committee/results/C1?lang=en")  # the language choice is a cookie
        assert (await one.get("/committee/results/C99")).status_code == 404
        table = await one.get("/committee/results.csv")
        assert table.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(table.text)))
        assert len(rows) == 9 and {r["category"] for r in rows} == {"C1", "C2", "C3"}
        top = next(r for r in rows if r["nomination"] == s["noms"]["C1"][0])
        assert (top["official_votes"], top["quarantined"]) == ("9", "1")
        report = await one.get("/committee/results/report")
        assert report.status_code == 200
        assert "Fraud decisions" in report.text and export["merkle_root"] in report.text
    finally:
        for client in (one, two, judge):
            await client.aclose()


async def test_receipts_before_and_after_publication(
    mail_app: Any, mail_client: AsyncClient, smtp: Any, conn: asyncpg.Connection
) -> None:
    at_real_time(mail_app)
    s = await scored_edition(conn, "results")
    counted = s["receipts"][("v0-0", "C1")]
    response = await mail_client.get(f"/api/receipts/{counted.lower().replace('-', ' ')}")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["nomination"], body["published"]) == (
        "counted",
        s["noms"]["C1"][0],
        False,
    )
    assert body["proof"] is None
    held = (await mail_client.get(f"/api/receipts/{s['receipts'][('held', 'C1')]}")).json()
    voided = (await mail_client.get(f"/api/receipts/{s['receipts'][('void', 'C2')]}")).json()
    assert (held["status"], voided["status"]) == ("held", "voided")
    bad = await mail_client.get("/api/receipts/not-a-receipt")
    assert bad.status_code == 422 and bad.json()["error"]["fields"] == {"code": "not a receipt"}
    unknown = await mail_client.get("/api/receipts/AAAA-AAAA-AAAA-AAAA")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_receipt"
    page = await mail_client.get(f"/receipts?code={counted}")
    assert page.status_code == 200 and "This vote counts." in page.text
    assert (await mail_client.get("/receipts?code=nope")).status_code == 422

    members = [
        await staff(mail_app, smtp, conn, f"member{i}@example.org", "committee") for i in (1, 2)
    ]
    try:
        for member in members:
            page = await member.get("/committee/results/preview")
            digest = re.search(r'name="digest" value="([0-9a-f]{64})"', page.text).group(1)
            await member.post(
                "/committee/results/signoff",
                data={"csrf_token": csrf_from(page.text), "digest": digest, "publish": "yes"},
            )
    finally:
        for member in members:
            await member.aclose()
    after = (await mail_client.get(f"/api/receipts/{counted}")).json()
    root = (await mail_client.get("/api/results")).json()["fingerprint"]["merkle_root"]
    assert after["in_published_tally"] is True
    assert check_proof(after["proof"], root) == []
    held_after = (await mail_client.get(f"/api/receipts/{s['receipts'][('held', 'C1')]}")).json()
    assert (held_after["in_published_tally"], held_after["proof"]) == (False, None)
    page = await mail_client.get(f"/receipts?code={counted}")
    assert root in page.text and "inclusion proof" in page.text


async def test_votes_cast_over_http_show_up_under_their_receipts(
    mail_client: AsyncClient, mail_app: Any, smtp: Any, conn: asyncpg.Connection
) -> None:
    _, _, noms = await open_voting(mail_app, conn)
    csrf = await verify_voter(mail_client, mail_app, smtp, "receipt.voter@example.org")
    # A person reads the ballot page, then confirms: a vote that counts.
    page = await mail_client.get("/vote/C1")
    mail_app.state.services.clock.advance(timedelta(seconds=20))
    voted = await mail_client.post(
        "/vote/C1",
        data={
            "nomination": noms["C1"][0],
            "csrf_token": csrf_from(page.text),
            "form_token": re.search(r'name="form_token" value="([^"]+)"', page.text).group(1),
            "website": "",
        },
    )
    assert voted.status_code == 202
    by_page = re.search(r"<code>([A-Z2-7-]{19})</code>", voted.text).group(1)
    # A bare API call without a form token: the fraud layer holds it for review.
    cast = await mail_client.post(
        "/api/votes", json={"nomination": noms["C2"][0]}, headers={"X-CSRF-Token": csrf}
    )
    by_api = cast.json()["receipt"]
    assert (await mail_client.get(f"/api/receipts/{by_page}")).status_code == 404  # not flushed
    await flush(mail_app)
    found = (await mail_client.get(f"/api/receipts/{by_page}")).json()
    assert (found["status"], found["nomination"], found["category"]) == (
        "counted",
        noms["C1"][0],
        "C1",
    )
    held = (await mail_client.get(f"/api/receipts/{by_api}")).json()
    assert (held["status"], held["reason"]) == ("held", "quarantined")
