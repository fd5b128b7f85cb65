"""HTTP clients for one integration: :class:`ResilientClient` (sync) and :class:`AsyncResilientClient` (async).

Both are thin drivers of the :class:`~integration_kit.engine.call.CallEngine` over an ``httpx.Client`` /
``httpx.AsyncClient`` (so connection pooling, HTTP/1.1 keep-alive and ``transport=`` work as in httpx). The engine
makes every decision; everything that is not blocking or awaiting I/O lives once, in :class:`_ClientCore` and
:class:`Exchange`:

- preparing a request: the origin is pinned to ``base_url`` (an absolute URL elsewhere is :class:`UnsafeRequest`),
  header values with CR or LF are refused, the credential is added from its
  :class:`~integration_kit.http.redact.Secret`, the ``Idempotency-Key`` is sent as a structured-field string
  (``"uuid"``) and is the same on every attempt;
- each attempt's timeouts are clipped to what is left of the call's deadline, and its expiry travels in the
  request's extensions to the deadline transport (:mod:`integration_kit.http.transport`), whose network backend
  holds every socket operation of the attempt (pool wait, connect, TLS, write, read) to it, so a server that
  trickles bytes cannot stretch a call past it;
- the body is streamed, so ``max_response_bytes`` raises :class:`ResponseTooLarge` without reading it into memory;
- answers and httpx exceptions become an ``Outcome`` at one boundary, with the typed error and the partner's signals.

The two clients differ only in how they send and sleep. A ``transport=`` passed in is composed with the deadline
transport, never patched (:func:`~integration_kit.http.transport.held`): it gets timeouts clipped to the deadline,
its body is checked against the expiry chunk by chunk, and an async one is bounded by ``anyio.fail_after``. For a
proxy or HTTP/2 with the deadline held at every socket operation, use ``DeadlineTransport(proxy=..., http2=True)``.

Whatever a partner sends, a call raises only an :class:`~integration_kit.errors.IntegrationError` and ends with a
call-finished event; a request the caller cannot build is refused with
:class:`~integration_kit.errors.UnsafeRequest` before the engine starts (:mod:`integration_kit.http.safety`).
"""

from __future__ import annotations

import functools
import json as jsonlib
import random
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping
from importlib import metadata
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypedDict, TypeVar

import anyio
import anyio.lowlevel
import httpx

from integration_kit.clock import AsyncClock, Clock, SystemClock, time_scale_of
from integration_kit.engine.call import CallEngine, Send, run_async, run_sync
from integration_kit.errors import ConfigurationError, IntegrationError, InvalidResponse, UnsafeRequest
from integration_kit.events import Hook
from integration_kit.http.config import ClientConfig, is_loopback
from integration_kit.http.exchange import ATTEMPT_ERRORS, Exchange, ExchangeContext, PartnerSignals, longest
from integration_kit.http.redact import redact_http_logs, redact_text, redact_url, secret_forms
from integration_kit.http.safety import checked_headers, checked_key, checked_method, replayable, shown
from integration_kit.http.transport import AsyncDeadlineTransport, DeadlineTransport, aheld, held
from integration_kit.policies.breaker import CircuitBreaker
from integration_kit.policies.budget import RetryBudget
from integration_kit.policies.config import UNSET, RetryPolicy, Timeouts
from integration_kit.policies.outcome import Outcome

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["AsyncResilientClient", "RequestOptions", "ResilientClient"]

_R = TypeVar("_R")
_T = TypeVar("_T")
_Transport = TypeVar("_Transport", bound=httpx.BaseTransport | httpx.AsyncBaseTransport)


