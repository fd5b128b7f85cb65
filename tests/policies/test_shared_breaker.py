"""Breakers that share their state through a store: two instances on one store stand for two processes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from integration_kit import BreakerPolicy, CircuitBreaker, CircuitState, ManualClock, MemoryStore, SQLiteStore
from integration_kit.errors import CircuitOpenError, StoreUnavailable
from integration_kit.events import StoreUnreachable
from integration_kit.policies.breaker import Permit, Transition
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
    """A memory store that can be switched off: while ``down``, every operation fails as a dead server's would."""

    down = False

    def _check(self, operation: str) -> None:
        if self.down:
            raise StoreUnavailable("connection refused", store="flaky", operation=operation)

    def get(self, key: str) -> bytes | None:
        self._check("get")
        return super().get(key)

    def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        self._check("set")
        super().set(key, value, ttl=ttl)

    def add(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        self._check("add")
        return super().add(key, value, ttl=ttl)

    def compare_and_set(
        self, key: str, expected: bytes | None, value: bytes | None, *, ttl: float | None = None
    ) -> bool:
        self._check("compare_and_set")
        return super().compare_and_set(key, expected, value, ttl=ttl)

    def _increment(
        self, key: str, delta: int, initial: int, minimum: int | None, maximum: int | None, ttl: float | None
    ) -> int:
        self._check("increment")
        return super()._increment(key, delta, initial, minimum, maximum, ttl)


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


# -- pinned by mutation testing (tests/mutation.py) ---------------------------------------------------------------


def test_two_processes_see_the_same_life_of_the_breaker(store: Store, clock: ManualClock) -> None:
    """Every transition, time and count as each process sees it, through a trip, a failed probe (a longer wait),
    a close, and forced open, disabled and reset by the other process."""
    seen_a: list[Transition] = []
    seen_b: list[Transition] = []
    a = CircuitBreaker(POLICY, name="partner", clock=clock, store=store, listeners=[seen_a.append])
    b = CircuitBreaker(POLICY, name="partner", clock=clock, store=store, listeners=[seen_b.append])

    def view(breaker: CircuitBreaker) -> tuple[object, ...]:
        m = breaker.metrics()
        return breaker.state.value, breaker.opened_at, breaker.retry_at, m.trips, m.rejected

    _fail(a, 3)
    clock.advance(1)
    assert b.try_acquire() is None
    assert view(a) == ("open", 1000.0, 1010.0, 1, 0)
    assert view(b) == ("open", 1001.0, 1011.0, 1, 1)  # b's own estimate, from when it read the trip
    clock.advance(9)
    probe = b.try_acquire()
    assert probe is not None
    assert probe.is_probe is True
    assert view(b) == ("half_open", 1001.0, 1010.0, 1, 1)
    probe.record_failure(0.01)
    assert view(a) == ("open", 1010.0, 1030.0, 2, 0)  # the wait doubled: 20 s
    assert view(b) == ("open", 1010.0, 1030.0, 2, 1)
    clock.advance(19.9)
    assert a.try_acquire() is None
    clock.advance(0.1)
    probes = [a.try_acquire(), b.try_acquire()]
    assert all(p is not None and p.is_probe for p in probes)
    for p in probes:
        assert p is not None
        p.record_success(0.01)
    assert view(a) == ("closed", None, None, 2, 1)
    clock.advance(1)
    b.force_open()
    assert view(a) == ("forced_open", 1031.0, None, 2, 1)
    b.disable()
    assert view(a)[:3] == ("disabled", None, None)
    b.reset()
    assert view(a)[:3] == ("closed", None, None)
    expected = [
        ("closed", "open", "consecutive_failures 3"),
        ("open", "half_open", "wait_elapsed"),
        ("half_open", "open", "probe_failed"),
        ("open", "half_open", "wait_elapsed"),
        ("half_open", "closed", "probes_succeeded"),
        ("closed", "forced_open", "forced"),
        ("forced_open", "disabled", "disabled"),
        ("disabled", "closed", "reset"),
    ]
    assert [(t.breaker, t.old.value, t.new.value, t.reason) for t in seen_b] == [("partner", *e) for e in expected]
    assert [t.time for t in seen_b] == [1001.0, 1010.0, 1010.0, 1030.0, 1030.0, 1031.0, 1031.0, 1031.0]
    # a was not looking while b probed and reopened: it sees OPEN -> OPEN as no transition, and goes on from there
    assert [(t.old.value, t.new.value, t.reason, t.time) for t in seen_a] == [
        ("closed", "open", "consecutive_failures 3", 1000.0),
        ("open", "half_open", "wait_elapsed", 1030.0),
        ("half_open", "closed", "probes_succeeded", 1030.0),
        ("closed", "forced_open", "forced", 1031.0),
        ("forced_open", "disabled", "disabled", 1031.0),
        ("disabled", "closed", "reset", 1031.0),
    ]
    # The record other processes (and other versions of the kit) read: compact JSON, one line.
    assert store.get("breaker:partner") == b'["closed",8,0,0.0,"reset"]'


def test_a_slow_probe_reopens_for_every_process(store: Store, clock: ManualClock) -> None:
    policy = BreakerPolicy(failure_threshold=1, failure_rate_threshold=None, wait_in_open=10, slow_call_duration=2.0)
    seen: list[Transition] = []
    a = CircuitBreaker(policy, name="slow", clock=clock, store=store)
    b = CircuitBreaker(policy, name="slow", clock=clock, store=store, listeners=[seen.append])
    _fail(a)
    clock.advance(10)
    probe = a.try_acquire()
    assert probe is not None
    probe.record_success(2.0)  # exactly the slow duration: slow
    assert b.state is CircuitState.OPEN
    assert seen[-1].reason == "probe_slow"


def test_a_permit_records_once_in_shared_mode(store: Store, clock: ManualClock) -> None:
    a, _, _ = _pair(store, clock)
    permit = a.acquire()
    assert permit.is_probe is False
    permit.record_success(0.01)
    with pytest.raises(RuntimeError, match="already used; a permit records one outcome"):
        permit.record_failure(0.01)


def test_a_store_that_is_not_a_store_is_named(clock: ManualClock) -> None:
    with pytest.raises(TypeError, match="store must be a Store, got dict"):
        CircuitBreaker(POLICY, store={})  # type: ignore[arg-type]


def test_the_keys_a_shared_breaker_keeps_and_when_they_expire(store: Store, clock: ManualClock) -> None:
    """The store's layout is read by every process (and every version of the kit): pinned, with its TTLs."""
    a, b, _ = _pair(store, clock)
    _fail(a, 3)
    assert store.get("breaker:partner:wait") == b"1"  # lives for the open wait
    clock.advance(10)
    probe = b.try_acquire()
    assert probe is not None
    assert store.get("breaker:partner") == b'["half_open",2,1,0.0,"wait_elapsed"]'
    assert store.get("breaker:partner:probe:2:0") == b"1"  # one slot per probe, for one wait_in_open
    probe.record_success(0.01)
    assert store.get("breaker:partner:ok:2") == b"1"  # probe successes, for one max_wait_in_open
    clock.advance(10)
    assert store.get("breaker:partner:probe:2:0") is None
    clock.advance(POLICY.max_wait_in_open)
    assert store.get("breaker:partner:ok:2") is None
    a.force_open()
    assert store.get("breaker:partner:wait") is None  # forced open has no wait


def test_a_trip_after_a_close_starts_from_the_first_wait_again(store: Store, clock: ManualClock) -> None:
    a, b, _ = _pair(store, clock)
    _fail(a, 3)
    clock.advance(10)
    b.acquire().record_failure(0.01)  # a failed probe: the wait doubles to 20
    clock.advance(20)
    probes = [a.acquire(), b.acquire()]
    for p in probes:
        p.record_success(0.01)
    assert a.state is CircuitState.CLOSED
    assert store.get("breaker:partner") == b'["closed",5,0,0.0,"probes_succeeded"]'
    _fail(b, 3)
    assert b.retry_at is not None
    assert b.opened_at is not None
    assert b.retry_at - b.opened_at == 10.0  # consecutive trips were reset by the close


def test_rejections_are_counted_and_name_the_state(store: Store, clock: ManualClock) -> None:
    a, b, _ = _pair(store, clock)
    _fail(a, 3)
    for _ in range(3):
        assert b.try_acquire() is None
    with pytest.raises(CircuitOpenError) as caught:
        b.acquire()
    assert caught.value.state is CircuitState.OPEN
    assert b.metrics().rejected == 4


def test_a_shared_permit_can_be_given_back(store: Store, clock: ManualClock) -> None:
    a, b, _ = _pair(store, clock)
    _fail(a, 3)
    clock.advance(10)
    probe = b.acquire()
    probe.release()  # cancelled: counts nothing
    assert probe.done
    assert b.state is CircuitState.HALF_OPEN


def test_a_fail_open_permit_is_not_a_probe_and_owner_is_named(clock: ManualClock) -> None:
    store = FlakyStore(clock=clock)
    notices: list[StoreUnreachable] = []
    breaker = CircuitBreaker(POLICY, name="p", clock=clock, store=store, on_store_error=notices.append)
    store.down = True
    permit = breaker.try_acquire()
    assert permit is not None
    assert permit.is_probe is False
    permit.record_success(0.01)
    assert breaker.metrics().probes_in_flight == 0
    assert notices[0].integration == "breaker 'p'"


def test_forcing_open_removes_the_open_wait(store: Store, clock: ManualClock) -> None:
    a, b, _ = _pair(store, clock)
    _fail(a, 3)
    assert store.get("breaker:partner:wait") == b"1"
    b.force_open()  # while the wait still runs: it must not turn HALF_OPEN when the wait ends
    assert store.get("breaker:partner:wait") is None
    clock.advance(60)
    assert a.state is CircuitState.FORCED_OPEN


# -- store outages met after admission, and races between two store calls (pinned by tests/mutation.py) ------------


def test_an_outage_met_while_recording_is_reported_and_the_call_goes_on(clock: ManualClock) -> None:
    """The store dies between admission and the outcome: the trip it would publish is lost, the caller never sees
    the store's error, and the outage is reported once with the operation that met it."""
    store = FlakyStore(clock=clock)
    notices: list[StoreUnreachable] = []
    breaker = CircuitBreaker(POLICY, name="p", clock=clock, store=store, on_store_error=notices.append)
    permits = [breaker.acquire() for _ in range(3)]
    store.down = True
    for permit in permits:
        permit.record_failure(0.01)  # the third trips the local window; publishing the trip fails
    assert [(n.integration, n.store, n.operation, n.fallback) for n in notices] == [
        ("breaker 'p'", "flaky", "set", "open")
    ]
    store.down = False
    assert breaker.state is CircuitState.CLOSED  # nothing reached the store


def test_reading_the_state_during_an_outage_gives_the_last_known_state(clock: ManualClock) -> None:
    store = FlakyStore(clock=clock)
    notices: list[StoreUnreachable] = []
    a = CircuitBreaker(POLICY, name="p", clock=clock, store=store, on_store_error=notices.append)
    _fail(a, 3)
    store.down = True
    assert a.state is CircuitState.OPEN
    assert a.metrics().trips == 1
    assert [(n.store, n.operation) for n in notices] == [("flaky", "get")]


def test_failing_closed_during_an_outage_raises_circuit_open(clock: ManualClock) -> None:
    store = FlakyStore(clock=clock)
    breaker = CircuitBreaker(POLICY, name="p", clock=clock, store=store, fail_open=False)
    store.down = True
    with pytest.raises(CircuitOpenError) as caught:
        breaker.acquire()
    assert caught.value.state is CircuitState.OPEN
    assert caught.value.breaker == "p"
    assert breaker.metrics().rejected == 1


def test_outcomes_admitted_during_an_outage_are_not_recorded_at_any_generation(clock: ManualClock) -> None:
    """A fail-open permit belongs to no generation, not even the current one (here 1, after a reset)."""
    store = FlakyStore(clock=clock)
    breaker = CircuitBreaker(POLICY, name="p", clock=clock, store=store)
    breaker.reset()  # the shared record: CLOSED at generation 1
    store.down = True
    for _ in range(3):
        permit = breaker.acquire()
        permit.record_failure(0.01)
    m = breaker.metrics()
    assert (m.calls, m.failures, m.consecutive_failures) == (0, 0, 0)
    store.down = False
    assert breaker.state is CircuitState.CLOSED
    assert store.get("breaker:p") == b'["closed",1,0,0.0,"reset"]'


class RacingStore(MemoryStore):
    """A memory store that runs ``meanwhile`` once, just before (or after) its next ``operation``: what another
    process or thread did between two of the breaker's store calls, as a deterministic interleaving."""

    _pending: tuple[str, bool, Callable[[], object]] | None = None

    def race(self, operation: str, meanwhile: Callable[[], object], *, after: bool = False) -> None:
        self._pending = (operation, after, meanwhile)

    def _step(self, operation: str, after: bool) -> None:
        if self._pending is not None and self._pending[:2] == (operation, after):
            meanwhile = self._pending[2]
            self._pending = None
            meanwhile()

    def compare_and_set(
        self, key: str, expected: bytes | None, value: bytes | None, *, ttl: float | None = None
    ) -> bool:
        self._step("compare_and_set", False)
        replaced = super().compare_and_set(key, expected, value, ttl=ttl)
        self._step("compare_and_set", True)
        return replaced

    def delete(self, key: str) -> bool:
        self._step("delete", False)
        return super().delete(key)


def test_a_process_that_loses_the_move_to_half_open_follows_the_winner(clock: ManualClock) -> None:
    """a and b both see the wait elapse; b writes HALF_OPEN between a's read and a's compare-and-set. a must read
    b's record again (not start a second episode) and take the other probe slot of b's episode."""
    store = RacingStore(clock=clock)
    a, b, seen = _pair(store, clock)
    _fail(a, 3)
    clock.advance(10)
    b_probe: list[Permit | None] = []
    store.race("compare_and_set", lambda: b_probe.append(b.try_acquire()))
    a_probe = a.try_acquire()
    assert b_probe[0] is not None
    assert b_probe[0].is_probe
    assert a_probe is not None
    assert a_probe.is_probe
    assert a.try_acquire() is None  # both slots of the one episode are taken
    assert store.get("breaker:partner") == b'["half_open",2,1,0.0,"wait_elapsed"]'
    assert [(t.new, t.reason) for t in seen] == [
        (CircuitState.OPEN, "consecutive_failures 3"),
        (CircuitState.HALF_OPEN, "wait_elapsed"),
    ]


ONE_STRIKE = BreakerPolicy(failure_threshold=1, failure_rate_threshold=None, wait_in_open=10, half_open_max_calls=1)


def test_a_call_admitted_while_a_close_is_published_can_trip_the_breaker(clock: ManualClock) -> None:
    """One breaker, two threads: a call is admitted after the close reached the store but before the closing
    thread updated its mirror. When that call fails, its trip must still win the compare-and-set."""
    store = RacingStore(clock=clock)
    breaker = CircuitBreaker(ONE_STRIKE, name="p", clock=clock, store=store)
    _fail(breaker)
    clock.advance(10)
    probe = breaker.acquire()
    admitted: list[Permit] = []
    store.race("compare_and_set", lambda: admitted.append(breaker.acquire()), after=True)
    probe.record_success(0.01)  # closes the breaker; the other thread's call is admitted in between
    assert store.get("breaker:p") == b'["closed",3,0,0.0,"probes_succeeded"]'  # (reading .state would resync)
    admitted[0].record_failure(0.01)
    assert breaker.state is CircuitState.OPEN
    assert store.get("breaker:p") == b'["open",4,1,10.0,"consecutive_failures 1"]'


def test_a_call_admitted_while_a_reset_is_written_can_trip_the_breaker(clock: ManualClock) -> None:
    store = RacingStore(clock=clock)
    breaker = CircuitBreaker(ONE_STRIKE, name="p", clock=clock, store=store)
    _fail(breaker)
    admitted: list[Permit] = []
    store.race("delete", lambda: admitted.append(breaker.acquire()))  # after the reset is written
    breaker.reset()
    admitted[0].record_failure(0.01)
    assert breaker.state is CircuitState.OPEN
    assert store.get("breaker:p") == b'["open",3,1,10.0,"consecutive_failures 1"]'
