"""The broker adapter contract: what the publisher, the relay and the consumer need from RabbitMQ or JetStream.

An adapter only moves messages: it publishes and waits for the broker's confirm, fetches deliveries with a
bounded prefetch, extends a delivery's lease while its handler runs (where the broker has an ack deadline), and
settles each delivery one way (ack, delayed retry, dead letter, requeue). It never decides whether to retry: the
engine (publishing) and the consumer (handling) do. Its errors are the kit's
:class:`~integration_kit.queues.errors.QueueError` family, translated at one boundary inside each adapter.

Every adapter passes one contract suite (``tests/queues/test_queue_brokers.py``), against a real broker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from integration_kit.errors import ConfigurationError
from integration_kit.queues.message import Message

__all__ = ["Broker", "Delivery", "Topology"]


@dataclass(frozen=True, slots=True)
class Topology:
    """Names and settings of one work queue (or stream) with its retry path and dead-letter queue.

    ``name`` is the work queue (RabbitMQ) or stream (JetStream); ``retry_delays`` are the waits (seconds) before
    redelivery after the 1st, 2nd, ... failed attempt, the last repeating (default 1, 5, 30: a short wait for a
    blip, then a longer one for a restart); ``max_attempts`` is the number of deliveries before a message is
    dead-lettered (default 5); ``dead_letter`` names the dead-letter queue or stream (default ``<name>.dlq``).
    """

    name: str
    retry_delays: tuple[float, ...] = (1.0, 5.0, 30.0)
    max_attempts: int = 5
    dead_letter: str = field(default="")

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in " \t\r\n*>"):
            message = f"Topology.name must be a non-empty name without spaces or wildcards, got {self.name!r}"
            raise ConfigurationError(message, field="name")
        for index, delay in enumerate(self.retry_delays):
            if not delay > 0:
                message = f"Topology.retry_delays must be positive seconds, got {self.retry_delays!r}"
                raise ConfigurationError(message, field=f"retry_delays[{index}]")
        if not self.retry_delays:
            raise ConfigurationError("Topology.retry_delays must hold at least one wait", field="retry_delays")
        if self.max_attempts < 1:
            message = f"Topology.max_attempts must be >= 1, got {self.max_attempts!r}"
            raise ConfigurationError(message, field="max_attempts")
        if not self.dead_letter:
            object.__setattr__(self, "dead_letter", f"{self.name}.dlq")

    def delay_after(self, attempt: int) -> float:
        """The wait (seconds) before redelivering a message whose attempt ``attempt`` failed."""
        return self.retry_delays[min(attempt, len(self.retry_delays)) - 1]


class Delivery:
    """One delivered message and the adapter's handle to settle it. Settle it exactly once."""

    __slots__ = ("message", "raw", "redelivered")

    def __init__(self, message: Message, raw: object, *, redelivered: bool = False) -> None:
        self.message = message
        self.raw = raw  # the client library's own message object
        self.redelivered = redelivered

    def __repr__(self) -> str:
        return f"<Delivery {self.message.message_id} attempt={self.message.attempt}>"


@runtime_checkable
class Broker(Protocol):
    """A message broker adapter for one :class:`Topology`. Every method may raise a
    :class:`~integration_kit.queues.errors.QueueError`; a broken connection is re-opened by the next call."""

    topology: Topology

    @property
    def destination(self) -> str:
        """Where publishes go, for errors and events (no credentials)."""
        ...

    @property
    def ack_deadline(self) -> float | None:
        """Seconds the broker waits for a delivery to be settled before it redelivers it (JetStream's
        ``ack_wait``), or ``None`` when it has no such per-delivery deadline (RabbitMQ)."""
        ...

    async def declare(self) -> None:
        """Create the work queue or stream, its retry path and its dead-letter queue, if missing."""
        ...

    async def publish(self, messages: Sequence[Message], *, timeout: float | None = None) -> None:
        """Publish ``messages`` in order and return once the broker confirmed every one.

        Raises :class:`~integration_kit.queues.errors.PublishNotConfirmed` (nacked or no confirm within ``timeout``
        seconds), :class:`~integration_kit.queues.errors.MessageUnroutable` or
        :class:`~integration_kit.queues.errors.BrokerUnavailable`; then any subset may have been stored.
        """
        ...

    async def fetch(self, max_messages: int, *, timeout: float) -> list[Delivery]:
        """Up to ``max_messages`` deliveries, waiting at most ``timeout`` seconds for the first one.

        The broker holds back at most ``prefetch`` unsettled deliveries for this consumer.
        """
        ...

    async def in_progress(self, delivery: Delivery) -> None:
        """The handler is still working on ``delivery``: restart the broker's ack timer (:attr:`ack_deadline`).

        Does nothing where the broker has no ack deadline, or once the delivery was settled.
        """
        ...

    async def ack(self, delivery: Delivery) -> None:
        """The delivery was handled: remove it from the queue."""
        ...

    async def retry(self, delivery: Delivery, *, delay: float, reason: str, now: float) -> None:
        """Redeliver the message after ``delay`` seconds as its next attempt, with this failure in its history."""
        ...

    async def dead_letter(self, delivery: Delivery, *, reason: str, now: float) -> None:
        """Move the message to the dead-letter queue with ``reason`` and its attempt history in headers."""
        ...

    async def requeue(self, delivery: Delivery) -> None:
        """Give the delivery back unhandled, without using up an attempt (pause, shutdown)."""
        ...

    async def dead_letters(self, limit: int = 100) -> list[Message]:
        """The oldest ``limit`` dead letters, left in place."""
        ...

    async def redrive(self, limit: int = 100) -> int:
        """Publish up to ``limit`` dead letters back to the work queue as attempt 1; return how many."""
        ...

    async def delete(self) -> None:
        """Delete everything :meth:`declare` created (tests and teardown)."""
        ...

    async def close(self) -> None:
        """Close the connection; unsettled deliveries go back to the broker."""
        ...
