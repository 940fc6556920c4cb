"""Email addresses: syntax, normalization, and the mailbox identity behind aliases.

Syntax and IDNA come from email-validator (a maintained library: RFC 5322/6531 syntax,
internationalized domains) instead of a hand-written pattern.

The mailbox identity (`Address.mailbox`) folds every spelling a provider delivers to one
box into one string, because the voter id is an HMAC of it: a spelling left unfolded is one
more vote for the same person. The rules are one table, `PROVIDERS`, from a provider's
own documentation; it is data, written here rather than taken from a package because none
fits: email-normalize (maintained) finds providers by MX lookups, which this engine must
not make at run time, and its offline table holds two dozen domains and no rule for
Yandex's or Proton's transparent characters; normalise-email (a port of validator.js's
normalizeEmail, last released 2024) has no Proton, Fastmail or custom-domain rule and cuts
Yahoo's keyword at the last hyphen. Its list of Microsoft domains was the starting point
of ours.

Two kinds of folding are safe, and only those are done:
- what the provider documents as the same box (Gmail's dots, Proton's '.', '-' and '_',
  Yandex's '.' for '-', one namespace over several domains, +tags, Fastmail subdomains);
- what cannot be part of a real box name there, so that folding it cannot merge two
  people: a '+tag' on any domain (no provider in the table allows '+' in a box name, and
  most mail servers deliver "box+tag" to "box"), Yahoo's '-keyword' (Yahoo names have no
  hyphen: "base-keyword" is a disposable address of the person who owns "base").
Anything else stays as typed: Outlook, Yahoo, GMX and most providers keep dots, and their
national domains (hotmail.fr, yahoo.co.uk) are separate namespaces, not aliases.
Google Workspace and other hosted custom domains cannot be told apart offline: they get
the custom-domain rule (+tags only).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from .i18n import N_, gettext


class InvalidEmail(ValueError):
    pass


# What email-validator says, in its own English, turned into our own sentences, which the
# catalogs translate: the library has no codes, so its messages are matched by the words
# that tell one kind of mistake from another (first match wins; tests/test_i18n_words.py
# holds one address of each kind, so a reworded message in a new release fails there).
_SYNTAX: tuple[tuple[tuple[str, ...], str], ...] = (
    (("too long", "so many characters"), N_("That email address is too long.")),
    (
        ("must have an @-sign", "at-sign (@) character", "commercial at"),
        N_("An email address needs an @ sign, like name@example.org."),
    ),
    (("something before the @-sign",), N_("Write your name or box before the @ sign.")),
    (
        ("something after the @-sign",),
        N_("Write the domain after the @ sign, like example.org."),
    ),
    (
        ("display name", "angle bracket", "anything after the email address"),
        N_("Enter the address alone, without a name, brackets or other words."),
    ),
    (
        ("should have a period", "top-level domain", "bracket"),
        N_("The part after the @ sign should be a domain, like example.org."),
    ),
    (
        ("period", "hyphen"),
        N_(
            "An email address cannot start or end with a period or a hyphen, nor have two of"
            " them in a row (also around the @ sign)."
        ),
    ),
    (
        ("special-use or reserved",),
        N_("The domain after the @ sign is reserved and cannot receive mail."),
    ),
    (
        ("SPACE",),
        N_("An email address cannot contain spaces: remove them."),
    ),
    (
        ("before the @-sign",),
        N_("The part before the @ sign contains characters an address cannot have."),
    ),
    (
        ("after the @-sign", "IDNA"),
        N_("The domain after the @ sign contains characters a domain cannot have."),
    ),
)
_SYNTAX_FALLBACK = N_("That is not a valid email address; check it, like name@example.org.")


def syntax_message(library_message: str) -> str:
    """Our untranslated sentence for one of email-validator's messages."""
    for needles, sentence in _SYNTAX:
        if any(needle in library_message for needle in needles):
            return sentence
    return _SYNTAX_FALLBACK


@dataclass(frozen=True)
class Address:
    normalized: str  # where mail is sent: as typed, lower-cased, IDNA domain
    mailbox: str  # one identity per mailbox: provider aliasing removed
    domain: str  # ASCII (IDNA) domain of the mailbox's namespace (yandex.ru for ya.ru)


