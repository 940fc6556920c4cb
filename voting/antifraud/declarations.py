"""Declared mobilisation: a nominator says, before or during voting, where its organised
support will vote from; organizers approve or reject that on the record.

A declaration names a nomination, email domains and office networks (CIDR, IPv4 or
IPv6), an expected number of votes and the instants it runs between. A vote matches an
approved declaration when it is for that nomination, was cast within its instants
(`starts_at` included, `ends_at` not), and its email domain is a declared domain (or a
subdomain of one) or its address lies inside a declared network. A vote keeps no
address, only its /24 or /64 and the address's keyed hash (minimise.py): a declared
network as wide as that prefix or wider matches on the prefix; a narrower one (an
office's one NAT address, a /28) on the hashes of its addresses, each made under the same
key (at most 256 addresses: every IPv4 one, IPv6 /120 and narrower). An IPv6 network
between /65 and /119 is matched on its /64, the narrowest the engine keeps.

What approval changes: the committee sees matching votes as declared support, with their
share of the nomination's votes, and the offline detectors whose finding is a
concentration (`EXPLAINED`: votes from one network beyond the category's, a burst, a
bulk of verifications, one custom domain's mailboxes from networks that share nothing) do
not quarantine them; a machine's rhythm (`cluster`) is no campaign's, and still does.
What it does not change: a vote held for anything else (a honeypot, a
forged, replayed or too-fast form token, a throwaway domain) is held as before, and
votes quarantined before the approval stay so until the committee decides.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from .. import mail
from ..contest import GENEVA, EditionFileError, local_to_utc
from ..edition_store import audit
from ..emails import PROVIDERS
from ..i18n import gettext
from .config import DEFAULTS
from .minimise import KEPT_V4, KEPT_V6, address_hash
from .verification import is_disposable

# The detectors whose findings are concentrations a declared campaign explains: votes
# from one office's networks, a surge after an internal mail, accounts verified together,
# staff voting from home on the organization's domain. A machine's rhythm (`cluster`), a
# drip of single-purpose voters and every inline reason (honeypot, form tokens) still
# quarantine a declared vote.
EXPLAINED = frozenset({"concentration", "burst", "bulk_verification", "catchall"})

# The widest network a declaration may name: an office, not a provider or a country.
MIN_PREFIX = {4: 16, 6: 40}
MAX_DOMAINS = 20
MAX_NETWORKS = 20
MAX_EXPECTED = 1_000_000
MAX_NOTE = 2000
DECISIONS = {"approve": "approved", "reject": "rejected"}
# Webmail and consumer mail providers: a campaign there explains nothing.
WEBMAIL = (
    frozenset(PROVIDERS)
    | frozenset(DEFAULTS.domain_exempt)
    | frozenset(
        {
            "mail.ru",
            "bk.ru",
            "inbox.ru",
            "list.ru",
            "rambler.ru",
            "163.com",
            "126.com",
            "yeah.net",
            "sina.com",
            "sohu.com",
            "naver.com",
            "daum.net",
            "hanmail.net",
            "rediffmail.com",
            "seznam.cz",
            "wp.pl",
            "o2.pl",
            "interia.pl",
            "libero.it",
            "orange.fr",
            "laposte.net",
            "free.fr",
            "t-online.de",
            "btinternet.com",
            "comcast.net",
            "verizon.net",
            "att.net",
            "tutanota.com",
            "tuta.io",
            "hey.com",
        }
    )
)


class DeclarationError(ValueError):
    """A refusal: HTTP status, a code for programs, a message and per-field messages."""

    def __init__(
        self, status: int, code: str, message: str, fields: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = dict(fields or {})


# -- matching ---------------------------------------------------------------------------


_V4_MAPPED = bytes(10) + b"\xff\xff"


def _address_int(text: str) -> tuple[int, int] | None:
    """(version, integer) of an address; an IPv4-mapped IPv6 address is its IPv4."""
    try:
        if ":" in text:
            packed = socket.inet_pton(socket.AF_INET6, text.split("%", 1)[0])
            if packed[:12] == _V4_MAPPED:
                return 4, int.from_bytes(packed[12:], "big")
            return 6, int.from_bytes(packed, "big")
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class Net:
    version: int
    base: int
    prefix: int

    @classmethod
    def parse(cls, text: str) -> Net:
        net = ipaddress.ip_network(text, strict=False)
        return cls(net.version, int(net.network_address), net.prefixlen)

    def contains(self, version: int, value: int, prefix: int | None = None) -> bool:
        """Whether an address (or a network of `prefix` bits at `value`) lies inside."""
        if version != self.version:
            return False
        if prefix is not None and prefix < self.prefix:
            return False
        bits = 32 if version == 4 else 128
        shift = bits - self.prefix
        return (value >> shift) == (self.base >> shift)


# The widths a vote keeps (minimise.KEPT_V4, KEPT_V6), and the most addresses a declared
# network narrower than them may hold to be matched address by address, by hash.
KEPT = {4: KEPT_V4, 6: KEPT_V6}
HASHED_MAX = 256


def narrow_hashes(
    networks: Iterable[Net], address_key: bytes
) -> tuple[frozenset[str], tuple[Net, ...]]:
    """(the keyed hashes of every address of the networks narrower than the kept prefix,
    holding at most HASHED_MAX addresses; the larger narrow ones, widened to the kept
    prefix)."""
    hashes: set[str] = set()
    widened: list[Net] = []
    for n in networks:
        kept = KEPT[n.version]
        if n.prefix <= kept:
            continue
        size = 1 << ((32 if n.version == 4 else 128) - n.prefix)
        if size > HASHED_MAX:
            widened.append(Net(n.version, n.base, kept))
            continue
        make = ipaddress.IPv4Address if n.version == 4 else ipaddress.IPv6Address
        hashes.update(address_hash(address_key, str(make(n.base + i))) for i in range(size))
    return frozenset(hashes), tuple(widened)


@dataclass
class Declared:
    """An approved declaration, ready to match votes."""

    id: int
    nomination: str
    domains: tuple[str, ...]
    networks: tuple[Net, ...]
    starts_at: datetime
    ends_at: datetime
    # Its networks narrower than a vote's kept prefix: their addresses' keyed hashes, and
    # those too large to hash widened to the prefix (narrow_hashes).
    hashes: frozenset[str] = frozenset()
    widened: tuple[Net, ...] = ()

    def matches_address(
        self,
        ip: str | None,
        network: str | None = None,
        *,
        prefix: str | None = None,
        address: str | None = None,
    ) -> bool:
        """Whether a vote's client lies in a declared network: from its full address (a
        row stored before minimisation), else from its kept prefix and its address's
        keyed hash, else from its /24 or /48."""
        if ip:
            found = _address_int(ip)
            if found is not None:
                return any(n.contains(*found) for n in self.networks)
        if prefix:
            base, _, bits = prefix.partition("/")
            found = _address_int(base)
            if found is not None and bits.isdigit():
                width = int(bits)
                if any(n.contains(found[0], found[1], width) for n in self.networks):
                    return True
                if any(n.contains(found[0], found[1], width) for n in self.widened):
                    return True
            return bool(address) and address in self.hashes
        if network:
            address, _, bits = network.partition("/")
            found = _address_int(address)
            if found is not None and bits.isdigit():
                return any(n.contains(found[0], found[1], int(bits)) for n in self.networks)
        return False

    def matches_domain(self, domain: str | None) -> bool:
        if not domain:
            return False
        domain = domain.lower().rstrip(".")
        return any(domain == d or domain.endswith("." + d) for d in self.domains)

    def matches(self, vote: Mapping[str, Any]) -> bool:
        if vote["nomination"] != self.nomination:
            return False
        if not (self.starts_at <= vote["cast_at"] < self.ends_at):
            return False
        return self.matches_domain(vote.get("email_domain")) or self.matches_address(
            vote.get("ip"),
            vote.get("network"),
            prefix=vote.get("ip_prefix"),
            address=vote.get("ip_hash"),
        )


def _declared(row: Mapping[str, Any], address_key: bytes) -> Declared:
    networks = tuple(Net.parse(str(n)) for n in row["networks"])
    hashes, widened = narrow_hashes(networks, address_key)
    return Declared(
        id=row["id"],
        nomination=row["nomination"],
        domains=tuple(row["domains"]),
        networks=networks,
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        hashes=hashes,
        widened=widened,
    )


async def approved(
    conn: asyncpg.Connection,
    edition_id: int,
    nominations: Iterable[str] | None = None,
    *,
    address_key: bytes,
) -> dict[str, list[Declared]]:
    """The approved declarations of an edition, by nomination; `address_key` is the key
    votes' addresses were hashed under (minimise.address_key)."""
    rows = await conn.fetch(
        "SELECT id, nomination, domains, networks, starts_at, ends_at FROM mobilisations"
        " WHERE edition_id = $1 AND status = 'approved'"
        " AND ($2::text[] IS NULL OR nomination = ANY($2))",
        edition_id,
        None if nominations is None else list(nominations),
    )
    out: dict[str, list[Declared]] = {}
    for r in rows:
        out.setdefault(r["nomination"], []).append(_declared(r, address_key))
    return out


