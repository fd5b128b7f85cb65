"""A proxy that refuses the client itself is a :class:`~integration_kit.errors.ProxyRefused`, sent once: a retry
would meet the same refusal. A proxy that fails to reach the partner is a connect error, retried as any other.

Real proxies on 127.0.0.1: the SOCKS5 server of ``tests/socks_server.py`` (a wrong password, no credentials where
it wants them, a target its ruleset refuses, a target that refuses the connection) and a raw HTTP proxy that
answers ``CONNECT`` with a status (407, 403, 502), on every client flavour. The proxy's credentials never show.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from redis_server import free_port
from scripted_upstream import Connect
from socks_server import socks_server
from test_client_guarantees import config

from integration_kit import ManualClock
from integration_kit.errors import ConnectError, ProxyRefused, RetriesExhausted
from integration_kit.http import exchange
from integration_kit.policies.config import RetryPolicy

CREDENTIALS = ("proxy-user", "proxy-pass-51e0")
RETRY = RetryPolicy(max_attempts=3)


def _shown(error: BaseException) -> str:
    """Everything a log line or a debugger shows of ``error`` and its cause."""
    return " ".join((str(error), repr(error), repr(error.__cause__), repr(vars(error))))


def _behind(connect: Connect, monkeypatch: pytest.MonkeyPatch, variable: str, proxy: str, base_url: str) -> Any:
    """A client of ``base_url`` (3 attempts, a manual clock) that finds ``proxy`` in the environment's ``variable``."""
    monkeypatch.setenv(variable, proxy)
    return connect(config(base_url, retry=RETRY), clock=ManualClock())


# -- SOCKS5 ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("login", "said"),
    [
        (f"{CREDENTIALS[0]}:wrong-secret-93f2@", "the proxy refused the call: Invalid username/password"),
        (
            "",  # no credentials: the client asks for no login, the proxy wants one
            "the proxy refused the call: Requested NO AUTHENTICATION REQUIRED from proxy server, but got NO "
            "ACCEPTABLE METHODS.",
        ),
    ],
)
def test_a_socks_login_refused_is_sent_once(
    connect: Connect, monkeypatch: pytest.MonkeyPatch, login: str, said: str
) -> None:
    with socks_server(CREDENTIALS) as (proxy, seen):
        client = _behind(
            connect, monkeypatch, "ALL_PROXY", f"socks5://{login}{proxy}", f"http://127.0.0.1:{free_port()}"
        )
        with pytest.raises(ProxyRefused) as caught:
            client.get("/orders")
    assert caught.value.message == said
    assert isinstance(caught.value.__cause__, httpx.ProxyError)
    assert len(seen) == 1  # not retried
    assert "wrong-secret-93f2" not in _shown(caught.value)


def test_a_socks_target_the_ruleset_refuses_is_sent_once(connect: Connect, monkeypatch: pytest.MonkeyPatch) -> None:
    with socks_server(CREDENTIALS) as (proxy, seen):
        client = _behind(
            connect,
            monkeypatch,
            "ALL_PROXY",
            f"socks5h://{CREDENTIALS[0]}:{CREDENTIALS[1]}@{proxy}",
            "https://partner.invalid:8443",
        )
        with pytest.raises(ProxyRefused) as caught:
            client.get("/orders")  # not loopback: the test proxy's ruleset refuses it
    assert caught.value.message.endswith("Connection not allowed by ruleset.")
    assert [r.target for r in seen] == [("partner.invalid", 8443)]


def test_a_socks_target_that_refuses_the_connection_is_retried(
    connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socks_server(CREDENTIALS) as (proxy, seen):
        client = _behind(
            connect,
            monkeypatch,
            "ALL_PROXY",
            f"socks5://{CREDENTIALS[0]}:{CREDENTIALS[1]}@{proxy}",
            f"http://127.0.0.1:{free_port()}",
        )
        with pytest.raises(RetriesExhausted) as caught:
            client.get("/orders")
    assert isinstance(caught.value.last_error, ConnectError)
    assert len(seen) == 3  # the partner's side failed, not the client: every attempt went
    assert CREDENTIALS[1] not in _shown(caught.value)


# -- an HTTP proxy's CONNECT ------------------------------------------------------------------------------------


@contextlib.contextmanager
def connect_proxy(status: bytes) -> Iterator[tuple[str, list[bytes]]]:
    """A raw HTTP proxy on 127.0.0.1 that answers every ``CONNECT`` with ``status`` (``b"407 Proxy ..."``); yields
    its URL and the request lines it read. Bounded: 20 connections, 30 s."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    seen: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        end = time.monotonic() + 30
        for _ in range(20):
            while not stop.is_set() and time.monotonic() < end:
                try:
                    conn, _ = server.accept()
                    break
                except TimeoutError:
                    continue
            else:
                return
            with conn, contextlib.suppress(OSError):
                conn.settimeout(5)
                head = b""
                while b"\r\n\r\n" not in head and (chunk := conn.recv(4096)):
                    head += chunk
                seen.append(head.split(b"\r\n")[0])
                conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://{CREDENTIALS[0]}:{CREDENTIALS[1]}@127.0.0.1:{server.getsockname()[1]}", seen
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


@pytest.mark.parametrize("status", [b"407 Proxy Authentication Required", b"403 Forbidden"])
def test_a_connect_the_proxy_refuses_is_sent_once(
    connect: Connect, monkeypatch: pytest.MonkeyPatch, status: bytes
) -> None:
    with connect_proxy(status) as (proxy, seen):
        client = _behind(connect, monkeypatch, "HTTPS_PROXY", proxy, "https://partner.invalid")
        with pytest.raises(ProxyRefused) as caught:
            client.get("/orders")
    assert caught.value.message == f"the proxy refused the call: {status.decode()}"
    assert seen == [b"CONNECT partner.invalid:443 HTTP/1.1"]
    assert CREDENTIALS[1] not in _shown(caught.value)


def test_a_connect_the_proxy_cannot_make_is_retried(connect: Connect, monkeypatch: pytest.MonkeyPatch) -> None:
    with connect_proxy(b"502 Bad Gateway") as (proxy, seen):
        client = _behind(connect, monkeypatch, "HTTPS_PROXY", proxy, "https://partner.invalid")
        with pytest.raises(RetriesExhausted) as caught:
            client.get("/orders")
    assert isinstance(caught.value.last_error, ConnectError)
    assert len(seen) == 3


# -- the words, exactly -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "refused"),
    [
        ("407 Proxy Authentication Required", True),
        ("403 ", True),
        ("Invalid username/password", True),
        ("Requested USERNAME/PASSWORD from proxy server, but got NO ACCEPTABLE METHODS.", True),
        ("Proxy Server could not connect: Connection not allowed by ruleset.", True),
        ("Proxy Server could not connect: Connection refused.", False),
        ("Proxy Server could not connect: Host unreachable.", False),
        ("502 Bad Gateway", False),
        ("4070 odd", False),
        ("407", False),
        ("xInvalid username/password", False),
        ("Invalid username/passwords", False),
    ],
)
def test_which_proxy_errors_are_refusals(said: str, refused: bool) -> None:
    assert bool(exchange._PROXY_REFUSALS.fullmatch(said)) is refused
