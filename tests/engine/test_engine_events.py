"""Every path out of the engine, with the exact events it emits and the context its error carries.

Events are part of the API (dashboards, logs and the playbook's charts read them), so each field is pinned here:
a ManualClock at 100 s (not 0, so a sum where a difference belongs shows), attempts of 0.25 s, backoff 1 s, 2 s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from integration_kit.clock import ManualClock
from integration_kit.engine.call import CallEngine, Send, error_for_outcome, run_async, run_sync
from integration_kit.errors import (
    AttemptRecord,
    ConnectError,
    ConnectionLost,
    IntegrationError,
    RateLimited,
    ReadTimeout,
    UnsafeRequest,
    UpstreamError,
)
from integration_kit.events import BreakerTransition, Recorder
from integration_kit.policies.breaker import CircuitBreaker
from integration_kit.policies.budget import RetryBudget
from integration_kit.policies.config import BreakerPolicy, BudgetPolicy, Limits, RetryPolicy
from integration_kit.policies.outcome import Outcome, OutcomeKind, Verdict

S503 = Outcome(OutcomeKind.STATUS, status=503)
S404 = Outcome(OutcomeKind.STATUS, status=404)
OK = Outcome(OutcomeKind.STATUS, status=200)
T = "/orders/1"


def run(
    outcomes: list[Outcome | Exception],
    method: str = "GET",
    engine_kw: dict[str, Any] | None = None,
    call_kw: dict[str, Any] | None = None,
    before: Callable[[CallEngine, ManualClock], None] | None = None,
) -> tuple[list[tuple[Any, ...]], IntegrationError | None, CallEngine]:
    clock = ManualClock(100.0)
    recorder = Recorder()
    kw: dict[str, Any] = {"retry": RetryPolicy(max_attempts=3, base_delay=1.0, jitter="none")}
    for name, value in (engine_kw or {}).items():
        kw[name] = value(clock) if callable(value) else value
    engine = CallEngine(name="partner", clock=clock, rng=random.Random(0), hooks=[recorder], **kw)
    if before is not None:
        before(engine, clock)
    pending = list(outcomes)

    def send(action: Send) -> Outcome:
        clock.advance(0.25)
        outcome = pending.pop(0)
        if isinstance(outcome, Exception):  # the driver refuses to go on (an unsafe redirect)
            raise outcome
        return outcome

    error = None
    try:
        run_sync(engine.call(method, T, **(call_kw or {})), send, clock.sleep)
    except IntegrationError as exc:
        error = exc
    return [(type(e).__name__, *dataclasses.astuple(e)) for e in recorder.events], error, engine


def _context(error: IntegrationError | None) -> tuple[Any, ...]:
    assert error is not None
    history = [dataclasses.astuple(a) for a in error.attempts]
    return type(error).__name__, error.integration, error.method, error.url, history, type(error.__cause__).__name__


def test_retries_exhausted() -> None:
    events, error, _ = run([S503, S503, S503])
    assert events == [
        ("AttemptStarted", 100.0, "partner", 1, 1, "GET", T, None, None),
        ("AttemptFinished", 100.25, "partner", 1, 1, "GET", T, "status", 503, 0.25, "transient"),
        ("RetryScheduled", 100.25, "partner", 1, 1, 1.0, "backoff"),
        ("AttemptStarted", 101.25, "partner", 1, 2, "GET", T, None, None),
        ("AttemptFinished", 101.5, "partner", 1, 2, "GET", T, "status", 503, 0.25, "transient"),
        ("RetryScheduled", 101.5, "partner", 1, 2, 2.0, "backoff"),
        ("AttemptStarted", 103.5, "partner", 1, 3, "GET", T, None, None),
        ("AttemptFinished", 103.75, "partner", 1, 3, "GET", T, "status", 503, 0.25, "transient"),
        ("CallFinished", 103.75, "partner", 1, "GET", T, False, "RetriesExhausted", 503, 3, 3.75),
    ]
    record = (1, "status", 503, 0.25, "ServerError")
    assert _context(error) == (
        "RetriesExhausted",
        "partner",
        "GET",
        T,
        [record, (2, *record[1:]), (3, *record[1:])],
        "ServerError",
    )
    assert str(error) == "[partner] 3 attempts failed (GET /orders/1) after 3 attempts"


def test_a_refusal_ends_the_call_with_the_clients_error() -> None:
    events, error, _ = run([S404], method="delete")
    assert events == [
        ("AttemptStarted", 100.0, "partner", 1, 1, "DELETE", T, None, None),
        ("AttemptFinished", 100.25, "partner", 1, 1, "DELETE", T, "status", 404, 0.25, "rejected"),
        ("CallFinished", 100.25, "partner", 1, "DELETE", T, False, "ClientError", 404, 1, 0.25),
    ]
    assert _context(error) == (
        "ClientError",
        "partner",
        "DELETE",
        T,
        [(1, "status", 404, 0.25, "ClientError")],
        "NoneType",
    )


def test_a_driver_refusing_mid_call_ends_it_with_its_own_error_and_the_calls_context() -> None:
    """The client refuses to follow an unsafe redirect on the second attempt: that error ends the call, with the
    call's context and its call-finished event (the status of the last answer seen: 503)."""
    cause = ValueError("redirect to plain http")
    refusal = UnsafeRequest("refused a redirect to plain http")
    refusal.__cause__ = cause
    events, error, _ = run([S503, refusal])
    assert error is refusal
    assert error.__cause__ is cause
    assert events == [
        ("AttemptStarted", 100.0, "partner", 1, 1, "GET", T, None, None),
        ("AttemptFinished", 100.25, "partner", 1, 1, "GET", T, "status", 503, 0.25, "transient"),
        ("RetryScheduled", 100.25, "partner", 1, 1, 1.0, "backoff"),
        ("AttemptStarted", 101.25, "partner", 1, 2, "GET", T, None, None),
        ("CallFinished", 101.5, "partner", 1, "GET", T, False, "UnsafeRequest", 503, 2, 1.5),
    ]
    assert _context(error) == (
        "UnsafeRequest",
        "partner",
        "GET",
        T,
        [(1, "status", 503, 0.25, "ServerError")],
        "ValueError",
    )


