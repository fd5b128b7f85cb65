"""One logical HTTP call in flight, and the one boundary where httpx's answers become engine outcomes.

:class:`Exchange` prepares each attempt's request (timeouts clipped to the deadline, the idempotency key set),
reads the streamed body under ``max_response_bytes`` and the deadline (:class:`Body`), and translates a response or
an httpx exception into an :class:`~integration_kit.policies.outcome.Outcome` with the typed error. It never
sends, sleeps or decides: the clients in :mod:`integration_kit.http.client` do the I/O, the engine decides.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, cast

import httpx

from integration_kit.clock import Clock
from integration_kit.engine.call import CallGenerator, Send
from integration_kit.errors import InvalidResponse, ResponseTooLarge, error_for_status
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

#: What an attempt may raise that becomes an outcome (the builtin TimeoutError is anyio.fail_after's).
ATTEMPT_ERRORS = (httpx.HTTPError, ResponseTooLarge, TimeoutError)

#: httpx exceptions, most specific first, and the outcome each means.
_EXCEPTION_KINDS: tuple[tuple[type[Exception], OutcomeKind], ...] = (
    (httpx.ConnectTimeout, OutcomeKind.CONNECT_TIMEOUT),
    (httpx.PoolTimeout, OutcomeKind.POOL_TIMEOUT),
    (httpx.WriteTimeout, OutcomeKind.WRITE_TIMEOUT),
    (httpx.ReadTimeout, OutcomeKind.READ_TIMEOUT),
    (httpx.ConnectError, OutcomeKind.CONNECT_ERROR),
    (httpx.ProxyError, OutcomeKind.CONNECT_ERROR),
    (httpx.TimeoutException, OutcomeKind.READ_TIMEOUT),
    (TimeoutError, OutcomeKind.READ_TIMEOUT),
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

    def __post_init__(self) -> None:
        phases = self.timeouts.values()
        self.longest = math.inf if None in phases else max(v for v in phases if v is not None)

    def prepare(self, action: Send) -> httpx.Request:
        """The request for attempt ``action``: its timeouts clipped to the deadline, the idempotency key set."""
        request = self.request
        if action.idempotency_key is not None and not self.key_sent:
            request.headers["Idempotency-Key"] = structured_string(action.idempotency_key)
            self.key_sent = True
        remaining = action.timeout
        if remaining is None or remaining >= self.longest:
            timeouts = self.timeouts
        else:
            timeouts = {k: remaining if v is None else min(v, remaining) for k, v in self.timeouts.items()}
        request.extensions = {**request.extensions, "timeout": timeouts}
        return request

    def reader(self, response: httpx.Response, action: Send) -> Body:
        """A body sink for ``response``: bounded by ``max_response_bytes`` on success, a snippet otherwise."""
        clock = self.core.clock
        expires = None if action.timeout is None else clock.now() + action.timeout
        if not 200 <= response.status_code < 300:
            return Body(SNIPPET_BYTES, False, clock, expires, response)
        limit = self.core.config.max_response_bytes
        if limit is None:
            return Body(sys.maxsize, True, clock, expires, response)
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ResponseTooLarge(f"response Content-Length passes max_response_bytes={limit}", limit=limit)
        return Body(limit, True, clock, expires, response)

    def answered(self, response: httpx.Response, body: Body) -> Outcome:
        """The outcome of an attempt the server answered (the body read into ``body``)."""
        status = response.status_code
        # httpx's own read() fills _content the same way; here the body was streamed under our size limit.
        response._content = b"".join(body.chunks)
        if 200 <= status < 300:
            return Outcome(OutcomeKind.STATUS, status=status, value=response)
        core = self.core
        retry_after = retry_after_seconds(response) if status in (409, 429, 503) else None
        snippet = response.content.decode("utf-8", "replace")[:SNIPPET_CHARS]
        error = error_for_status(
            status,
            retryable=status in self.retry_on_status,
            retry_after=retry_after,
            headers=redact_headers(response.headers.multi_items(), core._secret_headers),
            body_snippet=redact_text(snippet, [*core._secrets, *self._query_secrets()]),
        )
        return Outcome(OutcomeKind.STATUS, status=status, retry_after=retry_after, error=error, value=response)

    def _query_secrets(self) -> list[str]:
        return secret_query_values(self.request.url.params.multi_items(), self.core.config.redact_query_params)

    def failed(self, exc: Exception) -> Outcome:
        """The outcome of an attempt that raised: the one boundary where httpx exceptions are translated."""
        if isinstance(exc, ResponseTooLarge):
            return Outcome(OutcomeKind.ERROR, error=exc)
        for kind_of, kind in _EXCEPTION_KINDS:
            if isinstance(exc, kind_of):
                return Outcome(kind, error=exc)  # the engine raises the typed error ``from`` exc
        error = InvalidResponse(f"unusable response ({type(exc).__name__})")
        error.__cause__ = exc
        return Outcome(OutcomeKind.ERROR, error=error)

    def result(self, outcome: Outcome) -> httpx.Response:
        """The response of the call's successful outcome."""
        return cast(httpx.Response, outcome.value)


class Body:
    """Collects a streamed body up to ``limit`` bytes: past it, raise (``strict``) or stop (a snippet)."""

    __slots__ = ("chunks", "clock", "expires", "limit", "response", "size", "strict")

    def __init__(self, limit: int, strict: bool, clock: Clock, expires: float | None, response: httpx.Response) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.limit = limit
        self.strict = strict
        self.clock = clock
        self.expires = expires
        self.response = response

    def feed(self, chunk: bytes) -> bool:
        """Keep ``chunk``; return False once enough is kept. Raises past a strict limit or past the deadline."""
        self.size += len(chunk)
        if self.size > self.limit:
            if self.strict:
                raise ResponseTooLarge(f"response body passed max_response_bytes={self.limit}", limit=self.limit)
            self.chunks.append(chunk[: len(chunk) - (self.size - self.limit)])
            return False
        self.chunks.append(chunk)
        if self.expires is not None and self.clock.now() > self.expires:
            raise httpx.ReadTimeout("the deadline passed while reading the body", request=self.response.request)
        return True


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
        except (TypeError, ValueError, IndexError):
            now = None
    return parse_retry_after(value, now or datetime.now(UTC))
