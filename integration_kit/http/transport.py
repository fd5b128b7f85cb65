"""Deadline-aware httpx transports: every socket operation of an attempt is held to the attempt's expiry.

httpx gives each phase of an attempt its own timeout, and each socket operation its own clock: a server that
trickles one byte every 200 ms never trips a 1-second read timeout. So a timeout per phase cannot hold a deadline
for the whole attempt. These transports can, and the deadline travels one way, through public httpx and httpcore
APIs:

1. the caller (the resilient clients' exchange) puts the attempt's phase timeouts into
   ``request.extensions["timeout"]`` as :class:`~integration_kit.http.backend.HeldTimeout` values: floats that
   also carry the attempt's expiry;
2. :class:`DeadlineTransport` / :class:`AsyncDeadlineTransport` are httpx's own ``HTTPTransport`` /
   ``AsyncHTTPTransport`` over an ``httpcore.ConnectionPool(network_backend=...)`` (or an HTTP or SOCKS proxy pool)
   built here; httpx and httpcore pass those timeouts unchanged to the network backend;
3. the backend (:mod:`integration_kit.http.backend`) gives every connect, TLS handshake, read and write
   ``min(its timeout, time left)`` and raises the timeout of that phase as soon as no time is left.

They subclass httpx's transports so that httpx's request and response mapping and its exception translation are
used as they are, and instrumentation that wraps them (OpenTelemetry's httpx instrumentation) sees every request.
httpx keeps its pool in the attribute ``_pool``, the one name this module relies on; nothing is patched after
construction.

A transport passed in by the user (a mock, a transport with retries of its own, a third-party one) is composed,
never patched (:func:`held`, :func:`aheld`): it gets the clipped timeouts, each chunk of its response body is
checked against the expiry, and an async one is bounded by ``anyio.fail_after``, naming the phase that was cut
from httpcore's public ``trace`` extension. To keep the per-operation hold with a proxy or HTTP/2, give
``proxy=`` or ``http2=True`` to these transports rather than passing an ``httpx.HTTPTransport``.

Their pools also take back the connections httpcore's pool leaks (:func:`_orphans`): in httpcore 1.0, a request
whose pool wait times out (or is cancelled) can be handed a new connection in the instant before it leaves the
queue; that connection is never connected, never handed back and never counted free again, and once every slot is
one of them every request fails with a pool timeout against a healthy server (encode/httpcore#1093). A partner that
stalls under load makes exactly those pool timeouts: the live playbook's ``supplier-stalls`` scenario wedged the
catalog client's 100 connections for good within 30 seconds.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import anyio
import httpcore
import httpx

from integration_kit.http.backend import AsyncDeadlineBackend, DeadlineBackend, HeldTimeout

__all__ = ["AsyncDeadlineTransport", "DeadlineTransport", "aheld", "expiry", "held"]

#: What a cut attempt is called, by the phase it was in (see :class:`_Phase`).
_CUT: dict[str, type[httpx.TimeoutException]] = {
    "pool": httpx.PoolTimeout,
    "connect": httpx.ConnectTimeout,
    "write": httpx.WriteTimeout,
    "read": httpx.ReadTimeout,
    # A composed transport that reported no phase may have sent the request already: a read timeout, which only
    # idempotent or keyed requests retry (a pool timeout would mean "never sent" and let a POST go out twice).
    "unknown": httpx.ReadTimeout,
}

_DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


class DeadlineTransport(httpx.HTTPTransport):
    """httpx's ``HTTPTransport`` over a connection pool whose network backend holds each socket operation to the
    expiry carried by the request's timeouts (:class:`~integration_kit.http.backend.HeldTimeout`).

    ``verify`` (an ``ssl.SSLContext``, ``True`` for the system CAs, ``False``, or a CA bundle's path), ``http1``,
    ``http2``, ``limits``, ``proxy`` (an ``http``, ``https``, ``socks5`` or ``socks5h`` URL, or an
    ``httpx.Proxy``), ``uds``, ``local_address``, ``retries`` (connect retries) and ``socket_options`` mean what
    they mean for ``httpx.HTTPTransport``, with httpx's defaults. A request with plain timeouts is sent as by httpx.
    Raises ``ValueError`` for a proxy of another scheme, ``RuntimeError`` for a SOCKS proxy without ``socksio``.
    """

    def __init__(self, **options: Any) -> None:  # httpx's __init__ would build a pool without our backend
        self._pool = _pool(False, options)


class AsyncDeadlineTransport(httpx.AsyncHTTPTransport):
    """The async twin of :class:`DeadlineTransport` (asyncio or trio, through anyio); the same options."""

    def __init__(self, **options: Any) -> None:  # httpx's __init__ would build a pool without our backend
        self._pool = _pool(True, options)


def held(transport: httpx.BaseTransport) -> httpx.BaseTransport:
    """``transport`` held to each request's expiry at its boundary (a :class:`DeadlineTransport` as it is).

    Another transport cannot be reached inside, so it is composed: it gets the clipped timeouts, and each chunk of
    its response body that arrives past the expiry ends the read with ``httpx.ReadTimeout``.
    """
    return transport if isinstance(transport, DeadlineTransport) else _Composed(transport)


def aheld(transport: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
    """The async twin of :func:`held` (an :class:`AsyncDeadlineTransport` as it is): a composed transport is also
    bounded by ``anyio.fail_after`` until its response's headers and for each chunk of its body."""
    return transport if isinstance(transport, AsyncDeadlineTransport) else _AsyncComposed(transport)


def expiry(request: httpx.Request) -> float | None:
    """The attempt's expiry (``time.monotonic()`` seconds) carried by ``request``'s timeouts; ``None``: none."""
    timeouts: Mapping[str, object] = request.extensions.get("timeout") or {}
    for value in timeouts.values():
        if type(value) is HeldTimeout:
            return value.expires
    return None


# -- building a pool ----------------------------------------------------------------------------------------------


def _orphans(pool: httpcore.ConnectionPool | httpcore.AsyncConnectionPool) -> list[Any]:
    """The connections ``pool`` holds for no request, taken out of it (the caller closes them).

    httpcore's pool assigns queued requests to connections under its lock, creating one when a slot is free; a
    request whose wait for a connection ends (pool timeout, cancellation) takes the lock again to leave the queue.
    A connection created for it in between is never used: neither idle, available, closed nor expired, the pool
    keeps it for ever. Every request the pool serves is in its queue until its response is closed, so a busy
    connection that no queued request holds is one of those. Reads httpcore's ``_connections``, ``_requests`` and
    ``_optional_thread_lock`` (httpcore 1.0; ``tests/http/test_pool_leak.py`` holds it to the installed version).
    """
    with pool._optional_thread_lock:
        connections: list[Any] = pool._connections
        serving = {id(r.connection) for r in pool._requests if r.connection is not None}
        orphans = [
            c for c in connections if id(c) not in serving and not (c.is_idle() or c.is_available() or c.is_closed())
        ]
        for connection in orphans:
            connections.remove(connection)
    return orphans


class _ReclaimingPool(httpcore.ConnectionPool):
    """httpcore's pool that takes back, after a request fails, the connections it leaked (:func:`_orphans`)."""

    def handle_request(self, request: httpcore.Request) -> httpcore.Response:
        try:
            return super().handle_request(request)
        except BaseException:
            for connection in _orphans(self):
                connection.close()  # never connected: no I/O
            raise


class _AsyncReclaimingPool(httpcore.AsyncConnectionPool):
    """The async twin of :class:`_ReclaimingPool` (a cancelled wait leaks as a timed-out one does)."""

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        try:
            return await super().handle_async_request(request)
        except BaseException:
            with anyio.CancelScope(shield=True):
                for connection in _orphans(self):
                    await connection.aclose()  # never connected: no I/O
            raise


class _HTTPProxy(_ReclaimingPool, httpcore.HTTPProxy):
    pass


class _SOCKSProxy(_ReclaimingPool, httpcore.SOCKSProxy):
    pass


class _AsyncHTTPProxy(_AsyncReclaimingPool, httpcore.AsyncHTTPProxy):
    pass


class _AsyncSOCKSProxy(_AsyncReclaimingPool, httpcore.AsyncSOCKSProxy):
    pass


_POOLS: dict[bool, tuple[type, type, type, type]] = {
    False: (_ReclaimingPool, _HTTPProxy, _SOCKSProxy, DeadlineBackend),
    True: (_AsyncReclaimingPool, _AsyncHTTPProxy, _AsyncSOCKSProxy, AsyncDeadlineBackend),
}

_OPTIONS = frozenset(
    {"verify", "http1", "http2", "limits", "proxy", "uds", "local_address", "retries", "socket_options"}
)


def _pool(is_async: bool, options: Mapping[str, Any]) -> Any:
    """An httpcore pool (or proxy pool) over the deadline backend, built from ``httpx.HTTPTransport``'s options."""
    if unknown := set(options) - _OPTIONS:
        raise TypeError(f"unexpected transport options: {', '.join(sorted(unknown))}")
    pool_type, http_proxy, socks_proxy, backend = _POOLS[is_async]
    verify = options.get("verify", True)
    limits: httpx.Limits = options.get("limits", _DEFAULT_LIMITS)
    shared: dict[str, Any] = {
        "ssl_context": verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify=verify),
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
        "http1": options.get("http1", True),
        "http2": options.get("http2", False),
        "network_backend": backend(),
    }
    proxy = options.get("proxy")
    if proxy is None:
        return pool_type(
            uds=options.get("uds"),
            local_address=options.get("local_address"),
            retries=options.get("retries", 0),
            socket_options=options.get("socket_options"),
            **shared,
        )
    proxy = proxy if isinstance(proxy, httpx.Proxy) else httpx.Proxy(proxy)
    url = httpcore.URL(
        scheme=proxy.url.raw_scheme, host=proxy.url.raw_host, port=proxy.url.port, target=proxy.url.raw_path
    )
    if proxy.url.scheme in ("http", "https"):
        return http_proxy(
            proxy_url=url,
            proxy_auth=proxy.raw_auth,
            proxy_headers=proxy.headers.raw,
            proxy_ssl_context=proxy.ssl_context,
            socket_options=options.get("socket_options"),
            **shared,
        )
    if proxy.url.scheme in ("socks5", "socks5h"):
        if not issubclass(httpcore.SOCKSProxy, httpcore.ConnectionPool):  # httpcore's stand-in: no socksio
            raise RuntimeError("a SOCKS proxy needs the socksio package (pip install 'httpcore[socks]')")
        return socks_proxy(proxy_url=url, proxy_auth=proxy.raw_auth, **shared)
    raise ValueError(f"a proxy URL is http, https, socks5 or socks5h, got {proxy.url.scheme!r}")


