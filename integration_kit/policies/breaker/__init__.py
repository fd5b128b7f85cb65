"""The circuit breaker: sans-I/O, thread-safe, with count or time sliding windows and bounded half-open probes.

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

The pieces, each readable alone: :mod:`.state` (states, transitions, permits, what a breaker remembers),
:mod:`.windows` (the sliding windows), :mod:`.breaker` (the local state machine), :mod:`.shared` (the
store-backed mode).
"""

from integration_kit.policies.breaker.breaker import CircuitBreaker
from integration_kit.policies.breaker.state import BreakerMetrics, CircuitState, Permit, Transition

__all__ = ["BreakerMetrics", "CircuitBreaker", "CircuitState", "Permit", "Transition"]
