"""The attempt's deadline held at every socket operation: pool wait, connect, TLS, write, read.

httpx gives each phase of an attempt its own timeout, and each socket operation its own clock: a server that
trickles one byte every 200 ms never trips a 1-second read timeout, and the body of a response that came late
starts a fresh one. So a timeout per phase cannot hold a deadline for the whole attempt. This module can:

- :class:`AttemptDeadline` is the attempt's expiry on the monotonic clock, and the phase the attempt is in
  (``pool``, ``connect``, ``write``, ``read``), set for the current thread or task by :meth:`AttemptDeadline.hold`
  (a :class:`contextvars.ContextVar`, so threads and tasks never see each other's);
- :class:`DeadlineBackend` and :class:`AsyncDeadlineBackend` wrap httpcore's network backends: every connect,
  TLS handshake, read and write gets ``min(its own timeout, time left)``, and raises httpcore's timeout for that
  phase at once when no time is left. Writes go out in pieces of :data:`WRITE_PIECE` bytes so that a peer
  that reads the upload slowly cannot stretch one ``send`` past the expiry either;
- :func:`hold_deadlines` installs them into an ``httpx.Client`` / ``httpx.AsyncClient``'s own transports (the
  default one and the proxy mounts). A transport given by the caller is left as it is (it must honour
  ``request.extensions["timeout"]``, which is clipped to the deadline too); the async client also bounds each
  attempt with ``anyio.fail_after``.

The pool wait is bounded by httpcore's ``pool`` timeout, which the exchange clips to the time left. The phase
is what a cut attempt is labelled with: a pool wait cut by the deadline is a ``PoolTimeout``, a stalled upload a
``WriteTimeout``, never a ``ReadTimeout`` by default.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterable
from typing import Any, Literal

import httpcore
import httpx

__all__ = ["WRITE_PIECE", "AsyncDeadlineBackend", "AttemptDeadline", "DeadlineBackend", "Phase", "hold_deadlines"]

#: The largest piece written with one socket timeout (bytes).
WRITE_PIECE = 64 * 1024

Phase = Literal["pool", "connect", "write", "read"]

_CURRENT: contextvars.ContextVar[AttemptDeadline | None] = contextvars.ContextVar("integration_kit_attempt")

_TIMEOUTS: dict[str, type[httpcore.TimeoutException]] = {
    "pool": httpcore.PoolTimeout,
    "connect": httpcore.ConnectTimeout,
    "write": httpcore.WriteTimeout,
    "read": httpcore.ReadTimeout,
}


class AttemptDeadline:
    """One attempt's expiry (``time.monotonic()`` seconds, ``None``: none) and the phase it is in."""

    __slots__ = ("_token", "expires", "phase")

    def __init__(self, timeout: float | None) -> None:
        self.expires = None if timeout is None else time.monotonic() + timeout
        self.phase: Phase = "pool"
        self._token: contextvars.Token[AttemptDeadline | None] | None = None

    def hold(self) -> AttemptDeadline:
        """Use as ``with deadline.hold():``: the deadline of the current thread's or task's socket operations."""
        return self

    def __enter__(self) -> AttemptDeadline:
        self._token = _CURRENT.set(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _CURRENT.reset(self._token)
            self._token = None

    def clip(self, phase: Phase, timeout: float | None) -> float | None:
        """Enter ``phase`` and return its timeout cut to the time left; raise its timeout if none is left."""
        self.phase = phase
        if self.expires is None:
            return timeout
        left = self.expires - time.monotonic()
        if left <= 0:
            raise _TIMEOUTS[phase](f"the attempt's deadline passed before the {phase} phase could finish")
        return left if timeout is None or timeout > left else timeout


def _clip(phase: Phase, timeout: float | None) -> float | None:
    current = _CURRENT.get(None)
    return timeout if current is None else current.clip(phase, timeout)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _clip("read", timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if len(buffer) <= WRITE_PIECE:
            self._inner.write(buffer, _clip("write", timeout))
            return
        view = memoryview(buffer)
        for start in range(0, len(view), WRITE_PIECE):
            self._inner.write(bytes(view[start : start + WRITE_PIECE]), _clip("write", timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, _clip("connect", timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync backend with every operation held to the current :class:`AttemptDeadline`."""

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
        inner = self._inner.connect_tcp(host, port, _clip("connect", timeout), local_address, socket_options)
        return _Stream(inner)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_unix_socket(path, _clip("connect", timeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AsyncStream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, _clip("read", timeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if len(buffer) <= WRITE_PIECE:
            await self._inner.write(buffer, _clip("write", timeout))
            return
        view = memoryview(buffer)
        for start in range(0, len(view), WRITE_PIECE):
            await self._inner.write(bytes(view[start : start + WRITE_PIECE]), _clip("write", timeout))

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _AsyncStream(await self._inner.start_tls(ssl_context, server_hostname, _clip("connect", timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class AsyncDeadlineBackend(httpcore.AsyncNetworkBackend):
    """httpcore's async backend (asyncio or trio) with every operation held to the current deadline."""

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
        clipped = _clip("connect", timeout)
        return _AsyncStream(await self._inner.connect_tcp(host, port, clipped, local_address, socket_options))

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _AsyncStream(await self._inner.connect_unix_socket(path, _clip("connect", timeout), socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def hold_deadlines(client: httpx.Client | httpx.AsyncClient) -> int:
    """Install the deadline backends into ``client``'s own httpx transports; return how many were held.

    Only httpx's ``HTTPTransport`` / ``AsyncHTTPTransport`` (and their proxy pools) are changed, before any
    connection is opened; any other transport is left alone.
    """
    transports: list[object] = [client._transport, *client._mounts.values()]
    held = 0
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if isinstance(transport, httpx.HTTPTransport) and isinstance(backend, httpcore.NetworkBackend):
            if not isinstance(backend, DeadlineBackend):
                pool._network_backend = DeadlineBackend(backend)  # type: ignore[union-attr]
            held += 1
        elif isinstance(transport, httpx.AsyncHTTPTransport) and isinstance(backend, httpcore.AsyncNetworkBackend):
            if not isinstance(backend, AsyncDeadlineBackend):
                pool._network_backend = AsyncDeadlineBackend(backend)  # type: ignore[union-attr]
            held += 1
    return held
