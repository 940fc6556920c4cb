"""Operations over HTTP: `GET /metrics` for Prometheus, `/organizer/ops` for a person.

Both read the same figures (voting/metrics.py): the ops page is the metrics an organizer
watches in the final hour, refreshed in place every few seconds, without a Prometheus.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import metrics
from ..i18n import N_, gettext
from .auth import current_user, pages, require_role
from .deps import current_edition, services
from .responses import ApiError

# What each reason code means, for a person (translated where the page shows it).
REASON_LABELS = {
    "invalid": N_("Malformed vote"),
    "no_edition": N_("No edition loaded"),
    "not_signed_in": N_("No voter session"),
    "no_such_nomination": N_("No such nomination"),
    "wrong_category": N_("Nomination not in that category"),
    "already_voted": N_("Already voted in the category"),
    "rate_limited": N_("Rate limit"),
    "voting_closed": N_("After the close"),
    "voting_not_open": N_("Before the opening"),
    "unavailable": N_("Redis unavailable"),
    "outcome_unknown": N_("Redis answer lost (may be recorded)"),
    "csrf": N_("No CSRF token"),
    "honeypot": N_("Hidden field filled in"),
    "form_missing": N_("No form token"),
    "form_invalid": N_("Forged form token"),
    "form_expired": N_("Expired form token"),
    "form_other_voter": N_("Another voter's form token"),
    "form_too_fast": N_("Sent faster than a person can"),
    "form_replayed": N_("Form token used twice"),
    "form_other_category": N_("Form token of another category"),
    "webdriver": N_("Browser driven by automation"),
    "agent_headless": N_("Headless browser"),
    "agent_script": N_("Script's user agent"),
    "agent_missing": N_("No user agent"),
    "no_accept_language": N_("No Accept-Language header"),
    "no_fetch_metadata": N_("Browser without Fetch Metadata"),
    "challenge_required": N_("Challenge required"),
    "challenge_failed": N_("Challenge failed"),
    "other": N_("Other"),
}


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _may_scrape(request: Request) -> bool:
    settings = services(request).settings
    token = settings.metrics_token
    given = request.headers.get("authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    # Loopback is "this machine" only without a proxy on it: in production a reverse proxy
    # on the same host makes every visitor loopback, so there the token (or an organizer)
    # is the only way in.
    if not token and not settings.production and _loopback(request):
        return True
    user = await current_user(request)
    return user is not None and user.has("organizer")


async def metrics_endpoint(request: Request) -> Response:
    if not await _may_scrape(request):
        if services(request).settings.production:
            message = gettext(
                "The metrics need the scrape token (Authorization: Bearer, set by "
                "VOTING_METRICS_TOKEN) or an organizer's session."
            )
        else:
            message = gettext(
                "The metrics need the scrape token (Authorization: Bearer), an organizer's "
                "session, or a request from this machine."
            )
        raise ApiError(403, "forbidden", message)
    state = await metrics.read_shared_state(services(request))
    return Response(metrics.exposition(state), media_type=metrics.CONTENT_TYPE)


def _meter(request: Request) -> metrics.RateMeter:
    meter = getattr(request.app.state, "vote_rate", None)
    if meter is None:
        meter = request.app.state.vote_rate = metrics.RateMeter()
    return meter  # type: ignore[no-any-return]


async def ops_view(request: Request) -> dict[str, Any]:
    """Everything the ops page shows, read now."""
    svc = services(request)
    edition = await current_edition(request)
    state = await metrics.read_shared_state(svc)
    samples = metrics.read_samples()
    accepted = samples.by("wsis_votes_accepted_total", "category")
    quarantined = samples.by("wsis_votes_quarantined_total", "category")
    refused = samples.by("wsis_votes_refused_total", "category")
    known = [c.code for c in edition.categories]
    extra = sorted((set(accepted) | set(refused) | set(quarantined)) - set(known))
    per_category = [
        {
            "code": code,
            "name": edition.category(code).name if edition.category(code) else "",
            "accepted": int(accepted.get(code, 0)),
            "quarantined": int(quarantined.get(code, 0)),
            "refused": int(refused.get(code, 0)),
        }
        for code in [*known, *extra]
    ]
    total_accepted = samples.total("wsis_votes_accepted_total")
    held = samples.total("wsis_votes_accepted_total", state="held")
    return {
        "edition": edition,
        "voting": edition.phase("voting"),
        "now": svc.clock.now(),
        "state": state,
        "per_category": per_category,
        "totals": {
            "accepted": int(total_accepted),
            "held": int(held),
            "quarantined": int(samples.total("wsis_votes_quarantined_total")),
            "refused": int(samples.total("wsis_votes_refused_total")),
        },
        "refusals": sorted(
            samples.by("wsis_votes_refused_total", "reason").items(), key=lambda kv: -kv[1]
        ),
        "quarantines": sorted(
            samples.by("wsis_votes_quarantined_total", "reason").items(), key=lambda kv: -kv[1]
        ),
        "rate": _meter(request).rate(total_accepted),
        "routes": metrics.route_latencies(samples),
        "multiprocess": metrics.multiprocess(),
        "reason_labels": REASON_LABELS,
    }


async def ops_page(request: Request) -> Response:
    await require_role(request, "organizer")
    return pages(request).render(request, "ops/ops.html", await ops_view(request))


routes = [
    Route("/metrics", metrics_endpoint, methods=["GET"]),
    Route("/organizer/ops", ops_page, methods=["GET"]),
]