@dataclass(frozen=True)
class Rule:
    """How one provider spells one box many ways."""

    provider: str
    namespace: str | None = None  # canonical domain when several domains are one namespace
    tags: str = "+"  # a box ends at the first of these: "box+tag" is "box"
    fold: tuple[tuple[str, str], ...] = ()  # characters the provider ignores or equates
    subdomains: bool = False  # Fastmail: "anything@box.fastmail.com" is "box@fastmail.com"


# Any domain not in the table: "+tag" is folded, nothing else.
CUSTOM = Rule("custom")

_GMAIL = Rule("google", "gmail.com", fold=((".", ""),))
_MICROSOFT = Rule("microsoft")
_YAHOO = Rule("yahoo", tags="+-")
_YANDEX = Rule("yandex", "yandex.ru", fold=((".", "-"),))
_PROTON = Rule("proton", "proton.me", fold=((".", ""), ("-", ""), ("_", "")))
_ICLOUD = Rule("apple", "icloud.com")
_FASTMAIL = Rule("fastmail", subdomains=True)
_PLAIN = {name: Rule(name) for name in ("zoho", "aol", "gmx", "web.de", "mail.com", "qq")}

# Each line: the rule, then the domains it covers. Namespaced rules (Google, Yandex,
# Proton, Apple) fold their domains into one; the others keep each domain apart.
_TABLE: tuple[tuple[Rule, str], ...] = (
    # Gmail ignores dots and "+tag"; googlemail.com is the same account
    # (Google's help: "Dots don't matter in Gmail addresses", "googlemail.com").
    (_GMAIL, "gmail.com googlemail.com"),
    # Outlook.com: "+tag" plus addressing; dots are significant; every domain (hotmail.com,
    # hotmail.fr, live.co.uk, outlook.de ...) is its own namespace. The rule is the custom
    # one, so an entry here that Microsoft no longer serves changes nothing.
    (
        _MICROSOFT,
        "outlook.com hotmail.com live.com msn.com passport.com windowslive.com"
        " hotmail.at hotmail.be hotmail.ca hotmail.ch hotmail.cl hotmail.co.id hotmail.co.il"
        " hotmail.co.in hotmail.co.jp hotmail.co.kr hotmail.co.nz hotmail.co.th hotmail.co.uk"
        " hotmail.co.za hotmail.com.ar hotmail.com.au hotmail.com.br hotmail.com.hk"
        " hotmail.com.mx hotmail.com.pe hotmail.com.tr hotmail.com.tw hotmail.com.vn hotmail.cz"
        " hotmail.de hotmail.dk hotmail.es hotmail.fi hotmail.fr hotmail.gr hotmail.hu"
        " hotmail.id hotmail.ie hotmail.in hotmail.it hotmail.jp hotmail.kr hotmail.lt"
        " hotmail.lv hotmail.my hotmail.nl hotmail.no hotmail.ph hotmail.pt hotmail.rs"
        " hotmail.sa hotmail.se hotmail.sg hotmail.sk"
        " live.at live.be live.ca live.ch live.cl live.cn live.co.kr live.co.uk live.co.za"
        " live.com.ar live.com.au live.com.mx live.com.my live.com.pt live.com.sg live.de"
        " live.dk live.es live.fi live.fr live.hk live.ie live.in live.it live.jp live.nl"
        " live.no live.ru live.se live.eu"
        " outlook.at outlook.be outlook.cl outlook.co.id outlook.co.il outlook.co.nz"
        " outlook.co.th outlook.com.ar outlook.com.au outlook.com.br outlook.com.gr"
        " outlook.com.pe outlook.com.tr outlook.com.vn outlook.cz outlook.de outlook.dk"
        " outlook.es outlook.fr outlook.hu outlook.id outlook.ie outlook.in outlook.it"
        " outlook.jp outlook.kr outlook.lv outlook.my outlook.ph outlook.pt outlook.sa"
        " outlook.sg outlook.sk msn.co.uk msn.cn msn.com.au",
    ),
    # Yahoo: disposable addresses are "base-keyword@"; Yahoo names are letters, digits,
    # '_' and one '.', so the box is what comes before the first '-' (or '+'). Dots are
    # significant, and each national domain is its own namespace. yahoo.co.jp is Yahoo!
    # JAPAN, another company with other rules: custom.
    (
        _YAHOO,
        "yahoo.com ymail.com rocketmail.com yahoo.at yahoo.be yahoo.ca yahoo.ch yahoo.cl"
        " yahoo.co.id yahoo.co.in yahoo.co.kr yahoo.co.nz yahoo.co.th yahoo.co.uk yahoo.co.za"
        " yahoo.com.ar yahoo.com.au yahoo.com.br yahoo.com.co yahoo.com.hk yahoo.com.mx"
        " yahoo.com.my yahoo.com.pe yahoo.com.ph yahoo.com.sg yahoo.com.tr yahoo.com.tw"
        " yahoo.com.ve yahoo.com.vn yahoo.cz yahoo.de yahoo.dk yahoo.es yahoo.fi yahoo.fr"
        " yahoo.gr yahoo.hu yahoo.ie yahoo.in yahoo.it yahoo.nl yahoo.no yahoo.pl yahoo.pt"
        " yahoo.ro yahoo.se",
    ),
    # Yandex: one Yandex ID has a box on every Yandex mail domain ("each mailbox on Yandex
    # Mail has aliases in ... domains"), and '.' and '-' in a login are interchangeable.
    # yandex.com.tr and narod.ru are Yandex's too, over the same Yandex ID namespace.
    (
        _YANDEX,
        "yandex.ru yandex.com yandex.by yandex.kz yandex.ua yandex.com.tr ya.ru narod.ru",
    ),
    # Proton: "username is the same as user_name and user.name", and one username has
    # its address on each Proton domain; "+alias" addressing.
    (_PROTON, "proton.me protonmail.com protonmail.ch pm.me"),
    # Apple: an old account's @me.com / @mac.com and its @icloud.com are one box; "+tag".
    (_ICLOUD, "icloud.com me.com mac.com"),
    # Fastmail: "+tag" and subdomain addressing on its own domains (custom domains cannot
    # be known offline). Each domain is its own namespace.
    (
        _FASTMAIL,
        "fastmail.com fastmail.fm fastmail.cn fastmail.co.uk fastmail.com.au fastmail.de"
        " fastmail.es fastmail.fr fastmail.im fastmail.in fastmail.jp fastmail.mx fastmail.net"
        " fastmail.nl fastmail.org fastmail.se fastmail.to fastmail.tw fastmail.uk fastmail.us"
        " messagingengine.com 123mail.org 150mail.com 150ml.com 16mail.com airpost.net eml.cc"
        " fmail.co.uk fmgirl.com fmguy.com mailbolt.com mailcan.com mailhaven.com"
        " mailmight.com ml1.net mm.st myfastmail.com proinbox.com promessage.com rushpost.com"
        " sent.as sent.at sent.com speedymail.org warpmail.net xsmail.com",
    ),
    # Providers with no documented aliasing beyond what the custom rule does: listed so
    # that a reader sees they were considered. Each domain is its own namespace.
    (_PLAIN["zoho"], "zoho.com zohomail.com zoho.eu zohomail.eu zoho.in zohomail.in"),
    (_PLAIN["aol"], "aol.com aim.com love.com ygm.com games.com wow.com aol.co.uk aol.fr"),
    (_PLAIN["gmx"], "gmx.net gmx.de gmx.at gmx.ch gmx.com gmx.us gmx.co.uk gmx.fr gmx.es"),
    (_PLAIN["web.de"], "web.de"),
    (_PLAIN["mail.com"], "mail.com email.com usa.com"),
    (_PLAIN["qq"], "qq.com vip.qq.com foxmail.com"),
)


