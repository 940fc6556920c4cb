"""Minimise at the door (voting/antifraud/minimise.py, 0020): what the engine keeps of a
client's address and agent, that the detectors still see what they compare, and that a
whole journey leaves neither the address nor the agent anywhere in PostgreSQL or Redis."""

from __future__ import annotations

import ipaddress
import re
from html import unescape
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from tests.fixtures.antifraud import KEY
from voting.antifraud.declarations import Declared, Net, narrow_hashes
from voting.antifraud.minimise import (
    _MARKERS,
    _SCRIPTS,
    AGENT_MAX,
    MAJOR_DIGITS,
    OTHER,
    SUMMARY,
    VOCABULARY,
    address_hash,
    address_key,
    agent_summary,
    at_the_door,
    kept_prefix,
    networks_of_kept,
)
from voting.antifraud.risk import _HEADLESS, _SCRIPT, agent_kind
from voting.antifraud.signals import network_of, networks_of, networks_of_reference

v4 = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
v6 = st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n)))
mapped = v4.map(lambda a: f"::ffff:{a}")
addresses = st.one_of(v4, v6, mapped)
secrets_ = st.text(min_size=1, max_size=64)

REAL_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/120.0.6099.71 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like"
    " Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML,"
    " like Gecko) CriOS/119.0.6045.169 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 13; SM-A525F) AppleWebKit/537.36 (KHTML, like Gecko)"
    " SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " HeadlessChrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/118.0.5993.70 Edg/118.0.2088.61",
    "python-requests/2.31.0",
    "curl/8.4.0",
    "Java/17.0.2",
    "Go-http-client/2.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "",
]
MARKERS = ["HeadlessChrome", "PhantomJS", "puppeteer", "Playwright", "selenium", "webdriver"]
SCRIPTS = ["curl/", "wget", "python-requests/", "java/", "Go-http-client/", "okhttp", "ruby"]
agents = st.one_of(
    st.sampled_from(REAL_AGENTS),
    st.text(max_size=200),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=200),
    # Markers and script names anywhere, in any case: the kinds the summary must keep.
    st.tuples(st.text(max_size=40), st.sampled_from(MARKERS + SCRIPTS), st.text(max_size=40)).map(
        "".join
    ),
    st.tuples(st.sampled_from(SCRIPTS), st.text(max_size=20)).map(lambda t: t[0].upper() + t[1]),
)


# -- agents ---------------------------------------------------------------------------


@given(agents)
@example("java 1.8")
@example("rubyish/2 (X11)")
@example("Mozilla/5.0 " + "iPad " * 2000)
def test_the_summary_keeps_what_the_agent_says_of_automation_and_no_more(agent):
    summary = agent_summary(agent)
    assert agent_kind(summary) == agent_kind(agent)
    assert len(summary) <= AGENT_MAX
    assert agent_summary(summary) == summary  # a summary is its own summary
    # Only a product, a major version and a platform: nothing else of the header.
    assert summary == "" or SUMMARY.fullmatch(summary), summary


# The words a summary's letters may come from: the vocabulary's, a hyphenated name (an
# HTTP library's) taken apart, since a marker is joined to its family by a hyphen too.
PARTS = frozenset(part for word in VOCABULARY for part in word.split("-"))
LONGEST = max(map(len, VOCABULARY))


def _outside_the_vocabulary(summary: str) -> list[str]:
    """The words and numbers of a summary that are neither a vocabulary word nor a major
    version (a platform's version included)."""
    return [w for w in re.findall(r"[A-Za-z]+", summary) if w not in PARTS] + [
        d for d in re.findall(r"\d+", summary) if len(d) > MAJOR_DIGITS
    ]


def _of_the_vocabulary(text: str) -> bool:
    """Whether every run of letters in `text` is (a piece of) a vocabulary word: a text
    cut out of a summary may begin or end inside a word."""
    return all(any(w in part for part in PARTS) for w in re.findall(r"[A-Za-z]+", text))


