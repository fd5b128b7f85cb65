"""gRPC status codes in the kit's words: the typed errors, the attempt's :class:`Outcome`, and the verdict.

One boundary turns what grpcio reports (an ``RpcError`` / ``AioRpcError``: a code, details, trailing metadata)
into an :class:`~integration_kit.policies.outcome.Outcome` whose ``error`` is the typed error of
:mod:`integration_kit.errors`:

- ``UNAVAILABLE``: :class:`GrpcUnavailable` (transient when the method's policy retries it), except a failed TLS
  handshake (grpc-core's details name it: ``Tls handshake failed``, ``SSL_ERROR_SSL``...): :class:`GrpcTlsError`,
  permanent whatever the policy says, since a plaintext server will not start speaking TLS on a retry;
- ``RESOURCE_EXHAUSTED`` with pushback, when retried: :class:`GrpcRateLimited`, a
  :class:`~integration_kit.errors.RateLimited`;
- ``UNAUTHENTICATED``, ``PERMISSION_DENIED``: :class:`GrpcAuthError`, an :class:`~integration_kit.errors.AuthError`;
- another code the method's ``retryableStatusCodes`` lists: :class:`GrpcTransientError`;
- ``INVALID_ARGUMENT``, ``NOT_FOUND`` and the other refusals (:data:`REFUSING_CODES`): :class:`GrpcRefused` (the
  partner refused this request; a :class:`~integration_kit.errors.ClientError`);
- the rest: :class:`GrpcPermanentError`.

``DEADLINE_EXCEEDED`` ends the call with :class:`~integration_kit.errors.DeadlineExceeded` (the channel wraps the
attempt's error). Every error keeps the status ``code`` and its ``details``, redacted of the channel's secrets.

Server pushback (gRFC A6, trailing metadata ``grpc-retry-pushback-ms``): a valid count of milliseconds becomes
``Outcome.retry_after`` (seconds), which the engine waits instead of the backoff; a negative or malformed value
becomes ``Outcome.should_retry=False``, which stops retrying (see
:func:`~integration_kit.policies.retry.decide_retry`).

A stream the partner ended while the async channel was still writing a request can reach the caller as
``INTERNAL: Internal error from Core``: grpcio's aio client replaces the partner's own status with that one when
the write fails (grpc/grpc#36066, open in grpcio 1.85; the sync client reports the partner's status). The partner's
code is lost, and the failure is the transport's, not the partner's: :class:`GrpcStatusLost`, retried as the method
retries ``UNAVAILABLE`` (a permanent :class:`GrpcPermanentError` naming the cause when it does not).

A failure that provably never reached the server (no connection could be made, or the server refused the HTTP/2
stream: ``REFUSED_STREAM``) is an outcome of kind ``CONNECT_ERROR``: safe to retry for any method, and the
channel retries a refused stream transparently, without using an attempt (gRFC A6's transparent retry).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import Any

import grpc

from integration_kit.errors import AttemptError, AuthError, ClientError, PermanentError, RateLimited, TransientError
from integration_kit.policies.outcome import Outcome, OutcomeKind, Verdict

__all__ = [
    "PUSHBACK_KEY",
    "REFUSING_CODES",
    "GrpcAuthError",
    "GrpcPermanentError",
    "GrpcRateLimited",
    "GrpcRefused",
    "GrpcStatus",
    "GrpcStatusLost",
    "GrpcTlsError",
    "GrpcTransientError",
    "GrpcUnavailable",
    "is_refused_stream",
    "outcome_for_error",
    "parse_pushback",
    "verdict",
]

#: The trailing metadata key of server pushback (gRFC A6).
PUSHBACK_KEY = "grpc-retry-pushback-ms"
#: The longest pushback honoured as given (milliseconds): a larger integer is treated as malformed. A6 leaves the
#: bound to the implementation; 2**31 - 1 ms (about 24.8 days) is the int32 grpc-core parses.
MAX_PUSHBACK_MS = 2**31 - 1
#: Codes by which the partner refuses this request without being unhealthy: not retried (unless the method's
#: policy lists them), and the breaker counts them as neither a failure nor a success (the HTTP 4xx of gRPC).
REFUSING_CODES: frozenset[grpc.StatusCode] = frozenset(
    {
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
    }
)
_AUTH_CODES = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})
#: What grpc-core says when no connection could be made, or when the server refused the stream before reading it.
_NEVER_SENT = re.compile(r"failed to connect|connection refused|connect failed|refused_stream|stream refused", re.I)
#: What grpc-core says when the TLS handshake failed (a plaintext server, or a certificate not trusted).
_TLS_FAILED = re.compile(r"handshake fail|ssl_error|tsi_protocol_failure|wrong_version_number|certificate verify", re.I)
_TLS_HINT = (
    "the TLS handshake failed, which a retry will not mend (the server does not speak TLS, or its certificate is "
    "not trusted); a plaintext server on loopback needs tls=False"
)
_REFUSED_STREAM = re.compile(r"refused_stream|stream refused", re.I)
#: grpcio's aio client when a request's write failed because the partner had ended the stream (grpc/grpc#36066):
#: the details it sets and the debug string of the failed write (one ``SendMessageOperation``).
_LOST_DETAILS = "Internal error from Core"
_FAILED_WRITE = re.compile(
    r'Failed "execute_batch": \(<grpc\._cython\.cygrpc\.SendMessageOperation object at 0x[0-9a-fA-F]+>,\)'
)
_LOST_HINT = (
    "the partner ended the stream while a request was being sent, and grpcio reported INTERNAL in place of the "
    "partner's status (grpc/grpc#36066)"
)
_DIGITS = re.compile(r"[0-9]{1,10}")
#: Details longer than this are cut (characters): a status message is meant for people, not for payloads.
MAX_DETAILS = 300


class GrpcStatus:
    """Mixin of every gRPC status error: ``code`` (a ``grpc.StatusCode``), ``details`` (redacted, truncated) and
    ``status``, the code's number (``14`` for ``UNAVAILABLE``), which is what events and metrics show."""

    code: grpc.StatusCode
    details: str

    def _set_status(self, code: grpc.StatusCode, details: str) -> None:
        self.code = code
        self.details = details