def test_the_async_driver_ends_the_call_with_a_refusal_too() -> None:
    clock = ManualClock(100.0)
    recorder = Recorder()
    engine = CallEngine(name="partner", clock=clock, hooks=[recorder])
    refusal = UnsafeRequest("refused a redirect to plain http")

    async def send(action: Send) -> Outcome:
        raise refusal

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    with pytest.raises(UnsafeRequest) as caught:
        anyio.run(run_async, engine.call("POST", T), send, sleep)
    assert caught.value is refusal
    assert (refusal.integration, refusal.method, refusal.url) == ("partner", "POST", T)
    assert [type(e).__name__ for e in recorder.events] == ["AttemptStarted", "CallFinished"]


def test_the_deadline_ends_the_call_before_a_retry_that_could_not_finish() -> None:
    events, error, _ = run([S503, S503], engine_kw={"deadline": 1.5})
    assert events == [
        ("AttemptStarted", 100.0, "partner", 1, 1, "GET", T, 1.5, None),
        ("AttemptFinished", 100.25, "partner", 1, 1, "GET", T, "status", 503, 0.25, "transient"),
        ("RetryScheduled", 100.25, "partner", 1, 1, 1.0, "backoff"),
        ("AttemptStarted", 101.25, "partner", 1, 2, "GET", T, 0.25, None),
        ("AttemptFinished", 101.5, "partner", 1, 2, "GET", T, "status", 503, 0.25, "transient"),
        ("CallFinished", 101.5, "partner", 1, "GET", T, False, "DeadlineExceeded", 503, 2, 1.5),
    ]
    assert _context(error)[0::5] == ("DeadlineExceeded", "ServerError")


def test_a_rate_limited_call_is_rejected_with_its_context() -> None:
    def take_the_token(engine: CallEngine, clock: ManualClock) -> None:
        assert engine.rate_limiter is not None
        engine.rate_limiter.try_acquire()

    limits = Limits(rate=1.0, burst=1, max_wait=0.5)
    events, error, _ = run([OK], engine_kw={"limits": limits}, before=take_the_token)
    assert events == [
        ("RejectedCall", 100.0, "partner", 1, "rate_limited"),
        ("CallFinished", 100.0, "partner", 1, "GET", T, False, "RateLimitExceeded", None, 0, 0.0),
    ]
    assert _context(error) == ("RateLimitExceeded", "partner", "GET", T, [], "NoneType")
    assert str(error) == "[partner] client-side rate limit reached (GET /orders/1)"


def test_a_full_bulkhead_rejects_with_its_context() -> None:
    def hold_the_slot(engine: CallEngine, clock: ManualClock) -> None:
        held = engine.call("GET", "/held")
        next(held)
        engine.held = held  # type: ignore[attr-defined]

    events, error, _ = run([OK], engine_kw={"limits": Limits(max_concurrent=1, max_wait=0.01)}, before=hold_the_slot)
    assert events[0] == ("AttemptStarted", 100.0, "partner", 1, 1, "GET", "/held", None, None)
    assert events[1] == ("RejectedCall", pytest.approx(100.01), "partner", 2, "bulkhead_full")
    assert events[2][:9] == ("CallFinished", pytest.approx(100.01), "partner", 2, "GET", T, False, "BulkheadFull", None)
    assert events[2][9:] == (0, pytest.approx(0.01))
    assert _context(error) == ("BulkheadFull", "partner", "GET", T, [], "NoneType")
    assert str(error) == "[partner] 1 calls already in flight (GET /orders/1)"


