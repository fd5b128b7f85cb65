"""The call engine, driven directly with a ManualClock and scripted outcomes: no I/O, no sleeping."""

from __future__ import annotations

import random
from collections.abc import Iterable

import anyio
import pytest

from integration_kit.clock import ManualClock
from integration_kit.engine.call import CallEngine, Send, Wait, error_for_outcome, run_async, run_sync
from integration_kit.errors import (
    BudgetExhausted,
    BulkheadFull,
    CircuitOpenError,
    ClientError,
    ConnectError,
    DeadlineExceeded,
    RateLimited,
    RateLimitExceeded,
    ReadTimeout,
    RetriesExhausted,
    ServerError,
    UpstreamError,
)
from integration_kit.events import Recorder
from integration_kit.policies.breaker import CircuitBreaker, CircuitState
from integration_kit.policies.budget import RetryBudget
from integration_kit.policies.config import BreakerPolicy, BudgetPolicy, Limits, RetryPolicy
from integration_kit.policies.outcome import Outcome, OutcomeKind, Verdict

OK = Outcome(OutcomeKind.STATUS, status=200, value="body")
S503 = Outcome(OutcomeKind.STATUS, status=503)
S404 = Outcome(OutcomeKind.STATUS, status=404)
READ_TIMEOUT = Outcome(OutcomeKind.READ_TIMEOUT)
REFUSED = Outcome(OutcomeKind.CONNECT_ERROR)


class Script:
    """A fake upstream: hands out scripted outcomes, each taking ``latency`` seconds of virtual time."""

    def __init__(self, clock: ManualClock, outcomes: Iterable[Outcome], latency: float = 0.1) -> None:
        self.clock = clock
        self.outcomes = list(outcomes)
        self.latency = latency
        self.sends: list[Send] = []
        self.waits: list[float] = []

    def send(self, action: Send) -> Outcome:
        self.sends.append(action)
        outcome = self.outcomes.pop(0)
        if action.timeout is not None and self.latency > action.timeout:
            self.clock.advance(action.timeout)
            return READ_TIMEOUT
        self.clock.advance(self.latency)
        return outcome

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.sleep(seconds)


def make(clock: ManualClock, **kw: object) -> tuple[CallEngine, Recorder]:
    recorder = Recorder()
    kw.setdefault("retry", RetryPolicy(jitter="none", base_delay=1.0, max_attempts=3))
    engine = CallEngine(name="partner", clock=clock, rng=random.Random(0), hooks=[recorder], **kw)  # type: ignore[arg-type]
    return engine, recorder


def drive(engine: CallEngine, script: Script, method: str = "GET", **kw: object) -> Outcome:
    return run_sync(engine.call(method, "https://partner.example/x", **kw), script.send, script.sleep)  # type: ignore[arg-type]


def test_success_first_time_returns_the_outcome_and_records_three_events() -> None:
    clock = ManualClock()
    engine, rec = make(clock)
    script = Script(clock, [OK])
    assert drive(engine, script).value == "body"
    assert [e.kind for e in rec.events] == ["attempt_started", "attempt_finished", "call_finished"]
    assert rec.summary().success_rate == 1.0


def test_transient_then_success_waits_the_backoff() -> None:
    clock = ManualClock()
    engine, rec = make(clock)
    script = Script(clock, [S503, S503, OK])
    assert drive(engine, script) is OK
    assert script.waits == [1.0, 2.0]
    assert [s.attempt for s in script.sends] == [1, 2, 3]
    summary = rec.summary()
    assert (summary.calls, summary.attempts, summary.retries) == (1, 3, 2)
    assert clock.now() == pytest.approx(3.3)


def test_retries_exhausted_carries_the_history_and_the_last_error() -> None:
    clock = ManualClock()
    engine, _ = make(clock)
    with pytest.raises(RetriesExhausted) as info:
        drive(engine, Script(clock, [S503, S503, S503]))
    err = info.value
    assert [a.status for a in err.attempts] == [503, 503, 503]
    assert isinstance(err.last_error, ServerError)
    assert err.__cause__ is err.last_error
    assert err.integration == "partner"
    assert err.status == 503
    assert "after 3 attempts" in str(err)


