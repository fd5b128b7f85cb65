"""The engine at its edges, on a ManualClock: a call exactly at its deadline, the deadline inside the bulkhead and
rate-limiter queues, the Retry-After floor, and a keyed 409 "in flight". Each test pins a comparison that a
one-character mutation (``>=`` to ``>``, a dropped ``max``) would change."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable

import pytest

from integration_kit.clock import ManualClock
from integration_kit.engine.call import CallEngine, Send, Wait, run_sync
from integration_kit.errors import (
    BulkheadFull,
    ClientError,
    DeadlineExceeded,
    IntegrationError,
    RateLimitExceeded,
    ReadTimeout,
    RetriesExhausted,
    ServerError,
    UpstreamError,
)
from integration_kit.events import Recorder
from integration_kit.policies.config import BudgetPolicy, Limits, RetryPolicy
from integration_kit.policies.outcome import Outcome, OutcomeKind, Verdict
from integration_kit.policies.retry import decide_retry

OK = Outcome(OutcomeKind.STATUS, status=200)
S503 = Outcome(OutcomeKind.STATUS, status=503)
ONCE_A_SECOND = RetryPolicy(max_attempts=5, base_delay=1.0, jitter="none", multiplier=1.0)


class Driver:
    """Hands out scripted outcomes; each attempt takes ``latency`` and each wait ``oversleep`` more than asked."""

    def __init__(self, clock: ManualClock, outcomes: Iterable[Outcome], latency: float = 0.0, oversleep: float = 0.0):
        self.clock = clock
        self.outcomes = list(outcomes)
        self.latency = latency
        self.oversleep = oversleep
        self.sends: list[Send] = []
        self.waits: list[float] = []

    def send(self, action: Send) -> Outcome:
        self.sends.append(action)
        self.clock.advance(self.latency)
        return self.outcomes.pop(0)

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds + self.oversleep)


def run(engine: CallEngine, driver: Driver, method: str = "GET", **kw: object) -> Outcome:
    return run_sync(engine.call(method, "/x", **kw), driver.send, driver.sleep)  # type: ignore[arg-type]


def test_an_attempt_that_would_start_exactly_at_the_deadline_is_not_sent() -> None:
    clock = ManualClock(100.0)
    recorder = Recorder()
    engine = CallEngine(
        name="partner", retry=ONCE_A_SECOND, deadline=2.0, clock=clock, rng=random.Random(0), hooks=[recorder]
    )
    driver = Driver(clock, [S503, OK], latency=0.5, oversleep=0.5)  # 0.5 + wait 1.0 (+0.5 late) = exactly 2.0
    with pytest.raises(DeadlineExceeded) as caught:
        run(engine, driver)
    assert [s.attempt for s in driver.sends] == [1]  # no attempt with 0 s left
    assert clock.now() == 102.0
    error = caught.value
    assert error.message == "deadline of 2.0s passed"
    assert isinstance(error.last_error, ServerError)
    assert error.__cause__ is error.last_error
    assert (error.integration, error.method, error.url) == ("partner", "GET", "/x")
    assert [a.attempt for a in error.attempts] == [1]
    finished = recorder.events[-1]
    assert dataclasses.astuple(finished) == (
        102.0,
        "partner",
        1,
        "GET",
        "/x",
        False,
        "DeadlineExceeded",
        503,
        1,
        2.0,
    )  # one attempt was made, not two


def test_a_retry_whose_wait_ends_exactly_at_the_deadline_is_not_scheduled() -> None:
    clock = ManualClock()
    engine = CallEngine(retry=ONCE_A_SECOND, deadline=1.5, clock=clock, rng=random.Random(0))
    driver = Driver(clock, [S503, OK], latency=0.5)  # 0.5 elapsed + 1.0 wait = 1.5: at the deadline
    with pytest.raises(DeadlineExceeded):
        run(engine, driver)
    assert driver.waits == []
    clock = ManualClock()
    engine = CallEngine(retry=ONCE_A_SECOND, deadline=1.5001, clock=clock, rng=random.Random(0))
    driver = Driver(clock, [S503, OK], latency=0.5)
    assert run(engine, driver) is OK  # just inside it: retried
    assert driver.waits == [1.0]


def test_the_rate_limiter_queue_stops_at_the_deadline() -> None:
    clock = ManualClock()
    limits = Limits(rate=1.0, burst=1, max_wait=10.0)
    engine = CallEngine(limits=limits, deadline=1.0, clock=clock, rng=random.Random(0))
    first = Driver(clock, [OK])
    assert run(engine, first) is OK  # takes the only token
    queued = Driver(clock, [OK])
    with pytest.raises(RateLimitExceeded):  # the next token comes in exactly 1.0 s: at the deadline, refused
        run(engine, queued)
    assert queued.sends == []
    assert queued.waits == []
    clock = ManualClock()
    engine = CallEngine(limits=limits, deadline=1.0001, clock=clock, rng=random.Random(0))
    run(engine, Driver(clock, [OK]))
    patient = Driver(clock, [OK])
    assert run(engine, patient) is OK
    assert patient.waits == [pytest.approx(1.0)]


def test_the_bulkhead_queue_stops_at_the_deadline() -> None:
    clock = ManualClock()
    engine = CallEngine(limits=Limits(max_concurrent=1, max_wait=10.0), deadline=0.02, clock=clock)
    holder = engine.call("GET", "/held")
    assert isinstance(next(holder), Send)  # holds the only slot
    queued = Driver(clock, [OK])
    with pytest.raises(BulkheadFull):
        run(engine, queued)
    assert queued.sends == []
    assert sum(queued.waits) == pytest.approx(0.02)  # queued exactly until the deadline, no longer
    holder.close()
    assert run(engine, Driver(clock, [OK])) is OK  # the slot came back


def test_a_negative_retry_after_is_floored_at_zero() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=5.0, jitter="none")
    decision = decide_retry(
        policy,
        attempt=1,
        outcome=Outcome(OutcomeKind.STATUS, status=503, retry_after=-30.0),
        verdict=Verdict.TRANSIENT,
        safe_to_repeat=True,
        elapsed=0.0,
        deadline=10.0,
        rng=random.Random(0),
    )
    assert (decision.retry, decision.delay, decision.reason) == (True, 0.0, "retry_after")


def test_a_keyed_409_with_retry_after_is_waited_out_and_retried() -> None:
    clock = ManualClock()
    engine = CallEngine(retry=RetryPolicy(max_attempts=3, base_delay=0.1, jitter="none"), clock=clock)
    in_flight = Outcome(OutcomeKind.STATUS, status=409, retry_after=2.0)
    driver = Driver(clock, [in_flight, OK])
    assert run(engine, driver, "POST", idempotency_key="k") is OK
    assert driver.waits == [2.0]
    assert [s.idempotency_key for s in driver.sends] == ["k", "k"]


@pytest.mark.parametrize(
    ("outcome", "kw"),
    [
        (Outcome(OutcomeKind.STATUS, status=409, retry_after=2.0), {"idempotent": True}),  # no key
        (Outcome(OutcomeKind.STATUS, status=409), {"idempotency_key": "k"}),  # no Retry-After: a real conflict
        (Outcome(OutcomeKind.STATUS, status=422, retry_after=2.0), {"idempotency_key": "k"}),  # not a 409
    ],
)
def test_other_refusals_are_not_retried(outcome: Outcome, kw: dict[str, object]) -> None:
    clock = ManualClock()
    engine = CallEngine(retry=RetryPolicy(max_attempts=3, base_delay=0.1, jitter="none"), clock=clock)
    driver = Driver(clock, [outcome, OK])
    with pytest.raises(ClientError):
        run(engine, driver, "POST", **kw)
    assert len(driver.sends) == 1


def test_a_wait_in_the_rate_limiter_queue_is_taken_from_the_first_attempts_time() -> None:
    clock = ManualClock(100.0)
    engine = CallEngine(limits=Limits(rate=2.0, burst=1, max_wait=1.0), deadline=1.0, clock=clock)
    run(engine, Driver(clock, [OK]))  # takes the only token
    queued = Driver(clock, [OK])
    assert run(engine, queued) is OK
    assert queued.waits == [pytest.approx(0.5)]
    assert queued.sends[0].timeout == pytest.approx(0.5)  # not the whole second: half of it was spent queueing


def test_a_wait_in_the_bulkhead_queue_is_taken_from_the_first_attempts_time() -> None:
    clock = ManualClock(100.0)
    engine = CallEngine(limits=Limits(max_concurrent=1, max_wait=1.0), deadline=1.0, clock=clock)
    holder = engine.call("GET", "/held")
    next(holder)
    queued = engine.call("GET", "/queued")
    for _ in range(10):  # 10 polls of 5 ms
        assert isinstance(next(queued) if _ == 0 else queued.send(None), Wait)
        clock.advance(0.005)
    holder.close()  # the slot comes free after 50 ms in the queue
    action = queued.send(None)
    assert isinstance(action, Send)
    assert action.timeout == pytest.approx(0.95)
    queued.close()


def test_the_bulkhead_queue_stops_after_max_wait_on_any_clock() -> None:
    clock = ManualClock(1000.0)  # not 0: a sum where a difference belongs shows
    engine = CallEngine(limits=Limits(max_concurrent=1, max_wait=0.02), clock=clock)
    holder = engine.call("GET", "/held")
    next(holder)
    queued = Driver(clock, [OK])
    with pytest.raises(BulkheadFull):
        run(engine, queued)
    assert sum(queued.waits) == pytest.approx(0.02)
    holder.close()


def test_a_rate_limited_call_may_wait_exactly_max_wait() -> None:
    clock = ManualClock(100.0)
    engine = CallEngine(limits=Limits(rate=1.0, burst=1, max_wait=1.0), clock=clock)
    run(engine, Driver(clock, [OK]))
    patient = Driver(clock, [OK])
    assert run(engine, patient) is OK
    assert patient.waits == [pytest.approx(1.0)]


def test_waits_in_the_rate_limiter_queue_add_up_to_max_wait() -> None:
    """A call whose token is taken by others twice has waited 2 s; with max_wait 2.5 the third wait is refused."""
    clock = ManualClock(100.0)
    engine = CallEngine(limits=Limits(rate=1.0, burst=1, max_wait=2.5), clock=clock)
    limiter = engine.rate_limiter
    assert limiter is not None
    assert limiter.try_acquire() == 0  # the only token
    starved = engine.call("GET", "/starved")
    assert next(starved) == Wait(pytest.approx(1.0))  # waited 1 s
    clock.advance(1.0)
    assert limiter.try_acquire() == 0  # another caller takes the token first
    assert starved.send(None) == Wait(pytest.approx(1.0))  # waited 2 s
    clock.advance(1.0)
    assert limiter.try_acquire() == 0  # and again
    with pytest.raises(RateLimitExceeded):  # a third second would pass max_wait
        starved.send(None)


def test_retry_true_false_or_a_policy_per_call() -> None:
    clock = ManualClock()
    engine = CallEngine(retry=RetryPolicy(max_attempts=3, base_delay=0.0, jitter="none"), clock=clock)
    assert run(engine, Driver(clock, [S503, OK]), retry=True) is OK
    with pytest.raises(ServerError):
        run(engine, Driver(clock, [S503, OK]), retry=False)
    two = RetryPolicy(max_attempts=2, base_delay=0.0, jitter="none")
    with pytest.raises(RetriesExhausted):
        run(engine, Driver(clock, [S503, S503, OK]), retry=two)


def test_the_idempotent_override() -> None:
    clock = ManualClock()
    engine = CallEngine(retry=RetryPolicy(max_attempts=3, base_delay=0.0, jitter="none"), clock=clock)
    timeout = Outcome(OutcomeKind.READ_TIMEOUT)
    with pytest.raises(ReadTimeout):  # GET declared unsafe to repeat: not retried after the server may have seen it
        run(engine, Driver(clock, [timeout, OK]), "GET", idempotent=False)
    assert run(engine, Driver(clock, [timeout, OK]), "POST", idempotent=True) is OK


def test_decorrelated_jitter_starts_from_the_base_delay() -> None:
    clock = ManualClock()
    policy = RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=100.0, jitter="decorrelated")
    engine = CallEngine(retry=policy, clock=clock, rng=random.Random(0))
    driver = Driver(clock, [S503, S503, OK])
    assert run(engine, driver) is OK
    first, second = driver.waits
    assert 1.0 <= first <= 3.0  # uniform(base, 3 * base)
    assert 1.0 <= second <= 3.0 * first  # uniform(base, 3 * previous)


# -- pinned by mutation testing (tests/mutation.py) ---------------------------------------------------------------


def test_decorrelated_waits_grow_from_the_previous_wait() -> None:
    policy = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=1000.0, jitter="decorrelated")
    third_waits = []
    for seed in range(10):
        clock = ManualClock()
        driver = Driver(clock, [S503, S503, S503, OK])
        run(CallEngine(retry=policy, clock=clock, rng=random.Random(seed)), driver)
        third_waits.append(driver.waits[2])
    assert max(third_waits) > 3.0  # from uniform(1, 3 * previous), not uniform(1, 3) each time


def test_a_zero_wait_is_not_a_wait() -> None:
    clock = ManualClock()
    engine = CallEngine(retry=RetryPolicy(max_attempts=3, base_delay=0.0, jitter="none"), clock=clock)
    driver = Driver(clock, [S503, S503, OK])
    assert run(engine, driver) is OK
    assert driver.waits == []


@pytest.mark.parametrize(
    "outcome",
    [Outcome(OutcomeKind.STATUS, status=300), Outcome(OutcomeKind.ERROR, status=200)],
    ids=["3xx", "an error with a 2xx status"],
)
def test_only_a_2xx_status_or_a_plain_success_succeeds(outcome: Outcome) -> None:
    clock = ManualClock()
    engine = CallEngine(retry=RetryPolicy.disabled(), clock=clock)
    with pytest.raises(IntegrationError):
        run(engine, Driver(clock, [outcome]))


def test_the_calls_retry_policy_decides_which_statuses_are_transient() -> None:
    clock = ManualClock()
    policy = RetryPolicy(max_attempts=2, base_delay=0.0, jitter="none", retry_on_status=frozenset({418}))
    engine = CallEngine(retry=policy, clock=clock)
    assert run(engine, Driver(clock, [Outcome(OutcomeKind.STATUS, status=418), OK])) is OK
    with pytest.raises(UpstreamError):  # 503 is not in this policy's list: a failure, not retried
        run(engine, Driver(clock, [S503, OK]))


def test_the_budget_hears_successes_and_failures_apart() -> None:
    from integration_kit.policies.budget import RetryBudget

    clock = ManualClock()
    budget = RetryBudget(BudgetPolicy(max_tokens=10, token_ratio=0.1))  # gRPC A6's example figures
    engine = CallEngine(retry=RetryPolicy.disabled(), budget=budget, clock=clock)
    run(engine, Driver(clock, [OK]))
    assert budget.tokens == 10.0
    with pytest.raises(ClientError):
        run(engine, Driver(clock, [Outcome(OutcomeKind.STATUS, status=404)]))
    assert budget.tokens == 10.0  # a refusal is not a failure
    with pytest.raises(UpstreamError):
        run(engine, Driver(clock, [Outcome(OutcomeKind.STATUS, status=501)]))
    assert budget.tokens == 9.0


def test_a_single_failed_attempt_raises_its_own_error_without_a_cause() -> None:
    clock = ManualClock()
    engine = CallEngine(retry=RetryPolicy.disabled(), clock=clock)
    with pytest.raises(ServerError) as caught:
        run(engine, Driver(clock, [S503]))
    assert caught.value.__cause__ is None


def test_budget_and_deadline_errors_say_why_and_carry_the_last_error() -> None:
    from integration_kit.errors import BudgetExhausted
    from integration_kit.policies.budget import RetryBudget
    from integration_kit.policies.config import BudgetPolicy

    clock = ManualClock()
    engine = CallEngine(retry=ONCE_A_SECOND, budget=RetryBudget(BudgetPolicy(max_tokens=2)), clock=clock)
    with pytest.raises(BudgetExhausted) as budget:
        run(engine, Driver(clock, [S503, OK]))
    assert budget.value.message == "retry budget exhausted"
    assert isinstance(budget.value.last_error, ServerError)
    engine = CallEngine(retry=ONCE_A_SECOND, deadline=1.0, clock=clock)
    with pytest.raises(DeadlineExceeded) as late:
        run(engine, Driver(clock, [S503, OK], latency=0.5))
    assert late.value.message == "the next attempt could not start before the deadline of 1.0s"
    assert isinstance(late.value.last_error, ServerError)


def test_the_driver_must_answer_a_send_with_an_outcome() -> None:
    engine = CallEngine(clock=ManualClock())
    calls = engine.call("GET", "/x")
    next(calls)
    with pytest.raises(RuntimeError, match=r"^the driver must send an Outcome after a Send action$"):
        calls.send(None)
