"""``resilient(...)``: the call engine around any sync or async callable (SDK calls, gRPC stubs, queue publishes).

The wrapped callable is one attempt. What it returns is a success; what it raises is judged by an exception
classifier (exception -> :class:`~integration_kit.policies.outcome.OutcomeKind` or
:class:`~integration_kit.policies.outcome.Verdict`), so the engine can decide, exactly as for HTTP, whether to retry,
how long to wait, and what the circuit breaker and the retry budget count. A call that fails raises the typed error
of :mod:`integration_kit.errors`, with the callable's own exception as ``__cause__``.

Default judgement of an exception::

    ConnectionRefusedError                       CONNECT_ERROR    never reached the partner: retried
    TimeoutError (builtin)                       READ_TIMEOUT     retried only when ``idempotent``
    ConnectionError (other)                      CONNECTION_LOST  retried only when ``idempotent``
    integration_kit TransientError               TRANSIENT
    integration_kit ClientError                  REJECTED         not retried, not counted by the breaker
    anything else                                FAILURE          not retried (most likely a bug)
"""

from __future__ import annotations

import functools
import inspect
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar, cast

import anyio

from integration_kit.clock import AsyncClock, Clock
from integration_kit.engine.call import CallEngine, Send, run_async, run_sync
from integration_kit.errors import (
    AttemptError,
    ClientError,
    ConnectError,
    ConnectTimeout,
    PermanentError,
    TransientError,
)
from integration_kit.events import Hook
from integration_kit.policies.breaker import CircuitBreaker
from integration_kit.policies.budget import RetryBudget
from integration_kit.policies.config import BreakerPolicy, BudgetPolicy, Limits, RetryPolicy
from integration_kit.policies.outcome import Outcome, OutcomeKind, Verdict, classify

__all__ = ["ExceptionClassifier", "default_exception_classifier", "resilient"]

_P = ParamSpec("_P")
_R = TypeVar("_R")

ExceptionClassifier = Callable[[Exception], OutcomeKind | Verdict | None]
"""Judges an exception raised by an attempt; ``None`` defers to :func:`default_exception_classifier`."""


