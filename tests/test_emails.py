"""The mailbox identity behind aliases: every spelling a provider delivers to one box is one
mailbox (one voter), and boxes that are different stay different.

Pure functions, no database: the property tests generate a base box for a provider, spell
it every way that provider accepts, and check that the mailbox never moves.
"""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from voting.emails import PROVIDERS, InvalidEmail, parse_email
from voting.i18n import reset_language, use_language

GMAIL = ("gmail.com", "googlemail.com")
YANDEX = ("yandex.ru", "yandex.com", "yandex.by", "yandex.kz", "yandex.ua", "yandex.com.tr")
YANDEX += ("ya.ru", "narod.ru")
PROTON = ("proton.me", "protonmail.com", "protonmail.ch", "pm.me")
APPLE = ("icloud.com", "me.com", "mac.com")
# Providers whose box names keep their dots, each domain its own namespace.
DOTS_KEPT = (
    "outlook.com",
    "hotmail.com",
    "hotmail.fr",
    "hotmail.co.uk",
    "live.fr",
    "outlook.de",
    "msn.com",
    "yahoo.com",
    "yahoo.co.uk",
    "gmx.net",
    "web.de",
    "zoho.com",
    "aol.com",
    "fastmail.com",
    "example.org",
    "un.int",
)


def mailbox(raw: str) -> str:
    return parse_email(raw).mailbox


# -- strategies ---------------------------------------------------------------------------

ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
letters = st.text(ALNUM, min_size=1, max_size=12)
# A name starting with a letter, as most providers require.
names = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from("abcdefghijklmnopqrstuvwxyz"),
    st.text(ALNUM, max_size=14),
)
# What follows a "+": letters, digits, and a separator inside.
tags = letters | st.builds(lambda a, sep, b: a + sep + b, letters, st.sampled_from("._-+"), letters)
cases = st.sampled_from([str.lower, str.upper, str.title, str.swapcase])


@st.composite
def separated(draw, name_strategy, separators: str):
    """A name with separators inserted between its characters (never doubled, never at an
    end), and the bare name."""
    name = draw(name_strategy)
    out = [name[0]]
    for char in name[1:]:
        if draw(st.booleans()):
            out.append(draw(st.sampled_from(separators)))
        out.append(char)
    return "".join(out), name


def with_tag(draw, local: str, separator: str = "+") -> str:
    if draw(st.booleans()):
        return local + separator + draw(tags)
    return local


# -- fixed examples: the table read aloud ------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "box", "domain"),
    [
        ("Jane.Doe+votes@Gmail.com", "janedoe@gmail.com", "gmail.com"),
        ("j.a.n.e.doe@googlemail.com", "janedoe@gmail.com", "gmail.com"),
        ("jane.doe+x@outlook.com", "jane.doe@outlook.com", "outlook.com"),
        ("jane.doe+x@hotmail.fr", "jane.doe@hotmail.fr", "hotmail.fr"),
        ("jane+news@live.co.uk", "jane@live.co.uk", "live.co.uk"),
        ("jane.doe-shopping@yahoo.com", "jane.doe@yahoo.com", "yahoo.com"),
        ("jane-a-b@yahoo.co.uk", "jane@yahoo.co.uk", "yahoo.co.uk"),
        ("jane+x@ymail.com", "jane@ymail.com", "ymail.com"),
        ("ivan.petrov@ya.ru", "ivan-petrov@yandex.ru", "yandex.ru"),
        ("Ivan-Petrov+spam@yandex.com.tr", "ivan-petrov@yandex.ru", "yandex.ru"),
        ("ivan.petrov@narod.ru", "ivan-petrov@yandex.ru", "yandex.ru"),
        ("j.a_n-e+x@pm.me", "jane@proton.me", "proton.me"),
        ("jane@protonmail.ch", "jane@proton.me", "proton.me"),
        ("jane.doe+x@me.com", "jane.doe@icloud.com", "icloud.com"),
        ("jane@mac.com", "jane@icloud.com", "icloud.com"),
        ("shop@jane.fastmail.com", "jane@fastmail.com", "fastmail.com"),
        ("shop+x@jane.sent.com", "jane@sent.com", "sent.com"),
        ("jane+x@fastmail.fm", "jane@fastmail.fm", "fastmail.fm"),
        ("jane.doe+wsis@un.int", "jane.doe@un.int", "un.int"),
        ("jane_doe-x+y@example.org", "jane_doe-x@example.org", "example.org"),
        # Nothing left before the tag: the spelling is kept, not turned into an empty box.
        ("+tag@example.org", "+tag@example.org", "example.org"),
        ("-keyword@yahoo.com", "-keyword@yahoo.com", "yahoo.com"),
        # Not a Fastmail subdomain: two labels in front, or an unknown parent.
        ("x@a.b.fastmail.com", "x@a.b.fastmail.com", "a.b.fastmail.com"),
        ("x@jane.example.org", "x@jane.example.org", "jane.example.org"),
    ],
)
def test_examples(raw, box, domain):
    address = parse_email(raw)
    assert (address.mailbox, address.domain) == (box, domain)
    # Where the mail goes is what was typed, lower-cased: only the identity folds.
    assert address.normalized == raw.strip().lower()


