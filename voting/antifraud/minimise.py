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
  `agent_summary`. `agent_kind` of the summary is always that of the full header
  (tests/antifraud/test_minimise.py), and a summary is its own summary.

`at_the_door` gives all of it at once; the vote script (`ballot.Ballot.cast`) and the
sign-in's record (`voters.record_verification`) call it, so that nothing upstream of
them, Redis streams and keys included, ever holds more.
"""

from __future__ import annotations

import re
import socket
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

# A summary: a product (letters, digits, . _ -), an optional major version, an optional
# platform in parentheses. Anything already in this form is left as it is.
_SUMMARY = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,31}(/\d{0,6})?( \([A-Za-z0-9 ._-]{1,40}\))?")
_PRODUCT = re.compile(r"([A-Za-z][A-Za-z0-9._-]{0,63})/v?(\d{1,6})")
# Browser families in the order they must be looked for: Edge, Opera, Samsung's and
# others carry a Chrome and a Safari token too; Chrome carries Safari's.
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


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _clean(text: str, limit: int) -> str:
    """Letters, digits and . _ - only (anything else one '_'), at most `limit`."""
    return _UNSAFE.sub("_", text).strip("_")[:limit]


def _platform(agent: str) -> str:
    comment = agent[agent.find("(") + 1 : agent.find(")")] if "(" in agent else ""
    for pattern, form in _PLATFORMS:
        found = pattern.search(comment)
        if found:
            return form.format(*found.groups())
    # An agent of no known platform: its comment's first part (a managed build's name),
    # cut short; the device models and build ids that follow are not kept.
    first = _clean(comment.split(";", 1)[0].replace(" ", "_"), 24).replace("_", " ").strip()
    return first


def _browser(agent: str) -> str:
    found = _PRODUCT.findall(agent)
    products = {name: major for name, major in found}
    for token, family in _FAMILIES:
        if token in products:
            return f"{family}/{products[token]}"
    if "Safari" in products:
        # Safari names its own version in Version/; its Safari/ token is WebKit's build.
        return f"Safari/{products.get('Version', products['Safari'])}"
    for name, major in found:
        if name != "Mozilla":
            return f"{name[:32]}/{major}"
    if found:
        return f"{found[0][0][:32]}/{found[0][1]}"
    # No product token at all: the agent's first characters, cleaned.
    cleaned = _clean(agent, 32)
    return cleaned if cleaned[:1].isalpha() else "other"


# How much of a header the summary parses: the product tokens and the platform come first
# in every agent; a longer one (an attacker's) costs no more to read.
_PARSED = 512


def agent_summary(user_agent: str | None) -> str:
    """What is kept of a User-Agent header: '' for none; a script's library and major
    version (`python-requests/2`); a headless browser's marker, family and platform; a
    browser's family, major version and platform (`Chrome/120 (Windows NT 10.0)`).
    Bounded by AGENT_MAX; `agent_kind` of it is `agent_kind` of the header, and it is its
    own summary."""
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
    if _SUMMARY.fullmatch(agent):
        return agent  # already no more than a summary
    head = agent[:_PARSED]
    script = _SCRIPT.match(agent)
    if kind == "agent_script" and script is not None:
        token = script.group(1)
        version = re.match(r"[/ ]?v?(\d{1,6})", agent[script.end() :])
        summary = f"{token.rstrip('/')}/{version.group(1)}" if version else token
    else:
        platform = _platform(head)
        summary = _browser(head) + (f" ({platform})" if platform else "")
        marker = _HEADLESS.search(agent)
        if kind == "agent_headless" and marker is not None and not _HEADLESS.search(summary):
            summary = f"{marker.group(0)}-{summary}"
    if agent_kind(summary) == kind and _SUMMARY.fullmatch(summary):
        return summary
    # Never a summary that reads as another kind, or that is not a summary: the kind's
    # own token stands for the agent then.
    if kind == "agent_script" and script is not None:
        return script.group(1)
    return "headless" if kind == "agent_headless" else "other"


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
