"""The call's exceptions, in one tree: every error a call through the engine can raise.

```
IntegrationError                    every error: integration, method, redacted url, attempts
├── ConfigurationError (ValueError) a spec, config or secret is wrong; raised before any call
├── UnsafeRequest (ValueError)      refused before sending: plain http, another origin, CR/LF in a header
├── StoreUnavailable                a shared-state store (SQLite, Redis) could not be reached or failed
├── CallRejected                    the call was not attempted
│   ├── CircuitOpenError            the breaker is open: which breaker, since when, when a probe is allowed
│   ├── BulkheadFull                too many concurrent calls
│   └── RateLimitExceeded           the client-side rate limit has no token in time
├── AttemptError                    one attempt failed
│   ├── TransientError              may succeed if tried again
│   │   ├── AttemptTimeout          ConnectTimeout, ReadTimeout, WriteTimeout, PoolTimeout
│   │   ├── ConnectionFailed        ConnectError (never sent), ConnectionLost (after sending)
│   │   ├── ServerError             5xx with a retryable status
│   │   └── RateLimited             429, with the Retry-After hint
│   └── PermanentError              trying again will not help
│       ├── ClientError             4xx; AuthError for 401 and 403
│       ├── UpstreamError           a non-retryable 5xx (501, 505, ...)
│       ├── InvalidResponse         malformed or invalid body
│       ├── ResponseTooLarge        the body passed max_response_bytes
│       ├── CertificateError        the partner's TLS certificate did not verify
│       └── ProxyRefused            the proxy refused the client (its credentials, or its policy)
└── GaveUp                          retrying stopped; ``last_error`` holds the final attempt's error
    ├── RetriesExhausted            max_attempts reached
    ├── BudgetExhausted             the client-wide retry budget refused the retry
    └── DeadlineExceeded            the call's deadline passed or the next wait would pass it
```

``HTTPStatusError`` (under ``AttemptError``) is the common base of the four that come from an HTTP response,
``ServerError``, ``RateLimited``, ``ClientError`` and ``UpstreamError``: each carries ``status``, redacted
``headers`` and a truncated ``body_snippet``; catch it to handle every non-2xx answer at once.

Features own their errors, each under ``IntegrationError`` (so ``except IntegrationError`` catches every error
of the kit) and drawn in its own module: :mod:`integration_kit.server.errors` (``IdempotencyError``,
``WebhookError`` and the receiver's verification errors), :mod:`integration_kit.webhooks.errors` (the sender's,
with the whole webhook tree) and :mod:`integration_kit.queues.errors` (``QueueError`` and its subclasses).

Errors are translated from lower libraries at one boundary (the drivers) into the most specific class, with
``raise ... from exc``. Messages never hold secrets: URLs are redacted before they reach an error.

``TimeoutError`` is a deprecated alias of :class:`AttemptTimeout` (it shadowed the builtin); it goes in the next
release.
"""

from __future__ import annotations

import builtins
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from integration_kit.events import CircuitState