def test_an_open_breaker_ends_a_retrying_call_and_its_transition_is_an_event() -> None:
    policy = BreakerPolicy(failure_threshold=2, failure_rate_threshold=None, wait_in_open=30)
    breaker: Callable[[ManualClock], CircuitBreaker] = lambda clock: CircuitBreaker(  # noqa: E731
        policy, name="partner-breaker", clock=clock
    )
    events, error, _ = run([S503, S503, S503], engine_kw={"breaker": breaker})
    assert events == [
        ("AttemptStarted", 100.0, "partner", 1, 1, "GET", T, None, None),
        ("AttemptFinished", 100.25, "partner", 1, 1, "GET", T, "status", 503, 0.25, "transient"),
        ("RetryScheduled", 100.25, "partner", 1, 1, 1.0, "backoff"),
        ("AttemptStarted", 101.25, "partner", 1, 2, "GET", T, None, None),
        ("BreakerTransition", 101.5, "partner", 0, "partner-breaker", "closed", "open", "consecutive_failures 2"),
        ("AttemptFinished", 101.5, "partner", 1, 2, "GET", T, "status", 503, 0.25, "transient"),
        ("RetryScheduled", 101.5, "partner", 1, 2, 2.0, "backoff"),
        ("RejectedCall", 103.5, "partner", 1, "circuit_open"),
        ("CallFinished", 103.5, "partner", 1, "GET", T, False, "CircuitOpenError", 503, 2, 3.5),
    ]
    assert _context(error)[0::5] == ("CircuitOpenError", "ServerError")  # caused by the last attempt's error
    assert len(_context(error)[4]) == 2


def test_an_empty_budget_ends_the_call() -> None:
    events, error, _ = run([S503, S503], engine_kw={"budget": RetryBudget(BudgetPolicy(max_tokens=2))})
    assert events[2] == ("BudgetDepleted", 100.25, "partner", 1, 1, 1.0)
    assert events[3] == ("CallFinished", 100.25, "partner", 1, "GET", T, False, "BudgetExhausted", 503, 1, 0.25)
    assert _context(error)[0::5] == ("BudgetExhausted", "ServerError")


def test_a_keyed_success_after_a_retry() -> None:
    events, error, _ = run([S503, OK], method="post", call_kw={"idempotency_key": "k1"})
    assert error is None
    assert events == [
        ("AttemptStarted", 100.0, "partner", 1, 1, "POST", T, None, "k1"),
        ("AttemptFinished", 100.25, "partner", 1, 1, "POST", T, "status", 503, 0.25, "transient"),
        ("RetryScheduled", 100.25, "partner", 1, 1, 1.0, "backoff"),
        ("AttemptStarted", 101.25, "partner", 1, 2, "POST", T, None, "k1"),
        ("AttemptFinished", 101.5, "partner", 1, 2, "POST", T, "status", 200, 0.25, "success"),
        ("CallFinished", 101.5, "partner", 1, "POST", T, True, "success", 200, 2, 1.5),
    ]


def test_calls_are_numbered_and_the_defaults_name_a_plain_call() -> None:
    clock = ManualClock(100.0)
    recorder = Recorder()
    engine = CallEngine(clock=clock, hooks=[recorder])
    for _ in range(2):
        run_sync(engine.call(), lambda action: OK, clock.sleep)
    started = [dataclasses.astuple(e) for e in recorder.events if type(e).__name__ == "AttemptStarted"]
    assert started == [
        (100.0, "default", 1, 1, "CALL", "", None, None),
        (100.0, "default", 2, 1, "CALL", "", None, None),
    ]
    later: list[object] = []
    engine.add_hook(later.append)
    run_sync(engine.call(), lambda action: OK, clock.sleep)
    assert len(later) == 3


def test_a_failing_hook_is_logged_with_the_event_kind(caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: object) -> None:
        raise RuntimeError("hook bug")

    clock = ManualClock(100.0)
    engine = CallEngine(clock=clock, hooks=[broken])
    with caplog.at_level(logging.WARNING, logger="integration_kit"):
        run_sync(engine.call(), lambda action: OK, clock.sleep)
    messages = [r for r in caplog.records if "hook" in r.getMessage()]
    assert [r.getMessage().rsplit(" ", 1)[-1] for r in messages] == [
        "attempt_started",
        "attempt_finished",
        "call_finished",
    ]
    assert messages[0].getMessage().startswith("integration_kit: hook <function")
    assert all(r.exc_info and r.exc_info[0] is RuntimeError for r in messages)