# Agents with personal text in every place a header has room for it: a managed build's
# name, a comment, a product token of its own, a trailing note.
PERSONAL = [
    "MyCorpBrowser_JohnSmith_laptop42",
    "Mozilla/5.0 (john.doe@example.org; Windows NT 10.0) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (JohnSmithLaptop; rv:1) JohnSmithBrowser/3.1",
    "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36 Owner/JaneDoe-4242",
    "JaneDoe/7 (jane@example.org)",
    "Other/5 (Windows)",  # a summary's form, with a word of its own
]
secret_words = st.text(alphabet=st.characters(whitelist_categories=("Lu", "Ll")), min_size=4)
placements = st.sampled_from(
    [
        "{s}",
        "{s}/1.0",
        "{s}_laptop42",
        "Mozilla/5.0 ({s}; Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36",
        "Mozilla/5.0 (Linux; Android 13; {s}) AppleWebKit/537.36 Chrome/119.0 Mobile",
        "Mozilla/5.0 (Macintosh; {s}@example.org) Version/17.1 Safari/605.1.15",
        "Mozilla/5.0 (X11) {s}/3 Firefox/121.0",
        "Mozilla/5.0 (X11) Chrome/120.0 {s}",
        "curl/8.4.0 {s}",
        "{s} HeadlessChrome/120.0",
        "python-requests/2.31 ({s})",
        "{s}-Chrome/1 (Linux)",
        "Puppeteer-{s}/1 (Linux)",
    ]
)


@given(st.one_of(agents, st.sampled_from(PERSONAL)))
@example("MyCorpBrowser_JohnSmith_laptop42")
@example("Mozilla/5.0 (john.doe@example.org; Win64) AppleWebKit/537.36")
@example("Mozilla/5.0 (X11) Playwright-SamsungBrowser/1 SamsungBrowser/1")
def test_a_summary_is_drawn_from_the_vocabulary_and_digits_only(agent):
    """Whatever the header, its summary holds vocabulary words and major versions only;
    so no text of the header longer than the longest vocabulary word survives in it
    unless it is itself made of the vocabulary."""
    summary = agent_summary(agent)
    assert not _outside_the_vocabulary(summary), (agent, summary)
    for start in range(len(summary)):
        for end in range(start + LONGEST + 1, len(summary) + 1):
            kept = summary[start:end]
            if kept in agent:
                assert _of_the_vocabulary(kept), (agent, summary, kept)


@given(secret_words, placements)
@example("JohnSmith", "{s}_laptop42")
@example("Owner", "Mozilla/5.0 (X11) Chrome/120.0 {s}")
def test_no_word_of_the_sender_survives_the_summary(secret, placement):
    """A word a sender put in the header (a name, a mailbox, a build's owner) is not in
    the summary, wherever it stood, unless the vocabulary holds it."""
    assume(not any(secret.lower() in part.lower() for part in PARTS))
    agent = placement.format(s=secret)
    summary = agent_summary(agent)
    assert secret.lower() not in summary.lower(), (agent, summary)
    assert agent_kind(summary) == agent_kind(agent)


def test_personal_text_in_an_agent_becomes_other():
    assert agent_summary(PERSONAL[0]) == OTHER
    assert agent_summary(PERSONAL[1]) == "Chrome/120 (Windows NT 10.0)"
    assert agent_summary(PERSONAL[2]) == OTHER
    assert agent_summary(PERSONAL[3]) == "Chrome/120 (Linux)"
    assert agent_summary(PERSONAL[4]) == OTHER
    assert agent_summary(PERSONAL[5]) == f"{OTHER} (Windows)"
    # Automation still shows through, as the vocabulary spells it.
    assert agent_summary("JohnSmith HeadlessChrome/120.0") == "HeadlessChrome/120"
    assert agent_summary("xx headless JohnSmith") == "Headless-other"
    assert agent_summary("CURL/8.4 (JohnSmith)") == "curl/8"
    assert agent_summary("java/") == "Java/"  # `java/` with its slash: still a script
    # A version too long to be a major one is dropped, not kept as a number of its own.
    assert agent_summary("Mozilla/5.0 (X11) Chrome/5551234 Safari/537") == "Chrome (Linux)"


def test_the_vocabulary_spells_every_script_and_marker_risk_looks_for():
    """A script name or a headless marker `risk` finds must have a spelling in the
    summary's vocabulary (else the summary could not keep its kind)."""
    scripts = _SCRIPT.pattern.removeprefix("^(").removesuffix(")").split("|")
    assert set(scripts) == set(_SCRIPTS)
    assert set(_HEADLESS.pattern.split("|")) == set(_MARKERS)
    for name in _SCRIPTS.values():
        assert agent_kind(name + ("" if name.endswith("/") else "/1")) == "agent_script"
    for marker in _MARKERS.values():
        assert agent_kind(f"{marker}-{OTHER}") == "agent_headless"