def _index(table: Iterable[tuple[Rule, str]]) -> dict[str, Rule]:
    index: dict[str, Rule] = {}
    for rule, domains in table:
        for domain in domains.split():
            if domain in index:
                raise ValueError(f"{domain} is listed twice in the provider table")
            index[domain] = rule
    return index


PROVIDERS: dict[str, Rule] = _index(_TABLE)


def fold_mailbox(local: str, domain: str) -> tuple[str, str]:
    """The (box, namespace domain) behind a lower-cased local part and ASCII domain."""
    rule = PROVIDERS.get(domain)
    if rule is None:
        # "anything@box.fastmail.com": one label in front of a domain whose rule has
        # subdomain addressing.
        label, _, parent = domain.partition(".")
        parent_rule = PROVIDERS.get(parent)
        if parent_rule is not None and parent_rule.subdomains and label:
            local, domain, rule = label, parent, parent_rule
        else:
            rule = CUSTOM
    box = local
    for i, char in enumerate(local):
        if char in rule.tags:
            # "a.+tag": the dot before the tag ends no box a provider could hold ("a." is
            # not a valid local part), so the box is "a".
            box = local[:i].rstrip(".")
            break
    for old, new in rule.fold:
        box = box.replace(old, new)
    if not box:
        # "+tag@", "-keyword@", "._-@": nothing left is no box; keep what was typed, so
        # that such spellings stay apart instead of all becoming one empty name.
        box = local
    return box, rule.namespace or domain


