"""Minimise at the door: what a vote or a sign-in keeps of the client's address and agent.

The detectors never need the full address nor the full User-Agent header:

- networks: every width they compare (`signals.networks_of`: IPv4 /24 and /16, IPv6 /64,
  /56, /48 and /32) is derived from the narrowest, so a vote keeps its /24 (IPv4, an
  IPv4-mapped address being its IPv4) or its /64 (IPv6): `kept_prefix`;
- equality of two addresses (the per-address rate limit, a declared campaign's network
  narrower than the kept prefix, such as an office's one /32 NAT address): a keyed hash,
  HMAC-SHA256 under a key derived from VOTING_SECRET_KEY for this use alone
  (`address_key`), 128 bits: `address_hash`. Without the key it says nothing about the
  address; with it, only whether a given address is the same;
- the agent: what `risk.agent_kind` reads (missing, headless, an HTTP library) and what
  the `cluster` detector groups by (one agent): browser family, major version and
  platform, or the library's name and major version, at most `AGENT_MAX` characters:
  `agent_summary`. Its words come from a closed vocabulary (`VOCABULARY`), never from
  the header's own text: a header is whatever its sender typed, an owner's name or a
  mailbox included, and a product of no known name is `other`. `agent_kind` of the
  summary is always that of the full header (tests/antifraud/test_minimise.py), and a summary is
  its own summary.

`at_the_door` gives all of it at once; the vote script (`ballot.Ballot.cast`) and the
sign-in's record (`voters.record_verification`) call it, so that nothing upstream of
them, Redis streams and keys included, ever holds more.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple

from ..security import keyed_digest, subkey
from .risk import _HEADLESS, _SCRIPT, agent_kind
from .signals import network_of, networks_of

# The context the address key is derived under: changing it changes every hash (never
# during an edition's voting: the per-address limits and declarations compare them).
ADDRESS_CONTEXT = "fraud-signals/address-hash/v1"
AGENT_MAX = 96
# The kept prefix's widths: the narrowest the detectors compare.
KEPT_V4 = 24
KEPT_V6 = 64

_V4_MAPPED = bytes(10) + b"\xff\xff"


@lru_cache(maxsize=8)
def address_key(secret: str) -> bytes:
    """The key addresses are hashed under, derived from the engine's secret."""
    return subkey(secret, ADDRESS_CONTEXT)


def _packed(ip: str) -> bytes | None:
    """The address's 4 or 16 bytes (an IPv4-mapped IPv6 address as its IPv4), or None."""
    text = ip.strip().split("%", 1)[0]  # a scoped link-local address: the zone is local
    try:
        if ":" in text:
            packed = socket.inet_pton(socket.AF_INET6, text)
            return packed[12:] if packed[:12] == _V4_MAPPED else packed
        return socket.inet_pton(socket.AF_INET, text)
    except (OSError, ValueError):
        return None


def address_hash(key: bytes, ip: str) -> str:
    """The keyed hash of an address, '' for none. Spellings of one address hash the same
    (IPv6 in any textual form, an IPv4-mapped address as its IPv4); a text that is no
    address (a test client's name) is hashed as it is, so equality still holds."""
    if not ip:
        return ""
    packed = _packed(ip)
    if packed is None:
        return keyed_digest(key, "text:" + ip.strip())
    return keyed_digest(key, packed.hex())


def kept_prefix(ip: str) -> str:
    """The /24 (IPv4) or /64 (IPv6) network of an address in CIDR form; '' when unknown."""
    packed = _packed(ip or "")
    if packed is None:
        return ""
    if len(packed) == 4:
        return f"{packed[0]}.{packed[1]}.{packed[2]}.0/{KEPT_V4}"
    return socket.inet_ntop(socket.AF_INET6, packed[:8] + bytes(8)) + f"/{KEPT_V6}"


def networks_of_kept(prefix_or_ip: str | None) -> tuple[str, ...]:
    """Every network width the detectors compare, from a kept prefix (or, for a row
    stored before minimisation, a full address): the same as `networks_of` of the full
    address, since the kept prefix is the narrowest of them."""
    if not prefix_or_ip:
        return ()
    return networks_of(prefix_or_ip.partition("/")[0])


# -- agents ---------------------------------------------------------------------------