def test_real_agents_keep_family_major_version_and_platform_only():
    assert agent_summary(REAL_AGENTS[0]) == "Chrome/120 (Windows NT 10.0)"
    assert agent_summary(REAL_AGENTS[1]) == "Safari/17 (macOS 10)"
    assert agent_summary(REAL_AGENTS[2]) == "Firefox/121 (Linux)"
    assert agent_summary(REAL_AGENTS[3]) == "Chrome/119 (iOS 17)"
    assert agent_summary(REAL_AGENTS[4]) == "SamsungBrowser/23 (Android 13)"  # no model
    assert agent_summary(REAL_AGENTS[5]) == "HeadlessChrome/120 (Linux)"
    assert agent_summary(REAL_AGENTS[6]) == "Edge/118 (Windows NT 10.0)"
    assert agent_summary("python-requests/2.31.0") == "python-requests/2"
    assert agent_summary(None) == agent_summary("  ") == ""


def test_the_simulated_agents_stay_as_many_after_the_summary():
    """The `cluster` detector groups votes by agent: the simulator's 56 browsers, and the
    office's managed one, are as many groups after minimisation as before."""
    from voting.antifraud.simulator import AGENTS, MANAGED_BROWSER

    everyone = [*AGENTS, MANAGED_BROWSER]
    assert len({agent_summary(a) for a in everyone}) == len(set(everyone))


# -- addresses ------------------------------------------------------------------------


@given(secrets_, secrets_, addresses)
def test_the_keyed_hash_is_stable_per_key_and_differs_across_keys(one, other, address):
    assume(one != other)
    key = address_key(one)
    digest = address_hash(key, address)
    assert re.fullmatch(r"[0-9a-f]{32}", digest)
    assert address_hash(address_key(one), address) == digest  # the same key, again
    assert address_hash(address_key(other), address) != digest
    assert address not in digest


