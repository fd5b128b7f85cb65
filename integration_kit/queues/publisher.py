"""Publishing under the engine: each publish is one logical call of a :class:`~integration_kit.engine.CallEngine`.

The publisher is a driver: it sends (one attempt = publish and wait for the broker's confirm, bounded by the
attempt's timeout) and sleeps; the engine decides everything else (deadline, retry with backoff, the breaker on
the broker, the retry budget). Broker errors become an :class:`~integration_kit.policies.outcome.Outcome` at one
boundary, :func:`outcome_for`:

=============================  ===================  =================================================
adapter error                  outcome kind         engine's verdict
=============================  ===================  =================================================
BrokerUnavailable              ``connection_lost``  transient: retried (the message may have arrived)
PublishNotConfirmed            ``read_timeout``     transient: retried with the same message id
MessageUnroutable, other       ``error``            failure: not retried, counted by the breaker
=============================  ===================  =================================================

A publish is always safe to repeat: the message id is set once, so JetStream deduplicates it (``Nats-Msg-Id``)
and consumers deduplicate it (the inbox).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from integration_kit.engine.call import CallEngine, Send, run_async
from integration_kit.policies.breaker import CircuitBreaker
from integration_kit.policies.config import BreakerPolicy, RetryPolicy
from integration_kit.policies.outcome import Outcome, OutcomeKind
from integration_kit.queues.broker import Broker
from integration_kit.queues.errors import BrokerUnavailable, PublishNotConfirmed, QueueError
from integration_kit.queues.message import Message

__all__ = ["DEFAULT_CONFIRM_TIMEOUT", "Publisher", "default_publish_engine", "outcome_for"]

#: How long one attempt waits for the broker's confirm (seconds); a confirm normally takes milliseconds.
DEFAULT_CONFIRM_TIMEOUT = 5.0

_SUCCESS = Outcome(OutcomeKind.SUCCESS)


def default_publish_engine(name: str) -> CallEngine:
    """The engine a :class:`Publisher` gets when none is given.

    5 attempts with full-jitter backoff from 0.2 s up to 5 s (a broker fails over in seconds), a 30 s deadline per
    publish, and a breaker that opens after 5 consecutive failures and probes after 5 s (the broker is one
    dependency: there is no traffic mix to compute a rate over).
    """
    return CallEngine(
        name=name,
        retry=RetryPolicy(max_attempts=5, base_delay=0.2, max_delay=5.0),
        breaker=CircuitBreaker(
            BreakerPolicy(failure_threshold=5, failure_rate_threshold=None, wait_in_open=5.0), name=name
        ),
        deadline=30.0,
    )


def outcome_for(error: QueueError) -> Outcome:
    """The outcome of a publish attempt that raised ``error`` (see the module docstring's table)."""
    if isinstance(error, BrokerUnavailable):
        return Outcome(OutcomeKind.CONNECTION_LOST, error=error)
    if isinstance(error, PublishNotConfirmed):
        return Outcome(OutcomeKind.READ_TIMEOUT, error=error)
    return Outcome(OutcomeKind.ERROR, error=error)


class Publisher:
    """Publishes messages to ``broker`` with confirms, under ``engine`` (default :func:`default_publish_engine`).

    ``confirm_timeout`` bounds one attempt (seconds, default :data:`DEFAULT_CONFIRM_TIMEOUT`); the engine's
    deadline, when shorter, bounds it further. :meth:`publish` returns once every message was confirmed, or raises
    the engine's error: :class:`~integration_kit.errors.RetriesExhausted`,
    :class:`~integration_kit.errors.DeadlineExceeded`, :class:`~integration_kit.errors.CircuitOpenError`, or the
    attempt's own :class:`~integration_kit.queues.errors.QueueError` when it is not retried.
    """

    def __init__(
        self, broker: Broker, *, engine: CallEngine | None = None, confirm_timeout: float = DEFAULT_CONFIRM_TIMEOUT
    ) -> None:
        if not confirm_timeout > 0:
            raise ValueError(f"Publisher.confirm_timeout must be > 0 seconds, got {confirm_timeout!r}")
        self.broker = broker
        self.engine = engine or default_publish_engine(broker.destination)
        self.confirm_timeout = confirm_timeout

    async def publish(self, messages: Message | Sequence[Message]) -> None:
        """Publish one message, or a batch in order (one logical call: every message confirmed, or an error)."""
        batch = [messages] if isinstance(messages, Message) else list(messages)
        if not batch:
            return
        gen = self.engine.call("PUBLISH", self.broker.destination, idempotent=True)

        async def send(action: Send) -> Outcome:
            timeout = self.confirm_timeout if action.timeout is None else min(self.confirm_timeout, action.timeout)
            try:
                await self.broker.publish(batch, timeout=timeout)
            except QueueError as exc:
                return outcome_for(exc)
            return _SUCCESS

        await run_async(gen, send, asyncio.sleep)
