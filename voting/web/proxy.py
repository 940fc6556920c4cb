"""uvicorn's ProxyHeadersMiddleware, with its trust check on the C address parser, and
without its one way to be lied to.

The client's address is the rightmost X-Forwarded-For entry that is not a trusted proxy:
each proxy appends the address it saw, so entries are read right to left and only the
ones the trusted proxies wrote are believed. Whatever the client itself put in the header
is to the left of them and never becomes the address. `*` ("trust any peer") means one
hop: the peer is the load balancer and the client is the rightmost entry, the one the
balancer appended (uvicorn took the leftmost, the one the client chose).

Behind a load balancer every vote carries X-Forwarded-For, and uvicorn decides whether
each address in it is a trusted proxy by parsing it with `ipaddress` (8% of a vote's CPU
in the profile; its cache of 4,096 answers does not help when nearly every voter comes
from an address of its own). The answer is the same (a test holds the two equal for any
address and any trusted list); only the parsing is faster.
"""

from __future__ import annotations

import socket
from typing import Any

from uvicorn.middleware.proxy_headers import (
    ProxyHeadersMiddleware,
    _parse_host_port,
    _parse_raw_hosts,
    _TrustedHosts,
)

# uvicorn's private trust check and header parsers, subclassed and called here and nowhere
# else; checked against this range (pinned in pyproject.toml) by tests/test_compat.py.
TESTED = ">=0.30,<0.56"


def _packed(host: str) -> bytes | None:
    """The address's bytes, or None when the C parser does not take it."""
    try:
        if ":" in host:
            return socket.inet_pton(socket.AF_INET6, host)
        return socket.inet_pton(socket.AF_INET, host)
    except (OSError, ValueError):
        return None


class FastTrustedHosts(_TrustedHosts):
    def __init__(self, trusted_hosts: list[str] | str) -> None:
        super().__init__(trusted_hosts)
        # A scoped IPv6 address (fe80::1%eth0) differs from its unscoped bytes: leave such
        # lists to uvicorn's own check.
        self._fast = not any(getattr(ip, "scope_id", None) for ip in self.trusted_hosts)
        self._hosts = {ip.packed for ip in self.trusted_hosts}
        # (address length in bytes, network address as an int, netmask as an int)
        self._networks = [
            (len(net.network_address.packed), int(net.network_address), int(net.netmask))
            for net in self.trusted_networks
        ]

    def get_trusted_client_address(self, x_forwarded_for: str) -> tuple[str, int]:
        if "," not in x_forwarded_for:
            # One entry (one proxy in front: every vote behind a load balancer). Whether
            # it is a trusted proxy's or not, uvicorn answers with it: the first untrusted
            # entry from the right, else the leftmost, is that one entry; and so does "*".
            # Answered without the list, and without a trust check of an address that
            # every voter has its own of (a cache miss each time).
            return _parse_host_port(x_forwarded_for.strip())
        hosts = _parse_raw_hosts(x_forwarded_for)
        if self.always_trust:
            # One hop: the peer is the proxy; the entry it appended is the client.
            return _parse_host_port(hosts[-1])
        return super().get_trusted_client_address(x_forwarded_for)  # type: ignore[no-any-return]

    def _compute_trust(self, host: str) -> bool:
        packed = _packed(host) if self._fast else None
        if packed is None:  # not an address the C parser knows: uvicorn's own way
            return bool(super()._compute_trust(host))
        if packed in self._hosts:
            return True
        if self._networks:
            value = int.from_bytes(packed, "big")
            size = len(packed)
            return any(
                size == length and value & mask == address
                for length, address, mask in self._networks
            )
        return False


class ProxyHeaders(ProxyHeadersMiddleware):
    """ProxyHeadersMiddleware (same arguments, same scope changes) with FastTrustedHosts.
    The change is `apply`, which the vote's edge (web/edge.py) calls too: the vote does
    not cross this middleware, and takes its client and scheme from the same function."""

    def __init__(self, app: Any, trusted_hosts: list[str] | str = "127.0.0.1") -> None:
        super().__init__(app, trusted_hosts)
        self.trusted_hosts = FastTrustedHosts(trusted_hosts)

    def apply(self, scope: Any) -> None:
        """The scope's client and scheme as the trusted proxy saw them (uvicorn's
        ProxyHeadersMiddleware's change, in place; tests/web/test_proxy.py holds the two
        equal)."""
        client = scope.get("client")
        if (client[0] if client else None) not in self.trusted_hosts:
            return
        proto: bytes | None = None
        forwarded: list[bytes] = []
        for name, value in scope["headers"]:
            if name == b"x-forwarded-proto":
                proto = value
            elif name == b"x-forwarded-for":
                forwarded.append(value)
        if proto is not None:
            scheme = proto.decode("latin1").strip()
            if scheme in {"http", "https", "ws", "wss"}:
                if scope["type"] == "websocket":
                    scheme = scheme.replace("http", "ws")
                scope["scheme"] = scheme
        if forwarded:
            host, port = self.trusted_hosts.get_trusted_client_address(
                b", ".join(forwarded).decode("latin1")
            )
            if host:  # an empty X-Forwarded-For leaves the peer (uvicorn's rule)
                scope["client"] = (host, port)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            self.apply(scope)
        await self.app(scope, receive, send)
