"""Shared state on a private Redis, outside the timing-based proof: the shared breaker across two "processes"
(two breakers on one Redis), and a dead Redis giving :class:`StoreUnavailable` for every store operation.

Redis expires keys on its own clock, so the breaker's wait in open is real time here: one second, with every
check placed so that a stalled test process can only make the test wait longer, never pass wrongly.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from redis_server import redis_url, running_redis, stop

from integration_kit import BreakerPolicy, BudgetPolicy, CircuitBreaker, CircuitState, RedisStore, RetryBudget
from integration_kit.errors import StoreUnavailable
from integration_kit.events import StoreUnreachable
from integration_kit.stores import Store

__all__ = ["redis_url"]  # the fixture, re-exported so pytest finds it here

pytestmark = pytest.mark.redis

WAIT = 1.0
POLICY = BreakerPolicy(failure_threshold=3, failure_rate_threshold=None, wait_in_open=WAIT, half_open_max_calls=2)


def _store(url: str) -> RedisStore:
    return RedisStore(url, prefix=f"test:{uuid.uuid4().hex}:")


def test_a_shared_breaker_trips_probes_and_closes_across_processes(redis_url: str) -> None:
    store = _store(redis_url)
    seen_by_b: list[str] = []
    a = CircuitBreaker(POLICY, name="partner", store=store)
    b = CircuitBreaker(POLICY, name="partner", store=store, listeners=[lambda t: seen_by_b.append(t.new.value)])
    for _ in range(3):
        a.acquire().record_failure(0.01)
    assert a.state is CircuitState.OPEN
    assert b.try_acquire() is None  # b never failed: it learnt the trip from Redis
    time.sleep(WAIT + 0.2)  # Redis expires the wait on its own clock
    probes = [a.try_acquire(), b.try_acquire(), a.try_acquire(), b.try_acquire()]
    admitted = [p for p in probes if p is not None]
    assert len(admitted) == 2  # half_open_max_calls across both processes
    assert all(p.is_probe for p in admitted)
    for permit in admitted:
        permit.record_success(0.01)
    assert a.state is CircuitState.CLOSED
    assert b.state is CircuitState.CLOSED
    assert seen_by_b[0] == "open"
    assert seen_by_b[-1] == "closed"
    store.close()


def test_a_shared_budget_on_redis_is_spent_by_every_process(redis_url: str) -> None:
    store = _store(redis_url)
    policy = BudgetPolicy(max_tokens=10, token_ratio=0.1)  # gRPC A6's example figures
    a, b = RetryBudget(policy, store=store, name="svc"), RetryBudget(policy, store=store, name="svc")
    for _ in range(5):
        a.record_failure()
    assert b.tokens == 5.0
    assert not b.can_retry()  # b saw no failure of its own
    store.close()


OPERATIONS: dict[str, Callable[[Store], object]] = {
    "get": lambda s: s.get("k"),
    "set": lambda s: s.set("k", b"v", ttl=10),
    "add": lambda s: s.add("k", b"v", ttl=10),
    "compare_and_set": lambda s: s.compare_and_set("k", None, b"v"),
    "delete": lambda s: s.delete("k"),
    "expire": lambda s: s.expire("k", 10),
    "increment": lambda s: s.increment("k", 1, initial=0, minimum=0, maximum=10),
}


@pytest.fixture(scope="module")
def dead_redis_store() -> RedisStore:
    """A store whose Redis was running and then stopped: the connection it had is dead, and no server answers."""
    process, url = running_redis()
    store = RedisStore(url, prefix="dead:", timeout=0.5)
    store.set("k", b"before")  # a live connection in the pool
    stop(process)
    return store


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_a_dead_redis_gives_store_unavailable_for_every_operation(dead_redis_store: RedisStore, operation: str) -> None:
    with pytest.raises(StoreUnavailable) as caught:
        OPERATIONS[operation](dead_redis_store)
    assert caught.value.store == dead_redis_store.name
    assert caught.value.operation == operation


def test_a_breaker_on_a_dead_redis_fails_open_and_says_so(dead_redis_store: RedisStore) -> None:
    notices: list[StoreUnreachable] = []
    breaker = CircuitBreaker(POLICY, name="partner", store=dead_redis_store, on_store_error=notices.append)
    permit = breaker.try_acquire()
    assert permit is not None  # fail open (the default): the local breaker decides
    permit.record_failure(0.01)
    assert len(notices) == 1
    assert notices[0].fallback == "open"
