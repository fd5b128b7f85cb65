"""Observability as plain data: one frozen event per thing that happens, hooks that receive them, and a recorder.

Every driver (sync client, async client, simulator) emits the same events from the call engine, so a chart or
a summary works on live and simulated runs alike. A hook is any callable taking an :class:`Event`. Targets in
events are already redacted by the driver; events never hold a secret.

These are the call's events. Features define their own :class:`Event` subclasses in their own packages and emit
them to the same hooks: :mod:`integration_kit.webhooks.events` (``WebhookEndpointDisabled``) and
:mod:`integration_kit.queues.events` (the consumer's ``Message*`` and ``Consumer*`` events).

pandas is imported only by :meth:`Recorder.to_frame`.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import threading
from collections import deque
from collections.abc import Iterable, Iterator, MutableMapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, astuple, dataclass, fields
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast

from integration_kit._slots import fast_frozen_init

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CircuitState",
    "FRAME_COLUMNS",
    "AttemptFinished",
    "AttemptStarted",
    "AttemptWrapper",
    "BreakerTransition",
    "BudgetDepleted",
    "CallFinished",
    "Event",
    "EventRow",
    "Hook",
    "LoggingHook",
    "Recorder",
    "RejectedCall",
    "RetryScheduled",
    "StoreUnreachable",
    "StructuredLogger",
    "Summary",
    "emit",
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


for _cls in (
    Event,
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


#: The call's columns of :meth:`Recorder.to_frame`, first and in this order; a field an event does not have is left
#: empty. A feature's events add their own fields after these (see :func:`events_to_frame`).
FRAME_COLUMNS: tuple[str, ...] = (
    "event",
    "time",
    "integration",
    "call_id",
    "attempt",
    "method",
    "target",
    "outcome",
    "status",
    "verdict",
    "duration",
    "delay",
    "reason",
    "timeout",
    "idempotency_key",
    "ok",
    "attempts",
    "tokens",
    "breaker",
    "old",
    "new",
    "store",
    "operation",
    "fallback",
)


@dataclass(frozen=True, slots=True)
class Summary:
    """The figures of a run: calls and their fate, load amplification, latency percentiles, breaker transitions."""

    calls: int
    succeeded: int
    failed: int
    rejected: int
    attempts: int
    retries: int
    budget_refusals: int
    success_rate: float
    error_rate: float
    amplification: float
    latency_p50: float
    latency_p95: float
    latency_p99: float
    transitions: tuple[str, ...]

    @classmethod
    def of(
        cls,
        calls: int,
        succeeded: int,
        rejected: int,
        attempts: int,
        retries: int,
        refusals: int,
        durations: Sequence[float],
        transitions: Iterable[str],
    ) -> Summary:
        """The figures from the counts, the calls' ``durations`` (seconds, sorted) and the transitions."""
        success_rate = succeeded / calls if calls else math.nan
        return cls(
            calls=calls,
            succeeded=succeeded,
            failed=calls - succeeded,
            rejected=rejected,
            attempts=attempts,
            retries=retries,
            budget_refusals=refusals,
            success_rate=success_rate,
            error_rate=1 - success_rate if calls else math.nan,
            amplification=attempts / calls if calls else math.nan,
            latency_p50=percentile(durations, 0.50),
            latency_p95=percentile(durations, 0.95),
            latency_p99=percentile(durations, 0.99),
            transitions=tuple(transitions),
        )

    def as_dict(self) -> dict[str, Any]:
        """A plain dict (JSON-ready)."""
        data = asdict(self)
        data["transitions"] = list(self.transitions)
        return data


