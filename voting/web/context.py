"""What the voting handlers share: the per-process runtime of the hot path (the Ballot
and the in-process Catalog) and the current edition's snapshot.

It sits below `web/voting.py`, `web/edge.py` and `web/chart_data.py` so that all three
import it and none imports another's module for it (no import cycle).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ..antifraud.challenge import Challenges
from ..antifraud.minimise import address_key
from ..ballot import Ballot
from ..ballots.casting import Casting
from ..catalog import Catalog, Snapshot
from ..i18n import gettext
from .responses import ApiError

__all__ = ["VotingRuntime", "runtime", "runtime_of", "snapshot"]


class VotingRuntime:
    """Per-process state of the hot path, built once at start-up."""

    def __init__(self, request_app: Any) -> None:
        svc = request_app.state.services
        prefix = svc.settings.redis_prefix
        self.catalog = Catalog(svc.db)
        self.casting = Casting(
            # Addresses reach Redis and the ledger only as their keyed hash (minimise.py).
            Ballot(svc.r, prefix, address_key=address_key(svc.settings.secret_key)),
            self.catalog,
            request_app.state.tokens,
            svc.clock,
            Challenges(svc.settings.secret_key, svc.r, prefix),
            svc.db,
            prefix,
        )

    @property
    def ballot(self) -> Ballot:
        return self.casting.ballot

    @ballot.setter
    def ballot(self, ballot: Ballot) -> None:
        # (tests put a Ballot on a dead Redis in its place)
        self.casting.ballot = ballot


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
