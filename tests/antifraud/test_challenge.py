"""Fraud v2 on the vote path: the risk bands, the step-up challenge (ALTCHA) in front of
a middle-band vote and of a busy network's sign-ins, form tokens bound to their ballot."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace
from datetime import timedelta

import pytest

from tests.fixtures.flows import csrf_from
from tests.fixtures.voting import flush, open_voting, runtime_for, verify_voter
from voting import mail
from voting.antifraud.challenge import Challenges, solve
from voting.antifraud.config import FraudRules
from voting.antifraud.risk import may_step_up
from voting.antifraud.signals import check_form, new_form_token
from voting.ballot import SHARDS, Limits
from voting.security import FORM, Tokens, pseudonym
from voting.voters import identify

# A person's browser: an agent, a language, Fetch Metadata.
BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Accept-Language": "en",
    "Sec-Fetch-Site": "same-origin",
    "Sec-Fetch-Mode": "cors",
}
HEADLESS = {
    **BROWSER,
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0",
}


async def _easy_challenges(app, **rules):
    """Challenges small enough to solve in a test (and any other rule given)."""
    rt = runtime_for(app)
    snap = await rt.catalog.current()
    rt.catalog._snapshot = replace(
        snap, thresholds=replace(snap.thresholds, challenge_max_number=2000, **rules)
    )


def _reading(app, seconds=20):
    app.state.services.clock.advance(timedelta(seconds=seconds))


async def _ballot(client, category):
    r = await client.get(f"/api/ballot/{category}", headers=BROWSER)
    assert r.status_code == 200, r.text
    return r.json()


async def _ledger(app, conn, edition_id):
    await flush(app)
    rows = await conn.fetch(
        "SELECT category, verdict, verdict_reasons FROM votes WHERE edition_id=$1", edition_id
    )
    return {r["category"]: r for r in rows}


async def test_the_ballot_api_opens_a_ballot_bound_to_its_category(
    mail_client, mail_app, smtp, conn
):
    _, _, noms = await open_voting(mail_app, conn)
    assert (await mail_client.get("/api/ballot/C1")).status_code == 401
    await verify_voter(mail_client, mail_app, smtp, "reader@example.org")
    ballot = await _ballot(mail_client, "C1")
    assert sorted(n["public_id"] for n in ballot["nominations"]) == sorted(noms["C1"])
    # The order is the voter's own: the same as the ballot page's.
    page = await mail_client.get("/vote/C1")
    order = [m for m in re.findall(r'name="nomination" value="([^"]+)"', page.text)]
    assert [n["public_id"] for n in ballot["nominations"]] == order
    payload = Tokens(mail_app.state.services.settings.secret_key).loads(
        FORM, ballot["form_token"], 3600
    )
    assert payload["w"] == "C1"
    assert "form_token" not in (await mail_client.get("/api/session")).json()
    assert (await mail_client.get("/api/ballot/C9")).status_code == 404


def test_a_token_for_another_category_is_flagged():
    tokens = Tokens("s" * 40)
    me = pseudonym("k", "me@example.org")
    token = new_form_token(tokens, me, "C1", now=1000.0)
    same = check_form(
        tokens, token, me, now=1010.0, min_seconds=2, max_age_s=7200, places=("C1", "N1")
    )
    assert same.reasons == ()
    other = check_form(
        tokens, token, me, now=1010.0, min_seconds=2, max_age_s=7200, places=("C2", "N9")
    )
    assert other.reasons == ("form_other_category",)


async def test_a_low_band_vote_is_counted(mail_client, mail_app, smtp, conn):
    _, edition_id, noms = await open_voting(mail_app, conn)
    csrf = await verify_voter(mail_client, mail_app, smtp, "calm@example.org")
    ballot = await _ballot(mail_client, "C1")
    _reading(mail_app)
    r = await mail_client.post(
        "/api/votes",
        json={"nomination": noms["C1"][0], "form_token": ballot["form_token"]},
        headers={**BROWSER, "X-CSRF-Token": csrf},
    )
    assert r.status_code == 202 and r.json()["counted"] is True
    rows = await _ledger(mail_app, conn, edition_id)
    assert rows["C1"]["verdict"] == "counted" and rows["C1"]["verdict_reasons"] == []


async def test_a_middle_band_vote_is_counted_once_its_challenge_is_solved(
    mail_client, mail_app, smtp, conn
):
    _, edition_id, noms = await open_voting(mail_app, conn)
    await _easy_challenges(mail_app)
    csrf = await verify_voter(mail_client, mail_app, smtp, "quick@example.org")
    headers = {**BROWSER, "X-CSRF-Token": csrf}
    # A token served for C2, used for a vote in C1: a reason (another category), and
    # middle band on its own.
    wrong_place = (await _ballot(mail_client, "C2"))["form_token"]
    _reading(mail_app)
    vote = {"nomination": noms["C1"][0], "form_token": wrong_place}
    r = await mail_client.post("/api/votes", json=vote, headers=headers)
    assert r.status_code == 428, r.text
    error = r.json()["error"]
    assert error["code"] == "challenge_required"
    challenge = error["challenge"]
    assert challenge["parameters"]["algorithm"] == "SHA-256" and challenge["signature"]

    # A wrong solution: refused, with a fresh challenge.
    solved = solve(challenge)
    decoded = json.loads(base64.b64decode(solved))
    decoded["solution"]["counter"] += 1
    wrong = base64.b64encode(json.dumps(decoded).encode()).decode()
    r = await mail_client.post("/api/votes", json={**vote, "altcha": wrong}, headers=headers)
    assert r.status_code == 428 and r.json()["error"]["code"] == "challenge_failed"
    assert r.json()["error"]["challenge"]["parameters"]["nonce"] != challenge["parameters"]["nonce"]

    # The right one: counted.
    r = await mail_client.post("/api/votes", json={**vote, "altcha": solved}, headers=headers)
    assert r.status_code == 202, r.text
    assert r.json()["counted"] is True

    # The same solution again (here for the vote already cast): used, refused.
    r = await mail_client.post("/api/votes", json={**vote, "altcha": solved}, headers=headers)
    assert r.status_code == 428 and r.json()["error"]["code"] == "challenge_failed"

    # A challenge solved for C1 does not open C2.
    c2 = (await _ballot(mail_client, "C2"))["form_token"]
    r = await mail_client.post(
        "/api/votes", json={"nomination": noms["C2"][0], "form_token": c2}, headers=headers
    )
    assert r.status_code == 428  # too fast: no time passed since the ballot opened
    r = await mail_client.post(
        "/api/votes",
        json={"nomination": noms["C2"][0], "form_token": c2, "altcha": solve(challenge)},
        headers=headers,
    )
    assert r.status_code == 428 and r.json()["error"]["code"] == "challenge_failed"

    rows = await _ledger(mail_app, conn, edition_id)
    assert rows["C1"]["verdict"] == "counted" and "C2" not in rows


async def test_a_solution_is_spent_once(redis_client, redis_prefix):
    challenges = Challenges("s" * 40, redis_client, redis_prefix)
    challenge = challenges.issue("vote", "v|C1", max_number=500, expires_s=60)
    solved = solve(challenge)
    assert (await challenges.verify(solved, "vote", "v|C2")).problem == "other_purpose"
    assert (await challenges.verify(solved, "signin", "v|C1")).problem == "other_purpose"
    assert (await challenges.verify(solved, "vote", "v|C1")).ok
    assert (await challenges.verify(solved, "vote", "v|C1")).problem == "replayed"
    # Signed under another key: not ours.
    others = Challenges("t" * 40, redis_client, redis_prefix)
    forged = solve(others.issue("vote", "v|C1", max_number=500, expires_s=60))
    assert (await challenges.verify(forged, "vote", "v|C1")).problem == "invalid"
    expired = solve(challenges.issue("vote", "v|C1", max_number=500, expires_s=-5))
    assert (await challenges.verify(expired, "vote", "v|C1")).problem == "expired"


async def test_a_high_band_vote_is_quarantined_with_its_reasons(mail_client, mail_app, smtp, conn):
    _, edition_id, noms = await open_voting(mail_app, conn)
    csrf = await verify_voter(mail_client, mail_app, smtp, "robot@example.org")
    ballot = await _ballot(mail_client, "C1")
    _reading(mail_app)
    # A headless browser that admits to being driven (navigator.webdriver), on a good
    # token read for long enough: its own traces put it in the high band.
    r = await mail_client.post(
        "/api/votes",
        json={"nomination": noms["C1"][0], "form_token": ballot["form_token"], "webdriver": True},
        headers={**HEADLESS, "X-CSRF-Token": csrf},
    )
    assert r.status_code == 202  # told nothing
    assert r.json()["counted"] is True  # (only the ledger's verdict says quarantined)
    rows = await _ledger(mail_app, conn, edition_id)
    assert rows["C1"]["verdict"] == "quarantined"
    assert rows["C1"]["verdict_reasons"] == ["agent_headless", "webdriver"]


async def test_the_webdriver_trace_raises_a_vote_to_a_challenge(mail_client, mail_app, smtp, conn):
    _, _, noms = await open_voting(mail_app, conn)
    csrf = await verify_voter(mail_client, mail_app, smtp, "driven@example.org")
    ballot = await _ballot(mail_client, "C1")
    _reading(mail_app)
    r = await mail_client.post(
        "/api/votes",
        json={"nomination": noms["C1"][0], "form_token": ballot["form_token"], "webdriver": True},
        headers={**BROWSER, "X-CSRF-Token": csrf},
    )
    assert r.status_code == 428 and r.json()["error"]["code"] == "challenge_required"


async def test_the_ballot_page_shows_the_widget_and_takes_its_solution(
    mail_client, mail_app, smtp, conn
):
    _, edition_id, noms = await open_voting(mail_app, conn)
    await _easy_challenges(mail_app)
    await verify_voter(mail_client, mail_app, smtp, "page@example.org")
    page = await mail_client.get("/vote/C1", headers={**BROWSER, "Accept-Language": "fr"})
    assert 'name="webdriver"' in page.text and "/static/stepup.js" in page.text
    form = {
        "nomination": noms["C1"][1],
        "csrf_token": csrf_from(page.text),
        "form_token": re.search(r'name="form_token" value="([^"]+)"', page.text).group(1),
    }
    # Sent at once: too fast for a person to have read the list; a challenge.
    r = await mail_client.post("/vote/C1", data=form, headers={**BROWSER, "Accept-Language": "fr"})
    assert r.status_code == 428
    assert "<altcha-widget" in r.text and "/static/altcha/altcha.min.js" in r.text
    assert f'value="{noms["C1"][1]}" required checked' in r.text  # the choice kept
    noscript = re.search(r"<noscript>(.*?)</noscript>", r.text, re.S).group(1)
    assert "JavaScript" in noscript and "PAS encore" in noscript  # in the voter's language
    strings = json.loads(re.search(r'id="altcha-strings">(.*?)</script>', r.text, re.S).group(1))
    assert strings["language"] == "fr" and strings["strings"]["label"].startswith("Je suis")
    challenge = json.loads(re.search(r"challenge='([^']+)'", r.text).group(1).replace("&#34;", '"'))
    r = await mail_client.post(
        "/vote/C1",
        data={**form, "altcha": solve(challenge)},
        headers={**BROWSER, "Accept-Language": "fr"},
    )
    assert r.status_code == 202
    rows = await _ledger(mail_app, conn, edition_id)
    assert rows["C1"]["verdict"] == "counted"


async def _signin(client, email, **body):
    return await client.post("/api/voters/signin", json={"email": email, **body}, headers=BROWSER)


async def test_a_busy_network_solves_a_challenge_per_sign_in_up_to_a_ceiling(
    mail_client, mail_app, smtp, conn
):
    await open_voting(mail_app, conn)
    # Two links an hour per network, then challenges, up to 2 x 2 more an hour.
    await _easy_challenges(mail_app, verify_per_network=2, verify_network_ceiling=2)
    for i in range(2):
        assert (await _signin(mail_client, f"nat{i}@example.org")).status_code == 202
    r = await _signin(mail_client, "nat2@example.org")
    assert r.status_code == 428 and r.json()["error"]["code"] == "challenge_required"
    challenge = r.json()["error"]["challenge"]
    # Solved: the link is mailed.
    r = await _signin(mail_client, "nat2@example.org", altcha=solve(challenge))
    assert r.status_code == 202, r.text
    svc = mail_app.state.services
    await mail.send_pending(svc.db, svc.settings)
    assert smtp.mailbox.last_link("nat2@example.org", "/vote/confirm")
    # Replayed: refused.
    r = await _signin(mail_client, "nat3@example.org", altcha=solve(challenge))
    assert r.status_code == 428 and r.json()["error"]["code"] == "challenge_failed"
    # Each person solves one; past the ceiling (2 x 2 an hour) it is 429 regardless.
    codes = []
    for i in range(3, 8):
        r = await _signin(mail_client, f"nat{i}@example.org")
        if r.status_code == 428:
            r = await _signin(
                mail_client, f"nat{i}@example.org", altcha=solve(r.json()["error"]["challenge"])
            )
        codes.append(r.status_code)
    assert codes[:3] == [202, 202, 202] and codes[3:] == [429, 429]
    assert r.headers["retry-after"].isdigit()


async def test_the_mailbox_limit_stays_a_429(mail_client, mail_app, smtp, conn):
    await open_voting(mail_app, conn)
    codes = [(await _signin(mail_client, "same@example.org")).status_code for _ in range(4)]
    assert codes == [202, 202, 202, 429]


@pytest.mark.parametrize("lang", ["fr", "ar"])
async def test_the_sign_in_form_asks_for_the_challenge_in_the_voters_language(
    mail_client, mail_app, smtp, conn, lang
):
    await open_voting(mail_app, conn)
    await _easy_challenges(mail_app, verify_per_network=1)
    headers = {**BROWSER, "Accept-Language": lang}
    page = await mail_client.get("/vote", headers=headers)
    data = {"email": "first@example.org", "csrf_token": csrf_from(page.text)}
    assert (await mail_client.post("/vote/signin", data=data, headers=headers)).status_code == 200
    data["email"] = "second@example.org"
    r = await mail_client.post("/vote/signin", data=data, headers=headers)
    assert r.status_code == 428
    assert "<altcha-widget" in r.text and 'value="second@example.org"' in r.text
    noscript = re.search(r"<noscript>(.*?)</noscript>", r.text, re.S).group(1)
    assert "JavaScript" in noscript and "60" in noscript
    challenge = json.loads(re.search(r"challenge='([^']+)'", r.text).group(1).replace("&#34;", '"'))
    data["altcha"] = solve(challenge)
    r = await mail_client.post("/vote/signin", data=data, headers=headers)
    assert r.status_code == 200


async def test_a_sign_in_with_a_scripts_traces_is_asked_a_challenge(
    mail_client, mail_app, smtp, conn
):
    await open_voting(mail_app, conn)
    # A headless browser's agent alone is not enough (60 points): the link is mailed.
    headless = {"User-Agent": HEADLESS["User-Agent"], "Accept-Language": "en"}
    r = await mail_client.post(
        "/api/voters/signin", json={"email": "one@example.org"}, headers=headless
    )
    assert r.status_code == 202
    # Without the headers every browser sends as well: high (80), a challenge first.
    bare = {"User-Agent": HEADLESS["User-Agent"]}
    r = await mail_client.post(
        "/api/voters/signin", json={"email": "two@example.org"}, headers=bare
    )
    assert r.status_code == 428 and r.json()["error"]["code"] == "challenge_required"


def _same_shard_emails(secret: str, count: int) -> list[str]:
    """Addresses whose voters share a shard, so that one shard's rate limit sees them all
    (Limits counts per shard)."""
    found: dict[int, list[str]] = {}
    for n in range(10_000):
        email = f"crowd{n}@example.org"
        shard = int(identify(secret, email)[0][:8], 16) % SHARDS
        found.setdefault(shard, []).append(email)
        if len(found[shard]) == count:
            return found[shard]
    raise AssertionError("no shard held enough voters")


async def test_a_crowd_behind_one_address_solves_a_challenge_per_voter_past_the_limit(
    mail_client, mail_app, smtp, conn
):
    _, edition_id, noms = await open_voting(mail_app, conn)
    rt = runtime_for(mail_app)
    snap = await rt.catalog.current()
    # One new voter an hour from an address; a solved challenge lets one more through.
    rules = replace(
        snap.thresholds,
        challenge_max_number=2000,
        ip_limit=1,
        ip_period_s=3600,
        ip_burst=1,
        limit_step_up=2,
    )
    rt.catalog._snapshot = replace(snap, thresholds=rules, limits=Limits.from_thresholds(rules))
    first, second, third = _same_shard_emails(mail_app.state.services.settings.secret_key, 3)

    async def vote(email):
        mail_client.cookies.clear()  # the next person at the same address
        csrf = await verify_voter(mail_client, mail_app, smtp, email)
        ballot = await _ballot(mail_client, "C1")
        _reading(mail_app)
        body = {"nomination": noms["C1"][0], "form_token": ballot["form_token"]}
        headers = {**BROWSER, "X-CSRF-Token": csrf}
        r = await mail_client.post("/api/votes", json=body, headers=headers)
        if r.status_code == 428:
            assert r.json()["error"]["code"] == "challenge_required"
            solved = solve(r.json()["error"]["challenge"])
            r = await mail_client.post(
                "/api/votes", json={**body, "altcha": solved}, headers=headers
            )
        return r

    assert (await vote(first)).status_code == 202
    # Past the address's limit: a challenge, not a 429; solved, the vote counts.
    r = await vote(second)
    assert r.status_code == 202 and r.json()["counted"] is True, r.text
    # Past the stepped-up limit too: the refusal stands, challenge or not.
    r = await vote(third)
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited", r.text
    assert r.headers["retry-after"].isdigit()
    assert "NOT recorded" in r.json()["error"]["message"]
    assert r.json()["error"]["limit"] == "address"
    await flush(mail_app)
    rows = await conn.fetch("SELECT verdict FROM votes WHERE edition_id=$1", edition_id)
    assert sorted(r["verdict"] for r in rows) == ["counted", "counted"]


def test_stepped_up_limits_are_wider_and_counted_apart():
    limits = Limits.from_thresholds(
        replace(FraudRules(), ip_limit=10, net_limit=100, domain_limit=50)
    )
    wider = limits.stepped_up(10)
    assert wider.bucket == "rlx" and limits.bucket == "rl"
    assert wider.address[0] == limits.address[0] // 10
    assert wider.network[0] == limits.network[0] // 10
    assert wider.address[1] == limits.address[1]  # the same burst window
    assert may_step_up("limited", limits.bucket) and not may_step_up("limited", wider.bucket)
    assert not may_step_up("accepted", limits.bucket)
    off = Limits().stepped_up(10)
    assert off.address == (0, 0) and off.network == (0, 0)