def matching(declared: dict[str, list[Declared]], vote: Mapping[str, Any]) -> Declared | None:
    for d in declared.get(vote["nomination"], ()):
        if d.matches(vote):
            return d
    return None


# -- the detectors' hook ---------------------------------------------------------------------


async def spare_declared(
    conn: asyncpg.Connection, edition_id: int, findings: list, *, address_key: bytes
) -> list:
    """The findings with the votes an approved declaration explains taken out.

    Only findings of an `EXPLAINED` detector are touched; the number of votes taken out
    and the declarations that explain them go into the finding's evidence. A finding left
    with no vote is dropped: the committee sees those votes as declared support."""
    concentration = [f for f in findings if f.detector in EXPLAINED and f.votes]
    if not concentration:
        return findings
    declared = await approved(conn, edition_id, address_key=address_key)
    if not declared:
        return findings
    keys = {v for f in concentration for v in f.votes}
    rows = await conn.fetch(
        "SELECT voter_id, category, nomination, cast_at, ip, network, ip_prefix, ip_hash,"
        " email_domain FROM votes"
        " JOIN unnest($2::text[], $3::text[]) AS u(v, c)"
        "   ON votes.voter_id = u.v AND votes.category = u.c"
        " WHERE votes.edition_id = $1 AND votes.nomination = ANY($4)",
        edition_id,
        [v for v, _ in keys],
        [c for _, c in keys],
        list(declared),
    )
    explained: dict[tuple[str, str], int] = {}
    for r in rows:
        found = matching(declared, r)
        if found is not None:
            explained[(r["voter_id"], r["category"])] = found.id
    if not explained:
        return findings
    kept = []
    for f in findings:
        if f.detector in EXPLAINED:
            spared = [v for v in f.votes if v in explained]
            if spared:
                f.votes = [v for v in f.votes if v not in explained]
                f.evidence = {
                    **f.evidence,
                    "declared_votes": len(spared),
                    "declarations": sorted({explained[v] for v in spared}),
                }
                if not f.votes:
                    continue
        kept.append(f)
    return kept


