"""The circuit breaker, stepped through its states on a ManualClock: no sleeping, no I/O."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from integration_kit.clock import ManualClock, SystemClock
from integration_kit.errors import CircuitOpenError
from integration_kit.policies.breaker import (
    BreakerMetrics,
    CircuitBreaker,
    CircuitState,
    Permit,
    Transition,
)
from integration_kit.policies.breaker.windows import CountWindow, TimeWindow
from integration_kit.policies.config import BreakerPolicy

CLOSED = CircuitState.CLOSED
OPEN = CircuitState.OPEN
HALF_OPEN = CircuitState.HALF_OPEN


def make(clock: ManualClock | None = None, **policy: Any) -> tuple[CircuitBreaker, ManualClock, list[Transition]]:
    """A breaker named "partner" on a ManualClock, with a listener that collects transitions."""
    clock = clock or ManualClock()
    seen: list[Transition] = []
    breaker = CircuitBreaker(BreakerPolicy(**policy), name="partner", clock=clock, listeners=[seen.append])
    return breaker, clock, seen


def fail(breaker: CircuitBreaker, n: int = 1, duration: float = 0.01) -> None:
    for _ in range(n):
        breaker.acquire().record_failure(duration)


def succeed(breaker: CircuitBreaker, n: int = 1, duration: float = 0.01) -> None:
    for _ in range(n):
        breaker.acquire().record_success(duration)


def trip(breaker: CircuitBreaker) -> None:
    """Trip a breaker built with failure_threshold=1."""
    fail(breaker)
    assert breaker.state is OPEN


def current_wait(breaker: CircuitBreaker) -> float:
    """How long the breaker stays open this time."""
    assert breaker.retry_at is not None
    assert breaker.opened_at is not None
    return breaker.retry_at - breaker.opened_at


def run_in_thread(fn: Callable[[], object], timeout: float = 5.0) -> None:
    """Run ``fn`` in another thread and fail (rather than hang) if it does not finish in time."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn()
        except BaseException as exc:  # reported to the test thread below
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "deadlock: the other thread did not finish"
    if errors:
        raise errors[0]


# -- construction and basics ---------------------------------------------------------------------------------


def test_defaults() -> None:
    breaker = CircuitBreaker()
    assert breaker.name == "default"
    assert breaker.policy == BreakerPolicy()
    assert isinstance(breaker.clock, SystemClock)
    assert breaker.state is CLOSED
    assert breaker.opened_at is None
    assert breaker.retry_at is None
    assert repr(breaker) == "<CircuitBreaker 'default' state=closed>"


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="BreakerPolicy"):
        CircuitBreaker({"failure_threshold": 3})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name"):
        CircuitBreaker(name="")


def test_state_values() -> None:
    assert [s.value for s in CircuitState] == ["closed", "open", "half_open", "forced_open", "disabled"]


# -- classic consecutive-failure mode --------------------------------------------------------------------------


def test_consecutive_failures_trip_and_a_success_resets_the_count() -> None:
    breaker, clock, seen = make(failure_threshold=3, failure_rate_threshold=None, wait_in_open=10)
    fail(breaker, 2)
    succeed(breaker)
    fail(breaker, 2)
    assert breaker.state is CLOSED
    assert breaker.metrics().consecutive_failures == 2
    clock.advance(5)
    fail(breaker)
    assert breaker.state is OPEN
    assert seen == [Transition("partner", CLOSED, OPEN, "consecutive_failures 3", 5.0)]
    assert breaker.opened_at == 5.0
    assert breaker.retry_at == 15.0
    assert breaker.metrics().trips == 1


# -- failure rate, count window ------------------------------------------------------------------------------


def test_nine_failures_below_minimum_calls_do_not_open_and_the_tenth_does() -> None:
    breaker, _, seen = make(failure_rate_threshold=0.5, minimum_calls=10, window_size=100)
    fail(breaker, 9)
    assert breaker.state is CLOSED
    m = breaker.metrics()
    assert (m.calls, m.failures, m.failure_rate) == (9, 9, None)
    fail(breaker)
    assert breaker.state is OPEN
    assert seen[-1].reason == "failure_rate 1.00 >= 0.50"


def test_reaching_minimum_calls_with_a_success_can_trip() -> None:
    breaker, _, seen = make(failure_rate_threshold=0.5, minimum_calls=10)
    fail(breaker, 5)
    succeed(breaker, 4)
    assert breaker.state is CLOSED
    succeed(breaker)  # 5 failures of 10 calls: 0.5 >= 0.5
    assert breaker.state is OPEN
    assert seen[-1].reason == "failure_rate 0.50 >= 0.50"


