"""The proxy-header middleware: its fast trust check answers exactly as uvicorn's own,
and no address a client writes in X-Forwarded-For becomes its address."""

import ipaddress

import pytest
from httpx import ASGITransport, AsyncClient
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from uvicorn.middleware.proxy_headers import (
    ProxyHeadersMiddleware,
    _parse_host_port,
    _TrustedHosts,
)

from tests.fixtures.apps import serving
from tests.fixtures.security import confirm_voter
from tests.fixtures.voting import flush, open_voting
from voting.antifraud.minimise import address_hash, address_key
from voting.web.proxy import FastTrustedHosts, ProxyHeaders

_v4 = st.ip_addresses(v=4)
_v6 = st.ip_addresses(v=6)
# Addresses near each other, so networks and hosts of a list often match the ones asked.
_near = st.sampled_from(
    ["10.0.0.1", "10.0.0.200", "10.1.2.3", "::1", "2001:db8::7", "::ffff:10.0.0.1"]
)
_host = st.one_of(
    _near,
    _v4.map(str),
    _v6.map(str),
    _v6.map(lambda a: a.exploded),
    st.sampled_from(["", "localhost", "unix:/tmp/s", "fe80::1%eth0", "01.2.3.4", "1.2.3", "::1:"]),
    st.text(alphabet="0123456789abcdef:.%/", max_size=20),
)
_entry = st.one_of(
    _near,
    _v4.map(str),
    _v6.map(str),
    st.sampled_from(["10.0.0.0/8", "10.0.0.0/24", "2001:db8::/32", "::/0", "0.0.0.0/0"]),
    st.tuples(_v4, st.integers(8, 32)).map(
        lambda t: str(ipaddress.ip_network(f"{t[0]}/{t[1]}", strict=False))
    ),
    st.tuples(_v6, st.integers(16, 128)).map(
        lambda t: str(ipaddress.ip_network(f"{t[0]}/{t[1]}", strict=False))
    ),
    st.sampled_from(["localhost", "unix:/tmp/s", "10.0.0.0/33", "fe80::1%eth0", "*"]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_entry, min_size=1, max_size=4), st.lists(_host, min_size=1, max_size=6))
def test_trust_is_decided_as_uvicorn_decides(entries, hosts):
    configured = ",".join(entries)
    fast, plain = FastTrustedHosts(configured), _TrustedHosts(configured)
    for host in hosts:
        assert (host in fast) == (host in plain), (configured, host)
    forwarded = ", ".join(hosts)
    if configured != "*":  # "*" is one hop here, uvicorn's leftmost there (below)
        assert fast.get_trusted_client_address(forwarded) == plain.get_trusted_client_address(
            forwarded
        )


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(st.just("*"), st.lists(_entry, min_size=1, max_size=4).map(",".join)),
    st.one_of(
        _host,
        _host.map(lambda h: f" {h}\t"),
        _v4.map(lambda a: f"{a}:8080"),
        _v6.map(lambda a: f"[{a}]:443"),
        _v6.map(lambda a: f"[{a}]x"),
        st.text(alphabet="0123456789abcdef:.[]% \t", max_size=24),
    ),
)
def test_one_forwarded_entry_is_answered_as_the_whole_list_would_be(configured, entry):
    """The shortcut for a header of one entry: uvicorn's answer for any trusted list, and
    the one hop of "*" (that entry, read as every entry is)."""
    fast = FastTrustedHosts(configured)
    if configured == "*":
        assert fast.get_trusted_client_address(entry) == _parse_host_port(entry.strip())
    else:
        expected = _TrustedHosts(configured).get_trusted_client_address(entry)
        assert fast.get_trusted_client_address(entry) == expected, (configured, entry)


async def _client_seen(middleware_class, trusted, client, forwarded):
    seen = {}

    async def app(scope, receive, send):
        seen.update(client=scope["client"], scheme=scope["scheme"])

    scope = {
        "type": "http",
        "scheme": "http",
        "client": (client, 5000),
        "headers": [(b"x-forwarded-for", forwarded.encode()), (b"x-forwarded-proto", b"https")],
    }
    await middleware_class(app, trusted_hosts=trusted)(scope, None, None)
    return seen


async def test_the_middleware_changes_the_scope_as_uvicorns_does():
    for trusted, client, forwarded in [
        ("127.0.0.1", "127.0.0.1", "2001:db8:5::1"),
        ("127.0.0.1", "203.0.113.9", "2001:db8:5::1"),  # not from the proxy: ignored
        ("10.0.0.0/8", "10.2.3.4", "198.51.100.7, 10.9.9.9"),  # the proxies' own skipped
        ("10.0.0.0/8", "10.2.3.4", "10.1.1.1, 10.9.9.9"),  # all trusted: the leftmost
    ]:
        ours = await _client_seen(ProxyHeaders, trusted, client, forwarded)
        theirs = await _client_seen(ProxyHeadersMiddleware, trusted, client, forwarded)
        assert ours == theirs
    assert ours["client"] == ("10.1.1.1", 0) and ours["scheme"] == "https"


# -- the address a client writes itself is never believed ---------------------------------