def test_single_attempt_raises_the_attempt_error_itself() -> None:
    clock = ManualClock()
    engine, _ = make(clock)
    with pytest.raises(ServerError):
        drive(engine, Script(clock, [S503]), retry=False)


def test_client_errors_are_never_retried() -> None:
    clock = ManualClock()
    engine, rec = make(clock)
    with pytest.raises(ClientError) as info:
        drive(engine, Script(clock, [S404]))
    assert info.value.status == 404
    assert rec.summary().attempts == 1


def test_non_retryable_server_failure_is_raised_at_once() -> None:
    clock = ManualClock()
    engine, _ = make(clock)
    with pytest.raises(UpstreamError):
        drive(engine, Script(clock, [Outcome(OutcomeKind.STATUS, status=501)]))


def test_post_is_not_retried_after_a_read_timeout_but_is_with_a_key() -> None:
    clock = ManualClock()
    engine, _ = make(clock)
    with pytest.raises(ReadTimeout):
        drive(engine, Script(clock, [READ_TIMEOUT]), method="POST")
    script = Script(clock, [READ_TIMEOUT, OK])
    assert drive(engine, script, method="POST", idempotency_key="k-1") is OK
    assert [s.idempotency_key for s in script.sends] == ["k-1", "k-1"]


def test_post_is_retried_after_a_connect_failure() -> None:
    clock = ManualClock()
    engine, _ = make(clock)
    assert drive(engine, Script(clock, [REFUSED, OK]), method="POST") is OK


def test_generated_idempotency_key_is_the_same_on_every_attempt_and_in_events() -> None:
    clock = ManualClock()
    keys = iter(["key-a", "key-b"])
    engine, rec = make(clock, idempotency_methods=["post"], key_factory=lambda: next(keys))
    script = Script(clock, [S503, OK])
    drive(engine, script, method="POST")
    assert [s.idempotency_key for s in script.sends] == ["key-a", "key-a"]
    frame_keys = {getattr(e, "idempotency_key", None) for e in rec.events} - {None}
    assert frame_keys == {"key-a"}


def test_retry_after_is_used_instead_of_backoff() -> None:
    clock = ManualClock()
    engine, rec = make(clock)
    script = Script(clock, [Outcome(OutcomeKind.STATUS, status=429, retry_after=4.0), OK])
    drive(engine, script)
    assert script.waits == [4.0]
    assert [getattr(e, "reason", None) for e in rec.events if e.kind == "retry_scheduled"] == ["retry_after"]


def test_deadline_clips_the_attempt_and_stops_a_retry_that_would_end_past_it() -> None:
    clock = ManualClock()
    engine, _ = make(clock, deadline=2.5)
    script = Script(clock, [S503, S503, OK])
    with pytest.raises(DeadlineExceeded) as info:
        drive(engine, script)
    # attempt 1 at t=0 (remaining 2.5), wait 1 s, attempt 2 at t=1.1 (remaining 1.4), next wait 2 s would pass it
    assert [s.timeout for s in script.sends] == pytest.approx([2.5, 1.4])
    assert isinstance(info.value.last_error, ServerError)
    assert clock.now() == pytest.approx(1.2)


def test_a_hanging_attempt_never_outlives_the_deadline() -> None:
    clock = ManualClock()
    engine, _ = make(clock, deadline=1.0)
    script = Script(clock, [OK, OK], latency=30.0)
    with pytest.raises(DeadlineExceeded):
        drive(engine, script)
    assert clock.now() == pytest.approx(1.0)


def test_per_call_deadline_override() -> None:
    clock = ManualClock()
    engine, _ = make(clock, deadline=1.0)
    assert drive(engine, Script(clock, [OK], latency=5.0), deadline=None) is OK


