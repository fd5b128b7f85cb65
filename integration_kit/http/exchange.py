"""One logical HTTP call in flight, and the one boundary where httpx's answers become engine outcomes.

:class:`Exchange` prepares each attempt's request (timeouts clipped to the deadline, the idempotency key set),
reads the streamed body under ``max_response_bytes`` and the deadline (:class:`Body`), and translates a response or
an httpx exception into an :class:`~integration_kit.policies.outcome.Outcome` with the typed error. It never
sends, sleeps or decides: the clients in :mod:`integration_kit.http.client` do the I/O, the engine decides.
"""

from __future__ import annotations

import math
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, cast

import httpx

from integration_kit.clock import real_seconds
from integration_kit.engine.call import CallGenerator, Send
from integration_kit.errors import (
    AttemptError,
    CertificateError,
    IntegrationError,
    InvalidResponse,
    ResponseTooLarge,
    error_for_status,
)
from integration_kit.http.deadline import AttemptDeadline
from integration_kit.http.redact import redact_headers, redact_text, secret_query_values
from integration_kit.policies.outcome import Outcome, OutcomeKind
from integration_kit.policies.retry import parse_retry_after

if TYPE_CHECKING:
    from integration_kit.http.client import _ClientCore

__all__ = [
    "ATTEMPT_ERRORS",
    "SNIPPET_BYTES",
    "SNIPPET_CHARS",
    "Body",
    "Exchange",
    "retry_after_seconds",
    "structured_string",
]

SNIPPET_BYTES = 2048
SNIPPET_CHARS = 500

#: What an attempt may raise that becomes an outcome: anything a partner can cause (httpx's errors, the builtin
#: TimeoutError of anyio.fail_after, and whatever else a response makes a lower library raise). Only an
#: :class:`~integration_kit.errors.IntegrationError` that is not an attempt's (an unsafe redirect) ends the call.
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


