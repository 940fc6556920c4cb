"""Forged, expired, replayed and misdirected tokens: sign-in links, rehearsal tokens, form
tokens and the session cookie. Each kind is signed for one purpose and passes for no other."""

import asyncio
from datetime import timedelta
from urllib.parse import quote

import pytest
from httpx import ASGITransport, AsyncClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from itsdangerous import URLSafeTimedSerializer

from tests.fixtures.flows import csrf_from
from tests.fixtures.nominations import sign_in_quick
from tests.fixtures.rig import session_cookie
from tests.fixtures.security import STAFF_PREFIXES, endpoints, everyone
from tests.fixtures.voting import flush
from voting import accounts
from voting.security import (
    FORM,
    LINK_MAX_AGE,
    REHEARSAL_VOTER,
    USER_LINK,
    VOTER_LINK,
    TokenError,
)
from voting.voters import identify

INVALID = "This link is not valid"
EXPIRED = "This link has expired"
USED = "This link has already been used"


def voter_payload(app, edition, email="victim@example.org"):
    voter_id, address = identify(app.state.services.settings.secret_key, email)
    return {"v": voter_id, "d": address.domain, "e": edition}


async def press(client, confirm_path, token):
    """The link's GET, then its button (POST) the way a browser would."""
    page = await client.get(f"{confirm_path}?token={quote(token)}")
    if page.status_code != 200 or 'name="token"' not in page.text:
        return page
    return await client.post(
        confirm_path, data={"token": token, "csrf_token": csrf_from(page.text)}
    )


@pytest.fixture
async def stage(app, conn):
    world = await everyone(app, conn)
    yield world
    await world.client.aclose()


async def test_a_forged_link_is_refused(client, app, stage):
    good = app.state.tokens.dumps_link(VOTER_LINK, voter_payload(app, stage.edition_slug))
    body, _, signature = good.rpartition(".")
    forged = f"{body}.{'A' * len(signature)}"
    # Signed with another key: what someone without the secret can make.
    outsider = URLSafeTimedSerializer("not-the-secret-key-but-long-enough", salt=VOTER_LINK)
    for token in (forged, outsider.dumps(voter_payload(app, stage.edition_slug)), "garbage"):
        r = await press(client, "/vote/confirm", token)
        assert r.status_code == 400 and INVALID in r.text
        r = await client.post("/vote/confirm", data={"token": token, "csrf_token": "x"})
        assert r.status_code in (400, 403)
    assert (await client.get("/api/session")).json()["voter"] is False


async def test_an_expired_link_is_refused(client, app, stage, clock):
    now = clock.now()
    clock.set(now - timedelta(hours=2))  # signed two hours ago: links live one hour
    old = app.state.tokens.dumps_link(VOTER_LINK, voter_payload(app, stage.edition_slug))
    staff = app.state.tokens.dumps_link(USER_LINK, {"email": "late@example.org", "next": "/"})
    clock.set(now)
    r = await press(client, "/vote/confirm", old)
    assert r.status_code == 400 and EXPIRED in r.text
    r = await press(client, "/signin/confirm", staff)
    assert r.status_code == 400 and EXPIRED in r.text
    assert (await client.get("/api/session")).json()["voter"] is False


async def test_a_link_works_once(client, app, stage):
    token = app.state.tokens.dumps_link(VOTER_LINK, voter_payload(app, stage.edition_slug))
    first = await press(client, "/vote/confirm", token)
    assert first.status_code == 303
    other = AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver")
    try:
        again = await press(other, "/vote/confirm", token)
        assert again.status_code == 400 and USED in again.text
        assert (await other.get("/api/session")).json()["voter"] is False
        staff = app.state.tokens.dumps_link(USER_LINK, {"email": "once@example.org", "next": "/"})
        assert (await press(other, "/signin/confirm", staff)).status_code == 303
        replay = AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver")
        again = await press(replay, "/signin/confirm", staff)
        await replay.aclose()
        assert again.status_code == 400 and USED in again.text
    finally:
        await other.aclose()


