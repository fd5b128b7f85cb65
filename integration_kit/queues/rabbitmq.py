"""The RabbitMQ adapter, on aio-pika: publisher confirms, ``mandatory`` returns, TTL retry queues, a DLQ.

Topology for a :class:`~integration_kit.queues.broker.Topology` named ``orders``::

    publish --(exchange, or the default exchange)--> orders  --consume--> handler
                                                        ^                  | failed attempt n
                                                        |  dead-lettered   v
                                 orders.retry.<ms> (x-message-ttl, per-message expiration)
    handler --attempts used up / poison--> orders.dlq

A failed attempt is published (with a confirm) to the retry queue for its delay; when the message's TTL runs out
RabbitMQ dead-letters it back to the work queue through the default exchange. One retry queue per distinct delay
avoids the head-of-line blocking of per-message TTLs in one queue. The original delivery is acknowledged only
after the copy was confirmed, so a crash in between delivers the message twice, never zero times.

RabbitMQ has no per-delivery ack deadline: a delivery stays with its consumer until it is settled or the channel
closes. Its one limit is the broker-wide ``consumer_timeout`` (30 minutes by default), after which RabbitMQ closes
the channel (``PRECONDITION_FAILED``) of a consumer still holding an unacknowledged delivery, and what it held
goes back to the queue; a handler that may run longer needs that limit raised (broker-wide, or per queue with the
``consumer-timeout`` policy on recent versions). So :attr:`RabbitMQBroker.ack_deadline` is ``None`` and
:meth:`RabbitMQBroker.in_progress` does nothing.

The connection is opened lazily and reopened by the next call after it broke (no robust connection: the
publisher's engine and the consumer decide when to try again). What aiormq and aio-pika log about this adapter's
connections (a lost connection comes with two chained tracebacks) is logged here instead, one WARNING line per
event with the traceback at DEBUG (:mod:`integration_kit.queues._client_log`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence

import aio_pika
import aio_pika.abc
import aiormq.exceptions
from aio_pika.connection import make_url
from aio_pika.exceptions import DeliveryError, PublishError

from integration_kit.queues._client_log import owned, take_over
from integration_kit.queues.broker import Delivery, Topology
from integration_kit.queues.errors import BrokerUnavailable, MessageUnroutable, PublishNotConfirmed, QueueError
from integration_kit.queues.message import Message

__all__ = ["DEFAULT_AMQP_URL", "RabbitMQBroker", "amqp_url"]

logger = logging.getLogger(__name__)

#: The loggers aiormq and aio-pika log a connection's events on (a filter acts on its own logger only).
CLIENT_LOGGERS = (
    "aiormq.connection",
    "aiormq.connection.marshall",
    "aiormq.channel",
    "aio_pika.connection",
    "aio_pika.channel",
    "aio_pika.exchange",
    "aio_pika.message",
    "aio_pika.queue",
)
take_over(*CLIENT_LOGGERS)

#: The local broker with RabbitMQ's default guest account (it only accepts guest from localhost).
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"

_CONNECTION_ERRORS = (
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.AMQPChannelError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
    OSError,
    RuntimeError,  # aiormq raises a bare RuntimeError("... closed") when a channel is opened on a dead connection
)


def amqp_url() -> str:
    """The broker URL: ``INTEGRATION_KIT_AMQP_URL``, else :data:`DEFAULT_AMQP_URL`."""
    return os.environ.get("INTEGRATION_KIT_AMQP_URL") or DEFAULT_AMQP_URL


class RabbitMQBroker:
    """A :class:`~integration_kit.queues.broker.Broker` on RabbitMQ.

    ``exchange``: publish to this durable topic exchange (bound to the work queue with ``binding_key``) with the
    message's key as routing key; default ``""``, the default exchange straight to the work queue. ``prefetch``
    bounds the unacknowledged deliveries held by this consumer (default 32). ``connect_timeout`` in seconds.
    """

    def __init__(
        self,
        topology: Topology,
        url: str | None = None,
        *,
        exchange: str = "",
        binding_key: str = "#",
        prefetch: int = 32,
        connect_timeout: float = 5.0,
    ) -> None:
        if prefetch < 1:
            raise ValueError(f"RabbitMQBroker.prefetch must be >= 1, got {prefetch!r}")
        self.topology = topology
        self.exchange = exchange
        self.binding_key = binding_key
        self.prefetch = prefetch
        self.connect_timeout = connect_timeout
        self._url = url or amqp_url()
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._closing: set[asyncio.Future[None]] = set()  # broken connections being closed
        self._publish_channel: aio_pika.abc.AbstractChannel | None = None
        self._consume_channel: aio_pika.abc.AbstractChannel | None = None
        self._buffer: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage] = asyncio.Queue()
        self._retry_queues = {
            d: f"{topology.name}.retry.{round(d * 1000)}ms" for d in sorted(set(topology.retry_delays))
        }
        self._lock = asyncio.Lock()

    @property
    def destination(self) -> str:
        """``amqp:<exchange or queue>`` (no host, no credentials)."""
        return f"amqp:{self.exchange or self.topology.name}"

    @property
    def ack_deadline(self) -> None:
        """``None``: RabbitMQ has no per-delivery ack deadline (only the broker-wide ``consumer_timeout``)."""
        return None

    def __repr__(self) -> str:
        return f"<RabbitMQBroker {self.destination}>"

    # -- connection ---------------------------------------------------------------------------------------------

    async def _connect(self) -> aio_pika.abc.AbstractConnection:
        async with self._lock:
            if self._connection is None or self._connection.is_closed:
                self._reset()
                # aio_pika.connect in two steps, so a connection that failed or was cancelled half-way is closed
                # here, on this loop: left to the garbage collector (which may run in a worker thread), aio-pika's
                # Connection.__del__ cannot close it ("coroutine 'Connection.close' was never awaited").
                connection = aio_pika.Connection(make_url(self._url))
                try:
                    with owned(self.destination, logger):  # the connection's tasks log through this adapter
                        await connection.connect(timeout=self.connect_timeout)
                    self._connection = connection
                except BaseException as exc:
                    await asyncio.shield(_close_quietly(connection))
                    if isinstance(exc, (TimeoutError, *_CONNECTION_ERRORS)):
                        raise BrokerUnavailable(
                            f"cannot connect: {type(exc).__name__}", destination=self.destination
                        ) from exc
                    raise
            return self._connection

    async def _publisher(self) -> aio_pika.abc.AbstractChannel:
        if self._publish_channel is None or self._publish_channel.is_closed:
            connection = await self._connect()
            with owned(self.destination, logger):
                self._publish_channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        return self._publish_channel

    def _reset(self) -> None:
        self._connection = None
        self._publish_channel = None
        self._consume_channel = None
        self._buffer = asyncio.Queue()  # deliveries of a dead channel cannot be settled; the broker requeued them

    def _unavailable(self, exc: BaseException, operation: str) -> QueueError:
        if self._connection is not None and not self._connection.is_closed:
            connection = self._connection
            self._reset()
            closing = asyncio.ensure_future(_close_quietly(connection))
            self._closing.add(closing)  # held until done: the loop keeps only a weak reference to a task
            closing.add_done_callback(self._closing.discard)
        else:
            self._reset()
        return BrokerUnavailable(f"{operation} failed: {type(exc).__name__}", destination=self.destination)

    # -- topology -----------------------------------------------------------------------------------------------

    async def declare(self) -> None:
        """Declare the work queue, one retry queue per delay, the dead-letter queue and the exchange if any."""
        name = self.topology.name
        try:
            channel = await self._publisher()
            work = await channel.declare_queue(name, durable=True)
            for delay, retry_name in self._retry_queues.items():
                await channel.declare_queue(
                    retry_name,
                    durable=True,
                    arguments={
                        "x-message-ttl": round(delay * 1000),
                        "x-dead-letter-exchange": "",
                        "x-dead-letter-routing-key": name,
                    },
                )
            await channel.declare_queue(self.topology.dead_letter, durable=True)
            if self.exchange:
                exchange = await channel.declare_exchange(self.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
                await work.bind(exchange, routing_key=self.binding_key)
        except _CONNECTION_ERRORS as exc:
            raise self._unavailable(exc, "declare") from exc

    async def delete(self) -> None:
        """Delete the queues and the exchange that :meth:`declare` created."""
        try:
            channel = await self._publisher()
            for queue in (self.topology.name, *self._retry_queues.values(), self.topology.dead_letter):
                await channel.queue_delete(queue)
            if self.exchange:
                await channel.exchange_delete(self.exchange)
        except _CONNECTION_ERRORS as exc:
            raise self._unavailable(exc, "delete") from exc

    # -- publishing ---------------------------------------------------------------------------------------------

    async def publish(self, messages: Sequence[Message], *, timeout: float | None = None) -> None:
        """Publish ``messages`` with ``mandatory`` set and wait for every confirm (see the Broker protocol)."""
        if self.exchange:
            await self._send(self.exchange, [(m.key, m) for m in messages], timeout)
        else:
            await self._send("", [(self.topology.name, m) for m in messages], timeout)

    async def _send(
        self, exchange_name: str, items: Sequence[tuple[str, Message]], timeout: float | None, expiration: float = 0
    ) -> None:
        try:
            channel = await self._publisher()
            exchange = channel.default_exchange if not exchange_name else await channel.get_exchange(exchange_name)
            async with asyncio.timeout(timeout):
                confirms = [
                    exchange.publish(_amqp_message(m, expiration), routing_key=key, mandatory=True) for key, m in items
                ]
                await asyncio.gather(*confirms)
        except PublishError as exc:
            raise MessageUnroutable(
                f"unroutable: no queue bound for routing key {items[0][0]!r}", destination=self.destination
            ) from exc
        except DeliveryError as exc:
            raise PublishNotConfirmed("the broker nacked the publish", destination=self.destination) from exc
        except TimeoutError as exc:
            raise PublishNotConfirmed(f"no confirm within {timeout}s", destination=self.destination) from exc
        except _CONNECTION_ERRORS as exc:
            raise self._unavailable(exc, "publish") from exc

    # -- consuming ----------------------------------------------------------------------------------------------

    async def _consumer(self) -> None:
        if self._consume_channel is not None and not self._consume_channel.is_closed:
            return
        connection = await self._connect()
        with owned(self.destination, logger):
            channel = await connection.channel()
        await channel.set_qos(prefetch_count=self.prefetch)
        queue = await channel.get_queue(self.topology.name, ensure=False)
        buffer = self._buffer
        await queue.consume(buffer.put, no_ack=False)
        self._consume_channel = channel

    async def fetch(self, max_messages: int, *, timeout: float) -> list[Delivery]:
        """Up to ``max_messages`` of the deliveries pushed to this consumer (at most ``prefetch`` unsettled)."""
        try:
            await self._consumer()
        except _CONNECTION_ERRORS as exc:
            raise self._unavailable(exc, "consume") from exc
        buffer = self._buffer
        try:
            first = await asyncio.wait_for(buffer.get(), timeout)
        except TimeoutError:
            if self._connection is None or self._connection.is_closed:
                raise self._unavailable(ConnectionError("connection closed"), "consume") from None
            return []
        raws = [first]
        while len(raws) < max_messages and not buffer.empty():
            raws.append(buffer.get_nowait())
        return [self._delivery(raw) for raw in raws]

    def _delivery(self, raw: aio_pika.abc.AbstractIncomingMessage) -> Delivery:
        message = Message.from_wire(
            raw.body, dict(raw.headers or {}), key=raw.routing_key or "", message_id=raw.message_id
        )
        return Delivery(message, raw, redelivered=bool(raw.redelivered))

    async def ack(self, delivery: Delivery) -> None:
        """Acknowledge the delivery."""
        await self._settle(delivery, "ack")

    async def in_progress(self, delivery: Delivery) -> None:
        """Nothing to do: no ack timer runs for a RabbitMQ delivery (see the module's docstring)."""

    async def requeue(self, delivery: Delivery) -> None:
        """``basic.nack`` with requeue: the message goes back to the head of the work queue."""
        await self._settle(delivery, "requeue")

    async def _settle(self, delivery: Delivery, how: str) -> None:
        raw = delivery.raw
        if not isinstance(raw, aio_pika.abc.AbstractIncomingMessage):
            raise TypeError(f"not a RabbitMQ delivery: {delivery!r}")
        try:
            if how == "ack":
                await raw.ack()
            else:
                await raw.nack(requeue=True)
        except _CONNECTION_ERRORS as exc:
            raise self._unavailable(exc, how) from exc

    async def retry(self, delivery: Delivery, *, delay: float, reason: str, now: float) -> None:
        """Publish the next attempt to the retry queue for ``delay`` (confirmed), then acknowledge this one."""
        tiers = [d for d in self._retry_queues if d >= delay] or [max(self._retry_queues)]
        queue = self._retry_queues[tiers[0]]
        await self._send("", [(queue, delivery.message.failed(reason, now))], None, expiration=delay)
        await self.ack(delivery)

    async def dead_letter(self, delivery: Delivery, *, reason: str, now: float) -> None:
        """Publish the dead letter to the DLQ (confirmed), then acknowledge the delivery."""
        await self._send("", [(self.topology.dead_letter, delivery.message.dead(reason, now))], None)
        await self.ack(delivery)

    # -- dead letters -------------------------------------------------------------------------------------------

    async def dead_letters(self, limit: int = 100) -> list[Message]:
        """Read up to ``limit`` dead letters without removing them (closing the channel requeues them)."""
        letters: list[Message] = []
        try:
            connection = await self._connect()
            with owned(self.destination, logger):
                channel = await connection.channel()
            async with channel:  # opened above; closed (and what it holds requeued) on the way out
                queue = await channel.get_queue(self.topology.dead_letter, ensure=False)
                while len(letters) < limit:
                    raw = await queue.get(no_ack=False, fail=False)
                    if raw is None:
                        break
                    letters.append(self._delivery(raw).message)
        except _CONNECTION_ERRORS as exc:
            raise self._unavailable(exc, "dead_letters") from exc
        return letters

    async def redrive(self, limit: int = 100) -> int:
        """Move up to ``limit`` dead letters back to the work queue as attempt 1 (each confirmed, then acked)."""
        moved = 0
        try:
            connection = await self._connect()
            with owned(self.destination, logger):
                channel = await connection.channel()
            async with channel:  # opened above; closed (and what it holds requeued) on the way out
                queue = await channel.get_queue(self.topology.dead_letter, ensure=False)
                while moved < limit:
                    raw = await queue.get(no_ack=False, fail=False)
                    if raw is None:
                        break
                    message = self._delivery(raw).message.redriven()
                    await self._send("", [(self.topology.name, message)], None)
                    await raw.ack()
                    moved += 1
        except _CONNECTION_ERRORS as exc:
            raise self._unavailable(exc, "redrive") from exc
        return moved

    async def close(self) -> None:
        """Close the connection (unacknowledged deliveries return to their queue)."""
        connection = self._connection
        self._reset()
        if connection is not None and not connection.is_closed:
            await _close_quietly(connection)


async def _close_quietly(connection: aio_pika.abc.AbstractConnection) -> None:
    """Close a connection that is broken, or failed to open: its errors are logged, not raised (the caller has
    its own error to report, or none)."""
    try:
        await connection.close()
    except _CONNECTION_ERRORS:
        logger.debug("closing a broken RabbitMQ connection", exc_info=True)


def _amqp_message(message: Message, expiration: float) -> aio_pika.Message:
    return aio_pika.Message(
        body=message.body,
        headers=dict(message.wire_headers()),
        message_id=message.message_id,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        expiration=expiration or None,
    )