_network = st.one_of(
    st.tuples(_v4, st.integers(1, 32)).map(
        lambda t: ipaddress.ip_network(f"{t[0]}/{t[1]}", strict=False)
    ),
    st.tuples(_v6, st.integers(1, 128)).map(
        lambda t: ipaddress.ip_network(f"{t[0]}/{t[1]}", strict=False)
    ),
)
_allowed = st.lists(st.one_of(_v4, _v6, _network), min_size=1, max_size=4)
# Whatever a client may write in front: addresses, trusted or not, ports, junk.
_spoof = st.one_of(
    _near,
    _v4.map(str),
    _v6.map(str),
    _v4.map(lambda a: f"{a}:443"),
    _v6.map(lambda a: f"[{a}]:443"),
    st.sampled_from(["127.0.0.1", "::1", "unknown", "", "*"]),
    st.text(alphabet="0123456789abcdef:.[] ", max_size=20),
)


def _members(entries):
    """An address inside each entry (the proxies' own)."""
    return [
        e.network_address if isinstance(e, ipaddress.IPv4Network | ipaddress.IPv6Network) else e
        for e in entries
    ]


@settings(max_examples=500, deadline=None)
@given(
    allowed=st.one_of(st.just("*"), _allowed),
    client=st.one_of(_v4, _v6),
    spoofed=st.lists(_spoof, max_size=4),
    data=st.data(),
)
async def test_no_address_the_client_writes_becomes_the_address(allowed, client, spoofed, data):
    """For any trusted list, any chain of trusted proxies and anything the client writes
    in X-Forwarded-For: the address is the one the first trusted proxy saw."""
    if allowed == "*":  # one proxy in front, at any address
        configured, hops, peer = "*", [], data.draw(st.one_of(_v4, _v6)).compressed
    else:
        configured = ",".join(str(e) for e in allowed)
        # A client inside the trusted networks is a trusted proxy itself (believed as one).
        assume(client.compressed not in FastTrustedHosts(configured))
        members = [m.compressed for m in _members(allowed)]
        hops = data.draw(st.lists(st.sampled_from(members), max_size=3))
        peer = data.draw(st.sampled_from(members))
    forwarded = ", ".join([*spoofed, client.compressed, *hops])
    seen = await _client_seen(ProxyHeaders, configured, peer, forwarded)
    assert seen["client"][0] == client.compressed, (configured, forwarded)


async def test_star_is_one_hop_not_the_leftmost_entry():
    seen = await _client_seen(ProxyHeaders, "*", "192.0.2.1", "6.6.6.6, 203.0.113.7")
    assert seen["client"] == ("203.0.113.7", 0)
    seen = await _client_seen(ProxyHeaders, "*", "192.0.2.1", "203.0.113.7:5123")
    assert seen["client"] == ("203.0.113.7", 5123)
    # Nothing forwarded: the peer stays the address.
    seen = await _client_seen(ProxyHeaders, "*", "192.0.2.1", "")
    assert seen["client"] == ("192.0.2.1", 5000)


@pytest.mark.parametrize("allowed", ["*", "10.0.0.0/8,127.0.0.1"])
async def test_the_vote_front_and_the_stack_record_the_proxys_address(
    settings, clock, conn, allowed
):
    """A vote the front answers, and one the full stack answers (a query string sends it
    past the front): both record the address the proxy appended, not the client's own."""
    async with serving(
        settings, clock, trust_proxy_headers=True, forwarded_allow_ips=allowed
    ) as app:
        edition, edition_id, noms = await open_voting(app, conn)
        for n, (path, real) in enumerate(
            [("/api/votes", "203.0.113.7"), ("/api/votes?lang=en", "198.51.100.9")]
        ):
            transport = ASGITransport(app=app, client=("10.0.0.5", 4000))
            async with AsyncClient(transport=transport, base_url="http://testserver") as c:
                await confirm_voter(c, app, edition.slug, f"proxied{n}@example.org")
                csrf = (await c.get("/api/session")).json()["csrf_token"]
                # The client wrote 6.6.6.6 and 10.0.0.9; the balancer (10.0.0.5) appended
                # the peer it saw, then (with a list) an inner proxy of ours appended itself.
                hops = [] if allowed == "*" else ["10.0.0.6"]
                forwarded = ", ".join(["6.6.6.6", "10.0.0.9", real, *hops])
                r = await c.post(
                    path,
                    json={"nomination": noms["C1"][n]},
                    headers={"x-csrf-token": csrf, "x-forwarded-for": forwarded},
                )
                assert r.status_code == 202, r.text
        await flush(app)
    # Kept as its keyed hash and its /24 (antifraud/minimise.py), never the address.
    key = address_key(settings.secret_key)
    rows = await conn.fetch(
        "SELECT ip, ip_hash, ip_prefix FROM votes WHERE edition_id=$1", edition_id
    )
    assert {r["ip"] for r in rows} == {None}
    assert sorted(r["ip_hash"] for r in rows) == sorted(
        address_hash(key, ip) for ip in ("198.51.100.9", "203.0.113.7")
    )
    assert sorted(r["ip_prefix"] for r in rows) == ["198.51.100.0/24", "203.0.113.0/24"]
