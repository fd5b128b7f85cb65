"""The call engine: one state machine per logical call, composing every policy, with no I/O.

:meth:`CallEngine.call` returns a generator. It yields actions, :class:`Send` (make attempt N, within this
much time) and :class:`Wait` (pause this long), and is sent back an
:class:`~integration_kit.policies.outcome.Outcome` after each ``Send`` (``None`` after a ``Wait``). It returns the
successful outcome, or raises the error the call ends with. The order of the checks for one call::

    rate limit -> quota pacer -> bulkhead -> [ deadline -> breaker -> attempt -> classify -> breaker/budget record
                                (a status in the breaker's ignore_statuses: not recorded by the breaker)
                                -> keyed 409 with Retry-After ("in flight") made transient
                                -> retry decision (attempts, safety, Retry-After/backoff, deadline) -> budget
                                -> wait ] ...

The sync client, the async client and the simulator are thin drivers of the same generator
(:func:`run_sync`, :func:`run_async`, and the simulator's event loop), so they cannot disagree about behaviour.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Callable, Collection, Iterable
from typing import NamedTuple

from integration_kit.clock import Clock, SystemClock
from integration_kit.engine.actions import Action, CallGenerator, Send, Wait, run_async, run_sync
from integration_kit.errors import (
    AttemptError,
    AttemptRecord,
    BudgetExhausted,
    BulkheadFull,
    CircuitOpenError,
    ConnectError,
    ConnectionLost,
    ConnectTimeout,
    DeadlineExceeded,
    IntegrationError,
    PoolTimeout,
    RateLimited,
    RateLimitExceeded,
    ReadTimeout,
    RetriesExhausted,
    UpstreamError,
    WriteTimeout,
    error_for_status,
)
from integration_kit.events import (
    AttemptFinished,
    AttemptStarted,
    BreakerTransition,
    BudgetDepleted,
    CallFinished,
    Event,
    EventRow,
    Hook,
    PacingWait,
    Recorder,
    RejectedCall,
    RetryScheduled,
)
from integration_kit.events import emit as emit_event
from integration_kit.policies.breaker import CircuitBreaker, Permit, Transition
from integration_kit.policies.budget import RetryBudget
from integration_kit.policies.config import IDEMPOTENT_METHODS, UNSET, Limits, RetryPolicy, Unset
from integration_kit.policies.limits import Bulkhead, QuotaPacer, RateLimiter
from integration_kit.policies.outcome import Classifier, Outcome, OutcomeKind, Verdict, classify
from integration_kit.policies.retry import decide_retry

__all__ = [
    "Action",
    "CallEngine",
    "CallGenerator",
    "Send",
    "Wait",
    "error_for_outcome",
    "new_idempotency_key",
    "run_async",
    "run_sync",
]

#: How often a call queued for a bulkhead slot looks again (seconds).
BULKHEAD_POLL = 0.005
#: A queue wait shorter than this (seconds) is not waited: added to a clock reading of about 1000 s or more, it
#: would not move the clock, and the queue would poll forever.
_TICK = 1e-6


_FIRST = Send(1, None, None)  # the first attempt of a call with no deadline and no key: built once
_SUCCESS = OutcomeKind.SUCCESS
_STATUS = OutcomeKind.STATUS
# Enum members as module constants: ``Verdict.X`` goes through EnumType.__getattr__'s slow lookup (CPython 3.11)
_PASSED = Verdict.SUCCESS
_TRANSIENT = Verdict.TRANSIENT
_FAILED = Verdict.FAILURE
_REJECTED = Verdict.REJECTED


def new_idempotency_key() -> str:
    """A fresh idempotency key: a random UUID4, as the IETF Idempotency-Key draft recommends."""
    return str(uuid.uuid4())


class CallEngine:
    """The policies of one integration, shared by all its calls, and the state machine that applies them.

    Every argument is optional: with none, a call is a single attempt with no deadline. Decisions read time only
    from ``clock`` and randomness only from ``rng``, so a seeded engine on a
    :class:`~integration_kit.clock.ManualClock` is deterministic.
    """

    def __init__(
        self,
        *,
        name: str = "default",
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        budget: RetryBudget | None = None,
        limits: Limits | None = None,
        deadline: float | None = None,
        classifier: Classifier | None = None,
        idempotency_methods: Collection[str] = (),
        key_factory: Callable[[], str] = new_idempotency_key,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        hooks: Iterable[Hook] = (),
        pacer: QuotaPacer | None = None,
    ) -> None:
        if deadline is not None and not deadline > 0:
            raise ValueError(f"CallEngine.deadline must be > 0 or None, got {deadline!r}")
        self.name = name
        self.retry = retry or RetryPolicy()
        self.breaker = breaker
        self.budget = budget
        self.limits = limits or Limits()
        self.deadline = deadline
        self.clock: Clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.hooks: list[Hook] = list(hooks)
        self.idempotency_methods = frozenset(m.upper() for m in idempotency_methods)
        self.key_factory = key_factory
        self.classifier: Classifier | None = classifier  # None: the default, classify() with each call's policy
        self.bulkhead = Bulkhead(self.limits.max_concurrent) if self.limits.max_concurrent else None
        self.rate_limiter = (
            RateLimiter(self.limits.rate, self.limits.burst, clock=self.clock) if self.limits.rate else None
        )
        self.pacer = None if pacer is None else pacer.bind(self.hooks)  # the partner's quota; None: not paced
        self._single = RetryPolicy.disabled()
        self._ids = itertools.count(1)
        self._record = self._row_sink()
        if breaker is not None:
            breaker.add_listener(self._on_transition)

    def add_hook(self, hook: Hook) -> None:
        """Send every later event to ``hook`` as well."""
        self.hooks.append(hook)
        self._record = self._row_sink()

    def emit(self, event: Event) -> None:
        """Hand ``event`` to every hook; a hook that raises is logged and skipped, never breaks the call."""
        emit_event(self.hooks, event)

    def _row_sink(self) -> Callable[[EventRow], None]:
        """Where the state machine hands its events, as rows ``(event class, *fields)``: a tuple is several times
        cheaper to build than a frozen event. A :class:`~integration_kit.events.Recorder` that is the only hook
        keeps the rows as they are (its own deque's ``append``, which cannot fail, so no guard) and builds the
        events when they are read; any other hooks get the event, built here, through :meth:`emit`."""
        hooks = self.hooks
        if len(hooks) == 1 and isinstance(hooks[0], Recorder):
            return hooks[0].append
        return self._emit_row

    def _emit_row(self, row: EventRow) -> None:
        emit_event(self.hooks, row[0](*row[1:]))

    def _on_transition(self, t: Transition) -> None:
        if self.hooks:
            self.emit(BreakerTransition(t.time, self.name, 0, t.breaker, t.old.value, t.new.value, t.reason))

    def call(
        self,
        method: str = "CALL",
        target: str = "",
        *,
        idempotent: bool | None = None,
        idempotency_key: str | None = None,
        deadline: float | Unset | None = UNSET,
        retry: bool | RetryPolicy = True,
    ) -> CallGenerator:
        """The state machine of one logical call (see the module docstring for the protocol).

        ``target`` must already be redacted: it goes into events and errors. ``idempotent`` defaults to what RFC
        9110 says of ``method``; a call whose method is in ``idempotency_methods`` gets a generated key unless
        one is given, and a keyed call is safe to repeat. ``deadline`` and ``retry`` override the engine's for
        this call (``retry=False``: one attempt).
        """
        method = method.upper()
        if idempotency_key is None and method in self.idempotency_methods:
            idempotency_key = self.key_factory()
        safe = (method in IDEMPOTENT_METHODS if idempotent is None else idempotent) or idempotency_key is not None
        policy = self.retry if retry is True else self._single if retry is False else retry
        limit = self.deadline if deadline is UNSET else deadline
        return self._run(method, target, safe, idempotency_key, limit, policy)

    def _run(  # noqa: C901, PLR0912, PLR0915 - one state machine reads best as one function
        self,
        method: str,
        target: str,
        safe: bool,
        key: str | None,
        limit: float | None,
        policy: RetryPolicy,
    ) -> CallGenerator:
        clock = self.clock
        hooks = self.hooks
        emit = self._record  # takes rows: (event class, *fields)
        name = self.name
        call_id = next(self._ids)
        start = clock.now()
        attempt = 0
        history: list[AttemptRecord] = []
        status: int | None = None

        # Admission: the rate limiter, then the bulkhead, each with a bounded wait (counted in the deadline).
        queued = False
        if self.rate_limiter is not None:
            waited = 0.0
            while (pause := self.rate_limiter.try_acquire()) > 0:
                if waited + pause > self.limits.max_wait or (limit is not None and waited + pause >= limit):
                    raise self._reject(
                        _Call(method, target, call_id, start, attempt, status, history),
                        RateLimitExceeded("client-side rate limit reached"),
                        "rate_limited",
                    )
                waited += pause
                queued = True
                yield Wait(pause)
        if (pacer := self.pacer) is not None:  # the partner's quota: wait for its reset in the deadline, or fail
            paced = 0.0
            while (pause := pacer.try_acquire()) > 0:
                fits = limit is None or paced + pause < limit
                if hooks:
                    emit((PacingWait, clock.now(), name, call_id, pause, pacer.stats().remaining, fits))
                if not fits:
                    out = RateLimited(f"paced: the quota resets in {pause:.3g}s, past the deadline", retry_after=pause)
                    call = _Call(method, target, call_id, start, attempt, status, history)
                    raise self._reject(call, out, "quota_paced")
                paced += pause
                queued = True
                yield Wait(pause)
        bulkhead = self.bulkhead
        if bulkhead is not None:
            queued_since = clock.now()
            while not bulkhead.try_acquire():
                left = self.limits.max_wait - (clock.now() - queued_since)
                if left <= _TICK or (limit is not None and clock.now() - start >= limit):
                    full = BulkheadFull(f"{bulkhead.max_concurrent} calls already in flight")
                    raise self._reject(
                        _Call(method, target, call_id, start, attempt, status, history), full, "bulkhead_full"
                    )
                queued = True
                yield Wait(min(BULKHEAD_POLL, left))
        breaker = self.breaker
        ignored = breaker.policy.ignore_statuses if breaker is not None else None
        budget = self.budget
        classifier = self.classifier
        last_error: AttemptError | None = None
        previous_delay: float | None = None
        began = clock.now() if queued else start  # the first attempt gets what the queue left of the deadline
        try:
            while True:
                attempt += 1
                if attempt > 1:
                    began = clock.now()
                remaining: float | None = None
                if limit is not None:
                    remaining = limit - (began - start)
                    if remaining <= 0:
                        late = DeadlineExceeded(f"deadline of {limit}s passed", last_error=last_error)
                        raise self._fail(  # attempt - 1: this one was never sent
                            _Call(method, target, call_id, start, attempt - 1, status, history), late, last_error
                        )
                permit: Permit | None = None
                if breaker is not None:
                    try:
                        permit = breaker.acquire()
                    except CircuitOpenError as exc:
                        attempt -= 1
                        raise self._reject(
                            _Call(method, target, call_id, start, attempt, status, history),
                            exc,
                            "circuit_open",
                            last_error,
                        ) from last_error
                if hooks:  # ``began`` is this instant's reading: nothing has waited since
                    emit((AttemptStarted, began, name, call_id, attempt, method, target, remaining, key))
                recorded = False
                try:
                    try:
                        outcome = yield (
                            _FIRST
                            if attempt == 1 and remaining is None and key is None
                            else Send(attempt, remaining, key)
                        )
                    except IntegrationError as refused:  # the driver refused to go on (an unsafe redirect)
                        raise self._fail(
                            _Call(method, target, call_id, start, attempt, status, history), refused
                        ) from refused.__cause__
                    now = clock.now()  # one reading for the attempt's end, its events and the retry decision
                    duration = now - began
                    if outcome is None:
                        raise RuntimeError("the driver must send an Outcome after a Send action")
                    if classifier is None:
                        kind = outcome.kind
                        if kind is _SUCCESS or (kind is _STATUS and 200 <= (outcome.status or 0) < 300):
                            verdict = _PASSED
                        else:
                            verdict = classify(outcome, policy.retry_on_status)
                    else:
                        verdict = classifier(outcome)
                    if permit is not None:
                        if ignored and outcome.status in ignored:
                            permit.release()  # the policy's ignore_statuses: neither a failure nor a success
                        elif verdict is _TRANSIENT or verdict is _FAILED:
                            permit.record_failure(duration)
                        else:
                            permit.record_success(duration)
                    recorded = True
                finally:
                    if permit is not None and not recorded:
                        permit.release()  # cancelled or broken driver: free a half-open slot, count nothing
                failed = verdict is _TRANSIENT or verdict is _FAILED
                if budget is not None:
                    if failed:
                        budget.record_failure()
                    else:
                        budget.record_success()
                if verdict is _REJECTED and key is not None and _in_flight(outcome):
                    # An idempotency server's "in flight" 409: an earlier attempt of this key still runs. The
                    # partner is healthy (breaker and budget saw a refusal), and the key makes it safe to ask again
                    # after its Retry-After, when the first attempt's stored response will be replayed.
                    verdict = _TRANSIENT
                status = outcome.status
                if hooks:
                    emit(
                        (
                            AttemptFinished,
                            now,
                            name,
                            call_id,
                            attempt,
                            method,
                            target,
                            outcome.kind._value_,  # the enum's value without its descriptor (hot path)
                            status,
                            duration,
                            verdict._value_,
                        )
                    )
                if verdict is _PASSED:
                    if hooks:
                        emit(
                            (
                                CallFinished,
                                now,
                                name,
                                call_id,
                                method,
                                target,
                                True,
                                "success",
                                status,
                                attempt,
                                now - start,
                            )
                        )
                    return outcome
                error = error_for_outcome(outcome, verdict)
                history.append(AttemptRecord(attempt, outcome.kind._value_, status, duration, type(error).__name__))
                last_error = error
                if verdict is _REJECTED and outcome.should_retry is not True:  # True: see decide_retry
                    raise self._fail(_Call(method, target, call_id, start, attempt, status, history), error)
                decision = decide_retry(
                    policy,
                    attempt=attempt,
                    outcome=outcome,
                    verdict=verdict,
                    safe_to_repeat=safe,
                    elapsed=now - start,
                    deadline=limit,
                    rng=self.rng,
                    previous_delay=previous_delay,
                )
                if not decision.retry:
                    gave_up: IntegrationError = error
                    if decision.reason == "deadline":
                        gave_up = DeadlineExceeded(
                            f"the next attempt could not start before the deadline of {limit}s",
                            last_error=error,
                        )
                    elif decision.reason == "max_attempts" and attempt > 1:
                        gave_up = RetriesExhausted(f"{attempt} attempts failed", last_error=error)
                    raise self._fail(
                        _Call(method, target, call_id, start, attempt, status, history),
                        gave_up,
                        error if gave_up is not error else None,
                    )
                if budget is not None and not budget.can_retry():
                    if hooks:
                        emit((BudgetDepleted, now, name, call_id, attempt, budget.tokens))
                    raise self._fail(
                        _Call(method, target, call_id, start, attempt, status, history),
                        BudgetExhausted("retry budget exhausted", last_error=error),
                        error,
                    )
                if hooks:
                    emit((RetryScheduled, now, name, call_id, attempt, decision.delay, decision.reason))
                previous_delay = decision.delay
                if decision.delay > 0:
                    yield Wait(decision.delay)
        finally:
            if bulkhead is not None:
                bulkhead.release()

    def _fail(self, call: _Call, error: IntegrationError, cause: BaseException | None = None) -> IntegrationError:
        """Give ``error`` the call's context, emit the call's end, and return it for raising."""
        error.with_context(integration=self.name, method=call.method, url=call.target or None, attempts=call.history)
        if cause is not None and error.__cause__ is None:
            error.__cause__ = cause
        if self.hooks:
            now = self.clock.now()
            status = getattr(error, "status", None) or call.status
            self._record(
                (
                    CallFinished,
                    now,
                    self.name,
                    call.call_id,
                    call.method,
                    call.target,
                    False,
                    type(error).__name__,
                    status,
                    call.attempt,
                    now - call.start,
                )
            )
        return error

    def _reject(
        self, call: _Call, error: IntegrationError, reason: str, cause: BaseException | None = None
    ) -> IntegrationError:
        """Like :meth:`_fail`, for a call (or its next attempt) refused before reaching the network."""
        if self.hooks:
            self._record((RejectedCall, self.clock.now(), self.name, call.call_id, reason))
        return self._fail(call, error, cause)


class _Call(NamedTuple):
    """What the error paths need to know of one logical call."""

    method: str
    target: str
    call_id: int
    start: float
    attempt: int
    status: int | None
    history: list[AttemptRecord]


def _in_flight(outcome: Outcome) -> bool:
    """Whether ``outcome`` is an idempotency server's "request in flight" answer: 409 with a Retry-After."""
    return outcome.status == 409 and outcome.retry_after is not None


_KIND_ERRORS: dict[OutcomeKind, type[AttemptError]] = {
    OutcomeKind.CONNECT_ERROR: ConnectError,
    OutcomeKind.CONNECT_TIMEOUT: ConnectTimeout,
    OutcomeKind.POOL_TIMEOUT: PoolTimeout,
    OutcomeKind.WRITE_TIMEOUT: WriteTimeout,
    OutcomeKind.READ_TIMEOUT: ReadTimeout,
    OutcomeKind.CONNECTION_LOST: ConnectionLost,
}


def error_for_outcome(outcome: Outcome, verdict: Verdict) -> AttemptError:
    """The error an outcome ends a call with: the driver's own when it gave one, else one built from the outcome."""
    if isinstance(outcome.error, AttemptError):
        return outcome.error
    if outcome.kind is _STATUS and outcome.status is not None:
        error = error_for_status(outcome.status, retryable=verdict is _TRANSIENT, retry_after=outcome.retry_after)
    elif outcome.kind in _KIND_ERRORS:
        error = _KIND_ERRORS[outcome.kind](outcome.kind.value.replace("_", " "))
    else:
        detail = f": {type(outcome.error).__name__}" if outcome.error is not None else ""
        error = UpstreamError(f"attempt failed{detail}", status=outcome.status or 0)
    if outcome.error is not None:
        error.__cause__ = outcome.error
    return error
