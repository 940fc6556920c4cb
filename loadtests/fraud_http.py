"""A slice of the fraud simulation over HTTP, against a real `voting serve`.

    python -m loadtests.fraud_http --url http://127.0.0.1:8000 --database-url postgresql://...

`voting fraud simulate` replays three days through the engine's functions in simulated
time; this slice sends real requests, as browsers and bots do, in real time: the JSON
sign-in (with its step-up challenge past a network's limit), the confirmation link read
from the outbox, the confirmation page and its form, the ballot API's form token, the
vote (with its challenge when asked), then the offline detectors. Each simulated client
names its own address in X-Forwarded-For: run the server with
VOTING_TRUST_PROXY_HEADERS=true (it then believes the header from loopback, the default
VOTING_FORWARDED_ALLOW_IPS), or every client is one address. Challenges are solved for
real, with the `altcha` library's solver, as a client would.

Cases are a subset of the simulator's (voting/antifraud/simulator.py CASES), at sizes a
CI run affords; the figures are the same kind: per case, votes tried, kept out (refused
at sign-in or at the vote, held inline, or held by a detector), challenges solved.
The server's edition should use small challenges (`challenge_max_number`) and the default
`min_form_seconds` (2 s), which the clients' waits assume.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx

from voting.antifraud.challenge import FIELD as CHALLENGE_FIELD
from voting.antifraud.challenge import solve
from voting.antifraud.config import FraudRules
from voting.antifraud.simulator import AGENTS, CASE, MANAGED_BROWSER, WEBMAIL

# case -> how many voters (the simulator's cases, smaller)
SIZES = {
    "organic": 30,
    "ministry": 40,
    "farm": 24,
    "tokenless": 12,
    "replayed": 12,
    "too_fast": 12,
    "headless": 12,
    "aliases": 8,
    "throwaway": 5,
}
HEADLESS_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0"
LINK = re.compile(r"(https?://\S+/vote/confirm\?token=\S+)")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TOKEN = re.compile(r'name="token" value="([^"]+)"')


@dataclass
class Client:
    """One simulated person or bot: where it is, what it sends."""

    case: str
    email: str
    ip: str
    agent: str
    browser: bool = True  # sends Accept-Language and Fetch Metadata
    wait_s: float = 2.5  # from the ballot's token to the vote (the edition: min 2 s)
    form: str = "own"  # the form token: own | none | other (another voter's)
    webdriver: bool = False
    challenges: int = 0

    def headers(self) -> dict[str, str]:
        found = {"User-Agent": self.agent, "X-Forwarded-For": self.ip}
        if self.browser:
            found |= {
                "Accept-Language": "en-GB,en;q=0.8",
                "Sec-Fetch-Site": "same-origin",
                "Sec-Fetch-Mode": "cors",
            }
        return found


@dataclass
class SliceReport:
    tried: Counter[str] = field(default_factory=Counter)
    kept_out: Counter[str] = field(default_factory=Counter)
    challenges: Counter[str] = field(default_factory=Counter)
    # case -> what became of its votes (answer codes, verdicts)
    detail: dict[str, Counter[str]] = field(default_factory=dict)
    receipts: dict[str, str] = field(default_factory=dict)  # receipt -> case

    def note(self, case: str, what: str, *, out: bool) -> None:
        self.tried[case] += 1
        self.kept_out[case] += 1 if out else 0
        self.detail.setdefault(case, Counter())[what] += 1

    def share_out(self, case: str) -> float:
        return self.kept_out[case] / self.tried[case] if self.tried[case] else 0.0

    def lines(self) -> list[str]:
        out = [f"{'case':<12} {'kind':<7} {'votes':>5} {'result':>10} {'challenges':>10}  detail"]
        for case in SIZES:
            attack = CASE[case].attack
            share = 100 * self.share_out(case)
            figure = f"{share:5.1f}% out" if attack else f"{share:5.1f}% hit"
            detail = ", ".join(f"{k} {v}" for k, v in self.detail.get(case, Counter()).items())
            out.append(
                f"{case:<12} {'attack' if attack else 'organic':<7} {self.tried[case]:>5}"
                f" {figure:>10} {self.challenges[case]:>10}  {detail}"
            )
        return out


def clients(seed: int, sizes: dict[str, int] = SIZES) -> list[Client]:
    rng = random.Random(seed)

    def ip() -> str:
        a, b, c = rng.randrange(11, 200), rng.randrange(256), rng.randrange(256)
        return f"{a}.{b}.{c}.{rng.randrange(1, 255)}"

    made: list[Client] = []
    for n in range(sizes["organic"]):
        made.append(
            Client(
                "organic",
                f"person{n}.{seed}@{rng.choice(WEBMAIL)}",
                ip(),
                rng.choice(AGENTS),
                wait_s=rng.uniform(2.3, 3.5),
            )
        )
    office = f"196.41.{rng.randrange(256)}.10"
    for n in range(sizes["ministry"]):
        made.append(
            Client(
                "ministry",
                f"staff{n}@ministry.gov.example",
                office,
                MANAGED_BROWSER,
                wait_s=rng.uniform(2.3, 3.5),
            )
        )
    farm = f"45.33.{rng.randrange(256)}"
    for n in range(sizes["farm"]):
        made.append(
            Client(
                "farm",
                f"f{n}x{seed}@farm-mail.example",
                f"{farm}.{rng.randrange(2, 250)}",
                "python-requests/2.31.0",
                browser=False,
                wait_s=2.1,
            )
        )
    for case, form in (("tokenless", "none"), ("replayed", "other")):
        for n in range(sizes[case]):
            made.append(
                Client(
                    case,
                    f"{case}{n}.{seed}@example.net",
                    ip(),
                    rng.choice(AGENTS),
                    form=form,
                    wait_s=rng.uniform(2.3, 3.5),
                )
            )
    for n in range(sizes["too_fast"]):
        made.append(
            Client("too_fast", f"quick{n}.{seed}@example.net", ip(), rng.choice(AGENTS), wait_s=0.0)
        )
    for n in range(sizes["headless"]):
        made.append(
            Client(
                "headless",
                f"hl{n}.{seed}@example.net",
                ip(),
                HEADLESS_AGENT,
                webdriver=True,
                wait_s=rng.uniform(2.3, 3.5),
            )
        )
    spellings = [
        "jane.mobiliser",
        "janemobiliser",
        "jane.mobiliser+a",
        "JANE.MOBILISER",
        "j.a.n.e.mobiliser",
        "janemobiliser+b",
        "jane.mob.iliser",
        "jane.mobiliser+c",
    ]
    for local in spellings[: sizes["aliases"]]:
        made.append(Client("aliases", f"{local}@gmail.com", ip(), rng.choice(AGENTS)))
    for n in range(sizes["throwaway"]):
        made.append(Client("throwaway", f"fan{n}.{seed}@mailinator.com", ip(), rng.choice(AGENTS)))
    return made


ReadLink = Callable[[str], Awaitable[str | None]]


def outbox_reader(pool: asyncpg.Pool) -> ReadLink:
    """The latest confirmation link mailed to an address, from the engine's outbox."""

    async def read(email: str) -> str | None:
        body = await pool.fetchval(
            "SELECT body FROM outbox WHERE lower(to_addr) = lower($1) ORDER BY id DESC LIMIT 1",
            email,
        )
        match = LINK.search(body or "")
        return match.group(1) if match else None

    return read