# -- the committee's view --------------------------------------------------------------------


async def declared_share(
    conn: asyncpg.Connection, edition_id: int, category: str, *, address_key: bytes
) -> dict[str, dict[str, Any]]:
    """Per nomination of a category with an approved declaration: its votes, the votes
    matching a declaration, their share, and the declarations."""
    nominations = await conn.fetch(
        "SELECT DISTINCT nomination FROM mobilisations m WHERE m.edition_id = $1"
        " AND m.status = 'approved' AND EXISTS (SELECT 1 FROM nominations n"
        "   WHERE n.public_id = m.nomination AND n.category = $2)",
        edition_id,
        category,
    )
    names = [r["nomination"] for r in nominations]
    if not names:
        return {}
    declared = await approved(conn, edition_id, names, address_key=address_key)
    out: dict[str, dict[str, Any]] = {
        n: {"votes": 0, "declared_votes": 0, "share": 0.0, "by_declaration": {}} for n in names
    }
    async with conn.transaction():
        cursor = conn.cursor(
            "SELECT nomination, cast_at, ip, network, ip_prefix, ip_hash, email_domain"
            " FROM votes"
            " WHERE edition_id = $1 AND category = $2 AND nomination = ANY($3)",
            edition_id,
            category,
            names,
        )
        async for r in cursor:
            entry = out[r["nomination"]]
            entry["votes"] += 1
            found = matching(declared, r)
            if found is not None:
                entry["declared_votes"] += 1
                entry["by_declaration"][found.id] = entry["by_declaration"].get(found.id, 0) + 1
    for entry in out.values():
        entry["share"] = (
            round(entry["declared_votes"] / entry["votes"], 3) if entry["votes"] else 0.0
        )
    return out