async def test_a_token_signed_for_one_purpose_passes_for_no_other(client, app, stage, conn):
    await accounts.grant(conn, "organizer@example.org", "organizer")
    tokens = app.state.tokens
    voter = voter_payload(app, stage.edition_slug)
    as_voter_link = tokens.dumps_link(VOTER_LINK, {**voter, "email": "organizer@example.org"})
    as_staff_link = tokens.dumps_link(USER_LINK, {"email": "organizer@example.org", "next": "/"})
    as_form = tokens.dumps(FORM, {**voter, "email": "organizer@example.org"})
    as_rehearsal = tokens.dumps(REHEARSAL_VOTER, {**voter, "email": "organizer@example.org"})
    # A voter's link (or a form or rehearsal token) does not sign anyone in as staff:
    # not the organizer its payload names.
    for token in (as_voter_link, as_form, as_rehearsal):
        r = await press(client, "/signin/confirm", token)
        assert r.status_code == 400 and INVALID in r.text
        assert (
            await client.get("/organizer", headers={"accept": "application/json"})
        ).status_code in (
            303,
            401,
        )
    # A staff link, form or rehearsal token does not open a voter session.
    for token in (as_staff_link, as_form, as_rehearsal):
        r = await press(client, "/vote/confirm", token)
        assert r.status_code == 400 and INVALID in r.text
        assert (await client.get("/api/session")).json()["voter"] is False
    # A link is no rehearsal token either.
    r = await client.post("/api/rehearsal/session", json={"token": as_voter_link})
    assert r.status_code == 403 and r.json()["error"]["code"] == "bad_token"


async def test_a_voter_session_is_not_a_staff_session(client, app, stage):
    token = app.state.tokens.dumps_link(VOTER_LINK, voter_payload(app, stage.edition_slug))
    assert (await press(client, "/vote/confirm", token)).status_code == 303
    headers = {"accept": "application/json"}
    staff_pages = [
        e.path
        for e in endpoints(app)
        if e.method == "GET" and e.path.startswith(STAFF_PREFIXES) and "{" not in e.path
    ]
    assert len(staff_pages) >= 3
    for path in [*staff_pages, "/dashboard"]:
        r = await client.get(path, headers=headers)
        assert r.status_code in (303, 401), (path, r.status_code)


async def test_a_session_cookie_that_was_not_signed_by_us_is_ignored(app, stage, conn):
    user = await accounts.grant(conn, "boss@example.org", "organizer")
    session = {"uid": user.id, "gen": user.session_generation, "csrf": "t"}
    forged = session_cookie("someone-elses-secret-key-of-enough-length", session)
    ours = session_cookie(app.state.services.settings.secret_key, session)
    tampered = ours.replace(ours.split(".")[0], session_cookie("x" * 40, {"uid": 1}).split(".")[0])
    headers = {"accept": "application/json"}
    for cookie, expected in ((forged, 401), (tampered, 401), (ours, 200)):
        async with AsyncClient(
            transport=ASGITransport(app=app),
            base_url="http://testserver",
            cookies={"wsis_session": cookie},
        ) as http:
            r = await http.get("/organizer/voting", headers=headers)
            assert r.status_code == expected, (cookie[:20], r.status_code)


async def test_a_forged_form_token_is_recorded_as_such_never_as_a_clean_form(app, stage, conn):
    """A vote's form token only ever adds a reason to look at the vote: a forged one is
    recorded with the vote as a reason, for the fraud checks."""
    r = await stage.client.post(
        "/api/votes",
        json={"nomination": stage.values["public_id"], "form_token": "forged.token.value"},
        headers={"x-csrf-token": stage.csrf},
    )
    assert r.status_code == 202, r.text
    await flush(app)
    row = await conn.fetchrow(
        "SELECT verdict_reasons FROM votes WHERE receipt=$1", r.json()["receipt"]
    )
    assert any(reason.startswith("form_") for reason in row["verdict_reasons"]), row


async def test_sign_in_as_staff_still_works(client, app, conn, stage):
    await sign_in_quick(client, app, "staff.ok@example.org")
    assert (await client.get("/dashboard")).status_code == 200


# -- other spellings of a spent link -----------------------------------------------------

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _spare_bits(token: str, flip: int) -> str:
    """The last character with its unused low bits changed (the decoded bytes stay)."""
    signature = token.rpartition(".")[2]
    spare = (len(signature) * 6) % 8  # bits of the last character beyond the last byte
    index = _B64.index(token[-1]) ^ (flip & ((1 << spare) - 1))
    return token[:-1] + _B64[index]


@st.composite
def spellings(draw, token: str) -> str:
    """Strings itsdangerous may read as the same token: padding, spare low bits,
    characters its base64 decoding skips, case changes, in any combination."""
    body, _, signature = token.rpartition(".")
    variant = _spare_bits(token, draw(st.integers(0, 15)))
    signature = variant.rpartition(".")[2]
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.integers(0, len(signature)))
        junk = draw(st.sampled_from(["=", "==", "!", "\n", " ", "é", "~", "+", "/", "*"]))
        signature = signature[:where] + junk + signature[where:]
    if draw(st.booleans()):
        where = draw(st.integers(0, len(signature) - 1))
        signature = signature[:where] + signature[where].swapcase() + signature[where + 1 :]
    return f"{body}.{signature}" + "=" * draw(st.integers(0, 4))


