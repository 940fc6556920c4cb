"""The request signals the fraud layer reads: networks, form tokens, honeypots."""

from __future__ import annotations

import ipaddress
import secrets
import socket
from dataclasses import dataclass

from ..security import FORM, TokenError, Tokens

HONEYPOT_FIELD = "website"  # a field people never see nor fill; scripts often do


_V4_MAPPED = bytes(10) + b"\xff\xff"


def network_of(ip: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) network of an address, as text; '' when unknown.

    On the C parser of the socket module: `ipaddress` was 14% of a vote's CPU in the
    profile, and in the final hour nearly every voter comes from an address of its own, so
    no cache helps. A test holds it equal to the `ipaddress` answer (network_of_reference)
    for any address."""
    try:
        if ":" in ip:
            packed = socket.inet_pton(socket.AF_INET6, ip)
            if packed[:12] == _V4_MAPPED:
                return f"{packed[12]}.{packed[13]}.{packed[14]}.0/24"
            return socket.inet_ntop(socket.AF_INET6, packed[:6] + bytes(10)) + "/48"
        packed = socket.inet_pton(socket.AF_INET, ip)
    except (OSError, ValueError):
        # Forms the C parser refuses but `ipaddress` may take (a scoped "fe80::1%eth0").
        return network_of_reference(ip)
    return f"{packed[0]}.{packed[1]}.{packed[2]}.0/24"


def network_of_reference(ip: str) -> str:
    """network_of by the standard library's `ipaddress`: the definition, slow."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    try:
        return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
    except ValueError:
        return ""


# The widths every detector looks at: an attacker who spreads over many /24s of one
# provider still sits in its /16; one who rotates IPv6 addresses inside a /64, a /56 (a
# home line), a /48 (a site) or across the /48s of one /32 (a provider's allocation) is
# still in it at that width.
V4_WIDTHS = (24, 16)
V6_WIDTHS = (64, 56, 48, 32)


def networks_of(ip: str) -> tuple[str, ...]:
    """Every network an address sits in, narrowest first: (/24, /16) for IPv4 (an
    IPv4-mapped IPv6 address is its IPv4), (/64, /56, /48, /32) for IPv6; () when unknown.

    On the C parser like network_of; a test holds it equal to networks_of_reference."""
    try:
        if ":" in ip:
            p = socket.inet_pton(socket.AF_INET6, ip)
            if p[:12] == _V4_MAPPED:
                return (f"{p[12]}.{p[13]}.{p[14]}.0/24", f"{p[12]}.{p[13]}.0.0/16")
            ntop = socket.inet_ntop
            six = socket.AF_INET6
            return (
                ntop(six, p[:8] + bytes(8)) + "/64",
                ntop(six, p[:7] + bytes(9)) + "/56",
                ntop(six, p[:6] + bytes(10)) + "/48",
                ntop(six, p[:4] + bytes(12)) + "/32",
            )
        p = socket.inet_pton(socket.AF_INET, ip)
    except (OSError, ValueError):
        return networks_of_reference(ip)
    return (f"{p[0]}.{p[1]}.{p[2]}.0/24", f"{p[0]}.{p[1]}.0.0/16")


def networks_of_reference(ip: str) -> tuple[str, ...]:
    """networks_of by the standard library's `ipaddress`: the definition, slow."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ()
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    widths = V4_WIDTHS if address.version == 4 else V6_WIDTHS
    try:
        return tuple(str(ipaddress.ip_network(f"{address}/{w}", strict=False)) for w in widths)
    except ValueError:
        return ()


def new_form_token(tokens: Tokens, voter_id: str | None, where: str, *, now: float) -> str:
    """A signed token for one ballot form, bound to the voter it was shown to and to the
    place it was served for (`where`: the category code of a ballot, or the public id of
    a nomination's page). It carries the instant in milliseconds: itsdangerous' own
    timestamp has whole seconds only."""
    return tokens.dumps(
        FORM,
        {"v": (voter_id or "")[:12], "w": where, "n": secrets.token_hex(6), "t": int(now * 1000)},
    )


@dataclass(frozen=True)
class FormCheck:
    age_ms: int  # -1 when there was no usable token
    nonce: str  # '' when there was no usable token
    reasons: tuple[str, ...]  # quarantine reasons the form contributes


def check_form(
    tokens: Tokens,
    token: str | None,
    voter_id: str,
    *,
    now: float,
    min_seconds: float,
    max_age_s: int,
    honeypot: str | None = None,
    places: tuple[str, ...] = (),
) -> FormCheck:
    """What a vote's form says about who sent it. Never refuses: it only gives reasons.
    `places` are the places a token for this vote may name (its category, its
    nomination); empty, the place is not checked."""
    reasons: list[str] = []
    if honeypot:
        reasons.append("honeypot")
    if not token:
        return FormCheck(-1, "", (*reasons, "form_missing"))
    try:
        payload, signed_at = tokens.loads_with_age(FORM, token, max_age_s)
    except TokenError as exc:
        return FormCheck(-1, "", (*reasons, f"form_{exc.reason}"))
    if not isinstance(payload, dict) or payload.get("v") != voter_id[:12]:
        # A token served to another voter: a form shared across accounts by a script.
        return FormCheck(-1, "", (*reasons, "form_other_voter"))
    served_ms = payload.get("t") if isinstance(payload.get("t"), int) else int(signed_at * 1000)
    age_ms = max(0, int(now * 1000) - served_ms)
    if places and payload.get("w") not in places:
        # Served for another category's ballot (or nomination): not the page voted from.
        reasons.append("form_other_category")
    if age_ms < min_seconds * 1000:
        reasons.append("form_too_fast")
    return FormCheck(age_ms, str(payload.get("n", "")), tuple(reasons))