class GrpcTransientError(GrpcStatus, TransientError):
    """A status the method's policy retries (its ``retryableStatusCodes``), other than the two below."""


class GrpcUnavailable(GrpcTransientError):
    """``UNAVAILABLE``: the server (or the connection to it) is not available now."""


class GrpcStatusLost(GrpcTransientError):
    """A stream the partner ended while a request was being written, whose status grpcio's aio client lost: it
    reported ``INTERNAL: Internal error from Core`` instead (grpc/grpc#36066). Retried when the method's policy
    retries ``UNAVAILABLE``; ``code`` is the ``INTERNAL`` grpcio reported."""


class GrpcRateLimited(GrpcStatus, RateLimited):
    """``RESOURCE_EXHAUSTED`` with server pushback: ``retry_after`` holds the pushback in seconds."""


class GrpcRefused(GrpcStatus, ClientError):
    """The partner refused this request (``INVALID_ARGUMENT``, ``NOT_FOUND``, ``FAILED_PRECONDITION``, ...)."""


class GrpcAuthError(GrpcStatus, AuthError):
    """``UNAUTHENTICATED`` or ``PERMISSION_DENIED``: the credentials are missing, wrong or not allowed."""


class GrpcPermanentError(GrpcStatus, PermanentError):
    """Any other status: retrying will not help under this method's policy (``INTERNAL``, ``UNIMPLEMENTED``...)."""


class GrpcTlsError(GrpcPermanentError):
    """``UNAVAILABLE`` because the TLS handshake failed: never retried, whatever the method's policy (a plaintext
    server will not start speaking TLS). Its message says so and hints ``tls=False`` for a loopback server."""


def parse_pushback(values: Iterable[str | bytes]) -> float | bool | None:
    """The pushback of one response (gRFC A6): seconds to wait, ``False`` (do not retry: negative, malformed or
    repeated), or ``None`` (no pushback).

    ``values`` are the response's ``grpc-retry-pushback-ms`` values, in order.
    """
    found = [v.decode("ascii", "replace") if isinstance(v, bytes) else v for v in values]
    if not found:
        return None
    if len(found) > 1:
        return False
    text = found[0].strip()
    if not _DIGITS.fullmatch(text) or int(text) > MAX_PUSHBACK_MS:
        return False
    return int(text) / 1000.0