def test_rate_below_threshold_stays_closed() -> None:
    # window_size pinned (the default went from 100 to 200 in issue 12)
    breaker, _, _ = make(failure_rate_threshold=0.5, minimum_calls=10, window_size=100)
    for _ in range(50):
        succeed(breaker, 3)
        fail(breaker, 2)
    m = breaker.metrics()
    assert m.state is CLOSED
    assert (m.calls, m.failures, m.failure_rate) == (100, 40, 0.4)


def test_count_window_rolls_old_failures_out() -> None:
    breaker, _, _ = make(failure_rate_threshold=0.6, window_size=5, minimum_calls=5)
    fail(breaker, 2)
    succeed(breaker, 3)  # 2/5
    assert breaker.metrics().failures == 2
    succeed(breaker, 2)  # both failures rolled out
    m = breaker.metrics()
    assert (m.calls, m.failures, m.failure_rate) == (5, 0, 0.0)
    fail(breaker, 2)
    assert breaker.state is CLOSED  # 2/5
    fail(breaker)  # 3/5 = 0.6
    assert breaker.state is OPEN


def test_minimum_calls_larger_than_a_count_window_is_capped_at_its_size() -> None:
    breaker, _, _ = make(failure_rate_threshold=0.5, window_size=4, minimum_calls=20)
    fail(breaker, 3)
    assert breaker.state is CLOSED
    fail(breaker)
    assert breaker.state is OPEN


# -- failure rate, time window --------------------------------------------------------------------------------


def test_time_window_rolls_failures_out_after_window_size_seconds() -> None:
    breaker, clock, _ = make(
        ManualClock(0.5), failure_rate_threshold=0.5, window_type="time", window_size=10, minimum_calls=3
    )
    fail(breaker, 2)
    clock.set(9.99)
    assert breaker.metrics().failures == 2
    clock.set(10.2)
    fail(breaker)  # had the first two not rolled out, 3 of 3 would trip it
    m = breaker.metrics()
    assert (m.state, m.calls, m.failures) == (CLOSED, 1, 1)
    fail(breaker, 2)
    assert breaker.state is OPEN


def test_time_window_buckets_by_whole_second() -> None:
    breaker, clock, _ = make(
        ManualClock(0.1), failure_rate_threshold=0.9, window_type="time", window_size=10, minimum_calls=100
    )
    fail(breaker)
    clock.set(0.9)
    fail(breaker)  # same bucket as the one at 0.1
    clock.set(1.0)
    fail(breaker)  # next bucket
    assert breaker.metrics().failures == 3
    clock.set(9.99)
    assert breaker.metrics().failures == 3
    clock.set(10.0)  # second 0 is now 10 seconds old: both of its failures go at once
    assert breaker.metrics().failures == 1
    clock.set(11.0)
    m = breaker.metrics()
    assert (m.calls, m.failures) == (0, 0)
    fail(breaker)  # an emptied window starts again
    assert breaker.metrics().calls == 1
    clock.advance(1000)  # a jump much longer than the window
    assert breaker.metrics().calls == 0


def test_time_window_evicting_old_successes_can_trip_on_a_success() -> None:
    breaker, clock, seen = make(failure_rate_threshold=0.5, window_type="time", window_size=10, minimum_calls=3)
    succeed(breaker, 3)
    clock.set(5)
    fail(breaker, 2)  # 2/5
    assert breaker.state is CLOSED
    clock.set(10)
    succeed(breaker)  # second 0 rolls out: 2 failures of 3 calls
    assert breaker.state is OPEN
    assert seen[-1].reason == "failure_rate 0.67 >= 0.50"


def test_time_window_is_cleared_when_the_breaker_closes() -> None:
    breaker, clock, _ = make(
        failure_rate_threshold=0.5,
        window_type="time",
        window_size=60,
        minimum_calls=2,
        wait_in_open=5,
        half_open_max_calls=1,
    )
    fail(breaker, 2)
    assert breaker.state is OPEN
    clock.advance(5)
    succeed(breaker)
    assert breaker.state is CLOSED
    assert breaker.metrics().calls == 0
    fail(breaker)
    assert breaker.state is CLOSED  # one call: below the minimum again


def test_time_window_when_the_clock_goes_backwards() -> None:
    window = TimeWindow(3)
    window.record(5.5, True, False)
    window.record(4.0, False, True)  # counted in the newest bucket, second 5
    assert (window.calls, window.failures, window.slow) == (2, 1, 1)
    window.expire(7.9)
    assert window.calls == 2
    window.expire(8.0)
    assert window.calls == 0


# -- slow calls ------------------------------------------------------------------------------------------------