async def _post_solving(
    http: httpx.AsyncClient, client: Client, url: str, body: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    """POST, and when the answer is 428, solve its challenge and send once more."""
    answer = await http.post(url, json=body, headers=headers)
    if answer.status_code == 428:
        challenge = answer.json()["error"]["challenge"]
        solved = await asyncio.to_thread(solve, challenge)
        client.challenges += 1
        answer = await http.post(url, json={**body, CHALLENGE_FIELD: solved}, headers=headers)
    return answer


async def _one(
    base_url: str,
    client: Client,
    target: tuple[str, str],
    read_link: ReadLink,
    report: SliceReport,
    shared_token: dict[str, str],
) -> None:
    async with httpx.AsyncClient(base_url=base_url, headers=client.headers(), timeout=60) as http:
        signin = await _post_solving(
            http, client, "/api/voters/signin", {"email": client.email}, {}
        )
        if signin.status_code != 202:
            report.note(client.case, f"signin_{signin.status_code}", out=True)
            return
        link = await read_link(client.email)
        if link is None:
            report.note(client.case, "no_link", out=True)
            return
        parts = urlsplit(link)
        page = await http.get(f"{parts.path}?{parts.query}")
        csrf, token = CSRF.search(page.text), TOKEN.search(page.text)
        if page.status_code != 200 or not csrf or not token:
            report.note(client.case, f"confirm_{page.status_code}", out=True)
            return
        done = await http.post(
            "/vote/confirm", data={"token": token.group(1), "csrf_token": csrf.group(1)}
        )
        if done.status_code != 303:
            report.note(client.case, f"confirm_{done.status_code}", out=True)
            return
        session = (await http.get("/api/session")).json()
        category, nomination = target
        ballot = await http.get(f"/api/ballot/{category}")
        form_token = ballot.json().get("form_token")
        if client.form == "other":
            form_token = shared_token.setdefault(category, form_token)
        await asyncio.sleep(client.wait_s)
        body: dict[str, Any] = {"nomination": nomination}
        if client.form != "none":
            body["form_token"] = form_token
        if client.webdriver:
            body["webdriver"] = True
        vote = await _post_solving(
            http, client, "/api/votes", body, {"X-CSRF-Token": session["csrf_token"]}
        )
        if vote.status_code == 202:
            answer = vote.json()
            if not answer["counted"]:
                report.note(client.case, "held_inline", out=True)
            else:  # counted for now: the detectors have their say (judge)
                report.receipts[answer["receipt"]] = client.case
            return
        report.note(client.case, f"vote_{vote.status_code}", out=True)


async def run(
    base_url: str,
    nominations: dict[str, list[str]],
    read_link: ReadLink,
    *,
    seed: int = 1,
    concurrency: int = 12,
    sizes: dict[str, int] = SIZES,
) -> SliceReport:
    """Send every client's sign-in and vote; votes answered 202 and counted are left for
    `settle` to judge once the detectors ran."""
    rng = random.Random(seed)
    categories = sorted(nominations)
    # Each attack backs a project of its own (the last, least popular, of a category);
    # organic voters spread over the popular ones; the ministry backs one project.
    targets = {
        case: (categories[i % len(categories)], nominations[categories[i % len(categories)]][-1])
        for i, case in enumerate(c for c in SIZES if CASE[c].attack)
    }
    ministry = (categories[0], nominations[categories[0]][0])
    report = SliceReport()
    shared: dict[str, str] = {}
    gate = asyncio.Semaphore(concurrency)
    everyone = clients(seed, sizes)

    async def go(client: Client) -> None:
        if client.case == "organic":
            category = rng.choice(categories)
            target = (category, rng.choice(nominations[category][:2]))
        elif client.case == "ministry":
            target = ministry
        else:
            target = targets[client.case]
        async with gate:
            await _one(base_url, client, target, read_link, report, shared)
        report.challenges[client.case] += client.challenges

    # The first replayed voter fetches the token the others reuse: it goes first.
    first = next(c for c in everyone if c.case == "replayed")
    await go(first)
    await asyncio.gather(*(go(c) for c in everyone if c is not first))
    return report


async def judge(
    pool: asyncpg.Pool,
    edition_id: int,
    slug: str,
    rules: FraudRules,
    report: SliceReport,
    *,
    address_key: bytes,
) -> None:
    """Wait for the flusher to bring every counted vote into the ledger, run the offline
    detectors, and note each vote's verdict. `address_key`: the served engine's
    (minimise.address_key of its VOTING_SECRET_KEY)."""
    from voting.antifraud.detectors import scan

    receipts = list(report.receipts)
    for _ in range(300):
        found = await pool.fetchval(
            "SELECT count(*) FROM votes WHERE edition_id = $1 AND receipt = ANY($2)",
            edition_id,
            receipts,
        )
        if found == len(receipts):
            break
        await asyncio.sleep(0.1)
    async with pool.acquire() as conn:
        await scan(conn, edition_id, slug, rules, address_key=address_key)
        # Every rule that named a vote: its inline reasons and each detector's flag.
        rows = await conn.fetch(
            "SELECT v.receipt, v.verdict, v.verdict_reasons,"
            " (SELECT array_agg(DISTINCT f.detector) FROM fraud_flag_votes fv"
            "  JOIN fraud_flags f ON f.id = fv.flag_id WHERE fv.edition_id = v.edition_id"
            "  AND fv.voter_id = v.voter_id AND fv.category = v.category) AS rules"
            " FROM votes v WHERE v.edition_id = $1 AND v.receipt = ANY($2)",
            edition_id,
            receipts,
        )
    verdicts = {
        r["receipt"]: (
            r["verdict"],
            sorted(set(r["verdict_reasons"] or []) | set(r["rules"] or [])),
        )
        for r in rows
    }
    for receipt, case in report.receipts.items():
        verdict, rules = verdicts.get(receipt, ("lost", []))
        counted = verdict in ("counted", "released")
        report.note(case, verdict if counted else f"{verdict}({'+'.join(rules)})", out=not counted)


def main() -> None:  # pragma: no cover - the test drives `run` and `settle`
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    async def go() -> None:
        from voting import db, edition_store
        from voting.antifraud.minimise import address_key
        from voting.settings import load_settings

        pool = await db.create_pool(args.database_url, min_size=1, max_size=4)
        try:
            async with pool.acquire() as conn:
                edition = await edition_store.current_edition(conn)
                assert edition is not None, "no current edition"
                edition_id = await edition_store.edition_id(conn, edition.slug)
                rows = await conn.fetch(
                    "SELECT public_id, category FROM nominations WHERE edition_id=$1"
                    " AND status='accepted' ORDER BY public_id",
                    edition_id,
                )
            nominations: dict[str, list[str]] = {}
            for r in rows:
                nominations.setdefault(r["category"], []).append(r["public_id"])
            report = await run(args.url, nominations, outbox_reader(pool), seed=args.seed)
            assert edition_id is not None
            await judge(
                pool,
                edition_id,
                edition.slug,
                edition.rules.fraud,
                report,
                address_key=address_key(load_settings().secret_key),
            )
            print("\n".join(report.lines()))
        finally:
            await pool.close()

    asyncio.run(go())


if __name__ == "__main__":
    main()