class Recorder:
    """A hook that keeps events; ``to_frame()`` gives one row per event and ``summary()`` the run's figures.

    ``max_events`` bounds memory in long-running processes (the oldest events are dropped). Thread-safe.
    :attr:`append` also takes an :data:`EventRow`, kept as it is and built into its event when read: the call
    engine hands its events so to a recorder that is its only hook, since the row is cheaper to build.
    """

    def __init__(self, *, max_events: int | None = None) -> None:
        if max_events is not None and max_events < 1:
            raise ValueError(f"Recorder.max_events must be >= 1, got {max_events!r}")
        self._events: deque[Event | EventRow] = deque(maxlen=max_events)
        self._lock = threading.Lock()
        self.append = self._events.append  # deque.append is atomic under the GIL: the hot path takes no lock

    def __call__(self, event: Event) -> None:
        """Record ``event``."""
        self.append(event)

    @property
    def events(self) -> list[Event]:
        """A snapshot of the recorded events, oldest first (rows are built into events here)."""
        with self._lock:
            kept = self._events
            snapshot = list(kept)
            built = [e[0](*e[1:]) if type(e) is tuple else cast(Event, e) for e in snapshot]
            if kept.maxlen is None and any(type(e) is tuple for e in snapshot):
                # Keep the events instead of the rows, so the next read builds nothing. Appends reach only the right
                # end, and nothing is dropped from the left without a maxlen: the oldest len(snapshot) are these.
                for _ in range(len(snapshot)):
                    kept.popleft()
                kept.extendleft(reversed(built))
        return built

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def clear(self) -> None:
        """Forget every event."""
        with self._lock:
            self._events.clear()

    def of(self, *kinds: type[Event]) -> list[Event]:
        """The recorded events of the given types."""
        return [e for e in self.events if isinstance(e, kinds)]

    def to_frame(self) -> pd.DataFrame:
        """The events as a pandas DataFrame with :data:`FRAME_COLUMNS` (pandas is imported here, lazily)."""
        return events_to_frame(self._kept())

    def summary(self) -> Summary:
        """The run's figures (see :class:`Summary`)."""
        return summarize(self._kept())

    def rows(self) -> list[EventRow]:
        """A snapshot of the recorded events as rows, ``(event class, *its fields in order)``, oldest first: for a
        reader that wants a few fields of many events, no event object is built for a row the engine handed in."""
        return [e if type(e) is tuple else (type(e), *astuple(cast(Event, e))) for e in self._kept()]

    def _kept(self) -> list[Event | EventRow]:
        """A snapshot of what is kept, events and rows as they are (the frame and the summary read both)."""
        with self._lock:
            return list(self._events)

    def __repr__(self) -> str:
        return f"Recorder(events={len(self._events)})"


def event_row(event: Event | EventRow) -> dict[str, Any]:
    """One event (or :data:`EventRow`) as a flat dict: ``event`` (its kind) and each of its fields."""
    if type(event) is tuple:
        return {"event": event[0].kind, **dict(zip(_field_names(event[0]), event[1:], strict=True))}
    row: dict[str, Any] = {"event": event.kind}  # type: ignore[union-attr]
    for f in fields(event):  # type: ignore[arg-type]
        row[f.name] = getattr(event, f.name)
    return row


@functools.cache
def _field_names(cls: type[Event]) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def events_to_frame(events: Iterable[Event | EventRow]) -> pd.DataFrame:
    """A DataFrame with one row per event: the columns :data:`FRAME_COLUMNS`, then the fields of any other event
    (a feature's own, such as a queue consumer's ``queue`` and ``message_id``) in the order they are first seen."""
    import pandas as pd

    events = list(events)
    columns = dict.fromkeys(FRAME_COLUMNS)
    kinds: dict[type[Event], None] = {}
    for e in events:
        kinds[e[0] if type(e) is tuple else type(e)] = None  # type: ignore[index]
    for kind in kinds:  # one look per class, not per event
        columns.update(dict.fromkeys(f.name for f in fields(kind)))
    return pd.DataFrame([event_row(e) for e in events], columns=list(columns))


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of already sorted values by linear interpolation; NaN when empty."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(sorted_values) - 1)
    frac = pos - low
    return sorted_values[low] * (1 - frac) + sorted_values[high] * frac


#: Where a :class:`CallFinished` row holds its ``ok`` and ``duration`` (after the class).
_FINISHED_OK = 1 + [f.name for f in fields(CallFinished)].index("ok")
_FINISHED_DURATION = 1 + [f.name for f in fields(CallFinished)].index("duration")


