"""A circuit breaker: sans-I/O, thread-safe, with count or time sliding windows and bounded half-open probes.

States and how it moves between them::

    CLOSED --trip--> OPEN --wait elapsed--> HALF_OPEN --N probes succeeded--> CLOSED
                      ^                         |
                      +-----probe failed/slow---+

    force_open() -> FORCED_OPEN (rejects all)   disable() -> DISABLED (admits all, records nothing)
    reset() -> CLOSED with a fresh window, from any state

*Trip* (CLOSED -> OPEN), any condition that the :class:`~integration_kit.policies.config.BreakerPolicy` sets:

- ``failure_threshold`` consecutive failures;
- failure rate ``failures / calls >= failure_rate_threshold`` over the sliding window, once the window holds at
  least ``minimum_calls`` calls (for a count window, at least ``min(minimum_calls, window_size)``, as
  resilience4j does, so a small window can still trip);
- slow-call rate ``slow / calls >= slow_call_rate_threshold``, same minimum; a call is slow when its duration is
  ``>= slow_call_duration``, whether it succeeded or failed.

The window is a count window (the last ``window_size`` recorded calls) or a time window (the last ``window_size``
seconds, bucketed per whole second of the clock). It is cleared on every transition to CLOSED.

*Wait* in OPEN: ``min(wait_in_open * wait_in_open_multiplier ** (consecutive_trips - 1), max_wait_in_open)``,
where ``consecutive_trips`` counts the openings since the breaker last closed. OPEN becomes HALF_OPEN lazily, the
first time :meth:`CircuitBreaker.try_acquire`, :meth:`~CircuitBreaker.acquire`, :attr:`~CircuitBreaker.state` or
:meth:`~CircuitBreaker.metrics` is used at or after ``opened_at + wait``.

*Half-open rule*: at most ``half_open_max_calls`` probes are in flight at once, the rest are rejected. Any probe
that fails, or is slow when ``slow_call_duration`` is set, reopens the breaker at once (with the next, longer
wait). Once ``half_open_max_calls`` probes have succeeded, it closes. A probe released without a result
(:meth:`Permit.release`) frees its slot and counts for nothing.

The breaker is sans-I/O: it never sleeps and reads time only from the injected :class:`~integration_kit.clock.Clock`.
A caller takes a :class:`Permit` before a call and reports the outcome on it. Each permit carries the breaker's
*generation*, which changes on every transition: an outcome reported after the state changed (a slow call that
finishes after the breaker opened) is ignored, though a probe still frees its half-open slot.

*Shared state*: given a :class:`~integration_kit.stores.Store`, the breakers of the same ``name`` in many
processes trip, probe and close together. The store holds the state, its generation and the trip count, a key
that lives for the open wait (its expiry ends OPEN), one key per half-open probe slot and a probe success
counter; every change is a compare-and-set on the state record, so exactly one process wins each transition.
The sliding window stays per process (each process trips on what it saw; the trip then applies to all), the
store is read on every admission, and no lock is held across a store operation or the protected call. If the
store fails, ``fail_open=True`` (default) admits calls without recording them and ``fail_open=False`` rejects
them; either way ``on_store_error`` gets one :class:`~integration_kit.events.StoreUnreachable` per outage.
See ``docs/stores.md`` for what two processes can see differently, and for how long.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from integration_kit.clock import Clock, SystemClock
from integration_kit.errors import CircuitOpenError, StoreUnavailable
from integration_kit.events import CircuitState, StoreUnreachable
from integration_kit.policies.config import BreakerPolicy
from integration_kit.stores.base import Store
from integration_kit.stores.fallback import StoreFallback

__all__ = ["BreakerMetrics", "CircuitBreaker", "CircuitState", "Permit", "Transition"]

logger = logging.getLogger("integration_kit")

_floor = math.floor
_P = ParamSpec("_P")
_R = TypeVar("_R")


_CLOSED = CircuitState.CLOSED
_OPEN = CircuitState.OPEN
_HALF_OPEN = CircuitState.HALF_OPEN
_FORCED_OPEN = CircuitState.FORCED_OPEN
_DISABLED = CircuitState.DISABLED


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

    def __init__(self, breaker: CircuitBreaker, generation: int, probe: bool) -> None:
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


class CircuitBreaker:
    """A circuit breaker for one integration, following a :class:`~integration_kit.policies.config.BreakerPolicy`.

    Use :meth:`call` around plain synchronous code, or, from an engine, :meth:`try_acquire` / :meth:`acquire` for
    a :class:`Permit` and report the outcome on it. ``is_failure`` decides which exceptions raised inside
    :meth:`call` count as failures (default: every :class:`Exception`); the others count as successes, since the
    partner answered. ``listeners`` get every :class:`Transition`, after the breaker's lock is released; one that
    raises is logged and skipped.

    Thread-safe: one lock guards the state and is never held while a protected call or a listener runs.

    With ``store``, the state is shared with every breaker of the same ``name`` on that store (see the module
    docstring); ``fail_open`` and ``on_store_error`` say what happens while the store is unreachable.
    """

    def __init__(
        self,
        policy: BreakerPolicy | None = None,
        *,
        name: str = "default",
        clock: Clock | None = None,
        listeners: Iterable[Callable[[Transition], None]] = (),
        is_failure: Callable[[Exception], bool] | None = None,
        store: Store | None = None,
        fail_open: bool = True,
        on_store_error: Callable[[StoreUnreachable], None] | None = None,
    ) -> None:
        if policy is None:
            policy = BreakerPolicy()
        if not isinstance(policy, BreakerPolicy):
            raise TypeError(f"CircuitBreaker: policy must be a BreakerPolicy, got {type(policy).__name__}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"CircuitBreaker: name must be a non-empty string, got {name!r}")
        self._policy = policy
        self._name = name
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._listeners: tuple[Callable[[Transition], None], ...] = tuple(listeners)
        self._is_failure = is_failure
        self._lock = threading.Lock()
        # Thresholds normalised once so the hot path compares numbers only (math.inf: "never").
        self._timed = policy.window_type == "time"
        self._failure_threshold: float = policy.failure_threshold if policy.failure_threshold is not None else math.inf
        self._rate_threshold: float = (
            policy.failure_rate_threshold if policy.failure_rate_threshold is not None else math.inf
        )
        self._slow_duration: float = policy.slow_call_duration if policy.slow_call_duration is not None else math.inf
        self._slow_threshold: float = (
            policy.slow_call_rate_threshold if policy.slow_call_duration is not None else math.inf
        )
        self._minimum_calls = policy.minimum_calls if self._timed else min(policy.minimum_calls, policy.window_size)
        window: _CountWindow | _TimeWindow = (
            _TimeWindow(policy.window_size) if self._timed else _CountWindow(policy.window_size)
        )
        self._core = _BreakerCore(window=window)
        self._store = store
        if store is not None:
            self._share(store, fail_open, on_store_error)

    # -- properties -------------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The breaker's name (the integration it protects)."""
        return self._name

    @property
    def policy(self) -> BreakerPolicy:
        """The policy it follows."""
        return self._policy

    @property
    def clock(self) -> Clock:
        """The clock it reads time from."""
        return self._clock

    @property
    def state(self) -> CircuitState:
        """The current state; an OPEN breaker whose wait has elapsed becomes HALF_OPEN here."""
        if self._store is not None:
            self._sync_quietly()
        with self._lock:
            transition = self._refresh(self._core)
            state = self._core.state
        if transition is not None:
            self._emit(transition)
        return state

    @property
    def opened_at(self) -> float | None:
        """When it last opened (or was forced open), while OPEN, HALF_OPEN or FORCED_OPEN; else ``None``."""
        return self._core.opened_at

    @property
    def retry_at(self) -> float | None:
        """When probes are allowed: in OPEN, when it turns HALF_OPEN; in HALF_OPEN, when it did; else ``None``."""
        return self._core.retry_at

    def add_listener(self, listener: Callable[[Transition], None]) -> None:
        """Call ``listener`` with every later transition."""
        with self._lock:
            self._listeners = (*self._listeners, listener)

    def metrics(self) -> BreakerMetrics:
        """A consistent snapshot of the state and the window (with a store: the shared state, the local window)."""
        if self._store is not None:
            self._sync_quietly()
        with self._lock:
            core = self._core
            transition = self._refresh(core)
            window = core.window
            if self._timed:
                window.expire(self._clock.now())
            calls = window.calls
            enough = calls >= self._minimum_calls
            snapshot = BreakerMetrics(
                breaker=self._name,
                state=core.state,
                calls=calls,
                failures=window.failures,
                slow_calls=window.slow,
                failure_rate=window.failures / calls if enough else None,
                slow_call_rate=window.slow / calls if enough else None,
                consecutive_failures=core.consecutive_failures,
                probes_in_flight=core.probes_in_flight,
                rejected=core.rejected,
                trips=core.trips,
            )
        if transition is not None:
            self._emit(transition)
        return snapshot

    # -- admission --------------------------------------------------------------------------------------------

    def try_acquire(self) -> Permit | None:
        """A :class:`Permit` if a call may start now, else ``None`` (counted as rejected). Never raises."""
        generation = self._core.closed_generation
        if generation is not None:
            return Permit(self, generation, False)
        admitted = self._admit()
        return admitted if isinstance(admitted, Permit) else None

    def acquire(self) -> Permit:
        """A :class:`Permit` if a call may start now; else raise :class:`CircuitOpenError` (counted as rejected)."""
        generation = self._core.closed_generation
        if generation is not None:
            return Permit(self, generation, False)
        admitted = self._admit()
        if isinstance(admitted, Permit):
            return admitted
        state, opened_at, retry_at, now = admitted
        raise CircuitOpenError(breaker=self._name, state=state, opened_at=opened_at, retry_at=retry_at, now=now)

    def call(self, fn: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """Run ``fn(*args, **kwargs)`` through the breaker and return its result.

        Raises :class:`CircuitOpenError` without calling ``fn`` when the breaker refuses. An :class:`Exception`
        from ``fn`` is recorded (as a failure when ``is_failure`` says so, else as a success) and re-raised; any
        other exception (``KeyboardInterrupt``, cancellation) releases the permit without a result. The lock is
        not held while ``fn`` runs.
        """
        permit = self.acquire()
        clock = self._clock
        start = clock.now()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            duration = clock.now() - start
            if self._is_failure is None or self._is_failure(exc):
                permit.record_failure(duration)
            else:
                permit.record_success(duration)
            raise
        else:
            permit.record_success(clock.now() - start)
            return result
        finally:
            permit.release()  # a no-op once recorded; frees the slot if fn was interrupted

    # -- manual control ---------------------------------------------------------------------------------------

    def force_open(self) -> None:
        """Reject every call until :meth:`reset` (FORCED_OPEN); ``retry_at`` is ``None`` meanwhile."""
        self._set_state(_FORCED_OPEN, "forced")

    def disable(self) -> None:
        """Admit every call and record nothing until :meth:`reset` (DISABLED)."""
        self._set_state(_DISABLED, "disabled")

    def reset(self) -> None:
        """Close the breaker with a fresh window and a fresh wait, from any state."""
        self._set_state(_CLOSED, "reset")

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self._name!r} state={self._core.state.value}>"

    # -- internals: helpers whose docstring says "lock held" must be called with self._lock held --------------

    def _admit(self) -> Permit | tuple[CircuitState, float | None, float | None, float]:
        """The slow path of admission: a permit, or the details of the refusal (state, opened_at, retry_at, now)."""
        admitted: Permit | tuple[CircuitState, float | None, float | None, float]
        with self._lock:
            core = self._core
            transition = self._refresh(core)
            state = core.state
            if state is _CLOSED or state is _DISABLED:
                admitted = Permit(self, core.generation, False)
            elif state is _HALF_OPEN and core.probes_in_flight < self._policy.half_open_max_calls:
                core.probes_in_flight += 1
                admitted = Permit(self, core.generation, True)
            else:
                core.rejected += 1
                admitted = (state, core.opened_at, core.retry_at, self._clock.now())
        if transition is not None:
            self._emit(transition)
        return admitted

    def _refresh(self, core: _BreakerCore) -> Transition | None:
        """OPEN -> HALF_OPEN once the wait has elapsed (lock held)."""
        if core.state is not _OPEN:
            return None
        now = self._clock.now()
        if core.retry_at is not None and now >= core.retry_at:
            core.probe_successes = 0
            return self._move(core, _HALF_OPEN, "wait_elapsed", now)
        return None

    def _finish(self, permit: Permit, duration: float, failed: bool) -> None:
        """Record the outcome reported on ``permit`` (the hot path of every call)."""
        lock = self._lock
        lock.acquire()  # explicit acquire/release: measurably cheaper than ``with`` on this hot path
        try:
            if permit._done:
                raise RuntimeError(f"{permit!r} was already used; a permit records one outcome")
            permit._done = True
            core = self._core
            if permit._probe:
                core.probes_in_flight -= 1
            if permit._generation == core.closed_generation:
                transition = self._record_closed(core, duration, failed)
            elif permit._generation == core.generation and core.state is _HALF_OPEN:
                transition = self._record_probe(core, duration, failed)
            else:
                return  # stale, or a state that records nothing (DISABLED)
        finally:
            lock.release()
        if transition is not None:
            self._emit(transition)

    def _release(self, permit: Permit) -> None:
        with self._lock:
            if permit._done:
                return
            permit._done = True
            if permit._probe:
                self._core.probes_in_flight -= 1

    def _record_closed(self, core: _BreakerCore, duration: float, failed: bool) -> Transition | None:
        """Add one outcome to the window and trip if a condition is met (lock held)."""
        slow = duration >= self._slow_duration
        window = core.window
        window.record(self._clock.now() if self._timed else 0.0, failed, slow)
        if failed:
            core.consecutive_failures += 1
            if core.consecutive_failures >= self._failure_threshold:
                return self._trip(core, f"consecutive_failures {core.consecutive_failures}")
        else:
            core.consecutive_failures = 0
        calls = window.calls
        minimum = self._minimum_calls
        if calls < minimum or (calls > minimum and not (failed or slow or self._timed)):
            return None  # too few calls, or a quick success in a count window: neither rate can have risen
        rate = window.failures / calls
        if rate >= self._rate_threshold:
            return self._trip(core, f"failure_rate {rate:.2f} >= {self._rate_threshold:.2f}")
        rate = window.slow / calls
        if rate >= self._slow_threshold:
            return self._trip(core, f"slow_call_rate {rate:.2f} >= {self._slow_threshold:.2f}")
        return None

    def _record_probe(self, core: _BreakerCore, duration: float, failed: bool) -> Transition | None:
        """Apply the half-open rule to one probe's outcome (lock held)."""
        if failed:
            return self._trip(core, "probe_failed")
        if duration >= self._slow_duration:
            return self._trip(core, "probe_slow")
        core.probe_successes += 1
        if core.probe_successes >= self._policy.half_open_max_calls:
            return self._move(core, _CLOSED, "probes_succeeded", self._clock.now())
        return None

    def _trip(self, core: _BreakerCore, reason: str) -> Transition:
        """Open the breaker, with the wait grown for a consecutive trip (lock held)."""
        now = self._clock.now()
        core.consecutive_trips += 1
        core.trips += 1
        transition = self._move(core, _OPEN, reason, now)
        core.opened_at = now
        core.retry_at = now + self._wait(core.consecutive_trips)
        return transition

    def _wait(self, consecutive_trips: int) -> float:
        """``min(wait_in_open * multiplier ** (consecutive_trips - 1), max_wait_in_open)``, overflow clamped."""
        policy = self._policy
        try:
            wait = policy.wait_in_open * policy.wait_in_open_multiplier ** (consecutive_trips - 1)
        except OverflowError:
            return policy.max_wait_in_open
        return min(wait, policy.max_wait_in_open)

    def _move(self, core: _BreakerCore, new: CircuitState, reason: str, now: float) -> Transition:
        """Change state and generation; entering CLOSED clears the window and the trip count (lock held)."""
        old = core.state
        core.state = new
        core.generation += 1
        # Published last and read without the lock by the admission fast path: a reader that sees an old value
        # gets a permit of an old generation, whose outcome is then ignored.
        core.closed_generation = core.generation if new is _CLOSED else None
        if new is _CLOSED:
            core.window.clear()
            core.consecutive_failures = 0
            core.consecutive_trips = 0
            core.opened_at = None
            core.retry_at = None
        return Transition(self._name, old, new, reason, now)

    def _set_state(self, new: CircuitState, reason: str) -> None:
        if self._store is not None:
            self._set_shared(new, reason)
            return
        with self._lock:
            core = self._core
            old = core.state
            now = self._clock.now()
            transition = self._move(core, new, reason, now)
            if new is _FORCED_OPEN:
                core.opened_at = now if old is not _FORCED_OPEN else core.opened_at
                core.retry_at = None
            elif new is _DISABLED:
                core.opened_at = None
                core.retry_at = None
        if old is not new:
            self._emit(transition)

    # -- shared state: the methods that replace the in-memory ones when a store is given ----------------------

    def _share(self, store: Store, fail_open: bool, on_store_error: Callable[[StoreUnreachable], None] | None) -> None:
        """Keep the state in ``store``: bind the shared variants of admission, recording and tripping."""
        if not isinstance(store, Store):
            raise TypeError(f"CircuitBreaker: store must be a Store, got {type(store).__name__}")
        self._fallback = StoreFallback(
            f"breaker {self._name!r}", self._clock, fail_open=fail_open, on_store_error=on_store_error
        )
        self._key = f"breaker:{self._name}"
        self._seen: bytes | None = None  # the state record as last read, the expected value of the next CAS
        self._core.closed_generation = None  # no lock-free fast path: every admission reads the store
        # Instance attributes shadow the in-memory methods, so the in-memory path pays nothing for this mode.
        self._admit = self._admit_shared  # type: ignore[method-assign]
        self._finish = self._finish_shared  # type: ignore[method-assign]
        self._release = self._release_shared  # type: ignore[method-assign]
        self._trip = self._propose_trip  # type: ignore[method-assign]
        self._refresh = _no_refresh  # type: ignore[method-assign]

    def _admit_shared(self) -> Permit | tuple[CircuitState, float | None, float | None, float]:
        """Admission against the shared state; a probe needs one of the store's probe slots."""
        permit: Permit | None = None
        try:
            record = self._sync()
            state = record.state
            if state is _CLOSED or state is _DISABLED:
                permit = Permit(self, record.generation, False)
            elif state is _HALF_OPEN and self._claim_probe_slot(record.generation):
                permit = Permit(self, record.generation, True)
            self._fallback.recovered()
        except StoreUnavailable as exc:
            self._fallback.failed(exc)
            if self._fallback.fail_open:
                return Permit(self, -1, False)  # generation -1: the outcome is not recorded
            state = _OPEN
        if permit is not None:
            return permit
        with self._lock:
            self._core.rejected += 1
            return (state, self._core.opened_at, self._core.retry_at, self._clock.now())

    def _finish_shared(self, permit: Permit, duration: float, failed: bool) -> None:
        """Record an outcome: in the local window while CLOSED; a probe's result and any trip go to the store."""
        trip: Transition | None = None
        with self._lock:
            if permit._done:
                raise RuntimeError(f"{permit!r} was already used; a permit records one outcome")
            permit._done = True
            core = self._core
            generation = core.generation
            if permit._generation != generation:
                return  # stale, or admitted while the store was down
            if permit._probe:
                if failed or duration >= self._slow_duration:
                    trip = self._propose_trip(core, "probe_failed" if failed else "probe_slow")
            elif core.state is _CLOSED:
                trip = self._record_closed(core, duration, failed)
                if trip is None:
                    return
            else:
                return
        store = self._store
        assert store is not None
        try:
            if trip is not None:
                self._publish(generation, _OPEN, trip.reason)
            elif store.increment(f"{self._key}:ok:{generation}", 1, ttl=self._policy.max_wait_in_open) >= (
                self._policy.half_open_max_calls
            ):
                self._publish(generation, _CLOSED, "probes_succeeded")
        except StoreUnavailable as exc:
            self._fallback.failed(exc)

    def _release_shared(self, permit: Permit) -> None:
        """A released probe keeps its slot until the slot's key expires (one ``wait_in_open``)."""
        with self._lock:
            permit._done = True

    def _propose_trip(self, core: _BreakerCore, reason: str) -> Transition:
        """The trip the local window asks for; it happens only if :meth:`_publish` wins (lock held)."""
        return Transition(self._name, core.state, _OPEN, reason, self._clock.now())

    def _claim_probe_slot(self, generation: int) -> bool:
        """Take one of the ``half_open_max_calls`` probe slots of this half-open episode, if one is free."""
        store = self._store
        assert store is not None
        ttl = self._policy.wait_in_open
        return any(
            store.add(f"{self._key}:probe:{generation}:{slot}", b"1", ttl=ttl)
            for slot in range(self._policy.half_open_max_calls)
        )

    def _read_shared(self) -> tuple[bytes | None, _SharedRecord]:
        """The shared record; moves OPEN to HALF_OPEN in the store once the wait key has expired."""
        store = self._store
        assert store is not None
        raw = store.get(self._key)
        record = _SharedRecord.decode(raw)
        if record.state is _OPEN and store.get(self._key + ":wait") is None:
            half = _SharedRecord(_HALF_OPEN, record.generation + 1, record.trips, 0.0, "wait_elapsed")
            encoded = half.encode()
            if store.compare_and_set(self._key, raw, encoded):
                return encoded, half
            raw = store.get(self._key)
            record = _SharedRecord.decode(raw)
        return raw, record

    def _sync(self) -> _SharedRecord:
        """Read the shared record and bring the local mirror up to date (may raise StoreUnavailable)."""
        raw, record = self._read_shared()
        with self._lock:
            transition = self._adopt(raw, record)
        if transition is not None:
            self._emit(transition)
        return record

    def _sync_quietly(self) -> None:
        try:
            self._sync()
        except StoreUnavailable as exc:
            self._fallback.failed(exc)

    def _publish(self, generation: int, new: CircuitState, reason: str) -> None:
        """Move the shared state out of ``generation`` to ``new``, if no other process has moved it first."""
        store = self._store
        assert store is not None
        with self._lock:
            raw = self._seen
        current = _SharedRecord.decode(raw)
        if current.generation != generation:
            return
        trips = current.trips + 1 if new is _OPEN else 0
        wait = self._wait(trips) if new is _OPEN else 0.0
        record = _SharedRecord(new, generation + 1, trips, wait, reason)
        encoded = record.encode()
        if new is _OPEN:
            store.set(self._key + ":wait", b"1", ttl=wait)  # before the state, so OPEN never lacks its wait
        if store.compare_and_set(self._key, raw, encoded):
            with self._lock:
                transition = self._adopt(encoded, record)
            if transition is not None:
                self._emit(transition)

    def _set_shared(self, new: CircuitState, reason: str) -> None:
        """force_open / disable / reset for every process: written unconditionally, store errors raised."""
        store = self._store
        assert store is not None
        _, current = self._read_shared()
        record = _SharedRecord(new, current.generation + 1, 0, 0.0, reason)
        encoded = record.encode()
        store.set(self._key, encoded)
        store.delete(self._key + ":wait")
        with self._lock:
            transition = self._adopt(encoded, record)
        if transition is not None:
            self._emit(transition)

    def _adopt(self, raw: bytes | None, record: _SharedRecord) -> Transition | None:
        """Make the local mirror follow the shared ``record``; the transition to emit, if the state changed."""
        self._seen = raw
        core = self._core
        if record.generation == core.generation and record.state is core.state:
            return None
        old = core.state
        now = self._clock.now()
        transition = self._move(core, record.state, record.reason, now)
        core.generation = record.generation
        core.closed_generation = None
        core.consecutive_trips = record.trips
        if record.state is _OPEN:
            core.trips += 1
            core.opened_at = now
            core.retry_at = now + record.wait
        elif record.state is _HALF_OPEN:
            core.probe_successes = 0
            core.retry_at = now
        elif record.state is _FORCED_OPEN:
            core.opened_at = now
            core.retry_at = None
        elif record.state is _DISABLED:
            core.opened_at = core.retry_at = None
        return transition if old is not record.state else None

    def _emit(self, transition: Transition) -> None:
        """Give ``transition`` to every listener (lock not held); a failing listener is logged and skipped."""
        for listener in self._listeners:
            try:
                listener(transition)
            except Exception:
                logger.warning(
                    "circuit %r: listener %r failed on %s -> %s",
                    self._name,
                    listener,
                    transition.old.value,
                    transition.new.value,
                    exc_info=True,
                )


