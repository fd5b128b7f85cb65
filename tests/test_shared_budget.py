"""Retry budgets that share their tokens through a store."""

from __future__ import annotations

from pathlib import Path

import pytest

from integration_kit import BudgetPolicy, MemoryStore, RetryBudget, SQLiteStore
from integration_kit.errors import StoreUnavailable
from integration_kit.events import StoreUnreachable
from integration_kit.stores import Store


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
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
