"""One logical HTTP call in flight, and the one boundary where httpx's answers become engine outcomes.

:class:`Exchange` prepares each attempt's request (timeouts clipped to the deadline and carrying the attempt's
expiry for the deadline transport, the idempotency key set), reads the streamed body under
``max_response_bytes`` and the expiry (:class:`Body`), and translates a response or an httpx exception into an
:class:`~integration_kit.policies.outcome.Outcome` with the typed error. It never sends, sleeps or decides: the
clients in :mod:`integration_kit.http.client` do the I/O, the engine decides. What it needs of its client is a small
frozen :class:`ExchangeContext`, so this module does not know the client.
"""

from __future__ import annotations

import math
import re
import ssl
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import cast

import httpx

from integration_kit.engine.call import CallGenerator, Send
from integration_kit.errors import (
    AttemptError,
    CertificateError,
    IntegrationError,
    InvalidResponse,
    ProxyRefused,
    RateLimited,
    ResponseTooLarge,
    error_for_status,
)
from integration_kit.events import Hook
from integration_kit.http.backend import HeldTimeout
from integration_kit.http.redact import redact_headers, redact_text, secret_query_values
from integration_kit.policies.limits import QuotaPacer
from integration_kit.policies.outcome import Outcome, OutcomeKind
from integration_kit.policies.retry import parse_retry_after
from integration_kit.policies.signals import DEFAULT_SIGNAL_PROFILE, SignalProfile, has_signal_fields, read_signals

__all__ = [
    "ATTEMPT_ERRORS",
    "SNIPPET_BYTES",
    "SNIPPET_CHARS",
    "Body",
    "Exchange",
    "ExchangeContext",
    "PartnerSignals",
    "longest",
    "retry_after_seconds",
    "structured_string",
]

SNIPPET_BYTES = 2048
SNIPPET_CHARS = 500

#: What an attempt may raise that becomes an outcome: anything a partner can cause (httpx's errors, and whatever
#: else a response makes a lower library raise). Only an :class:`~integration_kit.errors.IntegrationError` that is
#: not an attempt's (an unsafe redirect) ends the call.
ATTEMPT_ERRORS = (Exception,)

#: httpx exceptions, most specific first, and the outcome each means.
_EXCEPTION_KINDS: tuple[tuple[type[Exception], OutcomeKind], ...] = (
    (httpx.ConnectTimeout, OutcomeKind.CONNECT_TIMEOUT),
    (httpx.PoolTimeout, OutcomeKind.POOL_TIMEOUT),
    (httpx.WriteTimeout, OutcomeKind.WRITE_TIMEOUT),
    (httpx.ReadTimeout, OutcomeKind.READ_TIMEOUT),
    (httpx.ConnectError, OutcomeKind.CONNECT_ERROR),
    (httpx.ProxyError, OutcomeKind.CONNECT_ERROR),
    (httpx.TimeoutException, OutcomeKind.READ_TIMEOUT),
    (httpx.NetworkError, OutcomeKind.CONNECTION_LOST),
    (httpx.RemoteProtocolError, OutcomeKind.CONNECTION_LOST),
)

#: What httpcore says (``httpx.ProxyError``) when a proxy refuses the client itself rather than failing to reach the
#: partner: a retry meets the same refusal. An HTTP proxy's answer to ``CONNECT`` (407, 403), a SOCKS5 login refused
#: (RFC 1929), a SOCKS5 proxy that wants another login method, a SOCKS5 target its ruleset does not allow.
_PROXY_REFUSALS = re.compile(
    r"40[37] .*"
    r"|Invalid username/password"
    r"|Requested .+ from proxy server, but got .+\."
    r"|Proxy Server could not connect: Connection not allowed by ruleset\."
)

#: Statuses whose explicit wait (``Retry-After``, ``retry-after-ms``) is honoured even when the answer is not a rate
#: limit: a keyed 409 ("in flight", IETF Idempotency-Key draft) and 429/503 (RFC 9110 section 10.2.3).
_HINTED_STATUSES = frozenset({409, 429, 503})

#: A hook's :meth:`~integration_kit.events.AttemptWrapper.wrap_attempt`: given the request's headers, the scope
#: of one attempt's send (trace context, for example).
AttemptWrap = Callable[[httpx.Headers], AbstractContextManager[None]]


@dataclass(frozen=True, slots=True)
class PartnerSignals:
    """How an exchange reads the partner's signals: ``reading`` is its provider profile's reading (see
    :mod:`integration_kit.policies.signals`), ``pacer`` learns the quota each answer reports (``None``: the client
    does not pace)."""

    reading: SignalProfile = DEFAULT_SIGNAL_PROFILE
    pacer: QuotaPacer | None = None


