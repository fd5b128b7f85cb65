"""The deadline transports' pools (:mod:`integration_kit.http.transport`), built from httpx's transport options:
each option reaches httpcore's pool (or is httpx's default), over the deadline backend; a request goes out over a
real loopback socket, a Unix socket or an HTTP proxy (with its credentials and headers); an unknown option or proxy
scheme is refused. A transport passed in is composed: its body is ended by a read timeout once the expiry the
request carries has passed, and left alone when the request carries none."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpcore
import httpx
import pytest
from backend_support import head_server

from integration_kit.http import transport as tr
from integration_kit.http.backend import AsyncDeadlineBackend, DeadlineBackend, HeldTimeout
from integration_kit.http.transport import AsyncDeadlineTransport, DeadlineTransport, expiry, held


def _timeouts(expires: float) -> dict[str, Any]:
    return {phase: HeldTimeout(5.0, expires) for phase in ("connect", "read", "write", "pool")}


def _request(url: str, expires: float | None = None, **extensions: Any) -> httpx.Request:
    if expires is not None:
        extensions["timeout"] = _timeouts(expires)
    return httpx.Request("GET", url, extensions=extensions)


def _body(transport: httpx.BaseTransport, request: httpx.Request) -> bytes:
    response = transport.handle_request(request)
    try:
        return b"".join(response.stream)  # type: ignore[union-attr]
    finally:
        response.close()


# -- options ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [DeadlineTransport, AsyncDeadlineTransport])
def test_an_unknown_option_is_refused_by_name(kind: type) -> None:
    with pytest.raises(TypeError, match=r"^unexpected transport options: mounts, trust_env$"):
        kind(trust_env=False, mounts={})


@pytest.mark.parametrize(
    ("kind", "pool", "backend"),
    [
        (DeadlineTransport, tr._ReclaimingPool, DeadlineBackend),
        (AsyncDeadlineTransport, tr._AsyncReclaimingPool, AsyncDeadlineBackend),
    ],
)
def test_the_defaults_are_httpx_s_over_the_deadline_backend(kind: type, pool: type, backend: type) -> None:
    built = kind()._pool
    assert type(built) is pool
    assert type(built._network_backend) is backend
    assert (built._max_connections, built._max_keepalive_connections, built._keepalive_expiry) == (100, 20, 5.0)
    assert (built._http1, built._http2, built._retries) == (True, False, 0)
    assert (built._uds, built._local_address, built._socket_options) == (None, None, None)
    assert built._ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert built._ssl_context.check_hostname


@pytest.mark.parametrize("kind", [DeadlineTransport, AsyncDeadlineTransport])
def test_every_option_reaches_the_pool(kind: type) -> None:
    context = ssl.create_default_context()
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    limits = httpx.Limits(max_connections=7, max_keepalive_connections=3, keepalive_expiry=9.0)
    built = kind(
        verify=context,
        limits=limits,
        http1=False,
        http2=True,
        retries=2,
        uds="/tmp/nowhere.sock",
        local_address="127.0.0.1",
        socket_options=options,
    )._pool
    assert built._ssl_context is context
    assert (built._max_connections, built._max_keepalive_connections, built._keepalive_expiry) == (7, 3, 9.0)
    assert (built._http1, built._http2, built._retries) == (False, True, 2)
    assert (built._uds, built._local_address, built._socket_options) == ("/tmp/nowhere.sock", "127.0.0.1", options)


def test_verify_false_turns_certificate_checks_off() -> None:
    context = DeadlineTransport(verify=False)._pool._ssl_context
    assert context.verify_mode == ssl.CERT_NONE
    assert not context.check_hostname


# -- requests over loopback ---------------------------------------------------------------------------------------


def test_a_request_goes_out_over_tcp_with_held_timeouts() -> None:
    with head_server() as (host, port), DeadlineTransport() as sender:
        head = _body(sender, _request(f"http://{host}:{port}/path?q=1", time.monotonic() + 100))
    assert head.startswith(b"GET /path?q=1 HTTP/1.1\r\n")


def test_a_request_goes_out_over_a_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "http.sock"
    with head_server(path), DeadlineTransport(uds=str(path)) as sender:
        head = _body(sender, _request("http://over.unix/here", time.monotonic() + 100))
    assert head.startswith(b"GET /here HTTP/1.1\r\n")
    assert b"Host: over.unix" in head


@pytest.mark.parametrize("as_string", [True, False])
def test_an_http_proxy_is_sent_the_absolute_url_its_credentials_and_headers(as_string: bool) -> None:
    with head_server() as (host, port):
        url = f"http://user:pw@{host}:{port}"
        proxy: Any = url if as_string else httpx.Proxy(url, headers={"X-Proxy": "yes"})
        with DeadlineTransport(proxy=proxy) as sender:
            assert type(sender._pool) is tr._HTTPProxy
            head = _body(sender, _request("http://partner.invalid/orders", time.monotonic() + 100))
    assert head.startswith(b"GET http://partner.invalid/orders HTTP/1.1\r\n")
    assert b"Proxy-Authorization: Basic dXNlcjpwdw==" in head
    assert (b"X-Proxy: yes" in head) is not as_string


def test_proxy_pools_keep_the_shared_options_and_the_proxy_s_tls() -> None:
    context = ssl.create_default_context()
    limits = httpx.Limits(max_connections=5, max_keepalive_connections=2)
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    proxy = httpx.Proxy("https://127.0.0.1:3128", ssl_context=context)
    for kind, pool in ((DeadlineTransport, tr._HTTPProxy), (AsyncDeadlineTransport, tr._AsyncHTTPProxy)):
        built = kind(proxy=proxy, limits=limits, socket_options=options, http2=True)._pool
        assert type(built) is pool
        assert (built._max_connections, built._max_keepalive_connections, built._http2) == (5, 2, True)
        assert built._proxy_ssl_context is context
        assert built._socket_options == options
        assert built._proxy_url.scheme == b"https"
        assert (built._proxy_url.host, built._proxy_url.port, built._proxy_url.target) == (b"127.0.0.1", 3128, b"/")


def test_a_proxy_of_another_scheme_is_refused() -> None:
    proxy = httpx.Proxy("http://127.0.0.1:3128")
    proxy.url = httpx.URL("ftp://127.0.0.1:3128")
    with pytest.raises(ValueError, match=r"^a proxy URL is http, https, socks5 or socks5h, got 'ftp'$"):
        DeadlineTransport(proxy=proxy)


# -- expiry and a composed transport ------------------------------------------------------------------------------


def test_expiry_is_read_from_the_first_held_timeout() -> None:
    assert expiry(httpx.Request("GET", "http://x/")) is None
    assert expiry(_request("http://x/", timeout={"read": 5.0, "connect": None})) is None
    mixed = {"connect": 5.0, "read": HeldTimeout(2.0, 42.0), "write": HeldTimeout(2.0, 43.0)}
    assert expiry(_request("http://x/", timeout=mixed)) == 42.0


class _Chunks(httpx.BaseTransport):
    """An in-memory transport whose body comes in three chunks; it records being closed."""

    def __init__(self) -> None:
        self.closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        def chunks() -> Iterator[bytes]:
            yield from (b"a", b"b", b"c")

        return httpx.Response(200, content=chunks())

    def close(self) -> None:
        self.closed = True


def test_a_deadline_transport_is_held_as_it_is_and_another_is_composed() -> None:
    own = DeadlineTransport()
    assert held(own) is own
    inner = _Chunks()
    composed = held(inner)
    assert composed is not inner
    composed.close()
    assert inner.closed


def test_a_composed_body_reads_whole_before_the_expiry_and_without_one() -> None:
    composed = held(_Chunks())
    assert _body(composed, _request("http://x/", time.monotonic() + 100)) == b"abc"
    assert _body(composed, _request("http://x/")) == b"abc"
    assert _body(composed, _request("http://x/", timeout={"read": 5.0})) == b"abc"


def test_a_composed_body_past_the_expiry_ends_with_a_read_timeout() -> None:
    response = held(_Chunks()).handle_request(_request("http://x/", time.monotonic() - 1))
    with pytest.raises(httpx.ReadTimeout, match=r"^the deadline passed while reading the response$"):
        b"".join(response.stream)  # type: ignore[union-attr]


class _Closing(httpx.SyncByteStream):
    def __init__(self) -> None:
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield b"body"

    def close(self) -> None:
        self.closed = True


class _ClosingBody(httpx.BaseTransport):
    def __init__(self) -> None:
        self.stream = _Closing()
        self.seen: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return httpx.Response(200, stream=self.stream)


def test_closing_a_composed_body_closes_the_inner_one() -> None:
    inner = _ClosingBody()
    request = _request("http://x/", time.monotonic() + 100)
    response = held(inner).handle_request(request)
    assert inner.seen == [request]
    assert response.stream is not inner.stream
    response.close()
    assert inner.stream.closed


class _Connection:
    """A stand-in for one of httpcore's pooled connections, in one state; records being closed."""

    def __init__(self, state: str) -> None:
        self.state = state
        self.closed = False

    def is_idle(self) -> bool:
        return self.state == "idle"

    def is_available(self) -> bool:
        return self.state == "available"

    def is_closed(self) -> bool:
        return self.state == "closed"

    def close(self) -> None:
        self.closed = True

    def has_expired(self) -> bool:
        return False

    def can_handle_request(self, origin: Any) -> bool:
        return False


@pytest.mark.parametrize("kind", [DeadlineTransport, AsyncDeadlineTransport])
def test_only_busy_connections_no_request_holds_are_orphans(kind: type) -> None:
    pool = kind()._pool
    served, orphan = _Connection("busy"), _Connection("busy")
    kept = [_Connection("idle"), _Connection("available"), _Connection("closed"), served]
    pool._connections[:] = [*kept[:2], orphan, *kept[2:]]
    pool._requests[:] = [SimpleNamespace(connection=None), SimpleNamespace(connection=served)]
    assert tr._orphans(pool) == [orphan]
    assert pool._connections == kept
    pool._requests.clear()
    pool._connections.clear()


class _Refusing(httpcore.MockBackend):
    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("refused")


def test_a_failed_request_closes_the_orphans_and_fails_as_it_did() -> None:
    pool = tr._ReclaimingPool(network_backend=_Refusing([]))
    orphan = _Connection("busy")
    pool._connections.append(orphan)
    with pytest.raises(httpcore.ConnectError, match=r"^refused$"):
        pool.handle_request(httpcore.Request("GET", "http://127.0.0.1:9/"))
    assert orphan.closed
    assert orphan not in pool._connections
