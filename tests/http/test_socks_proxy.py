"""A SOCKS5 proxy in front of the partner (``socks5://`` and ``socks5h://`` proxy URLs), through a real SOCKS5
server on 127.0.0.1 (``tests/socks_server.py``): the deadline transports build httpcore's SOCKS pool with the
shared options over the deadline backend, log in with the URL's credentials and ask the proxy for the origin; the
call's deadline holds through the tunnel; the clients take the environment's SOCKS proxy as httpx does; and without
``socksio`` (httpcore's stand-in class) the refusal names the package. A proxy that refuses the client:
``test_proxy_refusals.py``."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator

import httpcore
import httpx
import pytest
from backend_support import head_server
from socks_server import socks_server

from integration_kit.http import transport as tr
from integration_kit.http.backend import AsyncDeadlineBackend, DeadlineBackend, HeldTimeout
from integration_kit.http.client import AsyncResilientClient, ResilientClient
from integration_kit.http.config import ClientConfig
from integration_kit.http.transport import AsyncDeadlineTransport, DeadlineTransport

SCHEMES = ["socks5", "socks5h"]
CREDENTIALS = ("proxy-user", "proxy-pass-7c1d")


def _request(url: str, expires: float) -> httpx.Request:
    timeouts = {phase: HeldTimeout(5.0, expires) for phase in ("connect", "read", "write", "pool")}
    return httpx.Request("GET", url, extensions={"timeout": timeouts})


def _proxy_url(scheme: str, proxy: str, password: str = CREDENTIALS[1]) -> str:
    return f"{scheme}://{CREDENTIALS[0]}:{password}@{proxy}"


@pytest.fixture
def black_hole() -> Iterator[tuple[str, int]]:
    """A loopback port that accepts connections (the kernel's backlog) and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    yield server.getsockname()[:2]
    server.close()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_sync_request_goes_through_the_proxy_with_its_credentials(scheme: str) -> None:
    with (
        head_server() as (host, port),
        socks_server(CREDENTIALS) as (proxy, seen),
        DeadlineTransport(proxy=_proxy_url(scheme, proxy)) as sender,
    ):
        response = sender.handle_request(_request(f"http://{host}:{port}/orders?page=2", time.monotonic() + 60))
        head = response.read()
    assert head.startswith(b"GET /orders?page=2 HTTP/1.1\r\n")  # origin form: a tunnel, not an HTTP proxy
    assert [(r.methods, r.credentials, r.target) for r in seen] == [(b"\x02", CREDENTIALS, (host, port))]


@pytest.mark.anyio
@pytest.mark.parametrize("scheme", SCHEMES)
async def test_an_async_request_goes_through_the_proxy_with_its_credentials(scheme: str) -> None:
    with head_server() as (host, port), socks_server(CREDENTIALS) as (proxy, seen):
        async with AsyncDeadlineTransport(proxy=_proxy_url(scheme, proxy)) as sender:
            response = await sender.handle_async_request(_request(f"http://{host}:{port}/a", time.monotonic() + 60))
            head = await response.aread()
    assert head.startswith(b"GET /a HTTP/1.1\r\n")
    assert [(r.credentials, r.target) for r in seen] == [(CREDENTIALS, (host, port))]


@pytest.mark.parametrize("kind", [DeadlineTransport, AsyncDeadlineTransport])
def test_the_socks_pool_keeps_the_shared_options_over_the_deadline_backend(kind: type) -> None:
    context = ssl.create_default_context()
    limits = httpx.Limits(max_connections=5, max_keepalive_connections=2, keepalive_expiry=7.0)
    built = kind(proxy="socks5://u:p@127.0.0.1:1080", limits=limits, http2=True, http1=False, verify=context)._pool
    assert type(built) is (tr._SOCKSProxy if kind is DeadlineTransport else tr._AsyncSOCKSProxy)
    assert type(built._network_backend) is (DeadlineBackend if kind is DeadlineTransport else AsyncDeadlineBackend)
    assert (built._max_connections, built._max_keepalive_connections, built._keepalive_expiry) == (5, 2, 7.0)
    assert (built._http1, built._http2, built._ssl_context) == (False, True, context)
    assert built._proxy_auth == (b"u", b"p")
    assert (built._proxy_url.scheme, built._proxy_url.host, built._proxy_url.port) == (b"socks5", b"127.0.0.1", 1080)


def test_the_deadline_holds_through_the_tunnel(black_hole: tuple[str, int]) -> None:
    host, port = black_hole
    with socks_server(CREDENTIALS) as (proxy, _), DeadlineTransport(proxy=_proxy_url("socks5", proxy)) as sender:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            sender.handle_request(_request(f"http://{host}:{port}/slow", started + 0.5))
        waited = time.monotonic() - started
    assert waited < 3.0  # the call's deadline (0.5 s), not the phase's 5 s


def _config(base_url: str) -> ClientConfig:
    return ClientConfig.from_mapping({"name": "tunnelled", "base_url": base_url, "retry": {"max_attempts": 1}})


@pytest.mark.anyio
async def test_the_clients_take_the_environments_socks_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    with head_server() as (host, port), socks_server(CREDENTIALS) as (proxy, seen):
        monkeypatch.setenv("ALL_PROXY", _proxy_url("socks5h", proxy))
        with ResilientClient(_config(f"http://{host}:{port}")) as client:
            assert client.get("/sync").text.startswith("GET /sync HTTP/1.1\r\n")
        async with AsyncResilientClient(_config(f"http://{host}:{port}")) as aclient:
            assert (await aclient.get("/async")).text.startswith("GET /async HTTP/1.1\r\n")
    assert [r.target for r in seen] == [(host, port), (host, port)]


@pytest.mark.parametrize("kind", [DeadlineTransport, AsyncDeadlineTransport])
def test_without_socksio_the_refusal_names_the_package(kind: type, monkeypatch: pytest.MonkeyPatch) -> None:
    class StandIn:  # what httpcore exports as SOCKSProxy when socksio is missing: no pool
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("httpcore's own message")

    monkeypatch.setattr(httpcore, "SOCKSProxy", StandIn)
    with pytest.raises(
        RuntimeError, match=r"^a SOCKS proxy needs the socksio package \(pip install 'httpcore\[socks\]'\)$"
    ):
        kind(proxy="socks5://127.0.0.1:1080")
