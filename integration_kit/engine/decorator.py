"""``resilient(...)``: the call engine around any sync or async callable (SDK calls, gRPC stubs, queue publishes).

The wrapped callable is one attempt. What it returns is a success; what it raises is judged by an exception
classifier (exception -> :class:`~integration_kit.policies.outcome.OutcomeKind` or
:class:`~integration_kit.policies.outcome.Verdict`), so the engine can decide, exactly as for HTTP, whether to retry,
how long to wait, and what the circuit breaker and the retry budget count. A call that fails raises the typed error
of :mod:`integration_kit.errors`, with the callable's own exception as ``__cause__``.

What can be wrapped: a plain function (the wrapper is plain too); an ``async def`` function, a partial of one or an
object with ``async def __call__`` (the wrapper is a coroutine function, each attempt bounded by
``anyio.fail_after``); a plain callable that *returns* an awaitable, such as a grpc.aio stub (the first attempt
that returns one hands the call to a coroutine, which the caller awaits: the awaitable is awaited as the attempt,
under the same policies, never taken for a success). A generator or async generator function, or an object whose
``__call__`` is one, is refused with :class:`TypeError` when decorating: its values would be produced after the
engine had judged the call.

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
from integration_kit.engine.call import Action, CallEngine, CallGenerator, Send, run_async
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
        _refuse_generators(fn)
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
        the_clock = the_engine.clock
        sleep = the_clock.asleep if isinstance(the_clock, AsyncClock) else anyio.sleep

        async def attempt_async(action: Send, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Outcome:
            try:
                with anyio.fail_after(action.timeout):
                    result = fn(*args, **attempts.kwargs(kwargs, action))
                    if inspect.isawaitable(result):
                        result = await result
                    return attempts.succeeded(result)
            except Exception as exc:
                return attempts.failed(exc)

        if _is_async(fn):

            @functools.wraps(fn)
            async def call_async(*args: Any, **kwargs: Any) -> Any:
                calls = the_engine.call("CALL", call_name, idempotent=idempotent)
                return (await run_async(calls, functools.partial(attempt_async, args=args, kwargs=kwargs), sleep)).value

            call_async.engine = the_engine  # type: ignore[attr-defined]
            return cast(Callable[_P, _R], call_async)

        @functools.wraps(fn)
        def call_sync(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            calls = the_engine.call("CALL", call_name, idempotent=idempotent)
            send = functools.partial(attempt_async, args=args, kwargs=kwargs)
            invoke = functools.partial(_invoke, fn, attempts, args, kwargs)
            return cast(_R, _drive_sync(calls, invoke, the_engine.clock.sleep, attempts, send, sleep))

        call_sync.engine = the_engine  # type: ignore[attr-defined]
        return call_sync

    return decorate


def _call_target(fn: Callable[..., Any]) -> Callable[..., Any]:
    """What runs when ``fn`` is called: the function itself, or the ``__call__`` of a callable object."""
    if inspect.isfunction(fn) or inspect.ismethod(fn) or isinstance(fn, functools.partial):
        return fn
    target: Callable[..., Any] = type(fn).__call__
    return target


def _is_async(fn: Callable[..., Any]) -> bool:
    """Whether calling ``fn`` starts a coroutine (async def, a partial of one, an object with ``async __call__``)."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(_call_target(fn))


def _refuse_generators(fn: Callable[..., Any]) -> None:
    """A generator is not one attempt: each value would be produced after the policies had judged the call."""
    target = _call_target(fn)
    if not callable(fn):
        raise TypeError(f"resilient() wraps a callable, got {type(fn).__name__}")
    for candidate in (fn, target):
        if inspect.isgeneratorfunction(candidate) or inspect.isasyncgenfunction(candidate):
            raise TypeError(
                f"resilient() cannot drive {getattr(fn, '__qualname__', type(fn).__name__)}: it is a generator, "
                "so its values would arrive after the call was judged; wrap a function that consumes it instead"
            )


def _invoke(
    fn: Callable[..., Any], attempts: _Attempts, args: tuple[Any, ...], kwargs: dict[str, Any], action: Send
) -> Any:
    """One attempt: call ``fn`` with the remaining deadline where it takes one."""
    return fn(*args, **attempts.kwargs(kwargs, action))


def _drive_sync(
    calls: CallGenerator,
    invoke: Callable[[Send], Any],
    sleep_sync: Callable[[float], None],
    attempts: _Attempts,
    send_async: Callable[[Send], Awaitable[Outcome]],
    sleep_async: Callable[[float], Awaitable[None]],
) -> Any:
    """Drive a call of a plain callable on this thread. If an attempt returns an awaitable (an async API behind a
    plain callable, such as a grpc.aio stub), hand the call over to :func:`_finish_async` and return its coroutine,
    so the awaitable is awaited under the same policies instead of being taken for a success."""
    owned = True
    try:
        action = next(calls)
        while True:
            if type(action) is not Send:
                sleep_sync(action.seconds)  # type: ignore[union-attr]
                action = calls.send(None)
                continue
            try:
                result = invoke(action)
            except Exception as exc:
                action = calls.send(attempts.failed(exc))
                continue
            if inspect.isawaitable(result):
                owned = False  # the coroutine owns (and closes) the call from here
                return _finish_async(calls, action, result, attempts, send_async, sleep_async)
            action = calls.send(attempts.succeeded(result))
    except StopIteration as done:
        return done.value.value
    finally:
        if owned:
            calls.close()


async def _finish_async(
    calls: CallGenerator,
    action: Send,
    pending: Awaitable[Any],
    attempts: _Attempts,
    send: Callable[[Send], Awaitable[Outcome]],
    sleep: Callable[[float], Awaitable[None]],
) -> Any:
    """The rest of a call whose attempt returned an awaitable: await it within the attempt's timeout, give the
    engine its outcome, and drive the remaining attempts asynchronously. Closes ``calls`` when done."""
    try:
        try:
            with anyio.fail_after(action.timeout):
                outcome = attempts.succeeded(await pending)
        except Exception as exc:
            outcome = attempts.failed(exc)
        try:
            next_action = calls.send(outcome)
        except StopIteration as done:
            return done.value.value
        return (await run_async(_forward(calls, next_action), send, sleep)).value
    finally:
        calls.close()


def _forward(calls: CallGenerator, action: Action) -> CallGenerator:
    """A call generator that yields ``action`` first, then forwards ``calls`` (already started) to its end."""
    while True:
        reply = yield action
        try:
            action = calls.send(reply)
        except StopIteration as done:
            result: Outcome = done.value
            return result


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
