"""One logical RPC as the call engine sees it: what the sync and async channels share for every call.

:class:`Rpc` holds a call's request, metadata, method policy and the engine's generator; it builds each attempt's
metadata (the credential, the caller's entries and, on a retry, ``grpc-previous-rpc-attempts``), the attempt's
gRPC ``timeout`` (what is left of the call's deadline, in real seconds, never more), and turns an attempt's end into
an :class:`~integration_kit.policies.outcome.Outcome`. The channels only send and await.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc

from integration_kit.engine.actions import CallGenerator, Send
from integration_kit.errors import DeadlineExceeded, GaveUp, IntegrationError, RetriesExhausted
from integration_kit.grpc.config import HedgingPolicy, MethodConfig
from integration_kit.grpc.status import GrpcStatus, is_refused_stream, outcome_for_error
from integration_kit.policies.breaker import CircuitBreaker
from integration_kit.policies.outcome import Outcome, OutcomeKind

__all__ = ["ATTEMPTS_KEY", "ENGINE_METHOD", "MAX_TRANSPARENT", "Metadata", "Rpc", "as_deadline", "told"]

#: The metadata key that tells the server how many attempts of this call came before (gRFC A6).
ATTEMPTS_KEY = "grpc-previous-rpc-attempts"
#: How many times one attempt is resent, without using an attempt, when the server refused its stream before
#: reading it (gRFC A6 transparent retry; A6 leaves the bound to the implementation).
MAX_TRANSPARENT = 3
#: The method every gRPC call runs under in the engine, as its events and metrics show it (gRPC runs on HTTP/2
#: POST); errors shown to a caller drop it (:func:`told`).
ENGINE_METHOD = "POST"

Metadata = tuple[tuple[str, str | bytes], ...]
_SUCCESS = OutcomeKind.SUCCESS
_OK: int = grpc.StatusCode.OK.value[0]


@dataclass(slots=True)
class Rpc:
    """One logical call: ``method`` (``/package.Service/Method``), its ``config``, the engine's ``calls``."""

    method: str
    request: object
    metadata: Metadata = field(repr=False)  # holds the credential
    config: MethodConfig
    calls: CallGenerator
    time_scale: float
    secrets: Sequence[str] = field(repr=False)
    hedging: HedgingPolicy | None
    #: The breaker of the method's engine (``None``: none), for health-checked probes.
    breaker: CircuitBreaker | None = None

    @property
    def service(self) -> str:
        """The method's service (``package.Service``)."""
        return self.method.lstrip("/").partition("/")[0]

    def attempt_metadata(self, action: Send, previous: int | None = None) -> Metadata:
        """The metadata of attempt ``action.attempt`` (``previous``: attempts before it, for a hedge)."""
        before = action.attempt - 1 if previous is None else previous
        return (*self.metadata, (ATTEMPTS_KEY, str(before))) if before > 0 else self.metadata

    def timeout(self, action: Send, used: float = 0.0) -> float | None:
        """The attempt's gRPC timeout in real seconds: what is left of the deadline after ``used`` scenario
        seconds (``None``: no deadline)."""
        if action.timeout is None:
            return None
        return max(0.0, action.timeout - used) / self.time_scale

    @property
    def retryable(self) -> frozenset[grpc.StatusCode]:
        """The codes this method retries (hedging: its non-fatal codes)."""
        return self.hedging.non_fatal if self.hedging is not None else self.config.retryable

    @staticmethod
    def resend(outcome: Outcome, timeout: float | None) -> bool:
        """Whether to resend an attempt that ended with ``outcome`` at once, without using an attempt: the server
        refused its stream before reading it and time is left (gRFC A6 transparent retry)."""
        return is_refused_stream(outcome) and timeout != 0.0

    def failed(self, error: grpc.RpcError) -> Outcome:
        """The outcome of an attempt that ended with ``error``."""
        return outcome_for_error(error, retryable=self.retryable, secrets=self.secrets)

    @staticmethod
    def answered(value: object) -> Outcome:
        """The outcome of an attempt that got its answer (``value``: the response, or a committed stream)."""
        return Outcome(_SUCCESS, status=_OK, value=value)


def told(error: IntegrationError) -> IntegrationError:
    """``error`` (in place) as a gRPC caller reads it: no HTTP verb (the engine's events keep ``method="POST"``;
    ``url`` already names the RPC, ``grpcs://host:port/package.Service/Method``), and retries that ran out say what
    the last attempt met instead of counting the attempts twice."""
    if error.method == ENGINE_METHOD:
        error.method = None
    if isinstance(error, RetriesExhausted) and isinstance(error.last_error, IntegrationError):
        error.message = f"retries exhausted; the last attempt: {error.last_error.message}"
    return error


def as_deadline(error: IntegrationError) -> IntegrationError:
    """The error a call ends with: an attempt's ``DEADLINE_EXCEEDED`` (or retries that ended on one) becomes
    :class:`~integration_kit.errors.DeadlineExceeded`, with the attempt's error as ``last_error``."""
    last = error.last_error if isinstance(error, GaveUp) and not isinstance(error, DeadlineExceeded) else error
    if not isinstance(last, GrpcStatus) or last.code is not grpc.StatusCode.DEADLINE_EXCEEDED:
        return error
    late = DeadlineExceeded("gRPC DEADLINE_EXCEEDED: the call's deadline passed", last_error=last)
    late.with_context(integration=error.integration, method=error.method, url=error.url, attempts=error.attempts)
    late.__cause__ = last
    return late