@dataclass(frozen=True, slots=True)
class ExchangeContext:
    """What an exchange needs of its client, fixed when the client is built.

    ``secrets`` are the credential's forms masked in error snippets, ``secret_headers`` the headers that carry it;
    ``max_response_bytes`` bounds a success's body (``None``: no bound); ``redact_query_params`` names more query
    parameters to mask; ``hooks`` is the engine's list of hooks (read at each attempt, so a hook added later, by
    ``client.add_hook`` or straight on the engine, wraps the attempts after it); ``framed`` says the transport is
    httpcore's, which delivers exactly the ``Content-Length`` bytes a response declares; ``time_scale`` is how many
    of the client clock's seconds pass in a real one (a live playbook run's ``ScaledClock``; 1 for a real clock).
    """

    secrets: tuple[str, ...] = ()
    secret_headers: tuple[str, ...] = ()
    max_response_bytes: int | None = None
    redact_query_params: frozenset[str] = frozenset()
    hooks: Sequence[Hook] = ()
    framed: bool = False
    time_scale: float = 1.0
    signals: PartnerSignals = PartnerSignals()


@dataclass(slots=True)
class Exchange:
    """One logical call in flight: the prepared request, the engine's state machine, and the outcome mapping."""

    context: ExchangeContext
    request: httpx.Request
    calls: CallGenerator
    timeouts: dict[str, float | None]
    retry_on_status: frozenset[int]
    longest: float
    key_sent: bool = False
    expires: float | None = None

    def prepare(self, action: Send) -> httpx.Request:
        """The request for attempt ``action``: its timeouts clipped to the deadline, the idempotency key set.

        Also starts :attr:`expires`, the attempt's expiry (``time.monotonic()`` seconds), sent with each phase's
        timeout in ``request.extensions["timeout"]`` (a :class:`~integration_kit.http.backend.HeldTimeout`): the
        deadline transport holds every socket operation to it.
        """
        remaining = self.real_timeout(action)  # the engine's seconds are its clock's; sockets count real ones
        expires = self.expires = None if remaining is None else time.monotonic() + remaining
        request = self.request
        if action.idempotency_key is not None and not self.key_sent:
            request.headers["Idempotency-Key"] = structured_string(action.idempotency_key)
            self.key_sent = True
        if remaining is None or remaining >= self.longest:
            timeouts = self.timeouts
        else:
            timeouts = {k: remaining if v is None else min(v, remaining) for k, v in self.timeouts.items()}
        if expires is not None:  # every phase has a timeout here, at most ``remaining``
            timeouts = {phase: HeldTimeout(value, expires) for phase, value in timeouts.items()}  # type: ignore[arg-type]
        request.extensions = {**request.extensions, "timeout": timeouts}
        return request

    def real_timeout(self, action: Send) -> float | None:
        """What is left of the call's deadline for attempt ``action``, in real seconds (the engine counts on the
        client's clock, which a live playbook run plays faster than real time)."""
        return None if action.timeout is None else action.timeout / self.context.time_scale

    def scope(self, request: httpx.Request) -> AbstractContextManager[None]:
        """What wraps this attempt's send: the hooks' :meth:`~integration_kit.events.AttemptWrapper.wrap_attempt`
        (trace context, for example), entered in hook order; a shared null context when no hook wraps."""
        hooks = self.context.hooks
        wrappers = [w for h in hooks if (w := getattr(h, "wrap_attempt", None)) is not None] if hooks else None
        if not wrappers:
            return _NO_SCOPE
        if len(wrappers) == 1:
            return cast(AbstractContextManager[None], wrappers[0](request.headers))
        return _nested(wrappers, request.headers)

    def reader(self, response: httpx.Response, action: Send) -> Body:
        """A body sink for ``response``: bounded by ``max_response_bytes`` on success, a snippet otherwise.

        The body must be whole by the attempt's expiry (counted from the attempt's start, not from the headers):
        a response completed after it is a read timeout, never a success past the deadline. When httpcore frames
        the body (``ExchangeContext.framed``), its ``Content-Length`` is within the bound and it is not compressed,
        the sink is :attr:`Body.whole`: httpx reads the body itself (``response.read()``), which cannot pass the
        bound, since httpcore delivers exactly ``Content-Length`` bytes.
        """
        expires = self.expires
        headers = response.headers
        success = 200 <= response.status_code < 300
        limit = self.context.max_response_bytes if success else SNIPPET_BYTES
        declared = headers.get("content-length")
        size = int(declared) if declared is not None and declared.isascii() and declared.isdigit() else None
        if success and limit is not None and size is not None and size > limit:
            raise ResponseTooLarge(f"response Content-Length passes max_response_bytes={limit}", limit=limit)
        whole = (
            self.context.framed
            and size is not None
            and (limit is None or size <= limit)
            and "content-encoding" not in headers
        )
        return Body(sys.maxsize if limit is None else limit, success, expires, response, whole=whole)

    def answered(self, response: httpx.Response, body: Body) -> Outcome:
        """The outcome of an attempt the server answered (the body read into ``body``).

        Whatever the response holds, this returns an outcome: a header that makes a parser raise (a ``Date`` in the
        year 10^20) gives :class:`~integration_kit.errors.InvalidResponse`, never the parser's exception. An
        answer completed after the attempt's expiry (the process was starved of CPU) is a read timeout.
        """
        try:
            body.check_deadline()
            return self._answered(response, body)
        except Exception as exc:
            return self.failed(exc)

    def _answered(self, response: httpx.Response, body: Body) -> Outcome:
        status = response.status_code
        if not body.whole:
            response = read_response(response, b"".join(body.chunks))
        context = self.context
        reading, pacer = context.signals.reading, context.signals.pacer
        if 200 <= status < 300:
            if pacer is not None and has_signal_fields(response.headers.raw):
                seen = read_signals(response.headers, time.time(), status=status, profile=reading)
                pacer.observe(None if seen is None else seen.quota)
            return Outcome(OutcomeKind.STATUS, status=status, value=response)
        secrets = [*context.secrets, *self._query_secrets()]
        # Masked before truncation, so a secret cut by the truncation cannot survive as a prefix.
        snippet = redact_text(response.content[:SNIPPET_BYTES].decode("utf-8", "replace"), secrets)[:SNIPPET_CHARS]
        hint = (
            read_signals(response.headers, time.time(), status=status, profile=reading, body=snippet)
            if reading.min_limited_wait is not None or has_signal_fields(response.headers.raw)
            else None
        )
        retry_after: float | None = None
        should_retry: bool | None = None
        limited = False
        if hint is not None:
            if pacer is not None:
                pacer.observe(hint.quota)
            limited = hint.rate_limited
            should_retry = hint.should_retry
            if limited or status in _HINTED_STATUSES:
                retry_after = hint.retry_after
            if limited and should_retry is None:
                should_retry = True  # a rate-limited 403 (GitHub) is retryable after its wait
        headers = redact_headers(response.headers.multi_items(), context.secret_headers)
        shown = {name: redact_text(value, secrets) for name, value in headers.items()}
        error: AttemptError
        if limited:
            error = RateLimited(
                f"HTTP {status}", status=status, retry_after=retry_after, headers=shown, body_snippet=snippet
            )
        else:
            error = error_for_status(
                status,
                retryable=status in self.retry_on_status,
                retry_after=retry_after,
                headers=shown,
                body_snippet=snippet,
            )
        return Outcome(
            OutcomeKind.STATUS,
            status=status,
            retry_after=retry_after,
            error=error,
            value=response,
            should_retry=should_retry,
        )

    def _query_secrets(self) -> list[str]:
        return secret_query_values(self.request.url.params.multi_items(), self.context.redact_query_params)

    def failed(self, exc: Exception) -> Outcome:
        """The outcome of an attempt that raised: the one boundary where httpx exceptions are translated.

        A certificate that did not verify is a :class:`~integration_kit.errors.CertificateError` (it will not
        verify on the next attempt), a proxy that refused the client a :class:`~integration_kit.errors.ProxyRefused`
        (other proxy failures are connect errors, retried); an exception this module does not know becomes
        :class:`~integration_kit.errors.InvalidResponse`. An :class:`~integration_kit.errors.IntegrationError`
        that is not an attempt's (a redirect refused as unsafe) is raised: it ends the call.
        """
        if isinstance(exc, AttemptError):
            return Outcome(OutcomeKind.ERROR, error=exc)
        if isinstance(exc, IntegrationError):
            raise exc
        verify = _certificate_failure(exc)
        if verify is not None:
            error: AttemptError = CertificateError(f"TLS certificate verification failed: {verify}")
            error.__cause__ = exc
            return Outcome(OutcomeKind.ERROR, error=error)
        if isinstance(exc, httpx.ProxyError) and _PROXY_REFUSALS.fullmatch(str(exc)):
            error = ProxyRefused(f"the proxy refused the call: {exc}")
            error.__cause__ = exc
            return Outcome(OutcomeKind.ERROR, error=error)
        for kind_of, kind in _EXCEPTION_KINDS:
            if isinstance(exc, kind_of):
                return Outcome(kind, error=exc)  # the engine raises the typed error ``from`` exc
        error = InvalidResponse(f"unusable response ({type(exc).__name__})")
        error.__cause__ = exc
        return Outcome(OutcomeKind.ERROR, error=error)

    def result(self, outcome: Outcome) -> httpx.Response:
        """The response of the call's successful outcome."""
        return cast(httpx.Response, outcome.value)