def test_open_breaker_rejects_without_sending() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=2, wait_in_open=10), name="partner", clock=clock)
    engine, rec = make(clock, breaker=breaker, retry=RetryPolicy.disabled())
    for _ in range(2):
        with pytest.raises(ServerError):
            drive(engine, Script(clock, [S503]))
    script = Script(clock, [OK])
    with pytest.raises(CircuitOpenError) as info:
        drive(engine, script)
    assert script.sends == []
    assert "partner" in str(info.value)
    assert breaker.state is CircuitState.OPEN
    transitions = [e for e in rec.events if e.kind == "breaker_transition"]
    assert [(t.old, t.new) for t in transitions] == [("closed", "open")]  # type: ignore[attr-defined]
    assert rec.summary().rejected == 1
    clock.advance(10)
    assert drive(engine, Script(clock, [OK])) is OK  # a half-open probe goes through


def test_breaker_opening_between_retries_stops_the_retry() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=1), clock=clock)
    engine, _ = make(clock, breaker=breaker)
    script = Script(clock, [S503, OK])
    with pytest.raises(CircuitOpenError) as info:
        drive(engine, script)
    assert len(script.sends) == 1
    assert isinstance(info.value.__cause__, ServerError)
    assert len(info.value.attempts) == 1


def test_client_errors_do_not_trip_the_breaker() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=1), clock=clock)
    engine, _ = make(clock, breaker=breaker)
    for _ in range(5):
        with pytest.raises(ClientError):
            drive(engine, Script(clock, [S404]))
    assert breaker.state is CircuitState.CLOSED


def test_budget_stops_retries_when_failures_dominate() -> None:
    clock = ManualClock()
    budget = RetryBudget(BudgetPolicy(max_tokens=4, token_ratio=0.1))
    engine, rec = make(clock, budget=budget, retry=RetryPolicy(max_attempts=5, base_delay=0.0, max_delay=0.0))
    # 4 tokens, threshold 2: the first two failures leave 2 tokens, which is not > 2.
    with pytest.raises(BudgetExhausted) as info:
        drive(engine, Script(clock, [S503] * 5))
    assert len(info.value.attempts) == 2
    assert rec.summary().budget_refusals == 1


def test_rate_limiter_waits_within_max_wait_then_rejects() -> None:
    clock = ManualClock()
    engine, rec = make(clock, limits=Limits(rate=1.0, burst=1, max_wait=0.5))
    script = Script(clock, [OK, OK, OK], latency=0.0)
    drive(engine, script)
    clock.advance(0.6)  # 0.4 s short of the next token: within max_wait
    drive(engine, script)
    assert script.waits == pytest.approx([0.4])
    with pytest.raises(RateLimitExceeded):
        drive(engine, script)
    assert rec.summary().rejected == 1


def test_bulkhead_rejects_when_full_and_releases_after_each_call() -> None:
    clock = ManualClock()
    engine, _ = make(clock, limits=Limits(max_concurrent=1))
    first = engine.call("GET", "x")
    assert isinstance(next(first), Send)  # call 1 holds the only slot
    with pytest.raises(BulkheadFull):
        drive(engine, Script(clock, [OK]))
    first.close()  # abandoned by its driver: the slot comes back
    assert drive(engine, Script(clock, [OK])) is OK
    assert engine.bulkhead is not None
    assert engine.bulkhead.in_use == 0


def test_bulkhead_queues_for_up_to_max_wait() -> None:
    clock = ManualClock()
    engine, _ = make(clock, limits=Limits(max_concurrent=1, max_wait=0.02))
    first = engine.call("GET", "x")
    next(first)
    second = engine.call("GET", "x")
    action = next(second)
    assert isinstance(action, Wait)
    clock.advance(action.seconds)
    first.close()
    assert isinstance(second.send(None), Send)
    second.close()


def test_abandoned_half_open_probe_frees_its_slot() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=1, half_open_max_calls=1, wait_in_open=1), clock=clock)
    breaker.force_open()
    breaker.reset()
    engine, _ = make(clock, breaker=breaker, retry=RetryPolicy.disabled())
    with pytest.raises(ServerError):
        drive(engine, Script(clock, [S503]))
    clock.advance(1)
    probe = engine.call("GET", "x")
    next(probe)
    probe.close()  # cancelled mid-attempt
    assert drive(engine, Script(clock, [OK])) is OK
    assert breaker.state is CircuitState.CLOSED


def test_driver_must_send_an_outcome() -> None:
    engine, _ = make(ManualClock())
    gen = engine.call("GET", "x")
    next(gen)
    with pytest.raises(RuntimeError, match="must send an Outcome"):
        gen.send(None)