def outcome_for_error(
    error: grpc.RpcError,
    *,
    retryable: Collection[grpc.StatusCode],
    secrets: Iterable[str] = (),
) -> Outcome:
    """The outcome of an attempt that ended with ``error`` (a ``grpc.RpcError`` that is also a ``grpc.Call``, as
    both grpcio's sync and aio errors are). ``retryable`` is the method's ``retryableStatusCodes``; ``secrets``
    are removed from the status details."""
    call: Any = error  # grpcio's errors are also grpc.Call (sync) / grpc.aio.Call (aio): code, details, metadata
    code: grpc.StatusCode = call.code()
    details = _scrub(call.details() or "", secrets)
    pushback = parse_pushback(value for key, value in _pairs(call.trailing_metadata()) if key == PUSHBACK_KEY)
    never_sent = code is grpc.StatusCode.UNAVAILABLE and bool(_NEVER_SENT.search(details))
    message = f"gRPC {code.name}" + (f": {details}" if details else "")
    status = code.value[0]
    attempt_error: AttemptError
    if _lost_on_write(call, code):
        message = f"gRPC status lost: {_LOST_HINT}"
        lost_retried = grpc.StatusCode.UNAVAILABLE in retryable
        attempt_error = GrpcStatusLost(message) if lost_retried else GrpcPermanentError(message)
    elif code is grpc.StatusCode.UNAVAILABLE and _TLS_FAILED.search(details):
        attempt_error = GrpcTlsError(f"gRPC UNAVAILABLE: {_TLS_HINT}: {details}")
    elif code in retryable:
        if code is grpc.StatusCode.RESOURCE_EXHAUSTED and isinstance(pushback, float):
            attempt_error = GrpcRateLimited(message, status=status, retry_after=pushback)
        elif code is grpc.StatusCode.UNAVAILABLE:
            attempt_error = GrpcUnavailable(message)
        else:
            attempt_error = GrpcTransientError(message)
    elif code in _AUTH_CODES:
        attempt_error = GrpcAuthError(message, status=status)
    elif code in REFUSING_CODES:
        attempt_error = GrpcRefused(message, status=status)
    else:
        attempt_error = GrpcPermanentError(message)
    assert isinstance(attempt_error, GrpcStatus)
    attempt_error._set_status(code, details)
    attempt_error.status = status
    return Outcome(
        OutcomeKind.CONNECT_ERROR if never_sent else OutcomeKind.STATUS,
        status=status,
        retry_after=pushback if isinstance(pushback, float) else None,
        error=attempt_error,
        should_retry=False if pushback is False else None,
    )


def _lost_on_write(call: Any, code: grpc.StatusCode) -> bool:
    """Whether grpcio's aio client replaced the partner's status after a failed write (grpc/grpc#36066)."""
    if code is not grpc.StatusCode.INTERNAL or call.details() != _LOST_DETAILS:
        return False
    debug = getattr(call, "debug_error_string", None)
    return callable(debug) and bool(_FAILED_WRITE.fullmatch(str(debug())))  # None: "None", no match


def is_refused_stream(outcome: Outcome) -> bool:
    """Whether ``outcome`` is a stream the server refused before reading it (HTTP/2 ``REFUSED_STREAM``)."""
    error = outcome.error
    return isinstance(error, GrpcStatus) and bool(_REFUSED_STREAM.search(error.details))


_SUCCESS = OutcomeKind.SUCCESS


def verdict(outcome: Outcome) -> Verdict:
    """The engine's classifier for gRPC outcomes: the typed error the boundary chose decides.

    A transient error (a code the method retries) is ``TRANSIENT``; a refusal (:data:`REFUSING_CODES`) is
    ``REJECTED`` (not counted by the breaker); any other status is a ``FAILURE``.
    """
    if outcome.kind is _SUCCESS:
        return Verdict.SUCCESS
    error = outcome.error
    if isinstance(error, TransientError):
        return Verdict.TRANSIENT
    if isinstance(error, ClientError):
        return Verdict.REJECTED
    return Verdict.FAILURE


def _pairs(metadata: Any) -> list[tuple[str, str | bytes]]:
    """``(key, value)`` pairs of grpcio metadata: a sequence of pairs or of ``_Metadatum``, or aio ``Metadata``."""
    if not metadata:
        return []
    items = metadata if isinstance(metadata, list | tuple) else list(metadata)
    return [(item[0], item[1]) if isinstance(item, tuple) else (item.key, item.value) for item in items]


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[REDACTED]")
    text = text.replace("\r", " ").replace("\n", " ")
    return text if len(text) <= MAX_DETAILS else text[: MAX_DETAILS - 3] + "..."
