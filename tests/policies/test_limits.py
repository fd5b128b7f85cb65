"""Tests for the bulkhead and the rate limiter, on a manual clock."""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integration_kit.clock import ManualClock
from integration_kit.policies.limits import Bulkhead, BulkheadStats, RateLimiter, RateLimiterStats

# --- Bulkhead ---------------------------------------------------------------------------------------------------


def test_bulkhead_admits_up_to_max_then_rejects() -> None:
    bulkhead = Bulkhead(2)
    assert bulkhead.try_acquire() is True
    assert bulkhead.try_acquire() is True
    assert bulkhead.in_use == 2
    assert bulkhead.try_acquire() is False
    bulkhead.release()
    assert bulkhead.in_use == 1
    assert bulkhead.try_acquire() is True
    assert bulkhead.stats() == BulkheadStats(in_use=2, max_concurrent=2, acquired=3, rejected=1)
    assert bulkhead.max_concurrent == 2


def test_bulkhead_release_without_acquire_raises() -> None:
    bulkhead = Bulkhead(1)
    with pytest.raises(RuntimeError, match="no slot held"):
        bulkhead.release()
    assert bulkhead.try_acquire()
    bulkhead.release()
    with pytest.raises(RuntimeError):
        bulkhead.release()
    assert bulkhead.in_use == 0


@pytest.mark.parametrize("bad", [0, -1, 1.5, 2.0, True, "3", None])
def test_bulkhead_rejects_bad_max_concurrent(bad: object) -> None:
    with pytest.raises(ValueError, match=r"max_concurrent .*" + repr(bad).replace(".", r"\.")):
        Bulkhead(bad)  # type: ignore[arg-type]


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Make the interpreter switch threads often, so races would show."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


@pytest.mark.usefixtures("fast_switching")
def test_bulkhead_never_exceeds_max_under_eight_threads() -> None:
    threads, per_thread, limit = 8, 5_000, 3
    bulkhead = Bulkhead(limit)
    inside_lock = threading.Lock()
    inside = 0
    peak = 0
    admitted = [0] * threads
    start = threading.Barrier(threads)

    def work(index: int) -> None:
        nonlocal inside, peak
        start.wait()
        for _ in range(per_thread):
            if not bulkhead.try_acquire():
                continue
            try:
                admitted[index] += 1
                with inside_lock:
                    inside += 1
                    peak = max(peak, inside, bulkhead.in_use)
                with inside_lock:
                    inside -= 1
            finally:
                bulkhead.release()

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    stats = bulkhead.stats()
    assert 1 <= peak <= limit
    assert stats.acquired == sum(admitted)
    assert stats.acquired + stats.rejected == threads * per_thread
    assert stats.in_use == 0


# --- RateLimiter ------------------------------------------------------------------------------------------------


def test_rate_limiter_burst_then_throttled_with_the_right_wait() -> None:
    clock = ManualClock()
    limiter = RateLimiter(10, burst=5, clock=clock)
    assert [limiter.try_acquire() for _ in range(5)] == [0.0] * 5
    assert limiter.try_acquire() == pytest.approx(0.1)
    assert limiter.try_acquire() == pytest.approx(0.1)  # a refusal takes nothing
    clock.advance(0.04)
    assert limiter.try_acquire() == pytest.approx(0.06)
    assert limiter.stats() == RateLimiterStats(acquired=5, throttled=3)


def test_rate_limiter_refills_after_advance() -> None:
    clock = ManualClock(100.0)
    limiter = RateLimiter(2, burst=2, clock=clock)
    assert limiter.try_acquire() == 0.0
    assert limiter.try_acquire() == 0.0
    wait = limiter.try_acquire()
    assert wait == pytest.approx(0.5)
    clock.advance(wait)
    assert limiter.try_acquire() == 0.0
    assert limiter.try_acquire() > 0
    clock.advance(1.0)
    assert limiter.try_acquire() == 0.0
    assert limiter.try_acquire() == 0.0
    assert limiter.try_acquire() > 0


