"""Typo help on email domains ("did you mean gmail.com?"), one home for every form that
takes an address: the staff sign-in, the voters' link request, the staff invitation.

When the domain typed is one slip from a webmail provider's (voting/emails.py's
`suggest_address`), the page asks once, before anything is sent or granted, and the
person chooses: the suggestion or what they typed. Either button posts the form again
with every other field it had (`carry`) and `as_typed` set to the address chosen, so
the question is not asked twice. The page shows it with the macro in
templates/_email_question.html.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..emails import suggest_address

AS_TYPED = "as_typed"
# Never carried: the token is the page's own, and the answer is the buttons'.
_NOT_CARRIED = frozenset({"csrf_token", AS_TYPED})


@dataclass(frozen=True)
class EmailQuestion:
    field: str
    typed: str
    suggestion: str
    carry: tuple[tuple[str, str], ...]


def email_question(items: Iterable[tuple[str, Any]], field: str = "email") -> EmailQuestion | None:
    """The question to ask about the address in `field` of a posted form (its items, as
    `FormData.multi_items()` gives them), or None: no likely slip, or already answered."""
    pairs = [(k, v) for k, v in items if isinstance(v, str)]
    values = dict(pairs)
    typed = values.get(field, "").strip()
    suggestion = suggest_address(typed)
    if suggestion is None:
        return None
    if values.get(AS_TYPED, "").strip().lower() == typed.lower():
        return None
    carry = tuple((k, v) for k, v in pairs if k != field and k not in _NOT_CARRIED)
    return EmailQuestion(field, typed, suggestion, carry)