# -- declaring -----------------------------------------------------------------------------


@dataclass
class Declaration:
    domains: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    expected_votes: int = 0
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    note: str = ""


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [p for p in value.replace(",", " ").split() if p]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise TypeError


def check_domain(raw: str) -> str:
    """A campaign domain in ASCII lower case, or DeclarationError's message as ValueError."""
    text = raw.strip().lower().rstrip(".")
    if text.startswith("@"):
        text = text[1:]
    try:
        ascii_ = text.encode("idna").decode("ascii") if text else ""
    except UnicodeError:
        ascii_ = ""
    labels = ascii_.split(".")
    if (
        len(labels) < 2
        or len(ascii_) > 253
        or not all(
            0 < len(label) <= 63
            and all(c.isascii() and (c.isalnum() or c == "-") for c in label)
            and not label.startswith("-")
            and not label.endswith("-")
            for label in labels
        )
        or labels[-1].isdigit()
    ):
        raise ValueError(
            gettext("{domain} is not a domain name (like ministry.gov.rw).").format(domain=raw)
        )
    if ascii_ in WEBMAIL:
        raise ValueError(
            gettext(
                "{domain} is a public mail provider: anyone can have an address there, so it"
                " cannot explain a campaign. Declare your organization's own domain."
            ).format(domain=ascii_)
        )
    if is_disposable(ascii_):
        raise ValueError(
            gettext("{domain} is a throwaway mail domain and cannot be declared.").format(
                domain=ascii_
            )
        )
    return ascii_


def check_network(raw: str) -> str:
    """A declared network in CIDR form, or a ValueError with the reason."""
    text = raw.strip()
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(
            gettext(
                "{network} is not a network in CIDR form (like 196.12.40.0/24 or 2001:db8:40::/48)."
            ).format(network=raw)
        ) from None
    if net.prefixlen < MIN_PREFIX[net.version]:
        raise ValueError(
            gettext(
                "{network} is too wide: an office network is at most /{prefix} for IPv{version}."
            ).format(network=str(net), prefix=MIN_PREFIX[net.version], version=net.version)
        )
    return str(net)


