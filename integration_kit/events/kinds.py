"""The call's events: one frozen dataclass per thing that happens to a call, the breaker's states, and the
hooks that receive them (:func:`emit` hands an event to each, a failing hook never breaks the call)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, MutableMapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from integration_kit._slots import fast_frozen_init

if TYPE_CHECKING:
    pass

__all__ = [
    "AttemptFinished",
    "AttemptStarted",
    "AttemptWrapper",
    "BreakerTransition",
    "BudgetDepleted",
    "CallFinished",
    "CircuitState",
    "Event",
    "EventRow",
    "Hook",
    "PacingWait",
    "QuotaSeen",
    "RejectedCall",
    "RetryScheduled",
    "StoreUnreachable",
    "emit",
    "logger",
]


class CircuitState(Enum):
    """The state of a circuit breaker."""

    CLOSED = "closed"  # calls flow; outcomes are recorded in the window
    OPEN = "open"  # calls are rejected until the wait has elapsed
    HALF_OPEN = "half_open"  # a few probes are let through to test the partner
    FORCED_OPEN = "forced_open"  # rejects every call until reset()
    DISABLED = "disabled"  # admits every call and records nothing, until reset()


logger = logging.getLogger("integration_kit")


@dataclass(frozen=True, slots=True)
class Event:
    """Fields every event has: clock time, the integration's name, and the logical call's id (0: not a call's)."""

    kind: ClassVar[str] = "event"
    time: float
    integration: str
    call_id: int


@dataclass(frozen=True, slots=True)
class AttemptStarted(Event):
    """An attempt is about to be sent. ``timeout`` is what remains of the deadline (``None``: no deadline)."""

    kind: ClassVar[str] = "attempt_started"
    attempt: int
    method: str
    target: str
    timeout: float | None
    idempotency_key: str | None


@dataclass(frozen=True, slots=True)
class AttemptFinished(Event):
    """An attempt ended: how (``outcome``), with which status, after how long, and how it was judged."""

    kind: ClassVar[str] = "attempt_finished"
    attempt: int
    method: str
    target: str
    outcome: str
    status: int | None
    duration: float
    verdict: str


@dataclass(frozen=True, slots=True)
class RetryScheduled(Event):
    """A retry will follow after ``delay`` seconds; ``reason`` is "backoff" or "retry_after"."""

    kind: ClassVar[str] = "retry_scheduled"
    attempt: int
    delay: float
    reason: str


@dataclass(frozen=True, slots=True)
class RejectedCall(Event):
    """A call (or its next attempt) was refused before reaching the network: circuit open, bulkhead, rate limit."""

    kind: ClassVar[str] = "call_rejected"
    reason: str


@dataclass(frozen=True, slots=True)
class BudgetDepleted(Event):
    """The retry budget refused a retry; ``tokens`` is what was left."""

    kind: ClassVar[str] = "budget_exhausted"
    attempt: int
    tokens: float


@dataclass(frozen=True, slots=True)
class BreakerTransition(Event):
    """The circuit breaker ``breaker`` moved from ``old`` to ``new`` (state values) for ``reason``."""

    kind: ClassVar[str] = "breaker_transition"
    breaker: str
    old: str
    new: str
    reason: str


@dataclass(frozen=True, slots=True)
class StoreUnreachable(Event):
    """The shared-state store ``store`` failed during ``operation`` (``reason``); ``fallback`` is what the owner
    (a shared breaker or budget) does meanwhile: ``"open"`` (carry on with local state) or ``"closed"`` (refuse).
    """

    kind: ClassVar[str] = "store_unavailable"
    store: str
    operation: str
    reason: str
    fallback: str


@dataclass(frozen=True, slots=True)
class CallFinished(Event):
    """A logical call ended. ``outcome`` is "success" or the name of the error raised."""

    kind: ClassVar[str] = "call_finished"
    method: str
    target: str
    ok: bool
    outcome: str
    status: int | None
    attempts: int
    duration: float


@dataclass(frozen=True, slots=True)
class QuotaSeen(Event):
    """A partner's answer reported its quota (:mod:`integration_kit.policies.signals`): ``policy`` names it,
    ``limit`` and ``remaining`` are requests (``None``: not given), ``reset`` is seconds until its window resets."""

    kind: ClassVar[str] = "quota_seen"
    policy: str
    limit: int | None
    remaining: int | None
    reset: float | None


@dataclass(frozen=True, slots=True)
class PacingWait(Event):
    """A call held back by the quota pacer: ``wait`` seconds until the partner's reset; ``waited`` says whether
    the call waited (``False``: the reset was past its deadline, and it failed fast with ``RateLimited``)."""

    kind: ClassVar[str] = "pacing_wait"
    wait: float
    remaining: int | None
    waited: bool


for _cls in (
    Event,
    QuotaSeen,
    PacingWait,
    AttemptStarted,
    AttemptFinished,
    RetryScheduled,
    RejectedCall,
    BudgetDepleted,
    BreakerTransition,
    StoreUnreachable,
    CallFinished,
):
    fast_frozen_init(_cls)


class Hook(Protocol):
    """Anything that takes an event. Hooks run on the caller's thread and must be quick."""

    def __call__(self, event: Event) -> None: ...


#: An event as a row: ``(event class, *its fields in order)`` (see :class:`Recorder`).
EventRow = tuple[Any, ...]


def emit(hooks: Iterable[Hook], event: Event, *, log: logging.Logger | None = None) -> None:
    """Hand ``event`` to every hook; a hook that raises is logged (a warning on ``log``, default the
    ``integration_kit`` logger) and skipped, never breaks the caller."""
    for hook in hooks:
        try:
            hook(event)
        except Exception:
            (log or logger).warning("integration_kit: hook %r failed on %s", hook, event.kind, exc_info=True)


class AttemptWrapper(Protocol):
    """A hook that also wraps the sending of each attempt, for tracing (make the attempt's span current, inject
    trace context into the request's headers).

    A driver that sends HTTP requests calls ``wrap_attempt(headers)`` for every hook that has the method, right
    after the engine emitted the attempt's :class:`AttemptStarted` to the hooks and on the same thread or task,
    with the outgoing request's headers (mutable); it enters the returned context manager around the send and
    exits it once the response has been read or the attempt failed. The simulator sends no request and never calls
    it.
    """

    def wrap_attempt(self, headers: MutableMapping[str, str]) -> AbstractContextManager[None]: ...