def test_slow_call_rate_trips_counting_slow_successes_and_failures() -> None:
    breaker, _, seen = make(
        failure_rate_threshold=None,
        slow_call_duration=1.0,
        slow_call_rate_threshold=0.5,
        minimum_calls=4,
    )
    succeed(breaker, duration=0.2)
    succeed(breaker, duration=1.0)  # exactly the threshold counts as slow
    fail(breaker, duration=0.1)
    m = breaker.metrics()
    assert (m.calls, m.slow_calls, m.slow_call_rate) == (3, 1, None)
    fail(breaker, duration=3.0)  # slow failure: 2 slow of 4
    assert breaker.state is OPEN
    assert seen[-1].reason == "slow_call_rate 0.50 >= 0.50"


def test_slow_calls_are_not_tracked_without_slow_call_duration() -> None:
    breaker, _, _ = make(failure_rate_threshold=0.5, minimum_calls=2)
    succeed(breaker, 2, duration=1e6)
    m = breaker.metrics()
    assert (m.state, m.slow_calls, m.slow_call_rate) == (CLOSED, 0, 0.0)


# -- open, half-open and the growing wait ----------------------------------------------------------------------


def test_open_rejects_until_the_wait_then_turns_half_open_exactly_at_it() -> None:
    breaker, clock, seen = make(ManualClock(3.0), failure_threshold=1, wait_in_open=10)
    trip(breaker)
    clock.set(12.999)
    assert breaker.try_acquire() is None
    with pytest.raises(CircuitOpenError) as info:
        breaker.acquire()
    err = info.value
    assert (err.breaker, err.state, err.opened_at, err.retry_at) == ("partner", OPEN, 3.0, 13.0)
    assert "circuit 'partner' is open since t=3.000; a probe is allowed in 0.001s" in str(err)
    assert breaker.state is OPEN
    clock.set(13.0)
    assert breaker.state is HALF_OPEN
    assert seen[-1] == Transition("partner", OPEN, HALF_OPEN, "wait_elapsed", 13.0)
    assert breaker.metrics().rejected == 2


def test_wait_grows_on_each_consecutive_trip_capped_and_resets_after_closing() -> None:
    breaker, clock, _ = make(
        failure_threshold=1, wait_in_open=10, wait_in_open_multiplier=2, max_wait_in_open=35, half_open_max_calls=1
    )
    waits = []
    trip(breaker)
    for _ in range(4):
        waits.append(current_wait(breaker))
        clock.advance(waits[-1])
        fail(breaker)  # the probe fails: re-trip
    waits.append(current_wait(breaker))
    assert waits == [10, 20, 35, 35, 35]
    clock.advance(35)
    succeed(breaker)  # the probe succeeds: closed
    assert breaker.state is CLOSED
    trip(breaker)
    assert current_wait(breaker) == 10
    assert breaker.metrics().trips == 6


def test_wait_overflow_is_clamped_to_the_maximum() -> None:
    breaker, clock, _ = make(
        failure_threshold=1, wait_in_open=1, wait_in_open_multiplier=1e300, max_wait_in_open=60, half_open_max_calls=1
    )
    trip(breaker)
    for _ in range(3):
        clock.advance(60)
        fail(breaker)
    assert current_wait(breaker) == 60


def test_half_open_admits_at_most_n_probes_and_rejects_the_rest() -> None:
    breaker, clock, _ = make(failure_threshold=1, wait_in_open=10, half_open_max_calls=2)
    trip(breaker)
    clock.advance(10)
    first, second = breaker.acquire(), breaker.acquire()
    assert first.is_probe
    assert second.is_probe
    assert breaker.try_acquire() is None
    with pytest.raises(CircuitOpenError) as info:
        breaker.acquire()
    assert info.value.state is HALF_OPEN
    assert "'partner' is half_open" in str(info.value)
    assert info.value.retry_at == 10.0
    m = breaker.metrics()
    assert (m.probes_in_flight, m.rejected) == (2, 2)
    first.release()  # frees a slot, counts nothing
    third = breaker.acquire()
    assert breaker.metrics().probes_in_flight == 2
    second.record_success(0.1)
    assert breaker.state is HALF_OPEN  # one success of two
    third.record_success(0.1)
    assert breaker.state is CLOSED


def test_n_probe_successes_close_with_a_fresh_window() -> None:
    breaker, clock, seen = make(failure_threshold=2, failure_rate_threshold=0.5, wait_in_open=5, half_open_max_calls=3)
    fail(breaker, 2)
    clock.advance(5)
    for _ in range(3):
        succeed(breaker)
    assert [t.reason for t in seen] == ["consecutive_failures 2", "wait_elapsed", "probes_succeeded"]
    assert seen[-1].new is CLOSED
    m = breaker.metrics()
    assert (m.state, m.calls, m.failures, m.consecutive_failures, m.probes_in_flight) == (CLOSED, 0, 0, 0, 0)
    assert breaker.opened_at is None
    assert breaker.retry_at is None


