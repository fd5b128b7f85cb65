"""Clocks, outcomes and their classification, and the error tree."""

from __future__ import annotations

import builtins
import time

import anyio
import pytest

import integration_kit.errors as errors
from integration_kit.clock import AsyncClock, Clock, ManualClock, SystemClock
from integration_kit.policies.outcome import Outcome, OutcomeKind, Verdict, classify


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(5.0)
    assert clock.now() == 5.0
    clock.sleep(2.0)
    assert clock.advance(1.5) == 8.5
    clock.sleep(-1)
    clock.set(10.0)
    assert clock.now() == 10.0
    with pytest.raises(ValueError, match="backwards"):
        clock.set(9.0)
    with pytest.raises(ValueError, match="seconds must be >= 0"):
        clock.advance(-1)
    assert repr(clock) == "ManualClock(now=10.0)"
    assert isinstance(clock, AsyncClock)


def test_manual_clock_async_sleep_advances_without_waiting() -> None:
    clock = ManualClock()

    async def main() -> None:
        await clock.asleep(100)

    began = time.monotonic()
    anyio.run(main)
    assert clock.now() == 100
    assert time.monotonic() - began < 5


def test_system_clock_is_monotonic_and_sleeps() -> None:
    clock = SystemClock()
    assert isinstance(clock, Clock)
    a = clock.now()
    clock.sleep(0.001)
    clock.sleep(-1)
    anyio.run(clock.asleep, 0.001)
    assert clock.now() > a
    assert repr(clock) == "SystemClock()"


@pytest.mark.parametrize(
    ("outcome", "verdict"),
    [
        (Outcome(OutcomeKind.SUCCESS), Verdict.SUCCESS),
        (Outcome(OutcomeKind.STATUS, status=204), Verdict.SUCCESS),
        (Outcome(OutcomeKind.STATUS, status=503), Verdict.TRANSIENT),
        (Outcome(OutcomeKind.STATUS, status=429), Verdict.TRANSIENT),
        (Outcome(OutcomeKind.STATUS, status=408), Verdict.TRANSIENT),
        (Outcome(OutcomeKind.STATUS, status=501), Verdict.FAILURE),
        (Outcome(OutcomeKind.STATUS, status=404), Verdict.REJECTED),
        (Outcome(OutcomeKind.STATUS, status=401), Verdict.REJECTED),
        (Outcome(OutcomeKind.STATUS, status=302), Verdict.REJECTED),
        (Outcome(OutcomeKind.READ_TIMEOUT), Verdict.TRANSIENT),
        (Outcome(OutcomeKind.CONNECT_ERROR), Verdict.TRANSIENT),
        (Outcome(OutcomeKind.ERROR), Verdict.FAILURE),
    ],
)
def test_default_classification(outcome: Outcome, verdict: Verdict) -> None:
    assert classify(outcome) is verdict


def test_client_errors_never_count_as_breaker_failures() -> None:
    for status in (400, 401, 403, 404, 409, 422):
        assert not classify(Outcome(OutcomeKind.STATUS, status=status)).is_failure
    for status in (408, 429, 500, 503):
        assert classify(Outcome(OutcomeKind.STATUS, status=status)).is_failure


def test_may_have_been_processed() -> None:
    assert not Outcome(OutcomeKind.CONNECT_ERROR).may_have_been_processed
    assert not Outcome(OutcomeKind.CONNECT_TIMEOUT).may_have_been_processed
    assert not Outcome(OutcomeKind.POOL_TIMEOUT).may_have_been_processed
    assert not Outcome(OutcomeKind.STATUS, status=429).may_have_been_processed
    assert Outcome(OutcomeKind.STATUS, status=503).may_have_been_processed
    assert Outcome(OutcomeKind.READ_TIMEOUT).may_have_been_processed


def test_error_tree_shape() -> None:
    assert issubclass(errors.ConfigurationError, ValueError)
    assert issubclass(errors.ReadTimeout, builtins.TimeoutError)
    assert issubclass(errors.DeadlineExceeded, errors.GaveUp)
    assert issubclass(errors.CircuitOpenError, errors.CallRejected)
    assert issubclass(errors.AuthError, errors.ClientError)
    assert issubclass(errors.ClientError, errors.PermanentError)
    assert issubclass(errors.RateLimited, errors.TransientError)
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, errors.IntegrationError), name
            assert name in errors.__doc__, f"{name} is missing from the drawn tree"  # type: ignore[operator]


def test_error_for_status_picks_the_most_specific_class() -> None:
    assert isinstance(errors.error_for_status(429, retryable=True, retry_after=3), errors.RateLimited)
    assert isinstance(errors.error_for_status(503, retryable=True, retry_after=3), errors.RateLimited)
    assert isinstance(errors.error_for_status(503, retryable=True), errors.ServerError)
    assert isinstance(errors.error_for_status(401, retryable=False), errors.AuthError)
    assert isinstance(errors.error_for_status(404, retryable=False), errors.ClientError)
    assert isinstance(errors.error_for_status(501, retryable=False), errors.UpstreamError)
    err = errors.error_for_status(404, retryable=False, headers={"x": "y"}, body_snippet="nope")
    assert err.status == 404
    assert err.body_snippet == "nope"  # type: ignore[attr-defined]


def test_error_message_carries_context() -> None:
    history = [errors.AttemptRecord(1, "status", 503, 0.1), errors.AttemptRecord(2, "status", 503, 0.1)]
    err = errors.RetriesExhausted("2 attempts failed", last_error=errors.ServerError("HTTP 503", status=503))
    err.with_context(integration="payments", method="GET", url="https://api.example/x?token=***", attempts=history)
    assert str(err) == "[payments] 2 attempts failed (GET https://api.example/x?token=***) after 2 attempts"
    assert err.status == 503
    assert err.with_context(integration="other").integration == "payments"


def test_wall_clock_reads_epoch_seconds_and_sleeps_like_the_system_clock() -> None:
    from integration_kit.clock import WallClock

    clock = WallClock()
    assert isinstance(clock, SystemClock)
    assert abs(clock.now() - time.time()) < 1.0
    assert repr(clock) == "WallClock()"


# -- pinned by mutation testing (tests/mutation.py) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "verdict"), [(200, Verdict.SUCCESS), (299, Verdict.SUCCESS), (300, Verdict.REJECTED)]
)
def test_classify_the_2xx_edges(status: int, verdict: Verdict) -> None:
    assert classify(Outcome(OutcomeKind.STATUS, status=status)) is verdict


@pytest.mark.parametrize(
    ("status", "verdict"), [(499, Verdict.REJECTED), (500, Verdict.FAILURE), (501, Verdict.FAILURE)]
)
def test_a_5xx_outside_retry_on_status_is_a_failure_from_500(status: int, verdict: Verdict) -> None:
    assert classify(Outcome(OutcomeKind.STATUS, status=status), frozenset()) is verdict
