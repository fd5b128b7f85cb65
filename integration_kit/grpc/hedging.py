"""gRFC A6 hedging on the async channel: several copies of one idempotent call, the first answer wins.

:func:`hedge` is one engine attempt of a hedged method. It sends the first copy at once and another every
``hedgingDelay`` until one answers or ``maxAttempts`` copies are out; a copy that fails with a non-fatal status
(``nonFatalStatusCodes``) sends the next one at once. The first success, or the first fatal status, ends it, and
the other copies are cancelled. Every copy after the first must be allowed by the channel's retry budget, and each
failed copy spends a token, so hedging stops adding load when the partner fails for many calls (A6: hedges are
throttled like retries). A negative or malformed server pushback stops sending copies.

Differences from grpc-java and grpc-go hedging (grpcio has none): the whole hedged group is one attempt for the
engine (one attempt event, one breaker outcome); a hedge waits ``hedgingDelay`` after the previous one, not after a
pushback's delay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from integration_kit.clock import Clock
from integration_kit.engine.actions import Send
from integration_kit.grpc.rpc import Rpc
from integration_kit.grpc.status import GrpcStatus
from integration_kit.policies.budget import RetryBudget
from integration_kit.policies.outcome import Outcome, OutcomeKind

__all__ = ["Sender", "hedge"]

#: Sends one copy: ``(rpc, action, previous copies, grpcio keyword arguments) -> outcome``.
Sender = Callable[[Rpc, Send, int | None, Mapping[str, Any]], Awaitable[Outcome]]


async def hedge(
    rpc: Rpc, action: Send, send: Sender, budget: RetryBudget | None, clock: Clock, kwargs: Mapping[str, Any]
) -> Outcome:
    """Run the hedged copies of ``rpc`` for the engine's attempt ``action``; return the winning outcome (or the
    last copy's failure)."""
    policy = rpc.hedging
    assert policy is not None
    started = clock.now()
    pending: set[asyncio.Task[Outcome]] = set()
    launched = 0
    stopped = False
    last: Outcome | None = None
    try:
        while True:
            if launched < policy.max_attempts and not stopped:
                left = None if action.timeout is None else action.timeout - (clock.now() - started)
                if (left is not None and left <= 0) or (launched > 0 and not _allowed(budget)):
                    stopped = True
                else:
                    copy = action._replace(timeout=left)
                    pending.add(asyncio.ensure_future(send(rpc, copy, launched, kwargs)))
                    launched += 1
            if not pending:
                assert last is not None
                return last
            more = launched < policy.max_attempts and not stopped
            wait = policy.delay / rpc.time_scale if more else None
            done, pending = await asyncio.wait(pending, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                outcome = task.result()
                if outcome.kind is OutcomeKind.SUCCESS or not _non_fatal(rpc, outcome):
                    return outcome
                if last is not None and budget is not None:
                    budget.record_failure()  # the engine records the copy it is given; the others are counted here
                last = outcome
                stopped = stopped or outcome.should_retry is False
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


def _non_fatal(rpc: Rpc, outcome: Outcome) -> bool:
    error = outcome.error
    return rpc.hedging is not None and isinstance(error, GrpcStatus) and error.code in rpc.hedging.non_fatal


def _allowed(budget: RetryBudget | None) -> bool:
    return budget is None or budget.can_retry()