# -- state ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _SharedRecord:
    """The state record kept in a store: state, generation, consecutive trips, the open wait, the last reason."""

    state: CircuitState
    generation: int
    trips: int
    wait: float
    reason: str

    def encode(self) -> bytes:
        data = [self.state.value, self.generation, self.trips, self.wait, self.reason]
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> _SharedRecord:
        """The record in ``raw``; a breaker never written to the store is CLOSED at generation 0."""
        if raw is None:
            return cls(_CLOSED, 0, 0, 0.0, "reset")
        state, generation, trips, wait, reason = json.loads(raw)
        return cls(CircuitState(state), generation, trips, wait, reason)


def _no_refresh(core: _BreakerCore) -> Transition | None:
    """With a store, OPEN becomes HALF_OPEN in the store (:meth:`CircuitBreaker._read_shared`), not locally."""
    return None


@dataclass(slots=True)
class _BreakerCore:
    """Everything a breaker remembers, in one place (the unit a shared store will hold).

    ``probes_in_flight`` counts outstanding probe permits across half-open episodes, so a probe still running from
    an earlier episode keeps its slot until it reports: the partner never sees more than ``half_open_max_calls``
    probes at once.
    """

    window: _CountWindow | _TimeWindow
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


class _CountWindow:
    """The last ``size`` outcomes, in a ring buffer with running sums (O(1) per record).

    Each slot holds bit 1 for a failure and bit 2 for a slow call.
    """

    __slots__ = ("_pos", "_ring", "_size", "calls", "failures", "slow")

    def __init__(self, size: int) -> None:
        self._size = size
        self._ring = [0] * size
        self._pos = 0
        self.calls = 0
        self.failures = 0
        self.slow = 0

    def record(self, now: float, failed: bool, slow: bool) -> None:
        """Add one outcome, evicting the oldest once full (``now`` is unused)."""
        pos = self._pos
        ring = self._ring
        if self.calls == self._size:
            old = ring[pos]
            if old & 1:
                self.failures -= 1
            if old & 2:
                self.slow -= 1
        else:
            self.calls += 1
        code = 0
        if failed:
            self.failures += 1
            code = 1
        if slow:
            self.slow += 1
            code |= 2
        ring[pos] = code
        pos += 1
        self._pos = 0 if pos == self._size else pos

    def expire(self, now: float) -> None:
        """Nothing expires with time in a count window."""

    def clear(self) -> None:
        """Forget every outcome (slots past ``calls`` are never read, so the ring is not wiped)."""
        self._pos = 0
        self.calls = 0
        self.failures = 0
        self.slow = 0


