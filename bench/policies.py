"""In-process cost per call of the engine on the happy path, against a bare call, tenacity and pybreaker.

    python3 dev.py bench bench/policies.py

Every contender wraps the same no-op; rounds are interleaved so machine noise hits all alike. The figure that
matters is each contender's cost over the bare call, in microseconds; the ratio column compares with ours.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable

import pybreaker
import tenacity

from integration_kit import BreakerPolicy, BudgetPolicy, CircuitBreaker, RetryBudget, RetryPolicy, SystemClock
from integration_kit.engine.call import CallEngine, Send, run_sync
from integration_kit.policies.outcome import Outcome, OutcomeKind

N = 20_000
ROUNDS = 7
OK = Outcome(OutcomeKind.SUCCESS, value=None)


def noop() -> None:
    return None


def make_contenders() -> dict[str, Callable[[], object]]:
    clock = SystemClock()
    engine = CallEngine(
        name="bench",
        retry=RetryPolicy(),
        breaker=CircuitBreaker(BreakerPolicy(), name="bench", clock=clock),
        budget=RetryBudget(BudgetPolicy()),
        clock=clock,
        rng=random.Random(0),
    )

    def send(action: Send) -> Outcome:
        noop()
        return OK

    def ours() -> object:
        return run_sync(engine.call("GET", "noop"), send, clock.sleep)

    retrying = tenacity.retry(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_random_exponential())(noop)
    breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30)

    def with_pybreaker() -> object:
        return breaker.call(noop)

    return {"bare call": noop, "integration_kit engine": ours, "tenacity": retrying, "pybreaker": with_pybreaker}


def per_call(fn: Callable[[], object]) -> float:
    began = time.perf_counter()
    for _ in range(N):
        fn()
    return (time.perf_counter() - began) / N * 1e6


def main() -> None:
    contenders = make_contenders()
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(ROUNDS):
        for name, fn in contenders.items():
            samples[name].append(per_call(fn))
    bare = statistics.median(samples["bare call"])
    ours = statistics.median(samples["integration_kit engine"]) - bare
    print(f"happy-path cost per call, median of {ROUNDS} interleaved rounds of {N:,} calls")
    print(f"{'contender':<26}{'µs/call':>10}{'over bare':>12}{'vs ours':>10}")
    for name, values in samples.items():
        median = statistics.median(values)
        over = median - bare
        ratio = over / ours if name != "bare call" and ours > 0 else float("nan")
        print(f"{name:<26}{median:>10.3f}{over:>12.3f}{ratio:>10.2f}")
    print(f"\ntarget: integration_kit engine under 3 µs over the bare call -> {'met' if ours < 3 else 'NOT met'}")


if __name__ == "__main__":
    main()