class RequestOptions(TypedDict, total=False):
    """Keyword arguments of :meth:`ResilientClient.request` and the verb methods.

    ``params``, ``headers``, ``content``, ``data``, ``files`` and ``json`` are as in httpx. ``timeout`` replaces
    the configured per-attempt :class:`~integration_kit.policies.config.Timeouts` (a float sets all four phases);
    ``deadline`` replaces the configured deadline (``None``: none); ``retry=False`` makes a single attempt (a
    :class:`~integration_kit.policies.config.RetryPolicy` replaces the configured one); ``idempotency_key`` sends
    that key on every attempt and makes the call safe to retry (1-255 printable ASCII characters, the limit of
    the IETF draft's servers).

    A body given as a stream (``content=`` an iterator, ``files=`` with a pipe or socket) is read once: it is
    buffered in memory up to :data:`~integration_kit.http.safety.REPLAY_LIMIT` (8 MiB) so a retry resends it
    whole; a longer one, or an async iterator, is sent on one attempt only (no retry). ``headers`` may not set
    framing or routing headers (``Content-Length``, ``Transfer-Encoding``, ``Host``, ``Connection``, ...): httpx
    writes those; see :mod:`integration_kit.http.safety`.
    """

    params: Mapping[str, Any]
    headers: Mapping[str, str]
    content: bytes | str | Iterable[bytes] | AsyncIterable[bytes]
    data: Mapping[str, Any]
    files: Mapping[str, Any]
    json: Any
    timeout: Timeouts | float
    deadline: float | None
    retry: bool | RetryPolicy
    idempotency_key: str


