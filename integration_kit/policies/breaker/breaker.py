"""The circuit breaker itself: admission, recording, the local state machine and manual control.

See the package docstring (:mod:`integration_kit.policies.breaker`) for the states, the trip conditions, the
wait in OPEN and the half-open rule; :mod:`.shared` adds the store-backed mode.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable
from typing import ParamSpec, TypeVar

from integration_kit.clock import Clock, SystemClock
from integration_kit.errors import CircuitOpenError
from integration_kit.events import CircuitState, StoreUnreachable
from integration_kit.policies.breaker.shared import SharedMode
from integration_kit.policies.breaker.state import BreakerCore, BreakerMetrics, Permit, Transition
from integration_kit.policies.breaker.windows import CountWindow, TimeWindow
from integration_kit.policies.config import BreakerPolicy
from integration_kit.stores.base import Store

__all__ = ["CircuitBreaker"]

logger = logging.getLogger("integration_kit")

_P = ParamSpec("_P")
_R = TypeVar("_R")

_CLOSED = CircuitState.CLOSED
_OPEN = CircuitState.OPEN
_HALF_OPEN = CircuitState.HALF_OPEN
_FORCED_OPEN = CircuitState.FORCED_OPEN
_DISABLED = CircuitState.DISABLED


class CircuitBreaker(SharedMode):
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
        window: CountWindow | TimeWindow = (
            TimeWindow(policy.window_size) if self._timed else CountWindow(policy.window_size)
        )
        self._core = BreakerCore(window=window)
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
        now = self._clock.now
        start = now()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            duration = now() - start
            if self._is_failure is None or self._is_failure(exc):
                permit.record_failure(duration)
            else:
                permit.record_success(duration)
            raise
        except BaseException:
            permit.release()  # interrupted (KeyboardInterrupt, cancellation): free the slot, count nothing
            raise
        permit.record_success(now() - start)
        return result

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

    def _refresh(self, core: BreakerCore) -> Transition | None:
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
        if permit._done:  # set once, under the lock, and never unset: a done permit needs no lock to see it
            return
        with self._lock:
            if permit._done:
                return
            permit._done = True
            if permit._probe:
                self._core.probes_in_flight -= 1

    def _record_closed(self, core: BreakerCore, duration: float, failed: bool) -> Transition | None:
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

    def _record_probe(self, core: BreakerCore, duration: float, failed: bool) -> Transition | None:
        """Apply the half-open rule to one probe's outcome (lock held)."""
        if failed:
            return self._trip(core, "probe_failed")
        if duration >= self._slow_duration:
            return self._trip(core, "probe_slow")
        core.probe_successes += 1
        if core.probe_successes >= self._policy.half_open_max_calls:
            return self._move(core, _CLOSED, "probes_succeeded", self._clock.now())
        return None

    def _trip(self, core: BreakerCore, reason: str) -> Transition:
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

    def _move(self, core: BreakerCore, new: CircuitState, reason: str, now: float) -> Transition:
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
