"""Shared mode: the breaker's state in a :class:`~integration_kit.stores.Store`, so that the breakers of one name
in many processes trip, probe and close together.

:class:`SharedMode` holds the methods that replace the in-memory admission, recording and tripping when a store is
given (bound per instance by ``_share``, so the in-memory path pays nothing for this mode). Every change is a
compare-and-set on the :class:`SharedRecord`, so exactly one process wins each transition.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from integration_kit.errors import StoreUnavailable
from integration_kit.events import CircuitState, StoreUnreachable
from integration_kit.policies.breaker.state import BreakerCore, Permit, Transition
from integration_kit.stores.base import Store
from integration_kit.stores.fallback import StoreFallback

if TYPE_CHECKING:
    import threading

    from integration_kit.clock import Clock
    from integration_kit.policies.config import BreakerPolicy

__all__ = ["SharedMode", "SharedRecord", "no_refresh"]

_CLOSED = CircuitState.CLOSED
_OPEN = CircuitState.OPEN
_HALF_OPEN = CircuitState.HALF_OPEN
_FORCED_OPEN = CircuitState.FORCED_OPEN
_DISABLED = CircuitState.DISABLED


class SharedMode:
    """The shared-state variants of a ``CircuitBreaker``'s internals (a mixin; see the module docstring)."""

    if TYPE_CHECKING:  # what the mixin uses of the breaker it is mixed into
        _clock: Clock
        _core: BreakerCore
        _lock: threading.Lock
        _name: str
        _policy: BreakerPolicy
        _slow_duration: float
        _store: Store | None

        @property
        def name(self) -> str: ...
        def _admit(self) -> Permit | tuple[CircuitState, float | None, float | None, float]: ...
        def _refresh(self, core: BreakerCore) -> Transition | None: ...
        def _finish(self, permit: Permit, duration: float, failed: bool) -> None: ...
        def _release(self, permit: Permit) -> None: ...
        def _record_closed(self, core: BreakerCore, duration: float, failed: bool) -> Transition | None: ...
        def _trip(self, core: BreakerCore, reason: str) -> Transition: ...
        def _wait(self, consecutive_trips: int) -> float: ...
        def _move(self, core: BreakerCore, new: CircuitState, reason: str, now: float) -> Transition: ...
        def _emit(self, transition: Transition) -> None: ...

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
        self._refresh = no_refresh  # type: ignore[method-assign]

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

    def _propose_trip(self, core: BreakerCore, reason: str) -> Transition:
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

    def _read_shared(self) -> tuple[bytes | None, SharedRecord]:
        """The shared record; moves OPEN to HALF_OPEN in the store once the wait key has expired."""
        store = self._store
        assert store is not None
        raw = store.get(self._key)
        record = SharedRecord.decode(raw)
        if record.state is _OPEN and store.get(self._key + ":wait") is None:
            half = SharedRecord(_HALF_OPEN, record.generation + 1, record.trips, 0.0, "wait_elapsed")
            encoded = half.encode()
            if store.compare_and_set(self._key, raw, encoded):
                return encoded, half
            raw = store.get(self._key)
            record = SharedRecord.decode(raw)
        return raw, record

    def _sync(self) -> SharedRecord:
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
        current = SharedRecord.decode(raw)
        if current.generation != generation:
            return
        trips = current.trips + 1 if new is _OPEN else 0
        wait = self._wait(trips) if new is _OPEN else 0.0
        record = SharedRecord(new, generation + 1, trips, wait, reason)
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
        record = SharedRecord(new, current.generation + 1, 0, 0.0, reason)
        encoded = record.encode()
        store.set(self._key, encoded)
        store.delete(self._key + ":wait")
        with self._lock:
            transition = self._adopt(encoded, record)
        if transition is not None:
            self._emit(transition)

    def _adopt(self, raw: bytes | None, record: SharedRecord) -> Transition | None:
        """Make the local mirror follow the shared ``record``; the transition to emit, if the state changed.

        The mirror holds what admission, errors and metrics read. The consecutive trips (which set the next wait)
        stay in the record and the probe successes in the store's counter, so they are not copied here.
        """
        self._seen = raw
        core = self._core
        if record.generation == core.generation and record.state is core.state:
            return None
        old = core.state
        now = self._clock.now()
        transition = self._move(core, record.state, record.reason, now)
        core.generation = record.generation
        core.closed_generation = None
        if record.state is _OPEN:
            core.trips += 1
            core.opened_at = now
            core.retry_at = now + record.wait
        elif record.state is _HALF_OPEN:
            core.retry_at = now
        elif record.state is _FORCED_OPEN:
            core.opened_at = now
            core.retry_at = None
        elif record.state is _DISABLED:
            core.opened_at = core.retry_at = None
        return transition if old is not record.state else None


@dataclass(frozen=True, slots=True)
class SharedRecord:
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
    def decode(cls, raw: bytes | None) -> SharedRecord:
        """The record in ``raw``; a breaker never written to the store is CLOSED at generation 0."""
        if raw is None:
            return cls(_CLOSED, 0, 0, 0.0, "reset")
        state, generation, trips, wait, reason = json.loads(raw)
        return cls(CircuitState(state), generation, trips, wait, reason)


def no_refresh(core: BreakerCore) -> Transition | None:
    """With a store, OPEN becomes HALF_OPEN in the store (:meth:`CircuitBreaker._read_shared`), not locally."""
    return None
