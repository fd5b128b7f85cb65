"""httpcore network backends that hold every socket operation of an attempt to the attempt's expiry.

:class:`DeadlineBackend` and :class:`AsyncDeadlineBackend` wrap httpcore's own backends. httpcore hands each
connect, TLS handshake, read and write the timeout of its phase from ``request.extensions["timeout"]``, unchanged;
when that timeout is a :class:`HeldTimeout` (the deadline transports of :mod:`integration_kit.http.transport` make
them), the operation gets ``min(its timeout, time left)`` and raises httpcore's timeout for its phase at once when
no time is left. Writes go out in pieces of :data:`WRITE_PIECE` bytes, so a peer that reads the upload slowly
cannot stretch one ``send`` past the expiry either. A plain timeout is passed through as it is.

No state lives here: a pooled connection serves one request after another, and each operation reads the expiry of
the request it serves from the timeout it is given.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import httpcore

__all__ = ["WRITE_PIECE", "AsyncDeadlineBackend", "DeadlineBackend", "HeldTimeout"]

#: The largest piece written with one socket timeout (bytes).
WRITE_PIECE = 64 * 1024


class HeldTimeout(float):
    """A phase timeout in seconds that also carries the attempt's ``expires`` (``time.monotonic()`` seconds).

    It is a float, so httpcore (and anything else that reads ``request.extensions["timeout"]``) uses it as the
    timeout it is; the deadline backends also read :attr:`expires`.
    """

    __slots__ = ("expires",)
    expires: float

    def __new__(cls, timeout: float, expires: float) -> HeldTimeout:
        """``timeout`` (seconds, at most what is left before ``expires``) carrying ``expires``."""
        held = super().__new__(cls, timeout)
        held.expires = expires
        return held


def held(phase: type[httpcore.TimeoutException], timeout: float | None) -> float | None:
    """The timeout of one socket operation: ``timeout`` cut to the time left when it is a :class:`HeldTimeout`.

    Raises ``phase`` (httpcore's timeout of the operation's phase) when no time is left.
    """
    if type(timeout) is not HeldTimeout:
        return timeout
    left = timeout.expires - time.monotonic()
    if left <= 0:
        raise phase("the attempt's deadline passed before the operation could finish")
    return left if left < timeout else float(timeout)


_CONNECT = httpcore.ConnectTimeout
_READ = httpcore.ReadTimeout
_WRITE = httpcore.WriteTimeout


def _pieces(buffer: bytes) -> Iterable[bytes]:
    """``buffer`` in pieces of at most :data:`WRITE_PIECE` bytes (a shorter one is written as it is, no call)."""
    view = memoryview(buffer)
    return (bytes(view[start : start + WRITE_PIECE]) for start in range(0, len(view), WRITE_PIECE))


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, held(_READ, timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if len(buffer) <= WRITE_PIECE:
            self._inner.write(buffer, held(_WRITE, timeout))
            return
        for piece in _pieces(buffer):
            self._inner.write(piece, held(_WRITE, timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, held(_CONNECT, timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync backend (``inner``, default ``httpcore.SyncBackend()``) with each operation held."""

    def __init__(self, inner: httpcore.NetworkBackend | None = None) -> None:
        self._inner = inner if inner is not None else httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        inner = self._inner.connect_tcp(host, port, held(_CONNECT, timeout), local_address, socket_options)
        return _Stream(inner)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_unix_socket(path, held(_CONNECT, timeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AsyncStream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, held(_READ, timeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if len(buffer) <= WRITE_PIECE:
            await self._inner.write(buffer, held(_WRITE, timeout))
            return
        for piece in _pieces(buffer):
            await self._inner.write(piece, held(_WRITE, timeout))

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _AsyncStream(await self._inner.start_tls(ssl_context, server_hostname, held(_CONNECT, timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class AsyncDeadlineBackend(httpcore.AsyncNetworkBackend):
    """httpcore's async backend (``inner``, default ``httpcore.AnyIOBackend()``: asyncio or trio), each operation
    held."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        clipped = held(_CONNECT, timeout)
        return _AsyncStream(await self._inner.connect_tcp(host, port, clipped, local_address, socket_options))

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _AsyncStream(await self._inner.connect_unix_socket(path, held(_CONNECT, timeout), socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
