"""Where a person returns after signing in: a local path, never another site."""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote, urlsplit

__all__ = ["safe_next"]


def safe_next(raw: str | None, default: str = "/dashboard") -> str:
    """A local path to return to after signing in, else `default`: a sign-in link must
    not become an open redirect.

    Accepted: one leading "/", then a path (and query) a browser resolves on this site.
    Refused: scheme-relative "//host" and "/\\host" (browsers read a backslash as a
    slash), any backslash, "https:" and other schemes, control characters and spaces
    (browsers strip tabs and newlines, so "/\t/evil" is "//evil"), and the same tricks
    percent-encoded ("/%2F%2Fevil", "%5C"), decoded as many times as a chain of
    redirects might decode them."""
    if not raw or len(raw) > 2000:
        return default
    text = raw
    for layer in range(4):
        if not _local_path(text, spaces=layer > 0):
            return default
        decoded = unquote(text)
        if decoded == text:
            return raw
        text = decoded
    return default


def _local_path(text: str, *, spaces: bool) -> bool:
    """One layer of `safe_next`; a decoded space ("%20" in a query) is harmless."""
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        return False
    for ch in text:
        if unicodedata.category(ch)[0] in "CZ" and not (spaces and ch == " "):
            return False
    parts = urlsplit(text)
    return not parts.scheme and not parts.netloc
