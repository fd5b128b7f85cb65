"""Loopback echo servers (TCP, Unix socket, TLS) and recording httpcore backends for the deadline backend's tests.

The recording backends wrap httpcore's real ones: every call is passed on to a real socket, and the arguments each
operation was given (the clipped timeout above all) are kept in ``calls``.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpcore
import trustme

Call = tuple[Any, ...]


def _echo(conn: socket.socket) -> None:
    with conn:
        conn.settimeout(10)
        try:
            while data := conn.recv(65536):
                conn.sendall(data)
        except OSError:
            return


@contextmanager
def _serving(server: socket.socket, serve: Callable[[], None]) -> Iterator[None]:
    """Run ``serve`` on a daemon thread while the block runs; then wake its ``accept()``, close, join (bounded)."""
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the serving thread
        server.close()
        thread.join(timeout=10)


@contextmanager
def echo_server(
    family: int = socket.AF_INET, path: Path | None = None, tls: ssl.SSLContext | None = None
) -> Iterator[Any]:
    """A server that echoes one connection (TLS upgraded first when ``tls`` is given); yields its address."""
    if family == socket.AF_UNIX:
        assert path is not None
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        server.listen(1)
        address: Any = str(path)
    else:
        server = socket.create_server(("127.0.0.1", 0))
        address = server.getsockname()
    server.settimeout(10)

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        if tls is not None:
            conn.settimeout(10)
            try:
                conn = tls.wrap_socket(conn, server_side=True)
            except (OSError, ssl.SSLError):
                conn.close()
                return
        _echo(conn)

    with _serving(server, serve):
        yield address


def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context for ``localhost`` and a client context that trusts it (a fresh test CA)."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


class SpyStream(httpcore.NetworkStream):
    """A real stream, each call recorded in the backend's ``calls``."""

    def __init__(self, inner: httpcore.NetworkStream, calls: list[Call]) -> None:
        self._inner = inner
        self.calls = calls

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.calls.append(("read", max_bytes, timeout))
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.calls.append(("write", buffer, timeout))
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self.calls.append(("close",))
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        self.calls.append(("start_tls", ssl_context, server_hostname, timeout))
        return SpyStream(self._inner.start_tls(ssl_context, server_hostname, timeout), self.calls)

    def get_extra_info(self, info: str) -> Any:
        self.calls.append(("get_extra_info", info))
        return self._inner.get_extra_info(info)


class SpyBackend(httpcore.NetworkBackend):
    """httpcore's ``SyncBackend``, each call recorded in ``calls``."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()
        self.calls: list[Call] = []

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        self.calls.append(("connect_tcp", host, port, timeout, local_address, socket_options))
        return SpyStream(self._inner.connect_tcp(host, port, timeout, local_address, socket_options), self.calls)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        self.calls.append(("connect_unix_socket", path, timeout, socket_options))
        return SpyStream(self._inner.connect_unix_socket(path, timeout, socket_options), self.calls)

    def sleep(self, seconds: float) -> None:
        self.calls.append(("sleep", seconds))
        self._inner.sleep(seconds)


class AsyncSpyStream(httpcore.AsyncNetworkStream):
    """The async twin of :class:`SpyStream`."""

    def __init__(self, inner: httpcore.AsyncNetworkStream, calls: list[Call]) -> None:
        self._inner = inner
        self.calls = calls

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.calls.append(("read", max_bytes, timeout))
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.calls.append(("write", buffer, timeout))
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        self.calls.append(("close",))
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        self.calls.append(("start_tls", ssl_context, server_hostname, timeout))
        return AsyncSpyStream(await self._inner.start_tls(ssl_context, server_hostname, timeout), self.calls)

    def get_extra_info(self, info: str) -> Any:
        self.calls.append(("get_extra_info", info))
        return self._inner.get_extra_info(info)


class AsyncSpyBackend(httpcore.AsyncNetworkBackend):
    """httpcore's ``AnyIOBackend``, each call recorded in ``calls``."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()
        self.calls: list[Call] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        self.calls.append(("connect_tcp", host, port, timeout, local_address, socket_options))
        inner = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return AsyncSpyStream(inner, self.calls)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        self.calls.append(("connect_unix_socket", path, timeout, socket_options))
        return AsyncSpyStream(await self._inner.connect_unix_socket(path, timeout, socket_options), self.calls)

    async def sleep(self, seconds: float) -> None:
        self.calls.append(("sleep", seconds))
        await self._inner.sleep(seconds)


@contextmanager
def head_server(path: Path | None = None) -> Iterator[Any]:
    """An HTTP/1.1 server that answers every request with its own head as the body (request line and headers,
    so a test sees what a proxy would be sent); TCP on 127.0.0.1, or a Unix socket at ``path``. Yields its address."""
    if path is not None:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        server.listen(8)
        address: Any = str(path)
    else:
        server = socket.create_server(("127.0.0.1", 0))
        address = server.getsockname()
    server.settimeout(10)

    def answer(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            head = b""
            try:
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    data = conn.recv(4096)
                    if not data:
                        return
                    head += data
                body = head.split(b"\r\n\r\n")[0]
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
                )
            except OSError:
                return

    def serve() -> None:
        for _ in range(100):  # bounded
            try:
                conn, _ = server.accept()
            except OSError:
                return
            answer(conn)

    with _serving(server, serve):
        yield address
