"""What the voting handlers share: the per-process runtime of the hot path (the Ballot
and the in-process Catalog) and the current edition's snapshot.

It sits below `web/voting.py`, `web/vote_front.py` and `web/chart_data.py` so that all
three import it and none imports another's module for it (no import cycle).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ..antifraud.minimise import address_key
from ..ballot import Ballot
from ..catalog import Catalog, Snapshot
from ..i18n import gettext
from .responses import ApiError

__all__ = ["VotingRuntime", "runtime", "runtime_of", "snapshot"]


class VotingRuntime:
    """Per-process state of the hot path, built once at start-up."""

    def __init__(self, request_app: Any) -> None:
        svc = request_app.state.services
        # Addresses reach Redis and the ledger only as their keyed hash (minimise.py).
        self.ballot = Ballot(
            svc.r, svc.settings.redis_prefix, address_key=address_key(svc.settings.secret_key)
        )
        self.catalog = Catalog(svc.db)


def runtime(request: Request) -> VotingRuntime:
    return runtime_of(request.app)


def runtime_of(app: Any) -> VotingRuntime:
    rt = getattr(app.state, "voting", None)
    if rt is None:
        rt = VotingRuntime(app)
        app.state.voting = rt
    return rt  # type: ignore[no-any-return]


async def snapshot(request: Request) -> Snapshot:
    snap = await runtime(request).catalog.current()
    if snap is None:
        raise ApiError(404, "no_edition", gettext("No edition is loaded yet."))
    return snap
