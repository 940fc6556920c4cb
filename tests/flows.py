"""Journeys through the HTTP layer that many tests share."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from httpx import AsyncClient

from voting import mail

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


async def sign_in(client: AsyncClient, app: object, smtp: object, email: str) -> None:
    """Request a link, deliver it over real SMTP, open it, confirm it."""
    page = await client.get("/signin")
    response = await client.post(
        "/signin", data={"email": email, "csrf_token": csrf_from(page.text), "next": "/"}
    )
    assert response.status_code == 200, response.text
    services = app.state.services  # type: ignore[attr-defined]
    assert await mail.send_pending(services.db, services.settings) >= 1
    link = smtp.mailbox.last_link(email, "/signin/confirm")  # type: ignore[attr-defined]
    parts = urlsplit(link)
    confirm = await client.get(f"{parts.path}?{parts.query}")
    assert confirm.status_code == 200, confirm.text
    token = re.search(r'name="token" value="([^"]+)"', confirm.text)
    assert token
    done = await client.post(
        parts.path, data={"token": token.group(1), "csrf_token": csrf_from(confirm.text)}
    )
    assert done.status_code == 303, done.text