__all__ = [
    "AttemptError",
    "AttemptRecord",
    "AttemptTimeout",
    "AuthError",
    "CertificateError",
    "BudgetExhausted",
    "BulkheadFull",
    "CallRejected",
    "CircuitOpenError",
    "ClientError",
    "ConfigurationError",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionFailed",
    "ConnectionLost",
    "DeadlineExceeded",
    "GaveUp",
    "HTTPStatusError",
    "IntegrationError",
    "InvalidResponse",
    "PermanentError",
    "PoolTimeout",
    "ProxyRefused",
    "RateLimitExceeded",
    "RateLimited",
    "ReadTimeout",
    "ResponseTooLarge",
    "RetriesExhausted",
    "ServerError",
    "StoreUnavailable",
    "TransientError",
    "UnsafeRequest",
    "UpstreamError",
    "WriteTimeout",
    "error_for_status",
]


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt of a call, as kept in an error's history (urllib3's ``RequestHistory``)."""

    attempt: int
    outcome: str
    status: int | None
    duration: float
    error: str | None = None


class IntegrationError(Exception):
    """Base of every integration_kit error.

    Carries where it happened (``integration``, ``method``, a redacted ``url``) and the ``attempts`` made so far.
    The drivers fill these in; policy code may raise with them empty.
    """

    def __init__(
        self,
        message: str,
        *,
        integration: str | None = None,
        method: str | None = None,
        url: str | None = None,
        attempts: Sequence[AttemptRecord] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.integration = integration
        self.method = method
        self.url = url
        self.attempts: tuple[AttemptRecord, ...] = tuple(attempts)

    def with_context(
        self,
        *,
        integration: str | None = None,
        method: str | None = None,
        url: str | None = None,
        attempts: Sequence[AttemptRecord] | None = None,
    ) -> IntegrationError:
        """Fill in context that is still missing (in place) and return the error, for chaining."""
        self.integration = self.integration or integration
        self.method = self.method or method
        self.url = self.url or url
        if attempts is not None and not self.attempts:
            self.attempts = tuple(attempts)
        return self

    def __str__(self) -> str:
        where = " ".join(p for p in (self.method, self.url) if p)
        prefix = f"[{self.integration}] " if self.integration else ""
        suffix = f" ({where})" if where else ""
        if len(self.attempts) > 1:
            suffix += f" after {len(self.attempts)} attempts"
        return f"{prefix}{self.message}{suffix}"


#: A message's leading setting path, after the name of the class that checked it, if any (``RetryPolicy.base_delay``).
_LEADING_PATH = re.compile(r"(?:[A-Z][A-Za-z0-9_]*\.)?(?P<path>[a-z_][A-Za-z0-9_.\[\]]*)(?=[: ]|$)")


class ConfigurationError(IntegrationError, ValueError):
    """A configuration, spec or secret is invalid or missing. Names the setting, never a secret's value.

    ``field`` is the setting's path as the user wrote it (``retry.retry_on_status[0]``), relative to the table that
    was being loaded, or ``None`` when no single setting is at fault; a loader that knows where that table sits
    puts its key in front with :meth:`under`.
    """

    def __init__(self, message: str, *, field: str | None = None, **context: str | None) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.field = field

    @property
    def reason(self) -> str:
        """The message without the field's path it may begin with, for a loader that names the path as the user
        wrote it itself. The path may stand alone (``retry.base_delay: ...``), or be the last part of the field's
        path after the class that checked it (``RetryPolicy.base_delay ...`` for the field ``retry.base_delay``)."""
        start = _LEADING_PATH.match(self.message) if self.field else None
        if start is None or not (self.field == start["path"] or str(self.field).endswith("." + start["path"])):
            return self.message
        return self.message[start.end() :].lstrip(": ")

    def under(self, prefix: str) -> ConfigurationError:
        """The same error with its ``field`` inside ``prefix`` (a table's key, or ``name[0]`` for an array's item):
        ``under("retry")`` makes ``retry_on_status[0]`` ``retry.retry_on_status[0]``. The message is unchanged."""
        field = prefix if not self.field else self.field if not prefix else _join(prefix, self.field)
        error = ConfigurationError(
            self.message, field=field, integration=self.integration, method=self.method, url=self.url
        )
        error.attempts = self.attempts
        return error


class UnsafeRequest(IntegrationError, ValueError):
    """The request was refused before sending because it could leak credentials or be smuggled."""


class StoreUnavailable(IntegrationError):
    """A store of shared state (SQLite file, Redis server) could not be reached or failed an operation.

    ``store`` names it (no credentials) and ``operation`` says what was attempted; the backend's exception is the
    ``__cause__``.
    """

    def __init__(self, message: str, *, store: str, operation: str, **context: str | None) -> None:
        super().__init__(f"store {store} unavailable during {operation}: {message}", **context)  # type: ignore[arg-type]
        self.store = store
        self.operation = operation


class CallRejected(IntegrationError):
    """The call was rejected before any attempt: nothing reached the network."""


class CircuitOpenError(CallRejected):
    """The circuit breaker is not letting calls through.

    ``breaker`` names it, ``state`` is its state, ``opened_at`` when it opened and ``retry_at`` when a probe will
    be allowed (both on the breaker's clock; ``retry_at`` is ``None`` while forced open).
    """

    def __init__(
        self,
        *,
        breaker: str,
        state: CircuitState,
        opened_at: float | None,
        retry_at: float | None,
        now: float | None = None,
        **context: str | None,
    ) -> None:
        if retry_at is None:
            when = "until it is reset"
        elif now is not None:
            when = f"a probe is allowed in {max(0.0, retry_at - now):.3f}s"
        else:
            when = f"a probe is allowed at t={retry_at:.3f}"
        since = f" since t={opened_at:.3f}" if opened_at is not None else ""
        super().__init__(f"circuit {breaker!r} is {state.value}{since}; {when}", **context)  # type: ignore[arg-type]
        self.breaker = breaker
        self.state = state
        self.opened_at = opened_at
        self.retry_at = retry_at


class BulkheadFull(CallRejected):
    """Too many calls are already in flight for this integration."""


class RateLimitExceeded(CallRejected):
    """The client-side rate limiter had no token within the allowed wait."""


class AttemptError(IntegrationError):
    """One attempt failed. ``status`` is the HTTP status when there was one."""

    status: int | None = None


class TransientError(AttemptError):
    """A failure that may pass: retrying is reasonable when the request is safe to repeat."""


class AttemptTimeout(TransientError, builtins.TimeoutError):
    """An attempt ran out of time in one of its phases (also a builtin ``TimeoutError``, so ``except
    TimeoutError`` catches it). The whole call running out of time is :class:`DeadlineExceeded`."""


class ConnectTimeout(AttemptTimeout):
    """No connection within the connect timeout: the server never saw the request."""


class ReadTimeout(AttemptTimeout):
    """No response within the read timeout: the server may have acted on the request."""


class WriteTimeout(AttemptTimeout):
    """The request could not be sent within the write timeout."""


class PoolTimeout(AttemptTimeout):
    """No pooled connection became free in time: the request never left."""


class ConnectionFailed(TransientError):
    """The connection failed."""


class ConnectError(ConnectionFailed):
    """Connecting failed (refused, unreachable, TLS): the server never saw the request."""


class ConnectionLost(ConnectionFailed):
    """The connection broke after the request was sent (reset, closed, protocol error)."""


class HTTPStatusError(AttemptError):
    """Base of the errors that come from an HTTP response: ``status``, redacted ``headers``, a ``body_snippet``."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        headers: Mapping[str, str] | None = None,
        body_snippet: str = "",
        **context: str | None,
    ) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.status: int | None = status
        self.headers: dict[str, str] = dict(headers or {})
        self.body_snippet = body_snippet