@given(addresses, addresses)
def test_the_keyed_hash_tells_addresses_apart_and_spellings_together(one, other):
    def canonical(a: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        parsed = ipaddress.ip_address(a)
        if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped:
            return parsed.ipv4_mapped
        return parsed

    same = canonical(one) == canonical(other)
    assert (address_hash(KEY, one) == address_hash(KEY, other)) == same
    assert address_hash(KEY, str(ipaddress.ip_address(one).exploded)) == address_hash(KEY, one)


@given(addresses)
def test_the_kept_prefix_gives_every_width_the_detectors_compare(address):
    prefix = kept_prefix(address)
    assert networks_of_kept(prefix) == networks_of(address) == networks_of_reference(address)
    assert address not in prefix or prefix.startswith(address.split("/")[0])


@given(st.one_of(addresses, st.text(max_size=40), st.just("fe80::1%eth0")), agents)
def test_the_door_gives_what_each_function_gives(ip, agent):
    """at_the_door parses the address once, for speed: the same answers as the
    functions it stands for."""
    door = at_the_door(KEY, ip, agent)
    assert door.address == address_hash(KEY, ip)
    assert door.prefix == kept_prefix(ip)
    assert door.network == network_of(ip)
    assert door.agent == agent_summary(agent)


def test_a_client_that_is_no_address_keeps_no_prefix_and_a_hash_of_its_name():
    door = at_the_door(KEY, "testclient", "curl/8")
    assert door.prefix == "" and door.network == "" and door.agent == "curl/8"
    assert door.address == address_hash(KEY, "testclient") != ""
    assert at_the_door(KEY, "", None).address == ""


def _reference(address: str, network: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    net = ipaddress.ip_network(network, strict=False)
    return ip.version == net.version and ip in net


networks = st.one_of(
    st.tuples(st.integers(0, 2**32 - 1), st.integers(16, 32)).map(
        lambda t: str(ipaddress.ip_network((t[0], t[1]), strict=False))
    ),
    st.tuples(st.integers(0, 2**128 - 1), st.integers(40, 128)).map(
        lambda t: str(ipaddress.ip_network((ipaddress.IPv6Address(t[0]), t[1]), strict=False))
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.data(), networks)
def test_a_declared_network_matches_a_minimised_vote_as_it_matched_its_address(data, network):
    """From the kept prefix and the keyed hash alone, a declaration matches exactly the
    votes whose address lies in its networks (an IPv4 /32 office address included); an
    IPv6 network between /65 and /119, too large to hash, matches on its /64."""
    net = ipaddress.ip_network(network)
    inside = str(net[data.draw(st.integers(0, min(net.num_addresses - 1, 2**64)))])
    address = data.draw(st.one_of(st.just(inside), addresses))
    assume(not _mapped(address) or net.version == 4)
    parsed = Net.parse(network)
    hashes, widened = narrow_hashes([parsed], KEY)
    declared = Declared(1, "N1", (), (parsed,), None, None, hashes, widened)  # type: ignore[arg-type]
    got = declared.matches_address(
        None, None, prefix=kept_prefix(address), address=address_hash(KEY, address)
    )
    if net.version == 6 and 64 < net.prefixlen < 120:
        assert got == _reference(address, str(net.supernet(new_prefix=64)))
    else:
        assert got == _reference(address, network)
    # Under another key the hashes say nothing: a narrow network matches no vote.
    if net.prefixlen > (24 if net.version == 4 else 119):
        other = Declared(1, "N1", (), (parsed,), None, None, *narrow_hashes([parsed], b"x"))  # type: ignore[arg-type]
        assert not other.matches_address(
            None, None, prefix=kept_prefix(address), address=address_hash(KEY, address)
        )


def _mapped(address: str) -> bool:
    parsed = ipaddress.ip_address(address)
    return isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None


# -- the database -----------------------------------------------------------------------


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.one_of(addresses, st.sampled_from(["", "testclient", "10.0.0.0/8", "fe80::1%eth0"])))
async def test_the_migrations_prefix_is_the_doors(conn: asyncpg.Connection, address: str):
    """0020 converts the rows already stored in SQL: the same prefix the door gives."""
    assert (await conn.fetchval("SELECT kept_prefix($1)", address) or "") == kept_prefix(address)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(addresses)
async def test_a_kept_prefix_and_only_a_kept_prefix_passes_the_check(
    conn: asyncpg.Connection, address: str
):
    """0020's is_kept_prefix, behind the votes' and voters' checks: the door's prefix
    passes; the address, another width or another spelling of the same network do not."""
    prefix = kept_prefix(address)
    net = ipaddress.ip_network(prefix)
    assert await conn.fetchval("SELECT is_kept_prefix($1)", prefix)
    refused = {
        address,
        str(ipaddress.ip_address(address)),
        f"{address}/{net.max_prefixlen}",
        str(net.supernet(new_prefix=16 if net.version == 4 else 48)),
        net.exploded,
        prefix.upper(),
        f"{net.network_address}/{net.max_prefixlen}",
    } - {prefix}
    for text in refused:
        assert not await conn.fetchval("SELECT is_kept_prefix($1)", text), text


async def _as_app(conn: asyncpg.Connection, sql: str, *args: Any) -> None:
    """One statement as the engine's role, in a savepoint so a refusal leaves the test
    going (tests/test_db_roles.py)."""
    async with conn.transaction():
        await conn.execute("SET LOCAL ROLE wsis_app")
        await conn.execute(sql, *args)


FULL = "198.51.100.23"
DOOR = at_the_door(KEY, FULL, REAL_AGENTS[0])
# What the engine's role may not write where a prefix, a hash or a summary goes: a full
# address by another name, text of its own, a whole User-Agent.
NOT_A_PREFIX = [
    FULL,
    f"{FULL}/32",
    "198.51.100.0/25",
    "198.51.0.0/16",
    "2001:db8:5:6:7:8:9:a",
    "2001:db8:5:6:7:8:9:a/128",
    "2001:db8:5:6:0:0:0:0/64",
    "john.doe@example.org",
    "",
]
NOT_A_HASH = [FULL, DOOR.address.upper(), DOOR.address[:31], DOOR.address + "0", "forged"]
NOT_A_SUMMARY = [REAL_AGENTS[0] + " " * (AGENT_MAX - len(REAL_AGENTS[0]) + 1), "x" * 97]


@pytest.mark.parametrize(
    ("column", "value"),
    [("ip_prefix", v) for v in NOT_A_PREFIX]
    + [("ip_hash", v) for v in NOT_A_HASH]
    + [("agent", v) for v in NOT_A_SUMMARY],
)
async def test_the_engine_cannot_store_an_address_or_an_agent_by_another_name(conn, column, value):
    """0020's checks on votes and voters, behind its column grants: a prefix is a /24 or
    a /64, a hash is 32 hex digits, a summary fits AGENT_MAX; what the door writes
    passes."""
    edition_id = await _edition(conn, "checks")
    vote = (
        "INSERT INTO votes (edition_id, voter_id, category, nomination, receipt, cast_at,"
        " stream_id, ip_prefix, ip_hash, agent) VALUES ($1, $2, 'C1', 'N1', $2, now(), '1-0',"
        " $3, $4, $5)"
    )
    voter = (
        "INSERT INTO voters (edition_id, voter_id, domain, ip_prefix, ip_hash, agent)"
        " VALUES ($1, $2, 'example.org', $3, $4, $5)"
    )
    door = {"ip_prefix": DOOR.prefix, "ip_hash": DOOR.address, "agent": DOOR.agent}
    for statement in (vote, voter):
        await _as_app(conn, statement, edition_id, "door", *door.values())
        with pytest.raises(asyncpg.CheckViolationError):
            await _as_app(conn, statement, edition_id, "other", *(door | {column: value}).values())
    assert await conn.fetchval("SELECT count(*) FROM votes WHERE voter_id = 'other'") == 0
    assert await conn.fetchval("SELECT count(*) FROM voters WHERE voter_id = 'other'") == 0


async def test_a_vote_whose_old_address_has_no_prefix_cannot_be_given_one(conn):
    """0020's trigger: a row stored before 0020 whose `ip` is no address (a test client's
    name) has no kept prefix (NULL); writing one while erasing the address must still be
    refused (a NULL comparison is no permission), for the owner as for the engine."""
    edition_id = await _edition(conn, "noprefix")
    await _legacy_rows(conn, edition_id)
    for change in (
        "ip = NULL, ip_prefix = '203.0.113.0/24'",
        "ip = NULL, user_agent = NULL, ip_prefix = '203.0.113.0/24', agent = 'other'",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="ip_prefix may only be"):
            await conn.execute(f"UPDATE votes SET {change} WHERE voter_id = 'v3'")
    row = await conn.fetchrow("SELECT ip, ip_prefix FROM votes WHERE voter_id = 'v3'")
    assert (row["ip"], row["ip_prefix"]) == ("testclient", None)
    # Its address may still be erased, as any signal may.
    assert await conn.execute("UPDATE votes SET ip = NULL WHERE voter_id = 'v3'") == "UPDATE 1"


def _plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(n for child in plan.get("Plans", []) for n in _plan_nodes(child))]


async def test_the_purge_finds_the_rows_to_minimise_through_their_partial_index(conn):
    """`privacy.due` and `privacy.minimise_legacy` ask every ten minutes for the rows
    still to minimise: on a ledger of minimised votes with a few old rows, PostgreSQL
    answers from votes_unminimised and voters_unminimised, never by reading every row."""
    import json

    from voting import privacy

    edition_id = await _edition(conn, "plans")
    await conn.execute(
        "INSERT INTO voters (edition_id, voter_id, domain, ip_prefix, ip_hash, agent)"
        " SELECT $1, 'm' || n, 'example.org', $2, $3, $4 FROM generate_series(1, 20000) n",
        edition_id,
        DOOR.prefix,
        DOOR.address,
        DOOR.agent,
    )
    await conn.execute(
        "INSERT INTO votes (edition_id, voter_id, category, nomination, receipt, cast_at,"
        " stream_id, ip_prefix, ip_hash, agent) SELECT $1, 'm' || n, 'C1', 'N1', 'R' || n,"
        " now(), '1-0', $2, $3, $4 FROM generate_series(1, 20000) n",
        edition_id,
        DOOR.prefix,
        DOOR.address,
        DOOR.agent,
    )
    await _legacy_rows(conn, edition_id)
    await conn.execute("ANALYZE votes")
    await conn.execute("ANALYZE voters")
    for query, args, table in (
        (privacy._LEGACY_VOTES, (), "votes"),
        (privacy._LEGACY_VOTERS, (), "voters"),
        (privacy._LEGACY_VOTE_ROWS, (privacy.BATCH,), "votes"),
        (privacy._LEGACY_VOTER_ROWS, (privacy.BATCH,), "voters"),
    ):
        explained = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {query}", *args)
        plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]
        nodes = _plan_nodes(plan)
        assert {n.get("Index Name") for n in nodes} >= {f"{table}_unminimised"}, plan
        assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], plan
    assert (await privacy.due(conn)).minimised_votes == len(LEGACY)