def test_rate_limiter_part_of_a_token_is_not_a_token() -> None:
    clock = ManualClock()
    limiter = RateLimiter(10, burst=1, clock=clock)
    assert limiter.try_acquire() == 0.0
    clock.advance(0.095)
    assert limiter.try_acquire() == pytest.approx(0.005)
    clock.advance(0.005)
    assert limiter.try_acquire() == 0.0


def test_rate_limiter_saves_no_more_than_burst() -> None:
    clock = ManualClock()
    limiter = RateLimiter(5, burst=3, clock=clock)
    clock.advance(3600)
    granted = 0
    while limiter.try_acquire() == 0.0:
        granted += 1
    assert granted == 3


@pytest.mark.parametrize(("rate", "burst"), [(0.5, 1), (1, 1), (2.5, 3), (10, 10), (100.0, 100)])
def test_rate_limiter_default_burst_is_one_second_of_rate(rate: float, burst: int) -> None:
    limiter = RateLimiter(rate, clock=ManualClock())
    assert limiter.burst == burst
    assert limiter.rate == rate


def test_rate_limiter_slow_rate_waits_long() -> None:
    clock = ManualClock()
    limiter = RateLimiter(0.5, clock=clock)
    assert limiter.try_acquire() == 0.0
    assert limiter.try_acquire() == pytest.approx(2.0)
    clock.advance(1.5)
    assert limiter.try_acquire() == pytest.approx(0.5)


@pytest.mark.parametrize("bad", [0, -1, 0.0, math.nan, math.inf, True, "1", None])
def test_rate_limiter_rejects_bad_rate(bad: object) -> None:
    with pytest.raises(ValueError, match="rate must be"):
        RateLimiter(bad, clock=ManualClock())  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -3, 1.5, True, "2"])
def test_rate_limiter_rejects_bad_burst(bad: object) -> None:
    with pytest.raises(ValueError, match="burst must be"):
        RateLimiter(1, burst=bad, clock=ManualClock())  # type: ignore[arg-type]


def test_rate_limiter_rejects_a_non_clock() -> None:
    with pytest.raises(TypeError, match="Clock"):
        RateLimiter(1, clock=object())  # type: ignore[arg-type]


@given(
    rate=st.floats(min_value=0.01, max_value=1000, allow_nan=False),
    burst=st.integers(min_value=1, max_value=50),
    schedule=st.lists(
        st.tuples(st.floats(min_value=0, max_value=5, allow_nan=False), st.integers(min_value=0, max_value=30)),
        max_size=40,
    ),
)
def test_rate_limiter_never_grants_more_than_burst_plus_rate_times_elapsed(
    rate: float, burst: int, schedule: list[tuple[float, int]]
) -> None:
    clock = ManualClock()
    limiter = RateLimiter(rate, burst=burst, clock=clock)
    granted = 0
    for advance, requests in schedule:
        clock.advance(advance)
        for _ in range(requests):
            wait = limiter.try_acquire()
            assert wait >= 0.0
            granted += wait == 0.0
        assert granted <= burst + rate * clock.now() + 1e-6
    assert limiter.stats().acquired == granted


@given(
    rate=st.floats(min_value=0.01, max_value=1000, allow_nan=False),
    burst=st.integers(min_value=1, max_value=20),
    gaps=st.lists(st.floats(min_value=0, max_value=3, allow_nan=False), max_size=40),
)
def test_rate_limiter_waiting_the_advised_time_is_enough(rate: float, burst: int, gaps: list[float]) -> None:
    clock = ManualClock()
    limiter = RateLimiter(rate, burst=burst, clock=clock)
    for gap in gaps:
        clock.advance(gap)
        wait = limiter.try_acquire()
        if wait > 0:
            assert wait <= 1 / rate * (1 + 1e-9)
            clock.advance(wait)
            assert limiter.try_acquire() == 0.0


# -- pinned by mutation testing (tests/mutation.py) ---------------------------------------------------------------


def test_misuse_is_named() -> None:
    with pytest.raises(RuntimeError, match=r"^Bulkhead\.release\(\) called with no slot held$"):
        Bulkhead(1).release()
    with pytest.raises(TypeError, match=r"RateLimiter\.clock must be a Clock, got str"):
        RateLimiter(1.0, 1, clock="now")  # type: ignore[arg-type]