class _ClientCore(ABC, Generic[_R, _Transport]):
    """What the sync and async clients share: construction, the engine, request preparation, the verb methods.

    ``_R`` is what :meth:`request` returns (an ``httpx.Response``, or an awaitable of one) and ``_Transport`` the
    httpx transport type the client accepts.
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        transport: _Transport | None = None,
        clock: Clock | None = None,
        hooks: Iterable[Hook] = (),
        rng: random.Random | None = None,
    ) -> None:
        if not isinstance(config, ClientConfig):
            raise TypeError(f"expected a ClientConfig, got {type(config).__name__}")
        self.config = config
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._credential = config.auth.load() if config.auth is not None else None
        self._secrets = secret_forms(self._credential.value) if self._credential is not None else ()
        self._secret_headers = (self._credential.header,) if self._credential is not None else ()
        self.engine = CallEngine(
            name=config.name,
            retry=config.retry,
            breaker=CircuitBreaker(config.breaker, name=config.name, clock=self.clock) if config.breaker else None,
            budget=RetryBudget(config.budget) if config.budget is not None else None,
            limits=config.limits,
            deadline=config.deadline,
            idempotency_methods=config.idempotency_methods,
            clock=self.clock,
            rng=rng,
            hooks=hooks,
            pacer=config.quota_pacer(self.clock),
        )
        self._origin = config.origin
        self._timeouts = _phases(config.timeouts)
        self._longest = longest(self._timeouts)
        try:
            checked_headers(config.headers, None)
        except UnsafeRequest as exc:
            raise ConfigurationError(f"headers: {exc.message}") from None
        redact_http_logs(config.redact_query_params, self._secrets, self._secret_headers)
        framed = transport is None or isinstance(transport, DeadlineTransport | AsyncDeadlineTransport)
        self._context = self._exchange_context(framed)
        self._open(transport)

    @abstractmethod
    def _open(self, transport: _Transport | None) -> httpx.Client | httpx.AsyncClient:
        """Create the underlying httpx client over a deadline transport composed with ``transport``; return it."""

    # -- the public surface shared by both clients -----------------------------------------------------------

    @property
    def breaker(self) -> CircuitBreaker | None:
        """The integration's circuit breaker (``None`` when the config switches it off)."""
        return self.engine.breaker

    def add_hook(self, hook: Hook) -> None:
        """Send every later event to ``hook`` as well (a :class:`~integration_kit.events.Recorder`, a logger)."""
        self.engine.add_hook(hook)

    @abstractmethod
    def request(self, method: str, url: str, **options: Unpack[RequestOptions]) -> _R:
        """Make one logical call: ``url`` is a path under ``base_url`` (or an absolute URL of the same origin)."""

    def get(self, url: str, **options: Unpack[RequestOptions]) -> _R:
        """``GET url``; see :meth:`request`."""
        return self.request("GET", url, **options)

    def post(self, url: str, **options: Unpack[RequestOptions]) -> _R:
        """``POST url``; retried after the request may have been seen only with an idempotency key."""
        return self.request("POST", url, **options)

    def put(self, url: str, **options: Unpack[RequestOptions]) -> _R:
        """``PUT url``; see :meth:`request`."""
        return self.request("PUT", url, **options)

    def patch(self, url: str, **options: Unpack[RequestOptions]) -> _R:
        """``PATCH url``; retried after the request may have been seen only with an idempotency key."""
        return self.request("PATCH", url, **options)

    def delete(self, url: str, **options: Unpack[RequestOptions]) -> _R:
        """``DELETE url``; see :meth:`request`."""
        return self.request("DELETE", url, **options)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.config.name!r}, base_url={self.config.base_url!r})"

    # -- shared machinery ------------------------------------------------------------------------------------

    def _http_options(self) -> dict[str, Any]:
        """Keyword arguments for the underlying httpx client."""
        config = self.config
        user_agent = config.user_agent or f"integration_kit/{_version()}"
        return {
            "base_url": config.base_url,
            "headers": {"User-Agent": user_agent, **config.headers},
            "timeout": httpx.Timeout(**_phases(config.timeouts)),
            "follow_redirects": config.follow_redirects,
        }

    def _transport_options(self) -> dict[str, Any]:
        """Options of the deadline transport's own pool: TLS from the config, the environment's proxy if any."""
        return {"verify": self.config.ssl_context(), "proxy": _environment_proxy(self.config.base_url)}

    def _exchange_context(self, framed: bool) -> ExchangeContext:
        return ExchangeContext(
            secrets=self._secrets,
            secret_headers=self._secret_headers,
            max_response_bytes=self.config.max_response_bytes,
            redact_query_params=self.config.redact_query_params,
            hooks=self.engine.hooks,
            framed=framed,
            time_scale=time_scale_of(self.clock),
            signals=PartnerSignals(self.config.signals, self.engine.pacer),
        )

    def _begin(
        self, http: httpx.Client | httpx.AsyncClient, method: str, url: str, options: RequestOptions
    ) -> Exchange:
        """Check and build the request once, and start the engine's state machine for the call.

        A request that cannot be built or is unsafe (see :mod:`integration_kit.http.safety`) raises
        :class:`~integration_kit.errors.UnsafeRequest` here, before the engine starts: it is the caller's
        mistake and is never recorded against the partner. A streamed body is buffered up to
        :data:`~integration_kit.http.safety.REPLAY_LIMIT` bytes so a retry resends it whole; a longer or async
        stream makes the call a single attempt.
        """
        name = self.config.name
        try:
            method = checked_method(method)
            key = options.get("idempotency_key")
            headers = options.get("headers")
            if headers:
                headers, key = checked_headers(headers, key)
            if key is not None:
                key = checked_key(key)
            request = http.build_request(
                method,
                url,
                params=options.get("params"),
                headers=headers,
                content=options.get("content"),
                data=options.get("data"),
                files=options.get("files"),
                json=options.get("json"),
            )
        except UnsafeRequest as exc:
            exc.with_context(integration=name, method=method if isinstance(method, str) and method.isalpha() else None)
            raise
        except (ValueError, TypeError, httpx.InvalidURL) as exc:  # what httpx raises for a request it cannot build
            raise UnsafeRequest(
                f"the request cannot be built ({type(exc).__name__}) for "
                f"{shown(redact_text(redact_url(str(url), self.config.redact_query_params), self._secrets), 80)}",
                integration=name,
            ) from exc
        target = redact_text(redact_url(str(request.url), self.config.redact_query_params), self._secrets)
        if not self._same_origin(request.url) or request.url.userinfo:
            raise UnsafeRequest(
                f"{target} is not under the configured origin {self.config.base_url}; credentials are only sent there",
                integration=self.config.name,
                method=request.method,
            )
        if self._credential is not None:
            request.headers[self._credential.header] = self._credential.value.reveal()
        retry = options.get("retry", True)
        if not replayable(request):
            retry = False
        timeouts, most = self._timeouts, self._longest
        if "timeout" in options:
            timeouts = _phases(Timeouts.coerce(options["timeout"]))
            most = longest(timeouts)
        policy = retry if isinstance(retry, RetryPolicy) else self.config.retry
        calls = self.engine.call(
            request.method, target, idempotency_key=key, deadline=options.get("deadline", UNSET), retry=retry
        )
        return Exchange(self._context, request, calls, timeouts, policy.retry_on_status, most)

    def _same_origin(self, url: httpx.URL) -> bool:
        scheme = url.scheme
        return (scheme, url.host, url.port or (443 if scheme == "https" else 80)) == self._origin

    def _guard_redirect(self, request: httpx.Request) -> None:
        """httpx request hook (only with ``follow_redirects``): no credential leaves the origin, no plain http."""
        url = request.url
        if self._same_origin(url):
            return
        for name in ("Authorization", "Proxy-Authorization", "Cookie", *self._secret_headers):
            request.headers.pop(name, None)
        if url.scheme != "https" and not self.config.allow_insecure_http and not is_loopback(url.host):
            raise UnsafeRequest(
                f"refused a redirect to plain http: {redact_url(str(url), self.config.redact_query_params)}",
                integration=self.config.name,
                method=request.method,
            )

    def _parse_json(self, response: httpx.Response, validator: Callable[[Any], _T]) -> _T:
        """The JSON body of ``response``, checked by content type and passed through ``validator``."""

        def invalid(message: str) -> InvalidResponse:
            error = InvalidResponse(message)
            error.with_context(
                integration=self.config.name,
                method=response.request.method,
                url=redact_url(str(response.request.url), self.config.redact_query_params),
            )
            return error

        mime = response.headers.get("content-type", "").partition(";")[0].strip().lower()
        if mime != "application/json" and not mime.endswith("+json"):
            raise invalid(f"expected a JSON response, got content type {mime or 'none'!r}")
        try:
            data = jsonlib.loads(response.content)
        except RecursionError as exc:  # [[[[...: nested deeper than the parser's stack
            raise invalid("JSON in the response body is nested too deeply") from exc
        except ValueError as exc:  # also bad UTF-8, and integers past Python's digit limit
            raise invalid("malformed JSON in the response body") from exc
        try:
            return validator(data)
        except Exception as exc:
            raise invalid(f"the response failed validation ({type(exc).__name__})") from exc


