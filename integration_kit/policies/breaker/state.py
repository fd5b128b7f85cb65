"""The breaker's states, what it tells listeners (:class:`Transition`, :class:`BreakerMetrics`), the
:class:`Permit` a caller reports on, and :class:`BreakerCore`, everything one breaker remembers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from integration_kit.events import CircuitState
from integration_kit.policies.breaker.windows import CountWindow, TimeWindow

__all__ = ["BreakerCore", "BreakerMetrics", "CircuitState", "Permit", "PermitIssuer", "Transition"]


class PermitIssuer(Protocol):
    """What a :class:`Permit` reports to: its breaker (local or shared mode)."""

    @property
    def name(self) -> str:
        """The breaker's name."""
        ...

    def _finish(self, permit: Permit, duration: float, failed: bool) -> None: ...
    def _release(self, permit: Permit) -> None: ...


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of state, as given to listeners.

    ``reason`` says why, for example ``"failure_rate 0.60 >= 0.50"``, ``"consecutive_failures 5"``,
    ``"slow_call_rate 1.00 >= 0.80"``, ``"wait_elapsed"``, ``"probes_succeeded"``, ``"probe_failed"``,
    ``"probe_slow"``, ``"forced"``, ``"disabled"`` or ``"reset"``; ``time`` is on the breaker's clock.
    """

    breaker: str
    old: CircuitState
    new: CircuitState
    reason: str
    time: float


@dataclass(frozen=True, slots=True)
class BreakerMetrics:
    """A snapshot of a breaker.

    ``calls``, ``failures`` and ``slow_calls`` are in the current window; ``failure_rate`` and ``slow_call_rate``
    are ``None`` until the window holds the minimum number of calls. ``rejected`` (calls refused) and ``trips``
    (transitions into OPEN, re-trips from HALF_OPEN included) count over the breaker's whole life.
    """

    breaker: str
    state: CircuitState
    calls: int
    failures: int
    slow_calls: int
    failure_rate: float | None
    slow_call_rate: float | None
    consecutive_failures: int
    probes_in_flight: int
    rejected: int
    trips: int


class Permit:
    """Leave to make one call through a breaker; report how it went exactly once.

    Report with :meth:`record_success` or :meth:`record_failure` (``duration`` in seconds, measured on the
    breaker's clock by the caller), or give the permit back with :meth:`release` when the result should not count
    (cancelled, or an outcome that says nothing about the partner's health). Recording a second time raises
    :class:`RuntimeError`, since counting one call twice would skew the window; :meth:`release` after a record is
    a no-op, so ``try: ... finally: permit.release()`` is safe.
    """

    __slots__ = ("_breaker", "_done", "_generation", "_probe")

    def __init__(self, breaker: PermitIssuer, generation: int, probe: bool) -> None:
        self._breaker = breaker
        self._generation = generation
        self._probe = probe
        self._done = False

    @property
    def is_probe(self) -> bool:
        """Whether this permit is a half-open probe."""
        return self._probe

    @property
    def done(self) -> bool:
        """Whether an outcome was recorded or the permit released."""
        return self._done

    def record_success(self, duration: float) -> None:
        """Report that the call succeeded after ``duration`` seconds (it still counts as slow if it was)."""
        self._breaker._finish(self, duration, False)

    def record_failure(self, duration: float) -> None:
        """Report that the call failed after ``duration`` seconds."""
        self._breaker._finish(self, duration, True)

    def release(self) -> None:
        """Give the permit back without a result (frees a half-open slot); a no-op once the permit is done."""
        self._breaker._release(self)

    def __repr__(self) -> str:
        kind = "probe" if self._probe else "call"
        return f"<Permit {kind} breaker={self._breaker.name!r} generation={self._generation} done={self._done}>"


@dataclass(slots=True)
class BreakerCore:
    """Everything a breaker remembers, in one place (the unit a shared store will hold).

    ``probes_in_flight`` counts outstanding probe permits across half-open episodes, so a probe still running from
    an earlier episode keeps its slot until it reports: the partner never sees more than ``half_open_max_calls``
    probes at once.
    """

    window: CountWindow | TimeWindow
    state: CircuitState = CircuitState.CLOSED
    generation: int = 0
    closed_generation: int | None = 0  # == generation while CLOSED, else None
    consecutive_failures: int = 0
    consecutive_trips: int = 0
    trips: int = 0
    rejected: int = 0
    probes_in_flight: int = 0
    probe_successes: int = 0
    opened_at: float | None = None
    retry_at: float | None = None