def test_national_domains_are_separate_namespaces_where_the_provider_says_so():
    assert mailbox("jane@hotmail.com") != mailbox("jane@hotmail.fr")
    assert mailbox("jane@outlook.com") != mailbox("jane@hotmail.com")
    assert mailbox("jane@yahoo.com") != mailbox("jane@yahoo.co.uk")
    assert mailbox("jane@yahoo.com") != mailbox("jane@ymail.com")
    assert mailbox("jane@gmx.net") != mailbox("jane@gmx.de")
    # yahoo.co.jp is Yahoo! JAPAN, not in the Yahoo rule: its hyphens stay.
    assert mailbox("a-b@yahoo.co.jp") == "a-b@yahoo.co.jp"


def test_the_table_lists_each_domain_once_and_lower_case():
    for domain, rule in PROVIDERS.items():
        assert domain == domain.lower().strip()
        assert rule.namespace is None or PROVIDERS[rule.namespace] is rule


def test_invalid_addresses_are_still_refused():
    for raw in ("", "jane", "jane@", "@gmail.com", ".jane@gmail.com", "a" * 255 + "@x.org"):
        with pytest.raises(InvalidEmail):
            parse_email(raw)


# -- properties ---------------------------------------------------------------------------


@given(data=st.data(), spelled=separated(names, "."), case=cases)
def test_gmail_spellings_are_one_box(data, spelled, case):
    dotted, bare = spelled
    local = with_tag(data.draw, dotted)
    domain = data.draw(st.sampled_from(GMAIL))
    assert mailbox(case(f"{local}@{domain}")) == f"{bare}@gmail.com"


@given(data=st.data(), head=names, tail=names, sep=st.sampled_from(".-"), case=cases)
def test_yandex_spellings_are_one_box(data, head, tail, sep, case):
    local = with_tag(data.draw, f"{head}{sep}{tail}")
    domain = data.draw(st.sampled_from(YANDEX))
    other_sep = "-" if sep == "." else "."
    other_domain = data.draw(st.sampled_from(YANDEX))
    expected = f"{head}-{tail}@yandex.ru"
    assert mailbox(case(f"{local}@{domain}")) == expected
    assert mailbox(f"{head}{other_sep}{tail}@{other_domain}") == expected


@given(data=st.data(), spelled=separated(names, "._-"), case=cases)
def test_proton_spellings_are_one_box(data, spelled, case):
    separated_name, bare = spelled
    local = with_tag(data.draw, separated_name)
    domain = data.draw(st.sampled_from(PROTON))
    assert mailbox(case(f"{local}@{domain}")) == f"{bare}@proton.me"


