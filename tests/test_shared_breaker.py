"""Breakers that share their state through a store: two instances on one store stand for two processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from integration_kit import BreakerPolicy, CircuitBreaker, CircuitState, ManualClock, MemoryStore, SQLiteStore
from integration_kit.errors import CircuitOpenError, StoreUnavailable
from integration_kit.events import StoreUnreachable
from integration_kit.policies.breaker import Transition
from integration_kit.stores import Store

POLICY = BreakerPolicy(
    failure_threshold=3, failure_rate_threshold=None, wait_in_open=10, wait_in_open_multiplier=2, half_open_max_calls=2
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1000.0)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, clock: ManualClock, tmp_path: Path) -> Store:
    if request.param == "memory":
        return MemoryStore(clock=clock)
    return SQLiteStore(tmp_path / "breakers.db", clock=clock)


def _pair(store: Store, clock: ManualClock) -> tuple[CircuitBreaker, CircuitBreaker, list[Transition]]:
    seen: list[Transition] = []
    a = CircuitBreaker(POLICY, name="partner", clock=clock, store=store, listeners=[seen.append])
    b = CircuitBreaker(POLICY, name="partner", clock=clock, store=store)
    return a, b, seen


def _fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        permit = breaker.acquire()
        permit.record_failure(0.01)


def test_one_process_trips_and_every_process_is_open(store: Store, clock: ManualClock) -> None:
    a, b, seen = _pair(store, clock)
    assert b.try_acquire() is not None
    _fail(a, 3)
    assert a.state is CircuitState.OPEN
    assert b.try_acquire() is None
    with pytest.raises(CircuitOpenError) as info:
        b.acquire()
    assert info.value.breaker == "partner"
    assert b.state is CircuitState.OPEN
    assert [(t.old, t.new, t.reason) for t in seen] == [
        (CircuitState.CLOSED, CircuitState.OPEN, "consecutive_failures 3")
    ]


def test_probes_are_bounded_across_processes_and_close_together(store: Store, clock: ManualClock) -> None:
    a, b, _ = _pair(store, clock)
    _fail(a, 3)
    clock.advance(9.9)
    assert b.try_acquire() is None
    clock.advance(0.1)
    first, second = a.try_acquire(), b.try_acquire()
    assert first is not None
    assert first.is_probe
    assert second is not None
    assert second.is_probe
    assert a.try_acquire() is None
    assert b.try_acquire() is None
    first.record_success(0.01)
    assert b.metrics().state is CircuitState.HALF_OPEN
    second.record_success(0.01)
    assert a.metrics().state is CircuitState.CLOSED
    assert b.state is CircuitState.CLOSED
    assert a.try_acquire() is not None


def test_a_failed_probe_reopens_for_all_with_a_longer_wait(store: Store, clock: ManualClock) -> None:
    a, b, _ = _pair(store, clock)
    _fail(a, 3)
    clock.advance(10)
    probe = b.acquire()
    assert probe.is_probe
    probe.record_failure(0.01)
    assert a.state is CircuitState.OPEN
    clock.advance(10)
    assert a.try_acquire() is None  # second wait: 10 * 2
    clock.advance(10)
    assert a.acquire().is_probe


def test_late_outcomes_cannot_trip_twice(store: Store, clock: ManualClock) -> None:
    a, b, _ = _pair(store, clock)
    late = [b.acquire() for _ in range(3)]  # admitted before a trips; b has not seen the trip yet
    _fail(a, 3)
    for permit in late:
        permit.record_failure(0.01)  # b's window trips too, but its compare-and-set loses: one trip only
    with pytest.raises(RuntimeError):
        late[0].record_success(0.01)
    clock.advance(10)  # the first wait, not a doubled one
    assert b.acquire().is_probe


def test_manual_control_applies_to_every_process(store: Store, clock: ManualClock) -> None:
    a, b, _ = _pair(store, clock)
    a.force_open()
    assert b.try_acquire() is None
    assert b.state is CircuitState.FORCED_OPEN
    b.reset()
    assert a.state is CircuitState.CLOSED
    a.disable()
    _fail(b, 5)
    assert a.metrics().state is CircuitState.DISABLED


class FlakyStore(MemoryStore):
    """A memory store that can be switched off."""

    down = False

    def get(self, key: str) -> bytes | None:
        if self.down:
            raise StoreUnavailable("connection refused", store="flaky", operation="get")
        return super().get(key)


@pytest.mark.parametrize("fail_open", [True, False])
def test_an_unreachable_store_fails_open_or_closed_and_says_so_once(fail_open: bool, clock: ManualClock) -> None:
    store = FlakyStore(clock=clock)
    notices: list[StoreUnreachable] = []
    breaker = CircuitBreaker(
        POLICY, name="p", clock=clock, store=store, fail_open=fail_open, on_store_error=notices.append
    )
    store.down = True
    for _ in range(3):
        permit = breaker.try_acquire()
        assert (permit is not None) is fail_open
        if permit is not None:
            permit.record_failure(0.01)  # not recorded: nothing trips on unrecorded outcomes
    assert len(notices) == 1
    assert notices[0].store == "flaky"
    assert notices[0].fallback == ("open" if fail_open else "closed")
    store.down = False
    assert breaker.try_acquire() is not None
    assert breaker.state is CircuitState.CLOSED


def test_the_store_must_be_a_store(clock: ManualClock) -> None:
    with pytest.raises(TypeError):
        CircuitBreaker(POLICY, store=object())  # type: ignore[arg-type]
