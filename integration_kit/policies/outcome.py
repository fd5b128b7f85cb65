"""What happened to one attempt, in the engine's own words, and how it is judged.

Drivers translate whatever their transport reports (an httpx exception, a status, a simulated fault) into an
:class:`Outcome` at one boundary; the policies only ever see outcomes. :func:`classify` turns an outcome into a
:class:`Verdict`: whether it succeeded, whether it is worth retrying, and whether the circuit breaker counts it as
a failure.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import Enum

from integration_kit._slots import fast_frozen_init

__all__ = ["Classifier", "Outcome", "OutcomeKind", "Verdict", "classify"]


class OutcomeKind(Enum):
    """How an attempt ended, ordered by how far the request got."""

    SUCCESS = "success"  # a result that is not an HTTP status (generic callables)
    STATUS = "status"  # the server answered with an HTTP status
    POOL_TIMEOUT = "pool_timeout"  # no connection became free: the request never left
    CONNECT_ERROR = "connect_error"  # refused, DNS or TLS failure: the server never saw the request
    CONNECT_TIMEOUT = "connect_timeout"  # likewise never seen
    WRITE_TIMEOUT = "write_timeout"  # the request may have been partly received
    READ_TIMEOUT = "read_timeout"  # the request was sent: the server may have acted on it
    CONNECTION_LOST = "connection_lost"  # reset or closed after sending
    ERROR = "error"  # anything else (a malformed response, an unclassified exception)


_NOT_SENT = frozenset({OutcomeKind.POOL_TIMEOUT, OutcomeKind.CONNECT_ERROR, OutcomeKind.CONNECT_TIMEOUT})
_TRANSIENT_KINDS = frozenset(
    {
        OutcomeKind.POOL_TIMEOUT,
        OutcomeKind.CONNECT_ERROR,
        OutcomeKind.CONNECT_TIMEOUT,
        OutcomeKind.WRITE_TIMEOUT,
        OutcomeKind.READ_TIMEOUT,
        OutcomeKind.CONNECTION_LOST,
    }
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one attempt.

    ``retry_after`` is the server's hint already parsed to seconds (see
    :func:`~integration_kit.policies.retry.parse_retry_after`); ``error`` is the typed error a driver would raise for
    this outcome, kept so the engine can raise or wrap it; ``value`` is what a successful attempt produced (a response,
    a return value) for the driver to hand back. ``should_retry`` is the partner's explicit retry hint when it gave
    one (``Stripe-Should-Retry``, ``x-should-retry``, a negative or malformed gRPC pushback): ``False`` stops the
    retries whatever the classification says, ``True`` makes a refused answer retryable; ``None`` (the default)
    leaves the decision to the classifier (see :func:`~integration_kit.policies.retry.decide_retry`).
    """

    kind: OutcomeKind
    status: int | None = None
    retry_after: float | None = None
    error: Exception | None = None
    value: object = None
    should_retry: bool | None = None

    @property
    def may_have_been_processed(self) -> bool:
        """Whether the server may have acted on the request.

        False when it never reached the server (connect failures, pool timeouts) or the server said it did not
        process it (429, RFC 6585). Only such failures are safe to retry for a non-idempotent request.
        """
        if self.kind in _NOT_SENT:
            return False
        return not (self.kind is OutcomeKind.STATUS and self.status == 429)


fast_frozen_init(Outcome)


class Verdict(Enum):
    """The judgement of an outcome."""

    SUCCESS = "success"  # done; the breaker counts a success
    TRANSIENT = "transient"  # failed, may succeed if retried; the breaker counts a failure
    FAILURE = "failure"  # failed, retrying will not help (e.g. 501); the breaker counts a failure
    REJECTED = "rejected"  # the partner refused this request (4xx): not retried, the breaker counts a success

    @property
    def is_failure(self) -> bool:
        """Whether the circuit breaker counts this verdict as a failure."""
        return self is Verdict.TRANSIENT or self is Verdict.FAILURE


Classifier = Callable[[Outcome], Verdict]

_DEFAULT_TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})


def classify(outcome: Outcome, retry_on_status: Collection[int] = _DEFAULT_TRANSIENT) -> Verdict:
    """The default judgement.

    2xx (and any non-HTTP success) succeeds. Statuses in ``retry_on_status`` are transient; another 5xx is a
    failure that retrying will not fix; other statuses (4xx, unfollowed 1xx/3xx) are the partner refusing this
    request, which says nothing about its health, so the breaker does not count them. Connection failures and
    timeouts are transient; anything else is a failure.
    """
    kind = outcome.kind
    if kind is _KIND_SUCCESS:
        return _PASSED
    if kind is _KIND_STATUS:
        status = outcome.status or 0
        if 200 <= status < 300:
            return _PASSED
        if status in retry_on_status:
            return _TRANSIENT
        if status >= 500:
            return _FAILED
        return _REJECTED
    if kind in _TRANSIENT_KINDS:
        return _TRANSIENT
    return _FAILED


# Members as module constants for the hot path: ``Verdict.X`` goes through EnumType.__getattr__ (CPython 3.11).
_KIND_SUCCESS = OutcomeKind.SUCCESS
_KIND_STATUS = OutcomeKind.STATUS
_PASSED = Verdict.SUCCESS
_TRANSIENT = Verdict.TRANSIENT
_FAILED = Verdict.FAILURE
_REJECTED = Verdict.REJECTED