def test_a_probe_failure_reopens_at_once_even_with_successes() -> None:
    breaker, clock, seen = make(failure_threshold=1, wait_in_open=5, half_open_max_calls=3)
    trip(breaker)
    clock.advance(5)
    probes = [breaker.acquire() for _ in range(3)]
    probes[0].record_success(0.1)
    probes[1].record_failure(0.1)
    assert breaker.state is OPEN
    assert seen[-1] == Transition("partner", HALF_OPEN, OPEN, "probe_failed", 5.0)
    probes[2].record_success(0.1)  # stale: ignored, but its slot is freed
    m = breaker.metrics()
    assert (m.state, m.probes_in_flight) == (OPEN, 0)


def test_a_slow_probe_reopens() -> None:
    breaker, clock, seen = make(failure_threshold=1, slow_call_duration=2.0, wait_in_open=5)
    trip(breaker)
    clock.advance(5)
    breaker.acquire().record_success(2.5)
    assert breaker.state is OPEN
    assert seen[-1].reason == "probe_slow"


# -- forced open, disabled, reset -----------------------------------------------------------------------------


def test_force_open_rejects_everything_until_reset() -> None:
    breaker, clock, seen = make(failure_threshold=1, wait_in_open=1)
    clock.advance(2)
    breaker.force_open()
    breaker.force_open()  # already forced: no new transition
    clock.advance(1000)
    assert breaker.state is CircuitState.FORCED_OPEN
    assert breaker.try_acquire() is None
    with pytest.raises(CircuitOpenError) as info:
        breaker.acquire()
    assert info.value.retry_at is None
    assert info.value.opened_at == 2.0
    assert "forced_open since t=2.000; until it is reset" in str(info.value)
    breaker.reset()
    assert breaker.state is CLOSED
    assert [(t.old, t.new, t.reason) for t in seen] == [
        (CLOSED, CircuitState.FORCED_OPEN, "forced"),
        (CircuitState.FORCED_OPEN, CLOSED, "reset"),
    ]


def test_force_open_from_open_keeps_no_retry_time() -> None:
    breaker, _, _ = make(failure_threshold=1)
    trip(breaker)
    breaker.force_open()
    assert breaker.retry_at is None
    assert breaker.opened_at == 0.0


def test_disable_admits_everything_and_records_nothing() -> None:
    breaker, _, seen = make(failure_threshold=1)
    breaker.disable()
    assert breaker.state is CircuitState.DISABLED
    for _ in range(10):
        permit = breaker.try_acquire()
        assert permit is not None
        permit.record_failure(5.0)
    assert breaker.call(lambda: 7) == 7
    m = breaker.metrics()
    assert (m.state, m.calls, m.failures, m.consecutive_failures) == (CircuitState.DISABLED, 0, 0, 0)
    assert breaker.opened_at is None
    breaker.reset()
    trip(breaker)
    assert [t.reason for t in seen] == ["disabled", "reset", "consecutive_failures 1"]


def test_reset_from_closed_clears_the_window_without_a_transition() -> None:
    breaker, _, seen = make(failure_threshold=5)
    fail(breaker, 3)
    breaker.reset()
    m = breaker.metrics()
    assert (m.calls, m.failures, m.consecutive_failures) == (0, 0, 0)
    assert seen == []


def test_reset_from_open_resets_the_growing_wait() -> None:
    breaker, clock, _ = make(failure_threshold=1, wait_in_open=10, wait_in_open_multiplier=3, max_wait_in_open=100)
    trip(breaker)
    clock.advance(10)
    fail(breaker)
    assert current_wait(breaker) == 30
    breaker.reset()
    trip(breaker)
    assert current_wait(breaker) == 10


# -- listeners -------------------------------------------------------------------------------------------------


def test_listeners_get_old_new_reason_and_time() -> None:
    breaker, clock, seen = make(failure_threshold=2, wait_in_open=10, half_open_max_calls=1)
    late: list[Transition] = []
    breaker.add_listener(late.append)
    clock.set(1)
    fail(breaker, 2)
    clock.set(11)
    succeed(breaker)
    assert seen == [
        Transition("partner", CLOSED, OPEN, "consecutive_failures 2", 1.0),
        Transition("partner", OPEN, HALF_OPEN, "wait_elapsed", 11.0),
        Transition("partner", HALF_OPEN, CLOSED, "probes_succeeded", 11.0),
    ]
    assert late == seen


