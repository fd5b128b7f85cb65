"""What the call engine asks of a driver, and the loops that drive it: the engine is a generator that yields
actions (:class:`Send` an attempt, :class:`Wait` a while) and is sent each attempt's :class:`Outcome`;
:func:`run_sync` and :func:`run_async` run one to its end with a driver's ``send`` and ``sleep``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import NamedTuple

from integration_kit.errors import IntegrationError
from integration_kit.policies.outcome import Outcome

__all__ = ["Action", "CallGenerator", "Send", "Wait", "run_async", "run_sync"]


class Send(NamedTuple):
    """Action: make attempt ``attempt``; it must end within ``timeout`` seconds (``None``: no deadline)."""

    attempt: int
    timeout: float | None
    idempotency_key: str | None


class Wait(NamedTuple):
    """Action: pause ``seconds`` before the engine continues (backoff, Retry-After, a queue)."""

    seconds: float


Action = Send | Wait

CallGenerator = Generator[Action, Outcome | None, Outcome]


def run_sync(gen: CallGenerator, send: Callable[[Send], Outcome], sleep: Callable[[float], None]) -> Outcome:
    """Drive ``gen`` to its end on this thread: ``send`` performs attempts, ``sleep`` waits.

    An :class:`~integration_kit.errors.IntegrationError` raised by ``send`` is thrown into ``gen``, which ends the
    call with it (and its call-finished event).
    """
    try:
        action = next(gen)
        while True:
            if type(action) is Send:
                try:
                    outcome = send(action)
                except IntegrationError as exc:
                    action = gen.throw(exc)
                    continue
                action = gen.send(outcome)
            else:
                sleep(action.seconds)  # type: ignore[union-attr]
                action = gen.send(None)
    except StopIteration as done:
        result: Outcome = done.value
        return result
    finally:
        gen.close()


async def run_async(
    gen: CallGenerator,
    send: Callable[[Send], Awaitable[Outcome]],
    sleep: Callable[[float], Awaitable[None]],
) -> Outcome:
    """Drive ``gen`` to its end on an event loop: ``send`` performs attempts, ``sleep`` waits (see :func:`run_sync`)."""
    try:
        action = next(gen)
        while True:
            if type(action) is Send:
                try:
                    outcome = await send(action)
                except IntegrationError as exc:
                    action = gen.throw(exc)
                    continue
                action = gen.send(outcome)
            else:
                await sleep(action.seconds)  # type: ignore[union-attr]
                action = gen.send(None)
    except StopIteration as done:
        result: Outcome = done.value
        return result
    finally:
        gen.close()