def _instant(value: Any) -> datetime:
    """An instant from the API (ISO 8601; with no offset, Geneva wall time) or a form's
    datetime-local field (Geneva wall time)."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(gettext("Give a date and time.")) from None
    else:
        raise ValueError(gettext("Give a date and time."))
    if parsed.tzinfo is None:
        try:
            return local_to_utc(parsed, GENEVA)
        except EditionFileError:
            # The wall time itself, not contest.py's English explanation of the change.
            raise ValueError(
                gettext("That time does not exist or happens twice in Geneva: {detail}").format(
                    detail=f"{parsed:%Y-%m-%d %H:%M}"
                )
            ) from None
    return parsed.astimezone(UTC)


def _checked_list(
    raw: Mapping[str, Any],
    field: str,
    check: Any,
    most: int,
    into: list[Any],
    errors: dict[str, str],
    not_a_list: str,
    too_many: str,
) -> list[Any]:
    """One list field of a declaration: each entry checked, kept once, in `into`; the
    first problem (or too many entries) in `errors[field]`. Returns the raw entries."""
    try:
        entries = _as_list(raw.get(field))
    except TypeError:
        errors[field] = not_a_list
        return []
    for entry in entries[:most]:
        try:
            checked = check(entry)
        except ValueError as exc:
            errors.setdefault(field, str(exc))
            continue
        if checked not in into:
            into.append(checked)
    if len(entries) > most:
        errors[field] = too_many
    return entries


def validate(
    raw: Mapping[str, Any], *, voting_opens: datetime, voting_closes: datetime
) -> Declaration:
    """A declaration from a form or a JSON body; every problem at once, per field."""
    errors: dict[str, str] = {}
    out = Declaration()
    domains = _checked_list(
        raw,
        "domains",
        check_domain,
        MAX_DOMAINS,
        out.domains,
        errors,
        gettext("Give the domains as a list of texts."),
        gettext("Declare at most {n} domains.").format(n=MAX_DOMAINS),
    )
    networks = _checked_list(
        raw,
        "networks",
        check_network,
        MAX_NETWORKS,
        out.networks,
        errors,
        gettext("Give the networks as a list of texts."),
        gettext("Declare at most {n} networks.").format(n=MAX_NETWORKS),
    )
    if not domains and not networks and "domains" not in errors:
        errors["domains"] = gettext("Declare at least one email domain or one network.")
    expected = raw.get("expected_votes")
    try:
        if isinstance(expected, bool):
            raise ValueError
        if isinstance(expected, str):
            expected = int(expected.strip())
        if not isinstance(expected, int) or not 1 <= expected <= MAX_EXPECTED:
            raise ValueError
        out.expected_votes = expected
    except ValueError:
        errors["expected_votes"] = gettext(
            "Give the number of votes you expect, a whole number from 1 to {n}."
        ).format(n=MAX_EXPECTED)
    for key in ("starts_at", "ends_at"):
        try:
            setattr(out, key, _instant(raw.get(key)))
        except ValueError as exc:
            errors[key] = str(exc)
    if out.starts_at and out.ends_at:
        if out.starts_at < voting_opens or out.ends_at > voting_closes:
            errors["starts_at"] = gettext(
                "A campaign runs within the voting window, from {opens} to {closes} (Geneva time)."
            ).format(opens=_wall(voting_opens), closes=_wall(voting_closes))
        elif out.starts_at >= out.ends_at:
            errors["ends_at"] = gettext("The end must come after the start.")
    note = raw.get("note") or ""
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        errors["note"] = gettext("A note is a text of at most {n} characters.").format(n=MAX_NOTE)
    else:
        out.note = note.strip()
    if errors:
        raise DeclarationError(
            422, "invalid", gettext("Some fields need attention."), fields=errors
        )
    return out


def _wall(instant: datetime) -> str:
    return instant.astimezone(GENEVA).strftime("%Y-%m-%d %H:%M")


async def declare(
    conn: asyncpg.Connection,
    *,
    edition_id: int,
    edition_slug: str,
    nomination: str,
    user_id: int,
    user_email: str,
    declaration: Declaration,
) -> dict[str, Any]:
    async with conn.transaction():
        row = await conn.fetchrow(
            "INSERT INTO mobilisations (edition_id, nomination, declared_by, domains, networks,"
            " expected_votes, starts_at, ends_at, note)"
            " VALUES ($1, $2, $3, $4, $5::cidr[], $6, $7, $8, $9) RETURNING *",
            edition_id,
            nomination,
            user_id,
            declaration.domains,
            declaration.networks,
            declaration.expected_votes,
            declaration.starts_at,
            declaration.ends_at,
            declaration.note,
        )
        await audit(
            conn,
            actor=f"user:{user_email}",
            action="mobilisation.declare",
            edition=edition_slug,
            subject=f"nomination:{nomination}",
            detail={"declaration": row["id"], **_public(row, with_decision=False)},
        )
    return as_dict(row)


def _public(row: Mapping[str, Any], *, with_decision: bool = True) -> dict[str, Any]:
    out = {
        "nomination": row["nomination"],
        "domains": list(row["domains"]),
        "networks": [str(n) for n in row["networks"]],
        "expected_votes": row["expected_votes"],
        "starts_at": row["starts_at"].isoformat(),
        "ends_at": row["ends_at"].isoformat(),
    }
    if with_decision:
        out.update(
            {
                "status": row["status"],
                "decision_reason": row["decision_reason"],
                "decided_at": row["decided_at"].isoformat() if row["decided_at"] else None,
            }
        )
    return out


def as_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        **_public(row),
        "note": row["note"],
        "declared_at": row["declared_at"].isoformat(),
    }


async def of_nomination(
    conn: asyncpg.Connection, edition_id: int, nomination: str
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT * FROM mobilisations WHERE edition_id = $1 AND nomination = $2"
            " ORDER BY declared_at DESC, id DESC",
            edition_id,
            nomination,
        )
    )


async def queue(conn: asyncpg.Connection, edition_id: int) -> list[asyncpg.Record]:
    """Every declaration of an edition, pending ones first, for the organizers."""
    return list(
        await conn.fetch(
            "SELECT m.*, n.title, n.category FROM mobilisations m"
            " LEFT JOIN nominations n ON n.public_id = m.nomination"
            " WHERE m.edition_id = $1 ORDER BY m.status <> 'pending', m.declared_at, m.id",
            edition_id,
        )
    )


async def decide(
    conn: asyncpg.Connection,
    *,
    edition_id: int,
    edition_slug: str,
    declaration_id: int,
    decision: str,
    reason: str,
    organizer_email: str,
    base_url: str,
) -> dict[str, Any]:
    """Approve or reject a pending declaration on the record and tell its nominator."""
    errors: dict[str, str] = {}
    if decision not in DECISIONS:
        errors["decision"] = gettext("Choose approve or reject.")
    if not reason.strip():
        errors["reason"] = gettext("A decision needs a reason, for the record.")
    if errors:
        raise DeclarationError(422, "invalid", gettext("Some fields need attention."), errors)
    status = DECISIONS[decision]
    async with conn.transaction():
        row = await conn.fetchrow(
            "SELECT m.*, u.email AS owner_email, n.title FROM mobilisations m"
            " JOIN users u ON u.id = m.declared_by"
            " LEFT JOIN nominations n ON n.public_id = m.nomination"
            " WHERE m.id = $1 AND m.edition_id = $2 FOR UPDATE OF m",
            declaration_id,
            edition_id,
        )
        if row is None:
            raise DeclarationError(404, "not_found", gettext("There is no such declaration."))
        if row["status"] != "pending":
            raise DeclarationError(
                409,
                "decided",
                gettext("This declaration is already decided: {status}.").format(
                    status=row["status"]
                ),
            )
        decided = await conn.fetchrow(
            "UPDATE mobilisations SET status = $2, decided_by = $3, decided_at = now(),"
            " decision_reason = $4 WHERE id = $1 RETURNING *",
            declaration_id,
            status,
            f"user:{organizer_email}",
            reason.strip(),
        )
        await audit(
            conn,
            actor=f"user:{organizer_email}",
            action=f"mobilisation.{decision}",
            edition=edition_slug,
            subject=f"nomination:{row['nomination']}",
            reason=reason.strip(),
            detail={"declaration": declaration_id, **_public(decided)},
        )
        link = f"{base_url}/nominations/{row['nomination']}/mobilisation"
        names = {
            "public_id": row["nomination"],
            "title": row["title"] or row["nomination"],
            "reason": reason.strip(),
            "link": link,
        }
        if status == "approved":
            subject = gettext("Your declared campaign for {public_id} is approved")
            body = gettext(
                "The organizers approved the campaign you declared for “{title}”"
                " ({public_id}). Votes from the declared domains and networks, within the"
                " declared dates, are shown to the prize committee as declared support.\n\n"
                "The organizers' note: {reason}\n\n{link}\n"
            )
        else:
            subject = gettext("Your declared campaign for {public_id} was not approved")
            body = gettext(
                "The organizers did not approve the campaign you declared for “{title}”"
                " ({public_id}).\n\nTheir reason: {reason}\n\n{link}\n"
            )
        await mail.enqueue(conn, row["owner_email"], subject.format(**names), body.format(**names))
    return as_dict(decided)