def test_a_failing_hook_does_not_break_the_call(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()

    def broken(event: object) -> None:
        raise ValueError("hook bug")

    engine, rec = make(clock)
    engine.add_hook(broken)
    assert drive(engine, Script(clock, [OK])) is OK
    assert "hook" in caplog.text
    assert len(rec) == 3


def test_same_seed_same_run() -> None:
    def run(seed: int) -> list[float]:
        clock = ManualClock()
        engine = CallEngine(retry=RetryPolicy(max_attempts=4), clock=clock, rng=random.Random(seed))
        script = Script(clock, [S503, S503, S503, OK])
        run_sync(engine.call("GET"), script.send, script.sleep)
        return script.waits

    assert run(42) == run(42)
    assert run(42) != run(43)


def test_invalid_deadline() -> None:
    with pytest.raises(ValueError, match="deadline"):
        CallEngine(deadline=0)


def test_error_for_outcome_builds_typed_errors() -> None:
    assert isinstance(error_for_outcome(REFUSED, Verdict.TRANSIENT), ConnectError)
    driver_error = ServerError("HTTP 503", status=503)
    assert error_for_outcome(Outcome(OutcomeKind.STATUS, 503, error=driver_error), Verdict.TRANSIENT) is driver_error
    generic = error_for_outcome(Outcome(OutcomeKind.ERROR, error=KeyError("x")), Verdict.FAILURE)
    assert isinstance(generic, UpstreamError)
    assert isinstance(generic.__cause__, KeyError)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_async_driver_runs_the_same_engine(backend: str) -> None:
    clock = ManualClock()
    engine, rec = make(clock)
    script = Script(clock, [S503, OK])

    async def send(action: Send) -> Outcome:
        await anyio.lowlevel.checkpoint()
        return script.send(action)

    async def main() -> Outcome:
        return await run_async(engine.call("GET", "x"), send, clock.asleep)

    assert anyio.run(main, backend=backend) is OK
    assert rec.summary().attempts == 2
    assert clock.now() == pytest.approx(1.2)


S429 = Outcome(OutcomeKind.STATUS, status=429, retry_after=0.5)


@pytest.mark.parametrize(("ignored", "trips"), [(frozenset(), True), (frozenset({429}), False)])
def test_a_status_the_breaker_ignores_counts_neither_way(ignored: frozenset[int], trips: bool) -> None:
    clock = ManualClock()
    policy = BreakerPolicy(failure_threshold=3, failure_rate_threshold=None, ignore_statuses=ignored)
    breaker = CircuitBreaker(policy, name="partner", clock=clock)
    engine, _ = make(clock, breaker=breaker, retry=RetryPolicy(max_attempts=1))
    for _ in range(3):
        with pytest.raises(RateLimited):
            drive(engine, Script(clock, [S429]))
    assert (breaker.state is CircuitState.OPEN) is trips
    if ignored:
        assert breaker.metrics().calls == 0  # a 503 still counts: only the listed statuses are left out
        for _ in range(3):
            with pytest.raises(ServerError):
                drive(engine, Script(clock, [S503]))
        assert breaker.state is CircuitState.OPEN


def test_a_half_open_probe_answered_with_an_ignored_status_frees_its_slot() -> None:
    clock = ManualClock()
    policy = BreakerPolicy(
        failure_threshold=1,
        failure_rate_threshold=None,
        wait_in_open=1.0,
        half_open_max_calls=1,
        ignore_statuses=frozenset({429}),
    )
    breaker = CircuitBreaker(policy, name="partner", clock=clock)
    engine, _ = make(clock, breaker=breaker, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(ServerError):
        drive(engine, Script(clock, [S503]))
    assert breaker.state is CircuitState.OPEN
    clock.advance(1.0)
    with pytest.raises(RateLimited):  # the probe meets a 429: the breaker neither closes nor reopens
        drive(engine, Script(clock, [S429]))
    assert breaker.state is CircuitState.HALF_OPEN
    assert drive(engine, Script(clock, [OK])) is OK  # the slot was freed: the next call probes, and closes it
    assert breaker.state is CircuitState.CLOSED