def _certificate_failure(exc: BaseException) -> str | None:
    """The verification message when ``exc`` (or what it was raised from) is a failed certificate check."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return str(current.verify_message or current.reason or "certificate verify failed")
        current = current.__cause__ or current.__context__
    return None


class Body:
    """Collects a streamed body up to ``limit`` bytes: past it, raise (``strict``) or stop (a snippet); or, when
    ``whole``, stands for a body httpx reads itself (see :meth:`Exchange.reader`).

    ``expires`` is the attempt's expiry (``time.monotonic()`` seconds, ``None``: none): a chunk that arrives after
    it ends the read (the deadline transport already cuts each socket read at it; this also holds for a transport
    passed in, and for a process starved of CPU).
    """

    __slots__ = ("chunks", "expires", "limit", "response", "size", "strict", "whole")

    def __init__(
        self, limit: int, strict: bool, expires: float | None, response: httpx.Response, *, whole: bool = False
    ) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.limit = limit
        self.strict = strict
        self.expires = expires
        self.response = response
        self.whole = whole

    def check_deadline(self) -> None:
        """Raise ``httpx.ReadTimeout`` if the attempt's expiry has passed."""
        if self.expires is not None and time.monotonic() > self.expires:
            raise httpx.ReadTimeout("the deadline passed while reading the response", request=self.response.request)

    def feed(self, chunk: bytes) -> bool:
        """Keep ``chunk``; return False once enough is kept. Raises past a strict limit or past the deadline."""
        self.size += len(chunk)
        if self.size > self.limit:
            if self.strict:
                raise ResponseTooLarge(f"response body passed max_response_bytes={self.limit}", limit=self.limit)
            self.chunks.append(chunk[: len(chunk) - (self.size - self.limit)])
            return False
        self.chunks.append(chunk)
        self.check_deadline()
        return True


