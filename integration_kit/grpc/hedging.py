"""gRFC A6 hedging on the async channel: several copies of one idempotent call, the first answer wins.

:func:`hedge` is one engine attempt of a hedged method. The rules (when the next copy goes, which outcome wins,
how hedges draw on the retry budget, what stops them) are the sans-I/O
:class:`~integration_kit.policies.hedging.HedgeRace`, which the simulator runs too; this module only sends the
copies, waits on them and cancels the losers. A non-fatal status is one of the policy's ``nonFatalStatusCodes``.

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
from integration_kit.policies.budget import RetryBudget
from integration_kit.policies.hedging import HedgeRace
from integration_kit.policies.outcome import Outcome

__all__ = ["Sender", "hedge"]

#: Sends one copy: ``(rpc, grpcio keyword arguments, previous copies, action) -> outcome``.
Sender = Callable[[Rpc, Mapping[str, Any], int | None, Send], Awaitable[Outcome]]


async def hedge(
    rpc: Rpc, action: Send, send: Sender, budget: RetryBudget | None, clock: Clock, kwargs: Mapping[str, Any]
) -> Outcome:
    """Run the hedged copies of ``rpc`` for the engine's attempt ``action``; return the winning outcome (or the
    last copy's failure). ``clock`` tells scenario seconds; waits are divided by ``rpc.time_scale``."""
    policy = rpc.hedging
    if policy is None:
        raise ValueError(f"hedge: {rpc.method} has no hedging policy")
    race = HedgeRace(policy.race, started=clock.now(), timeout=action.timeout, budget=budget)
    pending: set[asyncio.Task[Outcome]] = set()
    try:
        while True:
            while (copy := race.launch(clock.now())) is not None:
                sent = action._replace(timeout=copy.timeout)
                pending.add(asyncio.ensure_future(send(rpc, kwargs, copy.number, sent)))
            if not pending:
                if race.last is None:
                    raise RuntimeError("hedge: the race ended without an outcome")
                return race.last
            due = race.next_launch_at
            wait = None if due is None else max(0.0, due - clock.now()) / rpc.time_scale
            done, pending = await asyncio.wait(pending, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                ended = race.finish(task.result(), clock.now())
                if ended is not None:
                    return ended
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