async def _edition(conn: asyncpg.Connection, slug: str) -> int:
    return await conn.fetchval(
        "INSERT INTO editions (slug, name, timezone) VALUES ($1, $1, 'Europe/Zurich') RETURNING id",
        slug,
    )


LEGACY = [
    ("v1", "C1", "198.51.100.23", REAL_AGENTS[0]),
    ("v1", "C2", "198.51.100.23", REAL_AGENTS[0]),
    ("v2", "C1", "2001:db8:5:6:7:8:9:a", "curl/8.4.0"),
    ("v3", "C1", "testclient", None),
    ("v4", "C1", None, REAL_AGENTS[5]),
]


async def _legacy_rows(conn: asyncpg.Connection, edition_id: int) -> None:
    """Rows as stored before 0020 (the owner may still write them; the engine may not)."""
    for voter, category, ip, agent in LEGACY:
        await conn.execute(
            "INSERT INTO voters (edition_id, voter_id, domain, ip, user_agent, ip_prefix)"
            " VALUES ($1, $2, 'example.org', $3, $4, kept_prefix($3)) ON CONFLICT DO NOTHING",
            edition_id,
            voter,
            ip,
            agent,
        )
        await conn.execute(
            "INSERT INTO votes (edition_id, voter_id, category, nomination, receipt, cast_at,"
            " stream_id, ip, user_agent, ip_prefix) VALUES ($1, $2, $3, 'N1', $4, now(), '1-0',"
            " $5, $6, kept_prefix($5))",
            edition_id,
            voter,
            category,
            f"R-{voter}-{category}",
            ip,
            agent,
        )