def resilient(
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    breaker: BreakerPolicy | CircuitBreaker | None = None,
    budget: BudgetPolicy | RetryBudget | None = None,
    limits: Limits | None = None,
    deadline: float | None = None,
    classifier: ExceptionClassifier | None = None,
    idempotent: bool = False,
    timeout_kwarg: str | None = None,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    hooks: Iterable[Hook] = (),
    engine: CallEngine | None = None,
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Make a sync or async callable resilient: each call is a logical call of the engine, each invocation an attempt.

    ``retry``, ``breaker``, ``budget``, ``limits`` and ``deadline`` are the engine's policies (a
    :class:`~integration_kit.policies.breaker.CircuitBreaker` or
    :class:`~integration_kit.policies.budget.RetryBudget` instance may be given to share it, or ``engine`` to share
    everything). ``idempotent`` says whether repeating a call that may have reached the partner is safe.
    ``timeout_kwarg`` names a keyword argument of the callable that receives what is left of the deadline (gRPC
    stubs take ``timeout=``); async callables are also bounded by ``anyio.fail_after``.
    Usable as ``@resilient(...)`` or ``resilient(...)(sdk.method)``.
    """

    def decorate(fn: Callable[_P, _R]) -> Callable[_P, _R]:
        call_name = name or getattr(fn, "__qualname__", None) or type(fn).__qualname__
        the_engine = engine or CallEngine(
            name=call_name,
            retry=retry,
            breaker=breaker
            if not isinstance(breaker, BreakerPolicy)
            else CircuitBreaker(breaker, name=call_name, clock=clock),
            budget=budget if not isinstance(budget, BudgetPolicy) else RetryBudget(budget),
            limits=limits,
            deadline=deadline,
            classifier=_judge,
            clock=clock,
            rng=rng,
            hooks=hooks,
        )
        attempts = _Attempts(call_name, classifier, timeout_kwarg)
        if inspect.iscoroutinefunction(fn):
            async_fn = cast(Callable[..., Awaitable[Any]], fn)
            the_clock = the_engine.clock
            sleep = the_clock.asleep if isinstance(the_clock, AsyncClock) else anyio.sleep

            @functools.wraps(fn)
            async def call_async(*args: Any, **kwargs: Any) -> Any:
                async def attempt(action: Send) -> Outcome:
                    try:
                        with anyio.fail_after(action.timeout):
                            return attempts.succeeded(await async_fn(*args, **attempts.kwargs(kwargs, action)))
                    except Exception as exc:
                        return attempts.failed(exc)

                calls = the_engine.call("CALL", call_name, idempotent=idempotent)
                return (await run_async(calls, attempt, sleep)).value

            call_async.engine = the_engine  # type: ignore[attr-defined]
            return cast(Callable[_P, _R], call_async)

        @functools.wraps(fn)
        def call_sync(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            def attempt(action: Send) -> Outcome:
                try:
                    return attempts.succeeded(fn(*args, **attempts.kwargs(kwargs, action)))
                except Exception as exc:
                    return attempts.failed(exc)

            calls = the_engine.call("CALL", call_name, idempotent=idempotent)
            return cast(_R, run_sync(calls, attempt, the_engine.clock.sleep).value)

        call_sync.engine = the_engine  # type: ignore[attr-defined]
        return call_sync

    return decorate


def default_exception_classifier(exc: Exception) -> OutcomeKind | Verdict:
    """The default judgement of an exception (see the module docstring)."""
    if isinstance(exc, (ConnectError, ConnectionRefusedError)):
        return OutcomeKind.CONNECT_ERROR
    if isinstance(exc, ConnectTimeout):
        return OutcomeKind.CONNECT_TIMEOUT
    if isinstance(exc, TransientError):
        return Verdict.TRANSIENT
    if isinstance(exc, ClientError):
        return Verdict.REJECTED
    if isinstance(exc, TimeoutError):
        return OutcomeKind.READ_TIMEOUT
    if isinstance(exc, ConnectionError):
        return OutcomeKind.CONNECTION_LOST
    return Verdict.FAILURE


@dataclass(frozen=True, slots=True)
class _Judged(Outcome):
    """An outcome that carries the verdict the exception classifier gave it."""

    verdict: Verdict = Verdict.FAILURE


def _judge(outcome: Outcome) -> Verdict:
    """The engine's classifier for wrapped callables: a carried verdict, else the default by outcome kind."""
    if type(outcome) is _Judged:
        return outcome.verdict
    return classify(outcome)


class _Attempts:
    """Turns what one invocation of a wrapped callable did into an :class:`Outcome` (shared by sync and async)."""

    __slots__ = ("classifier", "name", "timeout_kwarg")

    def __init__(self, name: str, classifier: ExceptionClassifier | None, timeout_kwarg: str | None) -> None:
        self.name = name
        self.classifier = classifier
        self.timeout_kwarg = timeout_kwarg

    def kwargs(self, kwargs: dict[str, Any], action: Send) -> dict[str, Any]:
        """The keyword arguments of this attempt: with the remaining deadline, when the callable takes one."""
        if self.timeout_kwarg is None or action.timeout is None:
            return kwargs
        return {**kwargs, self.timeout_kwarg: action.timeout}

    def succeeded(self, value: object) -> Outcome:
        """The outcome of an invocation that returned ``value``."""
        return Outcome(OutcomeKind.SUCCESS, value=value)

    def failed(self, exc: Exception) -> Outcome:
        """The outcome of an invocation that raised ``exc``, as the classifier judges it."""
        judged = self.classifier(exc) if self.classifier is not None else None
        if judged is None:
            judged = default_exception_classifier(exc)
        if isinstance(judged, OutcomeKind) and judged is not OutcomeKind.ERROR:
            return Outcome(judged, error=exc)  # the engine raises the kind's typed error from exc
        verdict = judged if isinstance(judged, Verdict) else Verdict.FAILURE
        if verdict is Verdict.SUCCESS:
            return Outcome(OutcomeKind.SUCCESS, error=exc)
        error: AttemptError
        if isinstance(exc, AttemptError):
            error = exc
        else:
            cls = TransientError if verdict is Verdict.TRANSIENT else PermanentError
            error = cls(f"{self.name} raised {type(exc).__name__}")
            error.__cause__ = exc
        return _Judged(OutcomeKind.ERROR, error=error, verdict=verdict)