def test_a_raising_listener_is_logged_and_does_not_break_the_breaker(caplog: pytest.LogCaptureFixture) -> None:
    def broken(_: Transition) -> None:
        raise RuntimeError("listener bug")

    after: list[Transition] = []
    breaker = CircuitBreaker(
        BreakerPolicy(failure_threshold=1), name="partner", clock=ManualClock(), listeners=[broken, after.append]
    )
    with caplog.at_level(logging.WARNING, logger="integration_kit"):
        fail(breaker)
    assert breaker.state is OPEN
    assert len(after) == 1
    record = caplog.records[-1]
    assert record.name == "integration_kit"
    assert record.levelno == logging.WARNING
    assert "partner" in record.getMessage()
    assert record.exc_info is not None
    breaker.reset()
    succeed(breaker)
    assert breaker.metrics().calls == 1


def test_listeners_run_without_the_lock_held() -> None:
    breaker, _, _ = make(failure_threshold=1)
    snapshots: list[BreakerMetrics] = []
    breaker.add_listener(lambda _: snapshots.append(breaker.metrics()))  # would deadlock if the lock were held
    run_in_thread(lambda: fail(breaker))
    assert snapshots[0].state is OPEN


# -- permits and generations -----------------------------------------------------------------------------------


def test_a_result_after_the_state_changed_is_ignored() -> None:
    breaker, _, _ = make(failure_threshold=2)
    slow_call = breaker.acquire()  # taken while closed
    fail(breaker, 2)
    assert breaker.state is OPEN
    slow_call.record_failure(30.0)  # finishes after the breaker opened
    m = breaker.metrics()
    assert (m.calls, m.failures, m.consecutive_failures) == (2, 2, 2)
    breaker.reset()
    stale = breaker.acquire()
    breaker.force_open()
    breaker.reset()
    stale.record_failure(1.0)  # from an earlier closed generation
    assert breaker.metrics().calls == 0


def test_a_stale_probe_still_frees_its_slot() -> None:
    breaker, clock, _ = make(failure_threshold=1, wait_in_open=1, half_open_max_calls=1)
    trip(breaker)
    clock.advance(1)
    probe = breaker.acquire()
    breaker.reset()
    assert breaker.metrics().probes_in_flight == 1
    probe.record_success(0.1)
    m = breaker.metrics()
    assert (m.calls, m.probes_in_flight) == (0, 0)


def test_a_probe_still_running_keeps_its_slot_in_the_next_half_open_episode() -> None:
    breaker, clock, _ = make(failure_threshold=1, wait_in_open=1, half_open_max_calls=2)
    trip(breaker)
    clock.advance(1)
    straggler = breaker.acquire()
    breaker.acquire().record_failure(0.1)  # reopens; the straggler is still out
    clock.advance(1)
    breaker.acquire()
    assert breaker.try_acquire() is None  # the straggler and the new probe fill both slots
    straggler.record_success(0.1)
    assert breaker.try_acquire() is not None


def test_a_permit_records_at_most_once() -> None:
    breaker, _, _ = make(failure_threshold=5)
    permit = breaker.acquire()
    assert not permit.done
    assert not permit.is_probe
    permit.record_failure(0.1)
    assert permit.done
    with pytest.raises(RuntimeError, match="already used"):
        permit.record_success(0.1)
    with pytest.raises(RuntimeError, match="already used"):
        permit.record_failure(0.1)
    permit.release()  # a no-op once done
    released = breaker.acquire()
    released.release()
    released.release()
    with pytest.raises(RuntimeError):
        released.record_success(0.1)
    m = breaker.metrics()
    assert (m.calls, m.failures) == (1, 1)
    assert "Permit call breaker='partner'" in repr(permit)


# -- call() ----------------------------------------------------------------------------------------------------


def test_call_returns_and_measures_duration_on_the_clock() -> None:
    breaker, clock, _ = make(failure_rate_threshold=None, slow_call_duration=2.0, minimum_calls=10)

    def slow_add(a: int, b: int = 0) -> int:
        clock.advance(2.5)
        return a + b

    assert breaker.call(slow_add, 1, b=2) == 3
    m = breaker.metrics()
    assert (m.calls, m.failures, m.slow_calls) == (1, 0, 1)


def test_call_records_a_failure_and_reraises() -> None:
    breaker, _, _ = make(failure_threshold=2)

    def boom() -> None:
        raise ConnectionError("refused")

    with pytest.raises(ConnectionError, match="refused"):
        breaker.call(boom)
    assert breaker.metrics().consecutive_failures == 1
    with pytest.raises(ConnectionError):
        breaker.call(boom)
    assert breaker.state is OPEN
    called: list[int] = []
    with pytest.raises(CircuitOpenError):
        breaker.call(called.append, 1)
    assert called == []


def test_call_respects_is_failure() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(
        BreakerPolicy(failure_threshold=1),
        clock=clock,
        is_failure=lambda exc: not isinstance(exc, KeyError),
    )

    def missing() -> None:
        raise KeyError("404")

    with pytest.raises(KeyError):
        breaker.call(missing)
    m = breaker.metrics()
    assert (m.state, m.calls, m.failures) == (CLOSED, 1, 0)  # counted as a success: the partner answered
    with pytest.raises(ValueError):
        breaker.call(int, "x")
    assert breaker.state is OPEN