async def test_the_purge_minimises_rows_stored_before_0020_to_what_the_door_stores(conn):
    from voting import privacy

    edition_id = await _edition(conn, "legacy")
    await _legacy_rows(conn, edition_id)
    # The trigger lets no one write a hash without erasing the address, nor a prefix that
    # is not the address's own, nor a summary over a kept agent.
    for change in (
        "ip_hash = 'forged'",
        "ip = NULL, ip_prefix = '203.0.113.0/24' WHERE voter_id = 'v1'",
        "agent = 'Chrome/1'",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="may only be erased"):
            await conn.execute(f"UPDATE votes SET {change}")
    dry = await privacy.due(conn)
    assert (dry.minimised_votes, dry.minimised_voters) == (5, 4)
    await conn.execute("SET ROLE wsis_app")
    try:
        report = await privacy.purge_on(conn, address_key=KEY, batch=2, actor="test")
        again = await privacy.purge_on(conn, address_key=KEY, actor="test")
    finally:
        await conn.execute("RESET ROLE")
    assert (report.minimised_votes, report.minimised_voters) == (5, 4)
    assert again.total() == 0  # once only
    assert report.vote_signals == 0  # unpublished: nothing else is due
    rows = {
        (r["voter_id"], r["category"]): r
        for r in await conn.fetch("SELECT * FROM votes WHERE edition_id=$1", edition_id)
    }
    for voter, category, ip, agent in LEGACY:
        row = rows[(voter, category)]
        door = at_the_door(KEY, ip, agent)
        assert row["ip"] is None and row["user_agent"] is None
        assert row["ip_hash"] == (door.address or None), voter
        assert row["ip_prefix"] == (door.prefix or None), voter
        assert row["agent"] == (door.agent or None), voter
    voters = await conn.fetch("SELECT * FROM voters WHERE edition_id=$1", edition_id)
    assert all(v["ip"] is None and v["user_agent"] is None for v in voters)
    assert {v["voter_id"]: v["ip_hash"] for v in voters}["v1"] == address_hash(KEY, "198.51.100.23")
    audit = await conn.fetchval("SELECT detail FROM audit_log WHERE action='privacy.purge'")
    assert audit["minimised_votes"] == 5 and "198.51" not in str(audit)