# A summary is drawn from a closed vocabulary and digits, nothing else of the header: an
# agent is whatever its sender typed (a managed build named after its owner, a mailbox in
# a comment), so a word not in these lists is never kept, however harmless it looks.
# Browser families in the order they must be looked for (token -> family): Edge, Opera,
# Samsung's and others carry a Chrome and a Safari token too; Chrome carries Safari's.
_FAMILIES = (
    ("HeadlessChrome", "HeadlessChrome"),
    ("Edg", "Edge"),
    ("EdgA", "Edge"),
    ("EdgiOS", "Edge"),
    ("Edge", "Edge"),
    ("OPR", "Opera"),
    ("Opera", "Opera"),
    ("SamsungBrowser", "SamsungBrowser"),
    ("YaBrowser", "YaBrowser"),
    ("UCBrowser", "UCBrowser"),
    ("Vivaldi", "Vivaldi"),
    ("Brave", "Brave"),
    ("FxiOS", "Firefox"),
    ("Firefox", "Firefox"),
    ("CriOS", "Chrome"),
    ("Chromium", "Chromium"),
    ("Chrome", "Chrome"),
    ("PhantomJS", "PhantomJS"),
    ("Electron", "Electron"),
)
# The HTTP libraries risk._SCRIPT names, as the summary spells them (the header's case is
# the sender's): each still reads as a script to `agent_kind`, which ignores case.
_SCRIPTS = {
    "curl": "curl",
    "wget": "Wget",
    "python-requests": "python-requests",
    "python-urllib": "Python-urllib",
    "python-httpx": "python-httpx",
    "aiohttp": "aiohttp",
    "httpie": "HTTPie",
    "go-http-client": "Go-http-client",
    "java/": "Java/",  # `java/`: the slash is part of the name `agent_kind` looks for
    "okhttp": "okhttp",
    "libwww-perl": "libwww-perl",
    "node-fetch": "node-fetch",
    "axios": "axios",
    "undici": "undici",
    "ruby": "Ruby",
    "php": "PHP",
    "scrapy": "Scrapy",
    "postmanruntime": "PostmanRuntime",
}
# The automation markers risk._HEADLESS finds, as the summary spells them.
_MARKERS = {
    "headless": "Headless",
    "phantomjs": "PhantomJS",
    "slimerjs": "SlimerJS",
    "puppeteer": "Puppeteer",
    "playwright": "Playwright",
    "selenium": "Selenium",
    "webdriver": "WebDriver",
    "electron": "Electron",
}
OTHER = "other"  # an agent of no known family: nothing of its name is kept
_PLATFORMS = (
    (re.compile(r"Windows NT (\d{1,2}\.\d)"), "Windows NT {}"),
    (re.compile(r"Android (\d{1,2})"), "Android {}"),
    (re.compile(r"iPhone OS (\d{1,2})"), "iOS {}"),
    (re.compile(r"iPad.*?OS (\d{1,2})"), "iPadOS {}"),
    (re.compile(r"Mac OS X (\d{1,2})"), "macOS {}"),
    (re.compile(r"CrOS"), "ChromeOS"),
    (re.compile(r"Linux|X11"), "Linux"),
    (re.compile(r"Windows"), "Windows"),
)
# Every word a summary may hold (besides digits): tests/antifraud/test_minimise.py checks each
# summary against it.
VOCABULARY = frozenset(
    {family for _, family in _FAMILIES}
    | {"Safari", OTHER}
    | {name.rstrip("/") for name in _SCRIPTS.values()}
    | set(_MARKERS.values())
    | {"Windows", "NT", "Android", "iOS", "iPadOS", "macOS", "ChromeOS", "Linux"}
)
# A major version: at most this many digits (a longer number is no major version, and
# could be anything: it is dropped).
MAJOR_DIGITS = 4


