"""The rehearsal's flows (locust): visitors, voters, returning voters, against a rehearsal
edition (voting/rehearsal.py), never the real one.

- Visitors browse the categories and nominations, read a few, and leave.
- Voters sign in with a minted token (POST /api/rehearsal/session, what confirming an
  email link gives a real voter), then vote in one to all categories, each vote with a
  fresh form token and a pause to read the list; a few nominations draw most votes.
- Returning voters vote, come back later in a new session and try to vote again in the
  same category: the engine must refuse with 409, whatever the load.

`voting loadtest` runs it (loadtests/loadtest.py); settings come from the environment:
LOAD_EDITION (the rehearsal's slug), LOAD_VOTERS (the minted tokens, one a line),
LOAD_THINK (seconds between a voter's form and its vote, default 2.5: the anti-fraud
checks quarantine faster votes), LOAD_OUTCOMES (where to write the vote outcomes).
Each simulated voter comes from its own address in 2001:db8::/32 (documentation prefix)
through X-Forwarded-For: the target must trust its proxy headers, as production does.
"""

from __future__ import annotations

import json
import os
import random
import threading
from collections import Counter
from typing import Any

from locust import FastHttpUser, between, events, task

EDITION = os.environ.get("LOAD_EDITION", "")
THINK = float(os.environ.get("LOAD_THINK", "2.5"))
# Popularity skew: the k-th most popular nomination of a category draws 1/k^S of the votes.
SKEW = 1.2


class Tokens:
    """The minted voter tokens, each handed out once."""

    def __init__(self, path: str | None) -> None:
        self._tokens: list[str] = []
        if path:
            with open(path, encoding="utf-8") as f:
                self._tokens = [line.strip() for line in f if line.strip()]
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> tuple[int, str] | None:
        with self._lock:
            if self._next >= len(self._tokens):
                return None
            self._next += 1
            return self._next - 1, self._tokens[self._next - 1]


TOKENS = Tokens(os.environ.get("LOAD_VOTERS"))
# What the ledger check compares: every vote answer by kind.
OUTCOMES: Counter[str] = Counter()
_catalog: dict[str, list[str]] = {}
_catalog_lock = threading.Lock()


def address(n: int) -> str:
    return f"2001:db8:{n % 65536:x}::{n // 65536 + 1:x}"


def catalog(client: Any) -> dict[str, list[str]]:
    """Category -> nominations of the rehearsal, read once through the public API."""
    with _catalog_lock:
        if _catalog:
            return _catalog
        offset = 0
        while True:
            r = client.get(
                f"/api/nominations?edition={EDITION}&limit=100&offset={offset}",
                name="/api/nominations (all)",
            )
            items = r.json().get("nominations", []) if r.status_code == 200 else []
            for item in items:
                _catalog.setdefault(item["category"], []).append(item["public_id"])
            if len(items) < 100:
                break
            offset += 100
        return _catalog


def popular_pick(nominations: list[str]) -> str:
    weights = [1 / (k + 1) ** SKEW for k in range(len(nominations))]
    return random.choices(nominations, weights)[0]


class Visitor(FastHttpUser):
    """Reads the categories and a few nominations, then leaves."""

    weight = 3
    wait_time = between(1, 4)

    @task
    def browse(self) -> None:
        self.client.cookiejar.clear()  # each visit is a new visitor
        self.client.get("/categories", name="/categories (page)")
        self.client.get(f"/api/editions/{EDITION}", name="/api/editions/{slug}")
        cats = catalog(self.client)
        if not cats:
            return
        category = random.choice(sorted(cats))
        self.client.get(
            f"/api/nominations?edition={EDITION}&category={category}",
            name="/api/nominations?category",
        )
        for public_id in random.sample(cats[category], min(2, len(cats[category]))):
            self.client.get(f"/api/nominations/{public_id}", name="/api/nominations/{id}")
            self.client.get(f"/nominations/{public_id}", name="/nominations/{id} (page)")


