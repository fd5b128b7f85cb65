"""The :class:`Recorder` hook, the :class:`Summary` of a run, and events as table rows (``FRAME_COLUMNS``,
:func:`events_to_frame`): what charts and verdicts read, for live and simulated runs alike. pandas is imported only
by :meth:`Recorder.to_frame` and :func:`events_to_frame`."""

from __future__ import annotations

import functools
import math
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, astuple, dataclass, fields
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import pandas as pd

from integration_kit.events.kinds import CallFinished, Event, EventRow

__all__ = ["FRAME_COLUMNS", "Recorder", "Summary", "event_row", "events_to_frame", "percentile", "summarize"]

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