def _one_of(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


# The form of every summary, and only of summaries (case-sensitive: one spelling each):
# [marker-]name[/major][ (platform)].
SUMMARY = re.compile(
    rf"(?:(?:{_one_of(_MARKERS.values())})-)?"
    rf"(?:{_one_of({f for _, f in _FAMILIES} | {'Safari', OTHER})}"
    rf"|{_one_of(n.rstrip('/') for n in _SCRIPTS.values())})"
    rf"(?:/\d{{0,{MAJOR_DIGITS}}})?"
    r"(?: \((?:Windows NT \d{1,2}\.\d|(?:Android|iOS|iPadOS|macOS) \d{1,2}"
    r"|ChromeOS|Linux|Windows)\))?"
)
_PRODUCT = re.compile(r"([A-Za-z][A-Za-z0-9._-]{0,63})/v?(\d+)")
_VERSION = re.compile(r"[/ ]?v?(\d+)")


def _major(digits: str) -> str:
    return digits if len(digits) <= MAJOR_DIGITS else ""


def _platform(agent: str) -> str:
    """The platform a known pattern names in the agent's first comment, or ''."""
    comment = agent[agent.find("(") + 1 : agent.find(")")] if "(" in agent else ""
    for pattern, form in _PLATFORMS:
        found = pattern.search(comment)
        if found:
            return form.format(*found.groups())
    return ""


def _versioned(name: str, major: str) -> str:
    major = _major(major)
    return f"{name}/{major}" if major else name


def _browser(agent: str) -> str:
    """The browser family and major version, or OTHER: an unknown product's name (an
    in-house build, a bot's) is not kept."""
    products = dict(_PRODUCT.findall(agent))  # a repeated token: its last version
    for token, family in _FAMILIES:
        if token in products:
            return _versioned(family, products[token])
    if "Safari" in products:
        # Safari names its own version in Version/; its Safari/ token is WebKit's build.
        return _versioned("Safari", products.get("Version", products["Safari"]))
    return OTHER


def _script(agent: str, found: re.Match[str]) -> str:
    """An HTTP library's name as the vocabulary spells it, and its major version."""
    name = _SCRIPTS[found.group(1).lower()]
    version = _VERSION.match(agent[found.end() :])
    major = _major(version.group(1)) if version else ""
    if name.endswith("/"):
        return name + major
    return f"{name}/{major}" if major else name


# How much of a header the summary parses: the product tokens and the platform come first
# in every agent; a longer one (an attacker's) costs no more to read.
_PARSED = 512


def agent_summary(user_agent: str | None) -> str:
    """What is kept of a User-Agent header: '' for none; a script's library and major
    version (`python-requests/2`); a headless browser's marker, family and platform; a
    browser's family, major version and platform (`Chrome/120 (Windows NT 10.0)`);
    `other` for a product of no known family. Only words of VOCABULARY and digits, in
    the SUMMARY form, bounded by AGENT_MAX; `agent_kind` of it is `agent_kind` of the
    header, and it is its own summary."""
    agent = (user_agent or "").strip()
    if len(agent) <= _PARSED:
        return _summary_cached(agent)
    return _summary(agent)


@lru_cache(maxsize=4096)
def _summary_cached(agent: str) -> str:
    # A handful of agents make most of the traffic; only short ones are cached, so the
    # cache stays small whatever a client sends.
    return _summary(agent)


def _summary(agent: str) -> str:
    kind = agent_kind(agent)  # on the whole header: a marker may come last
    if kind == "agent_missing":
        return ""
    if SUMMARY.fullmatch(agent):
        return agent  # already a summary: vocabulary and digits only
    head = agent[:_PARSED]
    script = _SCRIPT.match(agent)
    if kind == "agent_script" and script is not None:
        summary = _script(agent, script)
    else:
        platform = _platform(head)
        summary = _browser(head) + (f" ({platform})" if platform else "")
        marker = _HEADLESS.search(agent)
        if kind == "agent_headless" and marker is not None and not _HEADLESS.search(summary):
            summary = f"{_MARKERS[marker.group(0).lower()]}-{summary}"
    if agent_kind(summary) == kind and SUMMARY.fullmatch(summary):
        return summary
    # Never a summary that reads as another kind, or that is not a summary: the kind's
    # own word stands for the agent then.
    if kind == "agent_script" and script is not None:
        return _SCRIPTS[script.group(1).lower()]
    return f"{_MARKERS['headless']}-{OTHER}" if kind == "agent_headless" else OTHER


class Door(NamedTuple):
    """What a request's client leaves behind: never its address nor its full agent. (A
    NamedTuple: made once per vote, at a third of a frozen dataclass's cost.)"""

    address: str  # keyed hash of the address ('' for none)
    prefix: str  # the kept /24 or /64 ('' when unknown)
    network: str  # the /24 or /48 (rate limits, the committee's profile)
    agent: str  # agent_summary


def at_the_door(key: bytes, ip: str | None, user_agent: str | None) -> Door:
    """All of it from one parse of the address (this runs once per vote): the same as
    address_hash, kept_prefix and signals.network_of each (tests/antifraud/test_minimise.py)."""
    ip = ip or ""
    packed = _packed(ip) if ip else None
    agent = agent_summary(user_agent)
    if packed is None:
        return Door(address_hash(key, ip), "", network_of(ip), agent)
    address = keyed_digest(key, packed.hex())
    if len(packed) == 4:
        prefix = f"{packed[0]}.{packed[1]}.{packed[2]}.0/{KEPT_V4}"
        return Door(address, prefix, prefix, agent)  # the /24 is both
    ntop = socket.inet_ntop
    return Door(
        address,
        ntop(socket.AF_INET6, packed[:8] + bytes(8)) + f"/{KEPT_V6}",
        ntop(socket.AF_INET6, packed[:6] + bytes(10)) + "/48",
        agent,
    )