def test_call_interrupted_by_a_base_exception_releases_the_probe_slot() -> None:
    breaker, clock, _ = make(failure_threshold=1, wait_in_open=1, half_open_max_calls=1)
    trip(breaker)
    clock.advance(1)

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        breaker.call(interrupted)
    m = breaker.metrics()
    assert (m.state, m.probes_in_flight) == (HALF_OPEN, 0)
    assert breaker.call(lambda: "ok") == "ok"
    assert breaker.state is CLOSED


def test_call_does_not_hold_the_lock_while_fn_runs() -> None:
    breaker, _, _ = make(failure_threshold=3)
    seen: list[object] = []

    def inner() -> str:
        # Another thread uses the breaker while this call is in progress: it would block if the lock were held.
        def other() -> None:
            seen.append(breaker.metrics().calls)
            permit = breaker.acquire()
            permit.record_success(0.0)
            seen.append(breaker.state)

        run_in_thread(other)
        return "done"

    run_in_thread(lambda: seen.append(breaker.call(inner)))
    assert seen == [0, CLOSED, "done"]
    assert breaker.metrics().calls == 2


# -- metrics ---------------------------------------------------------------------------------------------------


def test_metrics_rates_appear_at_minimum_calls() -> None:
    breaker, _, _ = make(failure_rate_threshold=0.9, slow_call_duration=1.0, minimum_calls=4)
    fail(breaker, 1)
    succeed(breaker, 2, duration=1.5)
    m = breaker.metrics()
    assert (m.failure_rate, m.slow_call_rate) == (None, None)
    succeed(breaker)
    assert breaker.metrics() == BreakerMetrics(
        breaker="partner",
        state=CLOSED,
        calls=4,
        failures=1,
        slow_calls=2,
        failure_rate=0.25,
        slow_call_rate=0.5,
        consecutive_failures=0,
        probes_in_flight=0,
        rejected=0,
        trips=0,
    )


def test_metrics_apply_the_lazy_half_open_transition() -> None:
    breaker, clock, seen = make(failure_threshold=1, wait_in_open=2)
    trip(breaker)
    clock.advance(2)
    assert breaker.metrics().state is HALF_OPEN
    assert seen[-1].reason == "wait_elapsed"


# -- properties: the windows against a naive model ---------------------------------------------------------------

outcomes = st.tuples(st.booleans(), st.booleans())


@given(size=st.integers(1, 8), before=st.lists(outcomes, max_size=20), records=st.lists(outcomes, max_size=40))
def test_count_window_matches_the_last_n_outcomes(
    size: int, before: list[tuple[bool, bool]], records: list[tuple[bool, bool]]
) -> None:
    window = CountWindow(size)
    for failed, slow in before:
        window.record(0.0, failed, slow)
    window.clear()
    window.expire(1e9)  # time does not matter to a count window
    for i, (failed, slow) in enumerate(records):
        window.record(0.0, failed, slow)
        kept = records[: i + 1][-size:]
        assert window.calls == len(kept)
        assert window.failures == sum(f for f, _ in kept)
        assert window.slow == sum(s for _, s in kept)


@given(
    size=st.integers(1, 6),
    records=st.lists(st.tuples(st.floats(0, 3, allow_nan=False), outcomes), max_size=40),
)
def test_time_window_matches_the_last_seconds(size: int, records: list[tuple[float, tuple[bool, bool]]]) -> None:
    window = TimeWindow(size)
    now = 0.0
    log: list[tuple[float, bool, bool]] = []
    for step, (failed, slow) in records:
        now += step
        window.record(now, failed, slow)
        log.append((now, failed, slow))
        second = int(now)
        kept = [(f, s) for t, f, s in log if int(t) > second - size]
        assert window.calls == len(kept)
        assert window.failures == sum(f for f, _ in kept)
        assert window.slow == sum(s for _, s in kept)


# -- properties: half-open never has more than N probes out ------------------------------------------------------


