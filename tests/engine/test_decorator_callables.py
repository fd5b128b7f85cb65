"""``@resilient`` on callables that are not plain functions (issue 10, item 10).

Before: on a generator, an async generator, an object with ``async def __call__``, or a plain callable that returns
an awaitable (grpc.aio stubs), the decorator made one attempt, let the raw error through when the result was
consumed, and recorded a success on the breaker. Now what can be driven is driven under the policies (an awaitable
result is awaited as the attempt) and the rest is refused with ``TypeError`` when decorating.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any

import anyio
import pytest

from integration_kit import CircuitBreaker, ManualClock, Recorder, RetryPolicy, resilient
from integration_kit.errors import CircuitOpenError, ConnectError
from integration_kit.events import CircuitState
from integration_kit.policies.config import BreakerPolicy

NO_WAIT = RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0, jitter="none")


def test_a_generator_function_is_refused_when_decorating() -> None:
    def pages() -> Iterator[int]:
        yield 1

    with pytest.raises(TypeError, match="generator"):
        resilient()(pages)


def test_an_async_generator_function_is_refused_when_decorating() -> None:
    async def pages() -> AsyncIterator[int]:
        yield 1

    with pytest.raises(TypeError, match="generator"):
        resilient()(pages)


def test_an_object_whose_call_is_a_generator_is_refused() -> None:
    class Pages:
        def __call__(self) -> Iterator[int]:
            yield 1

    with pytest.raises(TypeError, match="generator"):
        resilient()(Pages())


def test_a_non_callable_is_refused() -> None:
    with pytest.raises(TypeError, match="callable"):
        resilient()(42)  # type: ignore[arg-type]


class FlakyStub:
    """A grpc.aio-like stub: a plain ``__call__`` that returns an awaitable; the first ``failures`` calls fail."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, request: str) -> Awaitable[str]:
        self.calls += 1
        failing = self.calls <= self.failures

        async def call() -> str:
            await anyio.sleep(0)
            if failing:
                raise ConnectionRefusedError("partner down")
            return f"reply to {request}"

        return call()


class AsyncCallable:
    """An object with ``async def __call__`` that fails ``failures`` times."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self, request: str) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionRefusedError("partner down")
        return f"reply to {request}"


@pytest.mark.parametrize("make", [FlakyStub, AsyncCallable], ids=["returns-awaitable", "async-call"])
def test_an_awaitable_attempt_is_retried_under_the_policies(make: Any) -> None:
    target = make(failures=2)
    recorder = Recorder()
    wrapped = resilient(name="stub", retry=NO_WAIT, breaker=None, hooks=[recorder], clock=ManualClock())(target)

    async def main() -> Any:
        return await wrapped("ping")

    assert anyio.run(main) == "reply to ping"
    assert target.calls == 3
    summary = recorder.summary()
    assert summary.attempts == 3
    assert summary.succeeded == 1


@pytest.mark.parametrize("make", [FlakyStub, AsyncCallable], ids=["returns-awaitable", "async-call"])
def test_an_awaitable_that_keeps_failing_raises_the_typed_error_and_counts_as_failure(make: Any) -> None:
    target = make(failures=99)
    clock = ManualClock()
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=1), name="stub", clock=clock)
    wrapped = resilient(name="stub", retry=NO_WAIT, breaker=breaker, clock=clock)(target)

    async def main() -> Any:
        return await wrapped("ping")

    with pytest.raises(CircuitOpenError) as caught:  # the first failure opened it; the retry was rejected
        anyio.run(main)
    assert isinstance(caught.value.__cause__, ConnectError)  # the attempt's own typed error, from the raw one
    assert isinstance(caught.value.__cause__.__cause__, ConnectionRefusedError)
    assert target.calls == 1
    assert breaker.state is CircuitState.OPEN  # a failure was recorded, not a success


def test_a_plain_callable_returning_a_value_stays_synchronous() -> None:
    calls = []

    def plain(x: int) -> int:
        calls.append(x)
        return x * 2

    wrapped = resilient(retry=NO_WAIT, clock=ManualClock())(plain)
    assert wrapped(21) == 42
    assert calls == [21]