# -- a transport passed in, composed ------------------------------------------------------------------------------


class _Composed(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        expires = expiry(request)
        if expires is not None:
            response.stream = _HeldStream(response.stream, expires)  # type: ignore[arg-type]
        return response

    def close(self) -> None:
        self._inner.close()


class _AsyncComposed(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        # httpx's own transport reports every phase through httpcore's trace, so its silence is the pool wait;
        # another transport's silence says nothing about whether the request went out.
        self._silence = "pool" if isinstance(inner, httpx.AsyncHTTPTransport) else "unknown"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        expires = expiry(request)
        if expires is None:
            return await self._inner.handle_async_request(request)
        phase = _Phase(self._silence if "trace" not in request.extensions else "unknown")
        if "trace" not in request.extensions:
            request.extensions = {**request.extensions, "trace": phase.atrace}
        with _cut(phase, expires):
            response = await self._inner.handle_async_request(request)
        response.stream = _AsyncHeldStream(response.stream, expires)  # type: ignore[arg-type]
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Phase:
    """The phase an attempt is in, followed through httpcore's ``trace`` extension: ``unknown`` until the transport
    reports one (a transport that is not httpcore's reports none), then ``connect``, ``write``, ``read``."""

    __slots__ = ("name",)

    _NAMES = (("connection.", "connect"), ("http11.send", "write"), ("http2.send", "write"), ("http", "read"))

    def __init__(self, name: str = "unknown") -> None:
        self.name = name

    async def atrace(self, event: str, info: Mapping[str, Any]) -> None:
        """httpcore's trace callback: ``event`` is, e.g., ``connection.connect_tcp.started``."""
        for prefix, phase in self._NAMES:
            if event.startswith(prefix):
                if event.endswith(".started"):
                    self.name = phase
                return


@contextmanager
def _cut(phase: _Phase, expires: float) -> Iterator[None]:
    """Bound the block by ``expires`` (``anyio.fail_after``); a cut is the httpx timeout of ``phase``."""
    try:
        with anyio.fail_after(max(expires - time.monotonic(), 0.0)):
            yield
    except TimeoutError as exc:
        where = "before the transport reported a phase" if phase.name == "unknown" else f"in the {phase.name} phase"
        raise _CUT[phase.name](f"the attempt's deadline passed {where}") from exc


class _HeldStream(httpx.SyncByteStream):
    """A composed transport's response body, ended by a read timeout at the first chunk past ``expires``."""

    def __init__(self, stream: httpx.SyncByteStream, expires: float) -> None:
        self._stream = stream
        self._expires = expires

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._stream:
            if time.monotonic() > self._expires:
                raise httpx.ReadTimeout("the deadline passed while reading the response")
            yield chunk

    def close(self) -> None:
        self._stream.close()


class _AsyncHeldStream(httpx.AsyncByteStream):
    """A composed transport's async response body, each chunk bounded by what is left before ``expires``."""

    def __init__(self, stream: httpx.AsyncByteStream, expires: float) -> None:
        self._stream = stream
        self._expires = expires

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = self._stream.__aiter__()
        reading = _Phase("read")
        while True:
            with _cut(reading, self._expires):
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    return
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()
