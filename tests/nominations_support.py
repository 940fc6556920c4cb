"""Shared pieces of the nomination tests: an edition open for nominations, a complete
nomination, and a quick sign-in (the link's real GET and POST, without the mail)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from httpx import AsyncClient

from tests.flows import csrf_from
from tests.helpers import edition_data
from voting.security import USER_LINK

# Nominations open now, for a day; review for two; voting after that.
OPEN_PHASES = {
    "nominations": ("-1d", "+1d"),
    "review": ("+1d", "+3d"),
    "voting": ("+3d", "+14d"),
}

SENTENCE = "Our community network brings affordable broadband to remote mountain villages."
# 10 words a sentence; 16 sentences make 160 words, inside the 150-200 rule.
SUMMARY = " ".join([SENTENCE] * 16)


def open_edition(**overrides: Any) -> dict[str, Any]:
    data = edition_data(**{**OPEN_PHASES, **overrides.pop("phases", {})})
    data.update(overrides)
    return data


def complete(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "category": "C2",
        "title": "Mountain Village Broadband",
        "organization": "Ministry of ICT, Rwanda",
        "stakeholder_type": "government",
        "country": "RW",
        "website": "https://broadband.example.org/villages",
        "start_date": "2019-05-01",
        "contact_email": "Prizes@Example.org",
        "summary": SUMMARY,
        "description": "A longer description of the project, its partners and its results.",
        "partners": "ITU\nLocal municipalities",
        "languages": "English, French, Kinyarwanda",
    }
    values.update(overrides)
    return values


async def sign_in_quick(client: AsyncClient, app: Any, email: str) -> None:
    token = app.state.tokens.dumps_link(USER_LINK, {"email": email, "next": "/dashboard"})
    page = await client.get(f"/signin/confirm?token={quote(token)}")
    assert page.status_code == 200, page.text
    done = await client.post(
        "/signin/confirm", data={"token": token, "csrf_token": csrf_from(page.text)}
    )
    assert done.status_code == 303, done.text


async def csrf(client: AsyncClient) -> str:
    page = await client.get("/dashboard")
    assert page.status_code == 200, page.text
    return csrf_from(page.text)


PUBLIC_ID = re.compile(r"/nominations/(N[0-9A-Z]{8})")


def public_id_from(location: str) -> str:
    match = PUBLIC_ID.search(location)
    assert match, location
    return match.group(1)
