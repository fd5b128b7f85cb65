"""Retry budgets that share their tokens through a store."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from redis_server import redis_url

from integration_kit import BudgetPolicy, MemoryStore, RedisStore, RetryBudget, SQLiteStore
from integration_kit.errors import StoreUnavailable
from integration_kit.events import StoreUnreachable
from integration_kit.stores import Store

__all__ = ["redis_url"]  # the fixture, re-exported so pytest finds it here


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "redis":  # a private redis-server (tests/redis_server.py), a fresh prefix per test
        return RedisStore(request.getfixturevalue("redis_url"), prefix=f"test:{uuid.uuid4().hex}:")
    return MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "budget.db")


def test_processes_spend_one_budget(store: Store) -> None:
    a = RetryBudget(BudgetPolicy(max_tokens=10, token_ratio=0.5), store=store, name="svc")
    b = RetryBudget(BudgetPolicy(max_tokens=10, token_ratio=0.5), store=store, name="svc")
    other = RetryBudget(BudgetPolicy(max_tokens=10, token_ratio=0.5), store=store, name="elsewhere")
    for _ in range(3):
        a.record_failure()
        b.record_failure()
    assert a.tokens == b.tokens == 4.0  # six failures in all: 10 - 6
    assert not a.can_retry()
    assert not b.can_retry()
    assert other.can_retry()
    for _ in range(3):
        b.record_success()
    assert a.tokens == 5.5
    assert a.can_retry()
    assert a.stats().failures == 3  # counters stay per process


class DownStore(MemoryStore):
    """A store that is never reachable."""

    def get(self, key: str) -> bytes | None:
        raise StoreUnavailable("refused", store="down", operation="get")

    def increment(self, key: str, delta: int, **kwargs: object) -> int:
        raise StoreUnavailable("refused", store="down", operation="increment")


@pytest.mark.parametrize("fail_open", [True, False])
def test_an_unreachable_store_falls_back_to_the_local_bucket_or_refuses(fail_open: bool) -> None:
    notices: list[StoreUnreachable] = []
    # gRPC A6's example figures pinned (10 tokens: ten failures empty it); the defaults changed in issue 12
    policy = BudgetPolicy(max_tokens=10, token_ratio=0.1)
    budget = RetryBudget(policy, store=DownStore(), fail_open=fail_open, on_store_error=notices.append)
    budget.record_failure()
    assert budget.can_retry() is fail_open
    for _ in range(9):
        budget.record_failure()
    assert not budget.can_retry()  # the local bucket is empty either way
    assert [n.fallback for n in notices] == ["open" if fail_open else "closed"]


# -- pinned by mutation testing (tests/mutation.py) ---------------------------------------------------------------


def test_the_shared_bucket_is_named_for_every_process_alike(store: Store) -> None:
    """The key is the contract between processes (and versions): ``budget:<name>``, ``default`` by default."""
    budget = RetryBudget(BudgetPolicy(max_tokens=10, token_ratio=0.1), store=store)
    budget.record_failure()
    assert store.get("budget:default") == b"9000000"  # micro-tokens
    budget.record_success()
    assert store.get("budget:default") == b"9100000"
    assert (
        RetryBudget(BudgetPolicy(max_tokens=10, token_ratio=0.1), store=store).tokens == 9.1
    )  # another process reads the same


def test_the_default_is_to_fail_open() -> None:
    budget = RetryBudget(BudgetPolicy(max_tokens=10, token_ratio=0.1), store=DownStore())
    budget.record_failure()
    assert budget.can_retry() is True  # the local bucket (9 tokens) decides while the store is down


def test_a_store_that_is_not_a_store_is_refused() -> None:
    with pytest.raises(TypeError, match="store must be a Store, got dict"):
        RetryBudget(store={})  # type: ignore[arg-type]


def test_the_shared_bucket_is_clamped_in_the_store(store: Store) -> None:
    budget = RetryBudget(BudgetPolicy(max_tokens=10, token_ratio=0.1), store=store, name="clamp")
    budget.record_success()
    assert store.get("budget:clamp") == b"10000000"  # full stays full
    for _ in range(12):
        budget.record_failure()
    assert store.get("budget:clamp") == b"0"  # never below empty
    budget.record_success()
    assert budget.tokens == 0.1  # so one success gives back a tenth at once, not a tenth of a debt


def test_a_first_read_from_a_down_store_is_reported_and_fails_open_or_closed() -> None:
    for fail_open in (True, False):
        notices: list[StoreUnreachable] = []
        budget = RetryBudget(store=DownStore(), fail_open=fail_open, on_store_error=notices.append)
        assert budget.can_retry() is fail_open  # the very first store operation is this read
        assert budget.tokens == (budget.policy.max_tokens if fail_open else 0.0)
        (notice,) = notices
        assert (notice.integration, notice.store, notice.operation) == ("budget 'default'", "down", "get")
