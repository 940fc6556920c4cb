"""CSRF: the synchronizer-token pattern (the token kept in the signed session) and the
same-origin check of the one unsafe API route that needs no session.

They read a request and answer with an ApiError, so they live in the HTTP layer (they
were in voting/security.py, which made that module import voting.web).
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from starlette.requests import Request

from ..i18n import gettext
from .policy import CSRF_HEADER, csrf_ok
from .responses import ApiError

# -- CSRF: the synchronizer-token pattern, the token kept in the signed session -------------

CSRF_FIELD = "csrf_token"
# The stack checks CSRF in the handlers that change something (web/policy.py lists it;
# the vote's edge checks it itself).
APPLIES = ("csrf",)


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return str(token)


def check_csrf(request: Request, form_value: str | None = None) -> None:
    """Refuse an unsafe request whose token does not match the session's."""
    given = form_value if form_value is not None else request.headers.get(CSRF_HEADER)
    if not csrf_ok(request.session.get("csrf"), given):
        raise ApiError(
            403,
            "csrf",
            gettext(
                "The form has expired or did not come from this site. "
                "Reload the page and try again."
            ),
        )


# -- same-origin: for the one unsafe API route that needs no session ------------------------

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin or URL; None for "null" or anything unparsable."""
    try:
        parts = urlsplit(url.strip())
        scheme, host, port = parts.scheme.lower(), (parts.hostname or "").lower(), parts.port
    except ValueError:
        return None
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    return scheme, host, port or _DEFAULT_PORTS[scheme]


def check_same_origin(request: Request, base_url: str) -> None:
    """Refuse a request a browser sent on behalf of another site.

    Good: the session's CSRF token in X-CSRF-Token; or else, from a browser that sends
    Sec-Fetch-Site, "same-origin" or "none" (typed, bookmarked); or else an Origin that
    is the configured base URL's or the request's own. A client that sends none of these
    headers is no browser acting for a page (curl, the load tests) and is let through:
    there is no cross-site request without a browser to send it."""
    expected = request.session.get("csrf")
    given = request.headers.get(CSRF_HEADER)
    if csrf_ok(expected, given):
        return
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site.strip().lower() in ("same-origin", "none"):
            return
    else:
        origin = request.headers.get("origin")
        if origin is None:
            return
        own = f"{request.url.scheme}://{request.headers.get('host', '')}"
        ours = {_origin(base_url), _origin(own)}
        if _origin(origin) in ours - {None}:
            return
    raise ApiError(
        403,
        "cross_site",
        gettext("This request came from another site. Use the form on this site."),
    )