@dataclass(slots=True)
class Exchange:
    """One logical call in flight: the prepared request, the engine's state machine, and the outcome mapping."""

    core: _ClientCore[Any, Any]
    request: httpx.Request
    calls: CallGenerator
    timeouts: dict[str, float | None]
    retry_on_status: frozenset[int]
    longest: float = field(init=False)
    key_sent: bool = False
    deadline: AttemptDeadline = field(init=False, default_factory=lambda: AttemptDeadline(None))

    def __post_init__(self) -> None:
        phases = self.timeouts.values()
        self.longest = math.inf if None in phases else max(v for v in phases if v is not None)

    def prepare(self, action: Send) -> httpx.Request:
        """The request for attempt ``action``: its timeouts clipped to the deadline, the idempotency key set.

        Also starts :attr:`deadline`, the attempt's expiry that the network backend holds every socket operation
        to (the client enters :meth:`AttemptDeadline.hold` around the attempt).
        """
        remaining = self.real_timeout(action)  # the engine's seconds are its clock's; sockets count real ones
        self.deadline = AttemptDeadline(remaining)
        request = self.request
        if action.idempotency_key is not None and not self.key_sent:
            request.headers["Idempotency-Key"] = structured_string(action.idempotency_key)
            self.key_sent = True
        if remaining is None or remaining >= self.longest:
            timeouts = self.timeouts
        else:
            timeouts = {k: remaining if v is None else min(v, remaining) for k, v in self.timeouts.items()}
        request.extensions = {**request.extensions, "timeout": timeouts}
        return request

    def real_timeout(self, action: Send) -> float | None:
        """What is left of the call's deadline for attempt ``action``, in real seconds (the engine counts on the
        client's clock, which a live playbook run plays faster than real time)."""
        return None if action.timeout is None else real_seconds(self.core.clock, action.timeout)

    def scope(self, request: httpx.Request) -> AbstractContextManager[None]:
        """What wraps this attempt's send: the hooks' :meth:`~integration_kit.events.AttemptWrapper.wrap_attempt`
        (trace context, for example), entered in hook order; a shared null context when no hook wraps."""
        hooks = self.core.engine.hooks
        wrappers = [w for h in hooks if (w := getattr(h, "wrap_attempt", None)) is not None] if hooks else None
        if not wrappers:
            return _NO_SCOPE
        if len(wrappers) == 1:
            return cast(AbstractContextManager[None], wrappers[0](request.headers))
        return _nested(wrappers, request.headers)

    def reader(self, response: httpx.Response, action: Send) -> Body:
        """A body sink for ``response``: bounded by ``max_response_bytes`` on success, a snippet otherwise.

        The body must be whole by the attempt's expiry (counted from the attempt's start, not from the headers):
        a response completed after it is a read timeout, never a success past the deadline.
        """
        deadline = self.deadline
        if not 200 <= response.status_code < 300:
            return Body(SNIPPET_BYTES, False, deadline, response)
        limit = self.core.config.max_response_bytes
        if limit is None:
            return Body(sys.maxsize, True, deadline, response)
        declared = response.headers.get("content-length")
        if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
            raise ResponseTooLarge(f"response Content-Length passes max_response_bytes={limit}", limit=limit)
        return Body(limit, True, deadline, response)

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
        # httpx's own read() fills _content the same way; here the body was streamed under our size limit.
        response._content = b"".join(body.chunks)
        if 200 <= status < 300:
            return Outcome(OutcomeKind.STATUS, status=status, value=response)
        core = self.core
        retry_after = retry_after_seconds(response) if status in (409, 429, 503) else None
        secrets = [*core._secrets, *self._query_secrets()]
        # Masked before truncation, so a secret cut by the truncation cannot survive as a prefix.
        snippet = redact_text(response.content[:SNIPPET_BYTES].decode("utf-8", "replace"), secrets)[:SNIPPET_CHARS]
        headers = redact_headers(response.headers.multi_items(), core._secret_headers)
        error = error_for_status(
            status,
            retryable=status in self.retry_on_status,
            retry_after=retry_after,
            headers={name: redact_text(value, secrets) for name, value in headers.items()},
            body_snippet=snippet,
        )
        return Outcome(OutcomeKind.STATUS, status=status, retry_after=retry_after, error=error, value=response)

    def _query_secrets(self) -> list[str]:
        return secret_query_values(self.request.url.params.multi_items(), self.core.config.redact_query_params)

    def failed(self, exc: Exception) -> Outcome:
        """The outcome of an attempt that raised: the one boundary where httpx exceptions are translated.

        A certificate that did not verify is a :class:`~integration_kit.errors.CertificateError` (it will not
        verify on the next attempt); anyio's ``TimeoutError`` is labelled with the phase the deadline cut
        (pool, connect, write or read); an exception this module does not know becomes
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
        if type(exc) is TimeoutError:  # anyio.fail_after: the deadline cut the attempt in its current phase
            return Outcome(_PHASE_KINDS[self.deadline.phase], error=exc)
        for kind_of, kind in _EXCEPTION_KINDS:
            if isinstance(exc, kind_of):
                return Outcome(kind, error=exc)  # the engine raises the typed error ``from`` exc
        error = InvalidResponse(f"unusable response ({type(exc).__name__})")
        error.__cause__ = exc
        return Outcome(OutcomeKind.ERROR, error=error)

    def result(self, outcome: Outcome) -> httpx.Response:
        """The response of the call's successful outcome."""
        return cast(httpx.Response, outcome.value)


_PHASE_KINDS = {
    "pool": OutcomeKind.POOL_TIMEOUT,
    "connect": OutcomeKind.CONNECT_TIMEOUT,
    "write": OutcomeKind.WRITE_TIMEOUT,
    "read": OutcomeKind.READ_TIMEOUT,
}


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
    """Collects a streamed body up to ``limit`` bytes: past it, raise (``strict``) or stop (a snippet).

    ``deadline`` is the attempt's: a chunk that arrives after its expiry (``time.monotonic()``) ends the read.
    """

    __slots__ = ("chunks", "expires", "limit", "response", "size", "strict")

    def __init__(self, limit: int, strict: bool, deadline: AttemptDeadline, response: httpx.Response) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.limit = limit
        self.strict = strict
        self.expires = deadline.expires
        self.response = response

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
def _nested(wrappers: list[Callable[..., AbstractContextManager[None]]], headers: httpx.Headers) -> Iterator[None]:
    with ExitStack() as stack:
        for wrap in wrappers:
            stack.enter_context(wrap(headers))
        yield


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