class HalfOpenProbes(RuleBasedStateMachine):
    """Any interleaving of acquire / record / release / advance / reset keeps probes in flight within the bound."""

    MAX = 2

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.breaker = CircuitBreaker(
            BreakerPolicy(
                failure_threshold=1,
                failure_rate_threshold=None,
                slow_call_duration=2.0,
                wait_in_open=1.0,
                wait_in_open_multiplier=1.5,
                max_wait_in_open=3.0,
                half_open_max_calls=self.MAX,
            ),
            clock=self.clock,
        )
        self.permits: list[Permit] = []

    @rule()
    def acquire(self) -> None:
        permit = self.breaker.try_acquire()
        if permit is not None:
            self.permits.append(permit)

    @precondition(lambda self: self.permits)
    @rule(index=st.integers(0, 100), failed=st.booleans(), duration=st.sampled_from([0.1, 2.5]))
    def record(self, index: int, failed: bool, duration: float) -> None:
        permit = self.permits.pop(index % len(self.permits))
        if failed:
            permit.record_failure(duration)
        else:
            permit.record_success(duration)

    @precondition(lambda self: self.permits)
    @rule(index=st.integers(0, 100))
    def release(self, index: int) -> None:
        self.permits.pop(index % len(self.permits)).release()

    @rule(seconds=st.sampled_from([0.0, 0.5, 1.0, 3.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(action=st.sampled_from(["reset", "force_open", "disable"]))
    def admin(self, action: str) -> None:
        getattr(self.breaker, action)()

    @invariant()
    def probes_within_bound(self) -> None:
        outstanding = sum(p.is_probe for p in self.permits)
        m = self.breaker.metrics()
        assert outstanding == m.probes_in_flight
        assert m.probes_in_flight <= self.MAX


TestHalfOpenProbes = HalfOpenProbes.TestCase
TestHalfOpenProbes.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


# -- threads ---------------------------------------------------------------------------------------------------


def test_counts_stay_exact_under_threads() -> None:
    threads, per_thread = 8, 10_000
    breaker = CircuitBreaker(
        BreakerPolicy(
            failure_rate_threshold=None,
            slow_call_duration=1e9,
            window_size=threads * per_thread,
            minimum_calls=threads * per_thread,
        ),
        clock=ManualClock(),
    )
    start = threading.Barrier(threads)

    def worker() -> None:
        start.wait()
        for i in range(per_thread):
            permit = breaker.try_acquire()
            assert permit is not None
            if i % 4 == 0:
                permit.record_failure(0.01)
            else:
                permit.record_success(0.01)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    m = breaker.metrics()
    assert (m.calls, m.failures, m.slow_calls) == (threads * per_thread, threads * per_thread // 4, 0)
    assert m.state is CLOSED


# -- pinned by mutation testing (tests/mutation.py) ---------------------------------------------------------------


def test_a_clock_that_steps_back_counts_in_the_newest_bucket_once() -> None:
    window = TimeWindow(3)
    window.record(5.5, failed=True, slow=False)
    window.record(4.2, failed=False, slow=False)  # one second back: counted in the bucket of second 5
    assert (window.calls, window.failures) == (2, 1)
    window.expire(8.0)  # second 5 leaves the window once, with both outcomes
    assert (window.calls, window.failures) == (0, 0)
    window.record(8.1, failed=False, slow=False)
    assert window.calls == 1


def test_a_permit_says_what_it_is_and_whether_it_was_used() -> None:
    breaker = CircuitBreaker(BreakerPolicy(), name="partner", clock=ManualClock())
    permit = breaker.acquire()
    assert permit.done is False
    assert repr(permit).startswith("<Permit call breaker='partner'")
    permit.record_success(0.01)
    assert permit.done is True
    assert "done=True" in repr(permit)
    clock = ManualClock()
    probe_breaker = CircuitBreaker(
        BreakerPolicy(failure_threshold=1, failure_rate_threshold=None, wait_in_open=1.0), clock=clock
    )
    probe_breaker.acquire().record_failure(0.01)
    clock.advance(1.0)
    assert repr(probe_breaker.acquire()).startswith("<Permit probe ")


def test_a_failure_rate_above_the_minimum_still_trips_a_count_window() -> None:
    policy = BreakerPolicy(failure_rate_threshold=0.5, window_size=10, minimum_calls=4, wait_in_open=5.0)
    breaker = CircuitBreaker(policy, clock=ManualClock())
    for _ in range(4):
        breaker.acquire().record_success(0.01)
    for _ in range(3):
        breaker.acquire().record_failure(0.01)
    assert breaker.state is CircuitState.CLOSED  # 3 of 7
    breaker.acquire().record_failure(0.01)
    assert breaker.state is CircuitState.OPEN  # 4 of 8: the rate reached 0.5 past the minimum


def test_a_slow_call_rate_above_the_minimum_still_trips_a_count_window() -> None:
    policy = BreakerPolicy(
        failure_rate_threshold=None,
        slow_call_duration=1.0,
        slow_call_rate_threshold=0.5,
        window_size=10,
        minimum_calls=2,
    )
    breaker = CircuitBreaker(policy, clock=ManualClock())
    breaker.acquire().record_success(0.01)
    breaker.acquire().record_success(0.01)
    breaker.acquire().record_success(1.0)  # exactly the slow duration is slow
    assert breaker.state is CircuitState.CLOSED  # 1 of 3
    breaker.acquire().record_success(2.0)
    assert breaker.state is CircuitState.OPEN  # 2 of 4 slow, though every call succeeded


def test_a_time_window_waits_for_minimum_calls_even_above_its_size_in_seconds() -> None:
    policy = BreakerPolicy(window_type="time", window_size=5, minimum_calls=10, failure_rate_threshold=0.5)
    breaker = CircuitBreaker(policy, clock=ManualClock())
    for _ in range(9):
        breaker.acquire().record_failure(0.01)
    assert breaker.state is CircuitState.CLOSED  # 9 calls < 10, whatever the window's 5 seconds
    breaker.acquire().record_failure(0.01)
    assert breaker.state is CircuitState.OPEN


def test_a_probe_exactly_at_the_slow_duration_is_slow() -> None:
    clock = ManualClock()
    policy = BreakerPolicy(failure_threshold=1, failure_rate_threshold=None, slow_call_duration=2.0, wait_in_open=1.0)
    breaker = CircuitBreaker(policy, clock=clock)
    breaker.acquire().record_failure(0.01)
    clock.advance(1.0)
    breaker.acquire().record_success(2.0)
    assert breaker.state is CircuitState.OPEN


def test_call_measures_the_duration_on_the_breakers_clock() -> None:
    clock = ManualClock(1000.0)
    policy = BreakerPolicy(
        failure_rate_threshold=None, slow_call_duration=5.0, slow_call_rate_threshold=0.5, minimum_calls=1
    )
    breaker = CircuitBreaker(policy, clock=clock)
    assert breaker.call(lambda: "fast") == "fast"
    with pytest.raises(ValueError):
        breaker.call(_raise_value_error)
    assert breaker.metrics().slow_calls == 0  # 0 s each, not 1000 + 1000
    assert breaker.state is CircuitState.CLOSED


def _raise_value_error() -> None:
    raise ValueError("boom")


def test_permits_report_their_kind_and_generation() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(
        BreakerPolicy(failure_threshold=1, failure_rate_threshold=None, wait_in_open=1.0), clock=clock
    )
    first = breaker.acquire()
    assert first.is_probe is False
    assert "generation=0" in repr(first)
    first.record_failure(0.01)  # CLOSED -> OPEN: generation 1
    clock.advance(1.0)
    probe = breaker.acquire()  # OPEN -> HALF_OPEN: generation 2
    assert probe.is_probe is True
    assert "generation=2" in repr(probe)


def test_forcing_open_keeps_the_first_opening_time_and_disabling_clears_it() -> None:
    clock = ManualClock(10.0)
    seen: list[Transition] = []
    breaker = CircuitBreaker(
        BreakerPolicy(failure_threshold=1, failure_rate_threshold=None), clock=clock, listeners=[seen.append]
    )
    breaker.force_open()
    assert (breaker.opened_at, breaker.retry_at) == (10.0, None)
    assert seen[-1].time == 10.0
    clock.advance(5)
    breaker.force_open()
    assert breaker.opened_at == 10.0  # forced open since 10, not since the second order
    breaker.reset()
    breaker.acquire().record_failure(0.01)
    assert breaker.opened_at == 15.0
    assert breaker.retry_at is not None
    breaker.disable()
    assert (breaker.opened_at, breaker.retry_at) == (None, None)
    assert seen[-1].time == 15.0


def test_a_failing_listener_is_logged_with_the_transition(caplog: pytest.LogCaptureFixture) -> None:
    def broken(t: Transition) -> None:
        raise RuntimeError("listener bug")

    breaker = CircuitBreaker(
        BreakerPolicy(failure_threshold=1, failure_rate_threshold=None), name="partner", clock=ManualClock()
    )
    breaker.add_listener(broken)
    with caplog.at_level(logging.WARNING, logger="integration_kit"):
        breaker.acquire().record_failure(0.01)
    (record,) = [r for r in caplog.records if "listener" in r.getMessage()]
    assert record.getMessage().startswith("circuit 'partner': listener <function")
    assert record.getMessage().endswith("failed on closed -> open")
    assert record.exc_info
    assert record.exc_info[0] is RuntimeError


def test_the_defaults_fail_open_and_refuse_what_is_not_a_policy() -> None:
    from integration_kit import MemoryStore
    from integration_kit.errors import StoreUnavailable

    class Down(MemoryStore):
        def get(self, key: str) -> bytes | None:
            raise StoreUnavailable("refused", store="down", operation="get")

    breaker = CircuitBreaker(BreakerPolicy(), name="p", clock=ManualClock(), store=Down())
    assert breaker.try_acquire() is not None  # fail_open=True by default
    with pytest.raises(TypeError, match="policy must be a BreakerPolicy, got dict"):
        CircuitBreaker({})  # type: ignore[arg-type]
