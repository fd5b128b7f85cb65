"""Tests for the gRPC A6 retry budget."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integration_kit.policies.budget import BudgetStats, RetryBudget
from integration_kit.policies.config import BudgetPolicy

#: gRPC A6's example figures, the defaults before issue 12 (the mechanics tests below keep using them).
A6_EXAMPLE = BudgetPolicy(max_tokens=10, token_ratio=0.1)


def test_fresh_budget_is_full_and_allows_retries() -> None:
    # Defaults changed deliberately in issue 12 (from A6's example 10 / 0.1): see docs/defaults.md.
    budget = RetryBudget()
    assert budget.tokens == 100.0
    assert budget.policy == BudgetPolicy(max_tokens=100, token_ratio=0.5)
    assert budget.can_retry() is True


def test_default_budget_keeps_retries_below_a_third_failing_and_stops_them_above() -> None:
    brownout, outage = RetryBudget(), RetryBudget()
    for i in range(3000):  # 30 % of attempts failing: the bucket stays full enough
        brownout.record_failure() if i % 10 < 3 else brownout.record_success()
        assert brownout.can_retry()
    for i in range(1000):  # 40 % failing: it drains and retries stop
        outage.record_failure() if i % 5 < 2 else outage.record_success()
    assert not outage.can_retry()


def test_a6_threshold_is_strictly_more_than_half() -> None:
    budget = RetryBudget(BudgetPolicy(max_tokens=10, token_ratio=0.1))
    for _ in range(4):
        budget.record_failure()
    assert budget.tokens == 6.0
    assert budget.can_retry() is True
    budget.record_failure()
    assert budget.tokens == 5.0
    assert budget.can_retry() is False  # 5 is not > 10 / 2
    budget.record_success()
    assert budget.tokens == 5.1
    assert budget.can_retry() is True


def test_successes_refill_by_ratio_exactly() -> None:
    budget = RetryBudget(BudgetPolicy(max_tokens=10, token_ratio=0.1))
    for _ in range(5):
        budget.record_failure()
    for _ in range(10):
        budget.record_success()
    assert budget.tokens == 6.0  # ten times 0.1 is exactly one token, no float drift


def test_odd_max_tokens_threshold() -> None:
    budget = RetryBudget(BudgetPolicy(max_tokens=3, token_ratio=0.5))
    budget.record_failure()
    assert budget.tokens == 2.0
    assert budget.can_retry() is True  # 2 > 1.5
    budget.record_failure()
    assert budget.can_retry() is False  # 1 <= 1.5
    budget.record_success()
    assert budget.tokens == 1.5
    assert budget.can_retry() is False  # 1.5 is not > 1.5
    budget.record_success()
    assert budget.can_retry() is True


def test_tokens_capped_at_max() -> None:
    budget = RetryBudget(BudgetPolicy(max_tokens=2, token_ratio=0.7))
    for _ in range(10):
        budget.record_success()
    assert budget.tokens == 2.0
    budget.record_failure()
    budget.record_success()
    budget.record_success()
    assert budget.tokens == 2.0


def test_tokens_floored_at_zero() -> None:
    budget = RetryBudget(BudgetPolicy(max_tokens=2, token_ratio=0.5))
    for _ in range(10):
        budget.record_failure()
    assert budget.tokens == 0.0
    budget.record_success()
    assert budget.tokens == 0.5  # the floor does not carry a debt


def test_disabled_budget_always_allows_but_keeps_count() -> None:
    budget = RetryBudget(BudgetPolicy(enabled=False))
    for _ in range(100):
        budget.record_failure()
    assert budget.tokens == 0.0
    assert all(budget.can_retry() for _ in range(5))
    assert budget.stats() == BudgetStats(tokens=0.0, successes=0, failures=100, retries_allowed=5, retries_refused=0)


def test_stats_count_outcomes_and_answers() -> None:
    budget = RetryBudget(A6_EXAMPLE)
    budget.record_success()
    for _ in range(6):
        budget.record_failure()
    assert budget.can_retry() is False
    assert budget.can_retry() is False
    budget.record_success()
    assert budget.can_retry() is False  # 4.1
    assert budget.stats() == BudgetStats(tokens=4.1, successes=2, failures=6, retries_allowed=0, retries_refused=3)


def test_stats_is_frozen() -> None:
    stats = RetryBudget().stats()
    with pytest.raises(AttributeError):
        stats.tokens = 1.0  # type: ignore[misc]


def test_reset_refills_and_zeroes() -> None:
    budget = RetryBudget(A6_EXAMPLE)
    for _ in range(8):
        budget.record_failure()
    budget.record_success()
    budget.can_retry()
    budget.reset()
    assert budget.stats() == BudgetStats(tokens=10.0, successes=0, failures=0, retries_allowed=0, retries_refused=0)


def test_fractional_max_tokens_reads_back_exactly_when_full() -> None:
    budget = RetryBudget(BudgetPolicy(max_tokens=0.1234567, token_ratio=1))
    assert budget.tokens == 0.1234567
    budget.record_failure()
    assert budget.tokens == 0.0
    budget.record_success()
    assert budget.tokens == 0.1234567


def test_repr_names_tokens_and_policy() -> None:
    assert "tokens=100.0" in repr(RetryBudget())


def test_counters_exact_under_eight_threads() -> None:
    # Each thread repeats "one failure, four successes", which nets zero tokens with ratio 0.25. A thread's running
    # total is never positive, so the cap is never hit, and the bucket never drops below 10 - 8, so the floor is
    # never hit: whatever the interleaving, the bucket ends full and every counter is exact.
    threads, per_thread = 8, 10_000
    budget = RetryBudget(BudgetPolicy(max_tokens=10, token_ratio=0.25))
    start = threading.Barrier(threads)
    low = [10.0] * threads

    def work(index: int) -> None:
        start.wait()
        for _ in range(per_thread // 5):
            budget.record_failure()
            low[index] = min(low[index], budget.tokens)
            for _ in range(4):
                budget.record_success()
            budget.can_retry()

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    stats = budget.stats()
    assert stats.failures == threads * per_thread // 5
    assert stats.successes == threads * per_thread * 4 // 5
    assert stats.successes + stats.failures == threads * per_thread
    assert stats.retries_allowed + stats.retries_refused == threads * per_thread // 5
    assert min(low) >= 10 - threads
    assert stats.tokens == 10.0


def test_failures_drain_to_exactly_zero_under_eight_threads() -> None:
    threads, per_thread = 8, 10_000
    budget = RetryBudget(BudgetPolicy(max_tokens=1000, token_ratio=0.1))

    def drain() -> None:
        for _ in range(per_thread):
            budget.record_failure()

    workers = [threading.Thread(target=drain) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert budget.stats().failures == threads * per_thread
    assert budget.tokens == 0.0


_OPS = st.lists(st.sampled_from(["success", "failure", "can_retry", "reset"]), max_size=300)


@given(
    max_tokens=st.floats(min_value=1e-3, max_value=1000, allow_nan=False),
    token_ratio=st.floats(min_value=1e-3, max_value=50, allow_nan=False),
    enabled=st.booleans(),
    ops=_OPS,
)
def test_tokens_always_within_bounds(max_tokens: float, token_ratio: float, enabled: bool, ops: list[str]) -> None:
    budget = RetryBudget(BudgetPolicy(max_tokens=max_tokens, token_ratio=token_ratio, enabled=enabled))
    for op in ops:
        before = budget.tokens
        if op == "success":
            budget.record_success()
            assert budget.tokens >= before
        elif op == "failure":
            budget.record_failure()
            assert budget.tokens <= before
        elif op == "can_retry":
            budget.can_retry()
            assert budget.tokens == before
        else:
            budget.reset()
            assert budget.tokens == max_tokens
        assert 0.0 <= budget.tokens <= max_tokens


@given(
    max_tokens=st.integers(min_value=1, max_value=12) | st.integers(min_value=1, max_value=1000),
    ratio_milli=st.sampled_from([100, 250, 500, 1000]) | st.integers(min_value=1, max_value=1000),
    ops=st.lists(st.booleans(), max_size=300),
)
def test_matches_a6_reference_model(max_tokens: int, ratio_milli: int, ops: list[bool]) -> None:
    # A6 service configs use integer max_tokens and ratios with three decimals: model them in exact milli-tokens.
    budget = RetryBudget(BudgetPolicy(max_tokens=max_tokens, token_ratio=ratio_milli / 1000))
    milli, allowed, refused = max_tokens * 1000, 0, 0
    for success in ops:
        if success:
            budget.record_success()
            milli = min(max_tokens * 1000, milli + ratio_milli)
        else:
            budget.record_failure()
            milli = max(0, milli - 1000)
        expected = 2 * milli > max_tokens * 1000
        assert budget.can_retry() is expected
        allowed, refused = allowed + expected, refused + (not expected)
        assert budget.tokens == milli / 1000
    stats = budget.stats()
    assert (stats.successes, stats.failures) == (sum(ops), len(ops) - sum(ops))
    assert (stats.retries_allowed, stats.retries_refused) == (allowed, refused)


# -- pinned by mutation testing (tests/mutation.py): micro-token edges -------------------------------------------


def test_a_ratio_below_a_micro_token_still_gives_one_back() -> None:
    budget = RetryBudget(BudgetPolicy(max_tokens=10, token_ratio=1e-9))
    budget.record_failure()
    budget.record_success()
    assert budget.tokens == pytest.approx(9.000001, abs=1e-9)  # one micro-token, never zero: the bucket refills


def test_a_bucket_below_a_micro_token_holds_one() -> None:
    budget = RetryBudget(BudgetPolicy(max_tokens=1e-9, token_ratio=1e-9))
    budget.record_failure()
    assert budget.tokens == 0.0
    budget.record_success()
    assert budget.tokens == 1e-9  # full again after one micro-token: it reads as max_tokens


def test_a_failure_leaves_the_last_micro_token() -> None:
    budget = RetryBudget(BudgetPolicy(max_tokens=1.000001))
    budget.record_failure()
    assert budget.tokens == pytest.approx(1e-6, abs=1e-12)