def accepted_spellings(tokens, purpose: str, token: str, limit: int = 20) -> list[str]:
    """Other strings than `token` that the serializer reads as the same payload."""
    payload = tokens.loads(purpose, token, LINK_MAX_AGE)
    found: set[str] = set()

    @hypothesis_settings(
        max_examples=400,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(spellings(token))
    def collect(variant: str) -> None:
        if variant == token or len(found) >= limit:
            return
        try:
            same = tokens.loads(purpose, variant, LINK_MAX_AGE) == payload
        except TokenError:
            return
        if same:
            found.add(variant)

    collect()
    # The two everyone can make by hand, always among them.
    found.update({token + "=", token + "===", _spare_bits(token, 1)} - {token})
    accepted = {v for v in found if _reads_as(tokens, purpose, v, payload)}
    assert len(accepted) >= 3, accepted
    return sorted(accepted)


def _reads_as(tokens, purpose, variant, payload) -> bool:
    try:
        return bool(tokens.loads(purpose, variant, LINK_MAX_AGE) == payload)
    except TokenError:
        return False


def test_only_the_signers_own_spelling_of_a_link_is_read():
    from voting.clock import SystemClock
    from voting.security import Tokens

    tokens = Tokens("a-secret-key-long-enough-for-the-property-test", SystemClock())
    for purpose, payload in (
        (USER_LINK, {"email": "a@example.org", "next": "/"}),
        (VOTER_LINK, {"v": "a" * 32, "d": "example.org", "e": "edition"}),
        # Long enough for itsdangerous to compress it (a payload segment starting with ".").
        (USER_LINK, {"email": "long@example.org", "next": "/nominations/" * 40}),
    ):
        token = tokens.dumps_link(purpose, payload)
        if len(payload.get("next", "")) > 100:
            assert token.startswith(".")  # compressed
        assert tokens.loads_link(purpose, token, LINK_MAX_AGE)[
            "email" if purpose == USER_LINK else "v"
        ]
        for variant in accepted_spellings(tokens, purpose, token):
            with pytest.raises(TokenError) as refused:
                tokens.loads_link(purpose, variant, LINK_MAX_AGE)
            assert refused.value.reason == "invalid"
        # A link signed without its nonce (or with a short one) is no link.
        for bare in ({**payload}, {**payload, "n": "x"}, {**payload, "n": 12345678}):
            with pytest.raises(TokenError):
                tokens.loads_link(purpose, tokens.dumps(purpose, bare), LINK_MAX_AGE)


async def _post_confirm(app, path: str, token: str) -> tuple[int, str, dict]:
    """A fresh browser posts the link straight to its confirm button's address."""
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as b:
        page = await b.get("/signin")
        r = await b.post(path, data={"token": token, "csrf_token": csrf_from(page.text)})
        session = (await b.get("/api/session")).json()
        staff = await b.get("/dashboard", headers={"accept": "application/json"})
        return r.status_code, r.text, {"voter": session["voter"], "staff": staff.status_code}


@pytest.mark.parametrize("kind", ["staff", "voter"])
async def test_a_spent_link_stays_spent_whatever_its_spelling(app, stage, kind):
    tokens = app.state.tokens
    if kind == "staff":
        purpose, path = USER_LINK, "/signin/confirm"
        token = tokens.dumps_link(purpose, {"email": "once.only@example.org", "next": "/"})
    else:
        purpose, path = VOTER_LINK, "/vote/confirm"
        token = tokens.dumps_link(purpose, voter_payload(app, stage.edition_slug, "one@x.org"))
    variants = accepted_spellings(tokens, purpose, token)
    status, _, _ = await _post_confirm(app, path, token)
    assert status == 303
    for variant in variants:
        status, text, signed_in = await _post_confirm(app, path, variant)
        assert status == 400 and (USED in text or INVALID in text), (variant, status)
        assert signed_in["voter"] is False and signed_in["staff"] in (303, 401), variant
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://x") as b:
            assert (await press(b, path, variant)).status_code == 400, variant


@pytest.mark.parametrize("kind", ["staff", "voter"])
async def test_two_confirms_of_one_link_at_once_sign_in_once(app, stage, kind):
    tokens = app.state.tokens
    if kind == "staff":
        path = "/signin/confirm"
        token = tokens.dumps_link(USER_LINK, {"email": "race@example.org", "next": "/"})
    else:
        path = "/vote/confirm"
        token = tokens.dumps_link(VOTER_LINK, voter_payload(app, stage.edition_slug, "r@x.org"))
    results = await asyncio.gather(*(_post_confirm(app, path, token) for _ in range(6)))
    assert sorted(status for status, _, _ in results) == [303] + [400] * 5
