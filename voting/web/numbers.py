"""Whole numbers from the outside (query strings, path segments, headers), one way.

Python's int() is generous: it takes " 1", "1_000", "+1" and the digits of every script
("١٢٣" is 123), and any size, while PostgreSQL's bigint stops at 2**63 - 1 (past it, a
query fails with a 500). Every number the web layer reads goes through `whole_number`:
ASCII digits only, nothing around them, and within the bounds the caller gives (never
past bigint), else None; the caller answers 422 for a query parameter (`number_problem` says
what is needed), 404 for an id in the path (`path_id`).
"""

from __future__ import annotations

from starlette.requests import Request

from ..i18n import gettext
from .responses import ApiError

BIGINT_MAX = 2**63 - 1
_ASCII_DIGITS = frozenset("0123456789")
_MAX_DIGITS = len(str(BIGINT_MAX))


def whole_number(text: str | bytes | None, *, low: int = 0, high: int = BIGINT_MAX) -> int | None:
    """The number `text` writes in ASCII digits, if it lies in [low, high]; else None."""
    if text is None:
        return None
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            return None
    if not text or len(text) > _MAX_DIGITS or not _ASCII_DIGITS.issuperset(text):
        return None
    value = int(text)
    return value if low <= value <= min(high, BIGINT_MAX) else None


def path_id(request: Request, name: str, message: str) -> int:
    """The row id in the path parameter `name` (1 to 2**63 - 1); anything else names no
    row, so 404 with `message`."""
    found = whole_number(request.path_params.get(name), low=1)
    if found is None:
        raise ApiError(404, "not_found", message)
    return found


def number_problem(low: int, high: int) -> str:
    """What a field holding a number in [low, high] needs, for the person."""
    if high >= BIGINT_MAX:
        return gettext("Give a whole number, {low} or more.").format(low=low)
    return gettext("Give a whole number from {low} to {high}.").format(low=low, high=high)