class ResilientClient(_ClientCore[httpx.Response, httpx.BaseTransport]):
    """A resilient HTTP client for one integration, over ``httpx.Client``.

    ``transport`` replaces httpx's (``httpx.MockTransport`` in tests, or the fault simulator); ``clock`` defaults
    to the system clock (a :class:`~integration_kit.clock.ManualClock` makes backoff instant in tests); every
    event goes to each of ``hooks``; ``rng`` seeds the jitter. Use it as a context manager, or call
    :meth:`close`.
    """

    _http: httpx.Client

    def _open(self, transport: httpx.BaseTransport | None) -> httpx.Client:
        event_hooks = {"request": [self._guard_redirect]} if self.config.follow_redirects else {}
        sender = held(transport) if transport is not None else DeadlineTransport(**self._transport_options())
        self._http = httpx.Client(transport=sender, event_hooks=event_hooks, **self._http_options())
        return self._http

    def request(self, method: str, url: str, **options: Unpack[RequestOptions]) -> httpx.Response:
        """Make one logical call and return its 2xx response (body read); any other end raises a typed error.

        Errors come from :mod:`integration_kit.errors`: a :class:`~integration_kit.errors.ClientError` for a 4xx,
        a :class:`~integration_kit.errors.GaveUp` when retrying stopped, a
        :class:`~integration_kit.errors.CallRejected` when the breaker, bulkhead or rate limit refused the call,
        :class:`~integration_kit.errors.UnsafeRequest` before sending anything unsafe.
        """
        exchange = self._begin(self._http, method, url, options)
        return exchange.result(run_sync(exchange.calls, functools.partial(self._attempt, exchange), self.clock.sleep))

    def json(
        self,
        url: str,
        *,
        method: str = "GET",
        validator: Callable[[Any], _T] = lambda data: data,
        **options: Unpack[RequestOptions],
    ) -> _T:
        """Call ``url`` and return its parsed JSON body, passed through ``validator`` (e.g. ``Model.model_validate``).

        A non-JSON content type, malformed JSON or a validator that raises gives
        :class:`~integration_kit.errors.InvalidResponse`.
        """
        return self._parse_json(self.request(method, url, **options), validator)

    def _attempt(self, exchange: Exchange, action: Send) -> Outcome:
        request = exchange.prepare(action)
        with exchange.scope(request):
            try:
                response = self._http.send(request, stream=True)
                try:
                    body = exchange.reader(response, action)
                    if body.whole:
                        response.read()
                    else:
                        for chunk in response.iter_bytes():
                            if not body.feed(chunk):
                                break
                finally:
                    response.close()
            except ATTEMPT_ERRORS as exc:
                return exchange.failed(exc)
            return exchange.answered(response, body)

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncResilientClient(_ClientCore[Awaitable[httpx.Response], httpx.AsyncBaseTransport]):
    """The async twin of :class:`ResilientClient`, over ``httpx.AsyncClient`` (asyncio or trio, through anyio).

    A ``transport=`` passed in is bounded by ``anyio.fail_after`` with what is left of the deadline (see
    :class:`~integration_kit.http.transport.AsyncDeadlineTransport`). Use it as an async context manager, or call
    :meth:`aclose`.
    """

    _http: httpx.AsyncClient

    def _open(self, transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
        event_hooks = {"request": [self._aguard_redirect]} if self.config.follow_redirects else {}
        sender = aheld(transport) if transport is not None else AsyncDeadlineTransport(**self._transport_options())
        self._http = httpx.AsyncClient(transport=sender, event_hooks=event_hooks, **self._http_options())
        return self._http

    async def _sleep(self, seconds: float) -> None:
        clock = self.clock  # a clock that cannot wait cooperatively waits in real time
        await (clock.asleep(seconds) if isinstance(clock, AsyncClock) else anyio.sleep(seconds))

    async def request(self, method: str, url: str, **options: Unpack[RequestOptions]) -> httpx.Response:
        """Make one logical call and return its 2xx response (body read); see :meth:`ResilientClient.request`.

        A call that fails yields to the event loop once before raising (a checkpoint, as trio's conventions ask),
        so a loop that retries calls the breaker rejects at once cannot starve every other task.
        """
        try:
            exchange = self._begin(self._http, method, url, options)
            outcome = await run_async(exchange.calls, functools.partial(self._attempt, exchange), self._sleep)
        except IntegrationError:
            await anyio.lowlevel.checkpoint()
            raise
        return exchange.result(outcome)

    async def json(
        self,
        url: str,
        *,
        method: str = "GET",
        validator: Callable[[Any], _T] = lambda data: data,
        **options: Unpack[RequestOptions],
    ) -> _T:
        """Call ``url`` and return its parsed, validated JSON body; see :meth:`ResilientClient.json`."""
        return self._parse_json(await self.request(method, url, **options), validator)

    async def _attempt(self, exchange: Exchange, action: Send) -> Outcome:
        request = exchange.prepare(action)
        with exchange.scope(request):
            try:
                response = await self._http.send(request, stream=True)
                try:
                    body = exchange.reader(response, action)
                    if body.whole:
                        await response.aread()
                    else:
                        async for chunk in response.aiter_bytes():
                            if not body.feed(chunk):
                                break
                finally:
                    await response.aclose()
            except ATTEMPT_ERRORS as exc:
                return exchange.failed(exc)
            return exchange.answered(response, body)

    async def _aguard_redirect(self, request: httpx.Request) -> None:
        self._guard_redirect(request)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


# -- helpers ------------------------------------------------------------------------------------------------------


def _phases(timeouts: Timeouts) -> dict[str, float | None]:
    return {"connect": timeouts.connect, "read": timeouts.read, "write": timeouts.write, "pool": timeouts.pool}


def _environment_proxy(base_url: str) -> str | None:
    """The proxy the environment names for ``base_url`` (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, minus
    ``NO_PROXY``), as httpx would use it with no transport given; ``None``: none."""
    url = httpx.URL(base_url)
    proxies = urllib.request.getproxies_environment()
    if not proxies or urllib.request.proxy_bypass(url.host):
        return None
    return proxies.get(url.scheme) or proxies.get("all")


@functools.cache
def _version() -> str:
    try:
        return metadata.version("integration_kit")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"