class _TimeWindow:
    """The outcomes of the last ``size`` whole seconds, one bucket per second (O(1) amortised per record).

    Bucket ``second % size`` holds ``(second, calls, failures, slow)``. ``_active`` lists the seconds of non-empty
    buckets, oldest first; a bucket is subtracted from the running sums once its second is ``size`` or more seconds
    older than the newest, lazily, when the window is next used.
    """

    __slots__ = (
        "_active",
        "_calls",
        "_failures",
        "_newest",
        "_newest_index",
        "_seconds",
        "_size",
        "_slow",
        "calls",
        "failures",
        "slow",
    )

    def __init__(self, size: int) -> None:
        self._size = size
        self._seconds: list[int | None] = [None] * size
        self._calls = [0] * size
        self._failures = [0] * size
        self._slow = [0] * size
        self._active: deque[int] = deque()
        self._newest: int | None = None  # the second of the bucket that records go to, once one is open
        self._newest_index = 0
        self.calls = 0
        self.failures = 0
        self.slow = 0

    def expire(self, now: float) -> int:
        """Drop buckets that fell out of the window at ``now``; return ``now``'s whole second."""
        second = _floor(now)
        cutoff = second - self._size
        active = self._active
        while active and active[0] <= cutoff:
            self._drop(active.popleft() % self._size)
        if not active:
            self._newest = None
        return second

    def record(self, now: float, failed: bool, slow: bool) -> None:
        """Add one outcome to the bucket of ``now``'s second."""
        index = self._newest_index
        if _floor(now) != self._newest:
            index = self._open_bucket(now)
        self._calls[index] += 1
        self.calls += 1
        if failed:
            self._failures[index] += 1
            self.failures += 1
        if slow:
            self._slow[index] += 1
            self.slow += 1

    def _open_bucket(self, now: float) -> int:
        """Expire old buckets and make ``now``'s second the newest bucket; return its index."""
        second = self.expire(now)
        active = self._active
        if active and second < active[-1]:
            second = active[-1]  # the clock went backwards: count it in the newest bucket
        index = second % self._size
        if self._seconds[index] != second:
            self._seconds[index] = second
            active.append(second)
        self._newest = second
        self._newest_index = index
        return index

    def clear(self) -> None:
        """Forget every outcome."""
        while self._active:
            self._drop(self._active.popleft() % self._size)
        self._newest = None

    def _drop(self, index: int) -> None:
        self.calls -= self._calls[index]
        self.failures -= self._failures[index]
        self.slow -= self._slow[index]
        self._seconds[index] = None
        self._calls[index] = 0
        self._failures[index] = 0
        self._slow[index] = 0