async def test_the_detectors_read_a_row_stored_before_0020_as_its_minimised_form(conn):
    """The same traffic stored the old way (full address and agent) and the new way:
    the same flags, the same votes held; and after the purge minimised the old rows, a
    full scan finds nothing different."""
    from datetime import UTC, datetime, timedelta

    from tests.fixtures.antifraud import add_vote, browser, organic
    from voting.antifraud.config import DEFAULTS
    from voting.antifraud.detectors import scan
    from voting.privacy import PurgeReport, minimise_legacy

    start = datetime(2026, 3, 10, 8, tzinfo=UTC)

    async def traffic(edition_id: int) -> None:
        await organic(conn, edition_id, start, 40, {"C1": ["A1", "A2", "A3"]})
        for i in range(15):  # a farm in one /24, one agent, a machine's beat
            await add_vote(
                conn,
                edition_id,
                f"farm{i}",
                "C1",
                "A3",
                at=start + timedelta(hours=3, seconds=30 * i),
                ip=f"203.0.113.{i + 2}",
                agent="python-requests/2.31.0",
                domain="gmail.com",
            )

    async def flags(edition_id: int) -> list[tuple[Any, ...]]:
        rows = await conn.fetch(
            "SELECT f.detector, f.finding, f.evidence, array_agg(fv.voter_id ORDER BY"
            " fv.voter_id) AS voters FROM fraud_flags f JOIN fraud_flag_votes fv"
            " ON fv.flag_id = f.id WHERE f.edition_id=$1 GROUP BY 1, 2, 3 ORDER BY 1, 2",
            edition_id,
        )
        return [tuple(r) for r in rows]

    new = await _edition(conn, "new")
    old = await _edition(conn, "old")
    await traffic(new)
    await traffic(old)
    # The old edition's rows as stored before 0020: the full address and agent back in
    # place of the hash and summary (the owner may; the trigger is stepped past as 0020
    # itself does).
    await conn.execute("ALTER TABLE votes DISABLE TRIGGER votes_immutable")
    for (voter_id,) in await conn.fetch(
        "SELECT DISTINCT voter_id FROM votes WHERE edition_id=$1", old
    ):
        i = int(re.sub(r"\D", "", voter_id))
        ip = f"203.0.113.{i + 2}" if voter_id.startswith("farm") else f"10.{i // 250}.{i % 250}.9"
        agent = "python-requests/2.31.0" if voter_id.startswith("farm") else browser(i)
        await conn.execute(
            "UPDATE votes SET ip=$3, user_agent=$4, ip_hash=NULL, agent=NULL"
            " WHERE edition_id=$1 AND voter_id=$2",
            old,
            voter_id,
            ip,
            agent,
        )
    await conn.execute("ALTER TABLE votes ENABLE TRIGGER votes_immutable")
    await conn.execute(
        "UPDATE voters SET ip = host(ip_prefix::inet), ip_hash = NULL WHERE edition_id=$1", old
    )
    await scan(conn, new, "new", DEFAULTS, address_key=KEY)
    await scan(conn, old, "old", DEFAULTS, address_key=KEY)
    found = await flags(new)
    assert found, "the farm raised no flag"
    assert any(d == "cluster" for d, *_ in found)
    assert await flags(old) == found
    await minimise_legacy(conn, PurgeReport(), address_key=KEY)
    assert not await conn.fetchval("SELECT count(*) FROM votes WHERE ip IS NOT NULL")
    report = await scan(conn, old, "old", DEFAULTS, address_key=KEY, full=True)
    assert report.quarantined == 0 and await flags(old) == found


# -- a whole journey leaves no address and no agent anywhere ---------------------------

V4_CLIENT = "203.0.113.77"
V6_CLIENT = "2001:db8:aa:bb:cc:dd:ee:ff"
AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/120.0.6099.71 Safari/537.36 UniqueBuild/7f3a9c"
)
# What must appear nowhere: the addresses in every spelling, and the agent or any part
# the summary drops.
FORBIDDEN = (
    V4_CLIENT,
    V6_CLIENT,
    "2001:db8:aa:bb:cc:dd",
    AGENT,
    "6099.71",
    "UniqueBuild",
    "7f3a9c",
)


async def _everything_in_postgres(conn: asyncpg.Connection) -> str:
    tables = [
        r["tablename"]
        for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
    ]
    parts = []
    for table in tables:
        rows = await conn.fetch(f'SELECT t::text AS row FROM "{table}" t')
        parts.extend(f"{table}: {r['row']}" for r in rows)
    return "\n".join(parts)


async def _everything_in_redis(redis: Any, prefix: str) -> str:
    def text(value: Any) -> str:
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

    parts = []
    async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
        kind = text(await redis.type(key))
        if kind == "string":
            value: Any = await redis.get(key)
        elif kind == "hash":
            value = await redis.hgetall(key)
        elif kind == "stream":
            value = await redis.xrange(key)
        elif kind == "set":
            value = await redis.smembers(key)
        elif kind == "zset":
            value = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "list":
            value = await redis.lrange(key, 0, -1)
        else:
            raise AssertionError(f"a Redis key of a type the scan does not read: {kind}")
        parts.append(f"{text(key)} = {text(value)}")
    return "\n".join(parts)