class Voter(FastHttpUser):
    """Signs in with a minted token and votes in one to all categories."""

    weight = 6
    wait_time = between(0.5, 2)

    def sign_in(self, n: int, token: str) -> str | None:
        self.client.cookiejar.clear()
        self.ip = address(n)
        r = self.client.post(
            "/api/rehearsal/session",
            json={"token": token},
            headers={"X-Forwarded-For": self.ip},
            name="/api/rehearsal/session (sign in)",
        )
        return r.json()["csrf_token"] if r.status_code == 200 else None

    def vote(self, csrf: str, category: str, nomination: str, *, name: str, expect: int) -> int:
        # Open the ballot as the page does: its form token is bound to the category and
        # the reading time counts from here (a vote without one scores form_missing).
        ballot = self.client.get(
            f"/api/ballot/{category}",
            headers={"X-Forwarded-For": self.ip},
            name="/api/ballot/{category}",
        )
        form = ballot.json().get("form_token") if ballot.status_code == 200 else None
        self._sleep(THINK)
        body: dict[str, Any] = {"nomination": nomination, "form_token": form}
        status, challenge = self._post_vote(body, csrf, name=name, expect=expect)
        if challenge is not None:
            # A vote the risk score asks a challenge of (sent faster than a person reads,
            # say): solve it as a voter's browser does, and send it again.
            body["altcha"] = _solve(challenge)
            status, _ = self._post_vote(body, csrf, name=f"{name} (solved)", expect=expect)
        return status

    def _post_vote(
        self, body: dict[str, Any], csrf: str, *, name: str, expect: int
    ) -> tuple[int, dict[str, Any] | None]:
        """(status, the challenge of a 428 to solve, else None)."""
        with self.client.post(
            "/api/votes",
            json=body,
            headers={"X-CSRF-Token": csrf, "X-Forwarded-For": self.ip},
            name=name,
            catch_response=True,
        ) as r:
            OUTCOMES[f"{name}:{r.status_code}"] += 1
            if r.status_code == 428 and "altcha" not in body:
                r.success()  # a step-up, not a failure
                return r.status_code, r.json()["error"]["challenge"]
            if r.status_code == expect:
                r.success()
            else:
                r.failure(f"expected {expect}, got {r.status_code}: {r.text[:200]}")
            return r.status_code, None

    def _sleep(self, seconds: float) -> None:
        import gevent

        gevent.sleep(random.uniform(0.8, 1.2) * seconds)

    @task
    def ballot(self) -> None:
        taken = TOKENS.take()
        cats = catalog(self.client)
        if taken is None or not cats:
            OUTCOMES["no voter token left"] += 1
            return
        csrf = self.sign_in(*taken)
        if csrf is None:
            return
        # Most voters vote in one to three categories; one in ten fills the whole ballot.
        k = len(cats) if random.random() < 0.1 else random.randint(1, min(3, len(cats)))
        for category in random.sample(sorted(cats), k):
            self.vote(csrf, category, popular_pick(cats[category]), name="vote", expect=202)
        self.client.get("/api/votes/mine", name="/api/votes/mine")


class ReturningVoter(Voter):
    """Votes, comes back in a new session, tries again in the same category: 409."""

    weight = 1

    @task
    def ballot(self) -> None:
        taken = TOKENS.take()
        cats = catalog(self.client)
        if taken is None or not cats:
            OUTCOMES["no voter token left"] += 1
            return
        category = random.choice(sorted(cats))
        csrf = self.sign_in(*taken)
        if (
            csrf is None
            or self.vote(csrf, category, popular_pick(cats[category]), name="vote", expect=202)
            != 202
        ):
            return
        self._sleep(THINK)
        csrf = self.sign_in(*taken)
        if csrf is not None:
            self.vote(csrf, category, random.choice(cats[category]), name="second vote", expect=409)


def _solve(challenge: dict[str, Any]) -> str:
    """The ALTCHA payload solving `challenge`, by the protocol's own library (the engine's
    voting/antifraud/challenge.py issues it; imported from here to keep this file free of
    the engine's package, which locust may import from another checkout)."""
    import altcha

    parsed = altcha.Challenge.from_dict(challenge)
    solution = altcha.solve_challenge(parsed)
    if solution is None:
        raise RuntimeError("challenge not solved in time")
    return str(altcha.Payload(parsed, solution).to_base64())


@events.test_stop.add_listener
def _write_outcomes(environment: Any, **_kw: Any) -> None:
    path = os.environ.get("LOAD_OUTCOMES")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(dict(OUTCOMES), f)