#: The scope of an attempt when no hook wraps it.
_NO_SCOPE: AbstractContextManager[None] = nullcontext()


@contextmanager
def _nested(wrappers: list[AttemptWrap], headers: httpx.Headers) -> Iterator[None]:
    with ExitStack() as stack:
        for wrap in wrappers:
            stack.enter_context(wrap(headers))
        yield


def longest(timeouts: dict[str, float | None]) -> float:
    """The longest of the phase ``timeouts`` (seconds; ``math.inf`` when one has none)."""
    values = timeouts.values()
    return math.inf if None in values else max(v for v in values if v is not None)


def read_response(response: httpx.Response, content: bytes) -> httpx.Response:
    """``response`` with its body read: ``content``, already decoded (httpx gives a streamed response no public way
    to keep a body read elsewhere, so this is a new response with the same status, headers, request, extensions,
    history and elapsed time). A body that came compressed is kept decoded, so ``Content-Encoding`` and the
    ``Content-Length`` of the compressed body are dropped from its headers."""
    headers = response.headers
    if "content-encoding" in headers:
        headers = headers.copy()
        del headers["content-encoding"]
        headers.pop("content-length", None)
    read = httpx.Response(
        response.status_code,
        headers=headers,
        stream=httpx.ByteStream(content),
        request=response.request,
        extensions=response.extensions,
        history=response.history,
        default_encoding=response.default_encoding,
    )
    read.read()
    with suppress(RuntimeError):  # a response a transport built already read has no elapsed time
        read.elapsed = response.elapsed
    read.next_request = response.next_request
    return read


def structured_string(value: str) -> str:
    """``value`` as an RFC 8941 sf-string, the form the IETF Idempotency-Key draft gives the header."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The Retry-After hint in seconds; an HTTP-date is measured from the response's ``Date`` (clock skew)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    now: datetime | None = None
    if date := response.headers.get("date"):
        try:
            now = parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError, OverflowError):
            now = None
    return parse_retry_after(value, now or datetime.now(UTC))