def summarize(events: Iterable[Event | EventRow]) -> Summary:
    r"""Compute a :class:`Summary` from events of any driver (or their :data:`EventRow`\ s)."""
    calls = succeeded = rejected = attempts = retries = refusals = 0
    durations: list[float] = []
    transitions: list[str] = []
    e: Any
    for e in events:
        row = type(e) is tuple
        kind = e[0].kind if row else e.kind
        if kind == "attempt_started":
            attempts += 1
        elif kind == "call_finished":
            calls += 1
            durations.append(e[_FINISHED_DURATION] if row else e.duration)
            if e[_FINISHED_OK] if row else e.ok:
                succeeded += 1
        elif kind == "retry_scheduled":
            retries += 1
        elif kind == "call_rejected":
            rejected += 1
        elif kind == "budget_exhausted":
            refusals += 1
        elif kind == "breaker_transition":
            moved = e[0](*e[1:]) if row else e
            transitions.append(f"{moved.old}->{moved.new}")
    durations.sort()
    return Summary.of(calls, succeeded, rejected, attempts, retries, refusals, durations, transitions)


class StructuredLogger(Protocol):
    """A structlog-style logger: ``log(level, event_name, **fields)`` (structlog's bound loggers are)."""

    def log(self, level: int, event: str, **fields: Any) -> Any: ...


class LoggingHook:
    """Emits one log record per finished attempt, and one per rejection, transition or refusal.

    Records go to the ``integration_kit`` logger (or ``logger``) with the event's fields in ``extra`` under
    ``integration_kit``; the message holds only redacted values.

    ``structured=True`` logs every event as one JSON object with stable keys: ``event`` (the event's kind:
    ``attempt_started``, ``attempt_finished``, ``retry_scheduled``, ``call_rejected``, ``budget_exhausted``,
    ``breaker_transition``, ``store_unavailable``, ``call_finished``), ``integration``, ``call_id``, ``time`` and
    the event's own fields. With a :class:`logging.Logger` the JSON object is the message; with a structlog logger
    (anything with ``log(level, event, **fields)``; always structured) the hook calls
    ``logger.log(level, kind, **fields)`` and structlog's processors render it.
    """

    def __init__(
        self,
        logger: logging.Logger | StructuredLogger | None = None,
        *,
        level: int = logging.INFO,
        structured: bool = False,
    ) -> None:
        self.logger = logger or logging.getLogger("integration_kit")
        self.level = level
        self.structured = structured
        self._stdlib = isinstance(self.logger, logging.Logger | logging.LoggerAdapter)

    def __call__(self, event: Event) -> None:
        """Log ``event`` if it is one this hook reports."""
        kind = event.kind
        if self.structured or not self._stdlib:
            self._structured(event)
            return
        if kind in {"attempt_started", "retry_scheduled"}:
            return
        logger = cast(logging.Logger, self.logger)
        if not logger.isEnabledFor(self.level):
            return
        fields_ = event_row(event)
        if kind == "attempt_finished":
            message = "%s attempt %s %s %s -> %s in %.3fs"
            args: tuple[object, ...] = (
                event.integration,
                fields_["attempt"],
                fields_["method"],
                fields_["target"],
                fields_["status"] if fields_["status"] is not None else fields_["outcome"],
                fields_["duration"],
            )
        else:
            message = "%s %s %s"
            args = (event.integration, kind, {k: v for k, v in fields_.items() if k not in ("event", "integration")})
        logger.log(self.level, message, *args, extra={"integration_kit": fields_})

    def _structured(self, event: Event) -> None:
        logger = self.logger
        if self._stdlib:
            stdlib = cast(logging.Logger, logger)
            if stdlib.isEnabledFor(self.level):
                row = event_row(event)
                stdlib.log(self.level, "%s", _Json(row), extra={"integration_kit": row})
            return
        row = {f.name: getattr(event, f.name) for f in fields(event)}
        logger.log(self.level, event.kind, **row)


class _Json:
    """A log message argument rendered as JSON only when a handler formats the record."""

    __slots__ = ("row",)

    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row

    def __str__(self) -> str:
        return json.dumps(self.row, default=str, separators=(",", ":"))