class ServerError(HTTPStatusError, TransientError):
    """The server answered with a retryable status (500, 502, 503, 504 and 408 by default)."""


class RateLimited(HTTPStatusError, TransientError):
    """The server answered 429 (or 503) with or without a Retry-After hint (``retry_after``, seconds)."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 429,
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
        body_snippet: str = "",
        **context: str | None,
    ) -> None:
        super().__init__(message, status=status, headers=headers, body_snippet=body_snippet, **context)
        self.retry_after = retry_after


class PermanentError(AttemptError):
    """A failure that retrying will not fix."""


class ClientError(HTTPStatusError, PermanentError):
    """The server refused the request with a 4xx status: fix the request, do not retry it."""


class AuthError(ClientError):
    """401 or 403: the credentials are missing, wrong or not allowed."""


class UpstreamError(HTTPStatusError, PermanentError):
    """The server answered with a status that is an error but not worth retrying (501, 505, unfollowed 3xx)."""


class InvalidResponse(PermanentError):
    """The response could not be used: wrong content type, malformed JSON, or it failed validation."""


class ResponseTooLarge(PermanentError):
    """The response body passed ``max_response_bytes``; it was not read into memory."""

    def __init__(self, message: str, *, limit: int, **context: str | None) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.limit = limit


class CertificateError(PermanentError):
    """The partner's TLS certificate did not verify (self-signed, expired, wrong host): it will not on a retry."""


class ProxyRefused(PermanentError):
    """The proxy in front of the partner refused the client itself: its credentials (HTTP ``407`` to ``CONNECT``, a
    SOCKS5 login refused, another SOCKS5 login method wanted) or its policy (HTTP ``403`` to ``CONNECT``, a SOCKS5
    target not allowed by the proxy's ruleset). The request never reached the partner, and a retry would meet the
    same refusal. Its ``__cause__`` is httpx's ``ProxyError``; the message never holds the proxy's credentials."""


class GaveUp(IntegrationError):
    """The call failed and retrying stopped. ``last_error`` is the final attempt's error (also ``__cause__``)."""

    def __init__(self, message: str, *, last_error: BaseException | None = None, **context: object) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.last_error = last_error

    @property
    def status(self) -> int | None:
        """The HTTP status of the last attempt, when it had one."""
        return getattr(self.last_error, "status", None)


class RetriesExhausted(GaveUp):
    """Every allowed attempt failed."""


class BudgetExhausted(GaveUp):
    """The client-wide retry budget refused another retry: the partner is failing for many calls at once."""


class DeadlineExceeded(GaveUp, builtins.TimeoutError):
    """The call's deadline passed, or the wait before the next attempt would have passed it."""


def _join(prefix: str, field: str) -> str:
    """``prefix`` and ``field`` as one path: ``a`` + ``b`` is ``a.b``, ``a`` + ``[0]`` is ``a[0]``."""
    return f"{prefix}{field}" if field.startswith("[") else f"{prefix}.{field}"


_DEPRECATED_ALIASES = {"TimeoutError": "AttemptTimeout"}


def __getattr__(name: str) -> type[IntegrationError]:
    """The deprecated aliases (``TimeoutError``: :class:`AttemptTimeout`), each with a ``DeprecationWarning``."""
    new = _DEPRECATED_ALIASES.get(name)
    if new is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"integration_kit.errors.{name} is deprecated, use integration_kit.errors.{new} "
        "(it shadowed the builtin TimeoutError); the alias goes in the next release",
        DeprecationWarning,
        stacklevel=2,
    )
    cls: type[IntegrationError] = globals()[new]
    return cls


def error_for_status(
    status: int,
    *,
    retryable: bool,
    retry_after: float | None = None,
    headers: Mapping[str, str] | None = None,
    body_snippet: str = "",
) -> AttemptError:
    """The most specific error for a non-2xx status (``retryable`` says whether the policy retries it)."""
    message = f"HTTP {status}"
    if status == 429 or (status == 503 and retry_after is not None):
        return RateLimited(message, status=status, retry_after=retry_after, headers=headers, body_snippet=body_snippet)
    if retryable:
        return ServerError(message, status=status, headers=headers, body_snippet=body_snippet)
    if status in (401, 403):
        return AuthError(message, status=status, headers=headers, body_snippet=body_snippet)
    if 400 <= status < 500:
        return ClientError(message, status=status, headers=headers, body_snippet=body_snippet)
    return UpstreamError(message, status=status, headers=headers, body_snippet=body_snippet)
