"""Mail through an outbox table and a sender task.

A message is inserted in the same transaction as the change that caused it, so a
rollback sends nothing and a crash after commit still sends it. The sender delivers over
SMTP (aiosmtplib) when VOTING_SMTP_URL is set; in development without SMTP it writes the
message to the log and the development-only page /dev/mail lists it, so a newcomer can
click the link.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from email.message import EmailMessage
from urllib.parse import unquote, urlparse

import aiosmtplib
import asyncpg

from .logs import mask_email
from .settings import Settings

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8


async def enqueue(conn: asyncpg.Connection, to_addr: str, subject: str, body: str) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO outbox (to_addr, subject, body) VALUES ($1, $2, $3) RETURNING id",
            to_addr,
            subject,
            body,
        )
    )


async def _deliver(settings: Settings, to_addr: str, subject: str, body: str) -> None:
    if not settings.smtp_url:
        # The address and the body (whose link may carry the address, signed but readable)
        # only at debug level: /dev/mail shows them on a development machine.
        log.info("mail (no SMTP configured) to=%s subject=%s", mask_email(to_addr), subject)
        log.debug("mail to=%s\n%s", to_addr, body)
        return
    url = urlparse(settings.smtp_url)
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to_addr
    message["Subject"] = subject
    message.set_content(body)
    await aiosmtplib.send(
        message,
        hostname=url.hostname or "127.0.0.1",
        port=url.port or (465 if url.scheme == "smtps" else 25),
        username=unquote(url.username) if url.username else None,
        password=unquote(url.password) if url.password else None,
        use_tls=url.scheme == "smtps",
        start_tls=True if url.scheme == "smtp+starttls" else None,
        timeout=20,
    )


async def send_pending(pool: asyncpg.Pool, settings: Settings, limit: int = 50) -> int:
    """Deliver due messages once; several senders may run (SKIP LOCKED). Returns how many."""
    sent = 0
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT id, to_addr, subject, body, attempts FROM outbox"
            " WHERE sent_at IS NULL AND next_attempt_at <= now() AND attempts < $1"
            " ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
            MAX_ATTEMPTS,
            limit,
        )
        for row in rows:
            try:
                await _deliver(settings, row["to_addr"], row["subject"], row["body"])
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                backoff = timedelta(seconds=min(3600, 5 * 2 ** row["attempts"]))
                await conn.execute(
                    "UPDATE outbox SET attempts=attempts+1, last_error=$2,"
                    " next_attempt_at=now()+$3 WHERE id=$1",
                    row["id"],
                    str(exc)[:500],
                    backoff,
                )
                log.warning("mail %s to %s failed: %s", row["id"], mask_email(row["to_addr"]), exc)
                continue
            await conn.execute(
                "UPDATE outbox SET sent_at=now(), attempts=attempts+1 WHERE id=$1", row["id"]
            )
            sent += 1
    return sent


async def sender_loop(pool: asyncpg.Pool, settings: Settings, interval: float = 1.0) -> None:
    while True:
        try:
            while await send_pending(pool, settings) > 0:
                pass
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("mail sender: %s", exc)
        await asyncio.sleep(interval)