def parse_email(raw: str) -> Address:
    candidate = (raw or "").strip()
    if not candidate:
        raise InvalidEmail(gettext("Enter an email address."))
    if len(candidate) > 254:
        raise InvalidEmail(gettext("That email address is too long."))
    try:
        valid = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(gettext(syntax_message(str(exc)))) from None
    local = valid.local_part.lower()
    domain = valid.ascii_domain.lower()
    box, namespace = fold_mailbox(local, domain)
    return Address(normalized=f"{local}@{domain}", mailbox=f"{box}@{namespace}", domain=namespace)


# -- typo help: "did you mean gmail.com?" -------------------------------------------------
# No maintained library fits: pymailcheck (a port of mailcheck.js) was last released in
# 2021, and email-typo-fixer rewrites the address itself, where a person must choose. So a
# small edit distance against the provider table above: a domain one slip (two for long
# names) away from a known webmail domain, and not one itself, is most likely that one.
# Short domains are left alone (qq.com is one slip from many real ones), and so is a tie
# between two providers: better no hint than a wrong one.
_SUGGESTIBLE: tuple[str, ...] = tuple(domain for domain in PROVIDERS if len(domain) >= 8)


def _distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (insert, delete, substitute, swap two neighbours),
    or limit + 1 as soon as it is certain to exceed limit."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, char_b in enumerate(b, 1):
            cost = 0 if char_a == char_b else 1
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                row[j] = min(row[j], previous2[j - 2] + 1)
        if min(row) > limit:
            return limit + 1
        previous2, previous = previous, row
    return previous[-1]


def suggest_domain(domain: str) -> str | None:
    """The provider domain a mistyped `domain` most likely meant, or None."""
    domain = domain.strip().lower()
    if len(domain) < 6 or domain in PROVIDERS:
        return None
    limit = 2 if len(domain) >= 10 else 1
    best: list[tuple[int, str]] = []
    for candidate in _SUGGESTIBLE:
        distance = _distance(domain, candidate, limit)
        if distance <= limit:
            best.append((distance, candidate))
    if not best:
        return None
    best.sort(key=lambda pair: pair[0])
    closest = [name for distance, name in best if distance == best[0][0]]
    # The same provider under one name and a national one ("hotmail.co" is one slip from
    # hotmail.com and hotmail.cz): the table's first (the .com) when they share a rule.
    if len({PROVIDERS[name].provider for name in closest}) > 1:
        return None
    return closest[0]


def suggest_address(raw: str) -> str | None:
    """The whole address with the domain a typo most likely meant: "ann@gmial.com" ->
    "ann@gmail.com"; None when there is nothing to suggest (or the address is invalid)."""
    local, at, domain = (raw or "").strip().rpartition("@")
    if not at or not local:
        return None
    better = suggest_domain(domain)
    return f"{local}@{better}" if better else None
