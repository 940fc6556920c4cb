"""Email addresses: syntax, normalization, and the mailbox identity behind aliases.

Syntax and IDNA come from email-validator (a maintained library: RFC 5322/6531 syntax,
internationalized domains) instead of a hand-written pattern.
"""

from __future__ import annotations

from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from .i18n import gettext

# Providers known to ignore dots in the local part and to deliver "+tag" to the same box.
_DOTS_AND_PLUS = {"gmail.com", "googlemail.com"}
_PLUS_ONLY = {
    "outlook.com",
    "hotmail.com",
    "live.com",
    "msn.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "fastmail.com",
    "fastmail.fm",
    "proton.me",
    "protonmail.com",
    "pm.me",
    "yahoo.com",
    "gmx.com",
    "gmx.net",
    "zoho.com",
    "yandex.ru",
    "yandex.com",
}
_CANONICAL_DOMAIN = {"googlemail.com": "gmail.com"}


class InvalidEmail(ValueError):
    pass


@dataclass(frozen=True)
class Address:
    normalized: str  # where mail is sent: lower-cased, IDNA domain
    mailbox: str  # one identity per mailbox: provider aliasing removed
    domain: str  # ASCII (IDNA) domain of the mailbox


def parse_email(raw: str) -> Address:
    candidate = (raw or "").strip()
    if not candidate:
        raise InvalidEmail(gettext("Enter an email address."))
    if len(candidate) > 254:
        raise InvalidEmail(gettext("That email address is too long."))
    try:
        valid = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from None
    local = valid.local_part.lower()
    domain = valid.ascii_domain.lower()
    normalized = f"{local}@{domain}"
    box_domain = _CANONICAL_DOMAIN.get(domain, domain)
    box_local = local
    if box_domain in _DOTS_AND_PLUS:
        box_local = box_local.split("+", 1)[0].replace(".", "")
    elif box_domain in _PLUS_ONLY:
        box_local = box_local.split("+", 1)[0]
    return Address(normalized=normalized, mailbox=f"{box_local}@{box_domain}", domain=box_domain)