@given(data=st.data(), spelled=separated(names, "._"), case=cases)
def test_icloud_spellings_are_one_box(data, spelled, case):
    # Dots are significant at Apple: the generated name keeps its own.
    name, _ = spelled
    local = with_tag(data.draw, name)
    domain = data.draw(st.sampled_from(APPLE))
    assert mailbox(case(f"{local}@{domain}")) == f"{name}@icloud.com"


@given(data=st.data(), spelled=separated(names, "._"), keyword=letters, case=cases)
def test_yahoo_disposable_addresses_are_their_base(data, spelled, keyword, case):
    name, _ = spelled
    domain = data.draw(st.sampled_from(["yahoo.com", "yahoo.fr", "ymail.com", "rocketmail.com"]))
    spelling = data.draw(st.sampled_from([f"{name}-{keyword}", f"{name}+{keyword}", name]))
    assert mailbox(case(f"{spelling}@{domain}")) == f"{name}@{domain}"


@given(data=st.data(), name=names, case=cases)
def test_fastmail_subdomain_and_tag_are_the_box(data, name, case):
    domain = data.draw(st.sampled_from(["fastmail.com", "fastmail.fm", "sent.com", "eml.cc"]))
    anything = data.draw(names)
    spelling = data.draw(
        st.sampled_from(
            [f"{name}@{domain}", f"{name}+{anything}@{domain}", f"{anything}@{name}.{domain}"]
        )
    )
    assert mailbox(case(spelling)) == f"{name}@{domain}"


@given(data=st.data(), spelled=separated(names, "._"), case=cases)
def test_tags_fold_on_every_other_domain(data, spelled, case):
    # Hyphens are kept too, except at Yahoo (its keyword separator): see the examples.
    name, _ = spelled
    domain = data.draw(st.sampled_from(DOTS_KEPT))
    local = with_tag(data.draw, name)
    assert mailbox(case(f"{local}@{domain}")) == f"{name}@{domain}"


@given(spelled=separated(names, "."), domain=st.sampled_from(DOTS_KEPT))
def test_dots_keep_boxes_apart_where_they_matter(spelled, domain):
    dotted, bare = spelled
    if dotted != bare:
        assert mailbox(f"{dotted}@{domain}") != mailbox(f"{bare}@{domain}")


@given(a=names, b=names, domain=st.sampled_from(GMAIL + YANDEX + PROTON + APPLE + DOTS_KEPT))
def test_different_names_stay_different_boxes(a, b, domain):
    if a != b:
        assert mailbox(f"{a}@{domain}") != mailbox(f"{b}@{domain}")


every_domain = st.sampled_from(sorted(PROVIDERS)) | st.sampled_from(DOTS_KEPT)
generated = st.builds(
    lambda local, domain, sub: f"{local}@{sub + '.' if sub else ''}{domain}",
    st.text("abcXYZ019+_.-", min_size=1, max_size=30),
    every_domain,
    st.sampled_from(["", "jane", "a.b"]),
)


@given(raw=st.emails() | generated)
@example(raw="a.+b@fastmail.com")  # once folded to "a.@", which is no address
def test_folding_is_idempotent(raw):
    try:
        address = parse_email(raw)
    except InvalidEmail:
        return
    again = parse_email(address.mailbox)
    assert again.mailbox == address.mailbox
    assert again.domain == address.domain
    # The address mail is sent to names the same box.
    assert parse_email(address.normalized).mailbox == address.mailbox


@pytest.mark.parametrize("raw", ["no-at-sign", "two@@example.org", "a@b", "x@-example.org"])
def test_a_malformed_address_is_refused_in_the_readers_language(raw: str) -> None:
    """Not email-validator's English: the sentence the pages translate."""
    with pytest.raises(InvalidEmail) as english:
        parse_email(raw)
    assert str(english.value) == "Give a valid email address, like name@example.org."
    token = use_language("fr")
    try:
        with pytest.raises(InvalidEmail) as french:
            parse_email(raw)
    finally:
        reset_language(token)
    assert str(french.value) != str(english.value) and "@example.org" in str(french.value)
