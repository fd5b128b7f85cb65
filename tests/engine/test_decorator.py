"""``resilient(...)`` around plain sync and async callables: the same engine, judged by an exception classifier."""

from __future__ import annotations

import random
from collections.abc import Callable

import anyio
import pytest

from integration_kit import ManualClock, Recorder, resilient
from integration_kit.errors import (
    CircuitOpenError,
    ConnectError,
    DeadlineExceeded,
    PermanentError,
    ReadTimeout,
    RetriesExhausted,
    TransientError,
)
from integration_kit.policies.breaker import CircuitBreaker, CircuitState
from integration_kit.policies.config import BreakerPolicy, RetryPolicy
from integration_kit.policies.outcome import OutcomeKind, Verdict

FAST = RetryPolicy(max_attempts=3, base_delay=1.0, jitter="none")


class Flaky:
    """Raises the scripted exceptions in turn, then returns "done"; counts its invocations."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0
        self.timeouts: list[float | None] = []

    def __call__(self, value: int, *, timeout: float | None = None) -> str:
        self.calls += 1
        self.timeouts.append(timeout)
        if self.failures:
            raise self.failures.pop(0)
        return f"done {value}"


def as_async(flaky: Flaky) -> Callable[..., object]:
    async def call(value: int, *, timeout: float | None = None) -> str:
        await anyio.lowlevel.checkpoint()
        return flaky(value, timeout=timeout)

    return call


def run(flavour: str, flaky: Flaky, value: int = 1, **options: object) -> object:
    """Wrap ``flaky`` (as is, or as a coroutine function) with ``resilient(**options)`` and call it once."""
    if flavour == "sync":
        return resilient(**options)(flaky)(value)  # type: ignore[arg-type]
    wrapped = resilient(**options)(as_async(flaky))  # type: ignore[arg-type]
    return anyio.run(wrapped, value, backend=flavour)  # type: ignore[arg-type]


FLAVOURS = ["sync", "asyncio", "trio"]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_connection_refused_is_retried_then_succeeds(flavour: str) -> None:
    clock, recorder = ManualClock(), Recorder()
    flaky = Flaky(ConnectionRefusedError(), ConnectionRefusedError())
    assert run(flavour, flaky, 7, retry=FAST, clock=clock, hooks=[recorder]) == "done 7"
    assert flaky.calls == 3
    assert clock.now() == pytest.approx(1.0 + 2.0)
    assert recorder.summary().retries == 2


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_timeout_is_retried_only_when_idempotent(flavour: str) -> None:
    flaky = Flaky(TimeoutError())
    with pytest.raises(ReadTimeout) as caught:
        run(flavour, flaky, retry=FAST, clock=ManualClock())
    assert isinstance(caught.value.__cause__, TimeoutError)
    assert flaky.calls == 1
    assert run(flavour, Flaky(TimeoutError()), retry=FAST, clock=ManualClock(), idempotent=True) == "done 1"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_unknown_exceptions_are_failures_not_retried(flavour: str) -> None:
    flaky = Flaky(KeyError("boom"))
    with pytest.raises(PermanentError) as caught:
        run(flavour, flaky, retry=FAST, clock=ManualClock(), idempotent=True)
    assert isinstance(caught.value.__cause__, KeyError)
    assert "boom" not in str(caught.value)  # the message names the type only: values may be sensitive
    assert flaky.calls == 1


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_custom_classifier_decides(flavour: str) -> None:
    class Throttled(Exception):
        pass

    class NotFound(Exception):
        pass

    def classifier(exc: Exception) -> OutcomeKind | Verdict | None:
        if isinstance(exc, Throttled):
            return Verdict.TRANSIENT
        if isinstance(exc, NotFound):
            return Verdict.REJECTED
        return None

    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=3, failure_rate_threshold=None), clock=ManualClock())
    options = {"retry": FAST, "clock": ManualClock(), "classifier": classifier, "idempotent": True, "breaker": breaker}
    assert run(flavour, Flaky(Throttled(), Throttled()), **options) == "done 1"
    with pytest.raises(PermanentError):
        run(flavour, Flaky(NotFound()), **options)
    assert breaker.state is CircuitState.CLOSED  # rejected: the partner is healthy, the request was wrong
    with pytest.raises(RetriesExhausted) as caught:
        run(flavour, Flaky(Throttled(), Throttled(), Throttled()), **options)
    assert isinstance(caught.value.last_error, TransientError)
    assert breaker.state is CircuitState.OPEN
    flaky = Flaky()
    with pytest.raises(CircuitOpenError):
        run(flavour, flaky, **options)
    assert flaky.calls == 0


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_the_remaining_deadline_is_passed_to_the_callable(flavour: str) -> None:
    clock = ManualClock()
    flaky = Flaky(ConnectError("refused"))
    run(flavour, flaky, retry=FAST, clock=clock, deadline=10.0, timeout_kwarg="timeout")
    assert flaky.timeouts == [10.0, 9.0]


def test_async_callables_are_bounded_by_the_deadline() -> None:
    @resilient(deadline=0.2, retry=FAST, idempotent=True, rng=random.Random(0))
    async def stalls() -> None:
        await anyio.sleep_forever()

    for backend in ("asyncio", "trio"):
        with pytest.raises(DeadlineExceeded):
            anyio.run(stalls, backend=backend)


def test_the_wrapper_keeps_the_callable_metadata() -> None:
    @resilient(name="sdk.fetch")
    def fetch(x: int) -> int:
        """Fetch a thing."""
        return x * 2

    assert fetch(21) == 42
    assert fetch.__name__ == "fetch"
    assert fetch.__doc__ == "Fetch a thing."
    assert fetch.engine.name == "sdk.fetch"  # type: ignore[attr-defined]