def test_an_error_outcome_keeps_its_own_error_and_the_status_of_the_call() -> None:
    lost = ConnectionLost("reset by peer")
    events, error, _ = run(
        [Outcome(OutcomeKind.CONNECTION_LOST, error=lost)], engine_kw={"retry": RetryPolicy.disabled()}
    )
    assert error is lost
    assert error.integration == "partner"
    assert events[-1][7:10] == ("ConnectionLost", None, 1)


@pytest.mark.parametrize(
    ("outcome", "verdict", "kind", "message"),
    [
        (Outcome(OutcomeKind.CONNECT_ERROR), Verdict.TRANSIENT, ConnectError, "connect error"),
        (Outcome(OutcomeKind.READ_TIMEOUT), Verdict.TRANSIENT, ReadTimeout, "read timeout"),
        (
            Outcome(OutcomeKind.ERROR, error=ValueError("x")),
            Verdict.FAILURE,
            UpstreamError,
            "attempt failed: ValueError",
        ),
        (Outcome(OutcomeKind.ERROR), Verdict.FAILURE, UpstreamError, "attempt failed"),
        (Outcome(OutcomeKind.ERROR, status=502), Verdict.FAILURE, UpstreamError, "attempt failed"),
    ],
)
def test_errors_built_from_outcomes(outcome: Outcome, verdict: Verdict, kind: type, message: str) -> None:
    error = error_for_outcome(outcome, verdict)
    assert type(error) is kind
    assert error.message == message
    assert error.__cause__ is outcome.error
    if kind is UpstreamError:
        assert error.status == (outcome.status or 0)  # type: ignore[attr-defined]


def test_a_status_error_carries_the_retry_after_hint() -> None:
    error = error_for_outcome(Outcome(OutcomeKind.STATUS, status=429, retry_after=7.0), Verdict.TRANSIENT)
    assert isinstance(error, RateLimited)
    assert error.retry_after == 7.0


def test_breaker_transitions_reach_the_hooks_with_the_breakers_time() -> None:
    clock = ManualClock(100.0)
    recorder = Recorder()
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=1, failure_rate_threshold=None), name="b", clock=clock)
    CallEngine(name="partner", breaker=breaker, clock=clock, hooks=[recorder])
    clock.advance(5)
    breaker.force_open()
    (event,) = recorder.of(BreakerTransition)
    assert dataclasses.astuple(event) == (105.0, "partner", 0, "b", "closed", "forced_open", "forced")


def test_attempt_records_name_each_attempts_error() -> None:
    _, error, _ = run([S503, S404])
    assert error is not None
    assert error.attempts == (
        AttemptRecord(1, "status", 503, 0.25, "ServerError"),
        AttemptRecord(2, "status", 404, 0.25, "ClientError"),
    )


def test_the_recorder_alone_is_called_directly_and_records_the_same_events(caplog: pytest.LogCaptureFixture) -> None:
    """A Recorder's own append as the only hook skips emit()'s guard (it cannot fail): same events, same order;
    another hook, added by add_hook or appended to ``hooks``, brings the guard back for every hook."""

    def events_of(hook_of: Callable[[Recorder], Any]) -> list[tuple[Any, ...]]:
        clock = ManualClock(100.0)
        recorder = Recorder()
        breaker = CircuitBreaker(BreakerPolicy(failure_threshold=2), name="partner", clock=clock)
        engine = CallEngine(
            name="partner",
            clock=clock,
            rng=random.Random(0),
            retry=RetryPolicy(max_attempts=3, base_delay=1.0, jitter="none"),
            breaker=breaker,
            budget=RetryBudget(BudgetPolicy()),
            hooks=[hook_of(recorder)],
        )
        outcomes = [S503, OK, S503, S503]

        def send(action: Send) -> Outcome:
            clock.advance(0.25)
            return outcomes.pop(0)

        for _ in range(2):
            with contextlib.suppress(IntegrationError):
                run_sync(engine.call("GET", T), send, clock.sleep)
        return [(type(e).__name__, *dataclasses.astuple(e)) for e in recorder.events]

    guarded = events_of(lambda recorder: recorder)
    assert "BreakerTransition" in {e[0] for e in guarded}
    assert events_of(lambda recorder: recorder.append) == guarded

    def broken(event: object) -> None:
        raise RuntimeError("hook bug")

    clock = ManualClock(100.0)
    recorder = Recorder()
    engine = CallEngine(clock=clock, hooks=[recorder.append])
    engine.hooks.append(broken)  # not through add_hook: still guarded
    with caplog.at_level(logging.WARNING, logger="integration_kit"):
        run_sync(engine.call(), lambda action: OK, clock.sleep)
    assert len(recorder) == 3
    assert len([r for r in caplog.records if "hook bug" in str(r.exc_info[1] if r.exc_info else "")]) == 3
