"""The proxy-header middleware's fast trust check answers exactly as uvicorn's own."""

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware, _TrustedHosts

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
    assert fast.get_trusted_client_address(forwarded) == plain.get_trusted_client_address(forwarded)


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