async def test_a_journey_leaves_no_full_address_and_no_agent_in_postgres_or_redis(app, conn):
    """Two voters, over IPv4 and IPv6, through the real app: sign-in, the link
    confirmed, a ballot opened, a vote, the flush, the data page, a fraud scan and a
    purge round; then every row of every table and every key and value of the engine's
    Redis is read: the addresses and the agent are nowhere, their prefixes and the
    agent's summary are where the detectors read them."""
    from httpx import ASGITransport, AsyncClient

    from tests.fixtures.flows import csrf_from
    from tests.fixtures.voting import flush, open_voting, reading
    from voting import mail, privacy
    from voting.antifraud.config import DEFAULTS
    from voting.antifraud.detectors import scan

    edition, edition_id, noms = await open_voting(app, conn)
    svc = app.state.services
    headers = {"user-agent": AGENT, "accept-language": "fr", "sec-fetch-site": "same-origin"}
    seen = []
    for n, client_ip in enumerate((V4_CLIENT, V6_CLIENT)):
        transport = ASGITransport(app=app, client=(client_ip, 40000 + n))
        async with AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers
        ) as c:
            email = f"journey{n}@example.org"
            assert (await c.post("/api/voters/signin", json={"email": email})).status_code == 202
            await mail.send_pending(svc.db, svc.settings)
            body = await conn.fetchval(
                "SELECT body FROM outbox WHERE to_addr=$1 ORDER BY id DESC LIMIT 1", email
            )
            link = re.search(r"/vote/confirm\?token=\S+", body).group(0)  # type: ignore[union-attr]
            page = await c.get(link)
            token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            done = await c.post(
                "/vote/confirm", data={"token": unescape(token), "csrf_token": csrf_from(page.text)}
            )
            assert done.status_code == 303, done.text
            csrf = (await c.get("/api/session")).json()["csrf_token"]
            ballot = (await c.get("/api/ballot/C1")).json()
            reading(app)
            voted = await c.post(
                "/api/votes",
                json={"nomination": noms["C1"][n], "form_token": ballot["form_token"]},
                headers={"x-csrf-token": csrf},
            )
            assert voted.status_code == 202, voted.text
            # Before the flush the vote is in the stream: read Redis now too.
            in_flight = await _everything_in_redis(svc.r, svc.settings.redis_prefix)
            seen.append(in_flight)
            await flush(app)
            assert (await c.get("/my-data")).status_code == 200
            assert (await c.get("/api/me/data")).status_code == 200
        for secret in FORBIDDEN:
            assert secret not in in_flight, secret
    await scan(
        conn, edition_id, edition.slug, DEFAULTS, address_key=address_key(svc.settings.secret_key)
    )
    await privacy.purge(svc.db, address_key=address_key(svc.settings.secret_key))

    stored = await _everything_in_postgres(conn)
    cached = await _everything_in_redis(svc.r, svc.settings.redis_prefix)
    for secret in FORBIDDEN:
        assert secret not in stored, secret
        assert secret not in cached, secret
    # What is kept instead, where the detectors read it.
    votes = await conn.fetch(
        "SELECT ip_prefix, ip_hash, agent, network, ip, user_agent FROM votes"
        " WHERE edition_id=$1 ORDER BY ip_prefix",
        edition_id,
    )
    key = address_key(svc.settings.secret_key)
    assert [tuple(v) for v in votes] == [
        (
            "2001:db8:aa:bb::/64",
            address_hash(key, V6_CLIENT),
            "Chrome/120 (Linux)",
            "2001:db8:aa::/48",
            None,
            None,
        ),
        (
            "203.0.113.0/24",
            address_hash(key, V4_CLIENT),
            "Chrome/120 (Linux)",
            "203.0.113.0/24",
            None,
            None,
        ),
    ]
    voters = await conn.fetch(
        "SELECT ip_prefix, ip_hash, agent, ip, user_agent FROM voters WHERE edition_id=$1"
        " ORDER BY ip_prefix",
        edition_id,
    )
    assert [(v["ip_prefix"], v["ip"], v["user_agent"]) for v in voters] == [
        ("2001:db8:aa:bb::/64", None, None),
        ("203.0.113.0/24", None, None),
    ]
    # The stream entry and the per-address rate limit's key hold the hash and the prefix.
    for client_ip, in_flight in zip((V4_CLIENT, V6_CLIENT), seen, strict=True):
        assert f":a:{address_hash(key, client_ip)}" in in_flight, client_ip
        assert kept_prefix(client_ip) in in_flight, client_ip
